package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var (
	_ datasource.DataSource              = (*hostDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*hostDataSource)(nil)
)

func newHostDataSource() datasource.DataSource { return &hostDataSource{} }

type hostDataSource struct {
	clients *clients
}

type hostModel struct {
	Host              types.String `tfsdk:"host"`
	ID                types.String `tfsdk:"id"`
	Hostname          types.String `tfsdk:"hostname"`
	Arch              types.String `tfsdk:"arch"`
	CPUs              types.Int64  `tfsdk:"cpus"`
	Memory            types.Int64  `tfsdk:"memory"`
	KVMAvailable      types.Bool   `tfsdk:"kvm_available"`
	DomainTypes       types.List   `tfsdk:"domain_types"`
	LibvirtVersion    types.String `tfsdk:"libvirt_version"`
	HypervisorVersion types.String `tfsdk:"hypervisor_version"`
	LXCVersion        types.String `tfsdk:"lxc_version"`
}

func (d *hostDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_host"
}

func (d *hostDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Facts about the host the provider manages: what libvirt reports for machines " +
			"and which LXC version serves containers. Use it to check a host before declaring guests on it, " +
			"for example to pick `type = \"qemu\"` where KVM is not usable.",
		Attributes: map[string]schema.Attribute{
			"host":     hostDataSourceAttribute(),
			"id":       schema.StringAttribute{Computed: true, MarkdownDescription: "The host name (the same as `hostname`)."},
			"hostname": schema.StringAttribute{Computed: true, MarkdownDescription: "The host's name as libvirt reports it."},
			"arch":     schema.StringAttribute{Computed: true, MarkdownDescription: "CPU architecture, for example `x86_64`."},
			"cpus":     schema.Int64Attribute{Computed: true, MarkdownDescription: "Number of logical CPUs."},
			"memory":   schema.Int64Attribute{Computed: true, MarkdownDescription: "Physical memory in MiB."},
			"kvm_available": schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether libvirt offers the `kvm` domain type " +
				"for the host's architecture (hardware acceleration present). Inside a virtual machine without working " +
				"nested virtualization libvirt may still offer it; guests then fail to run, and `type = \"qemu\"` is the way out."},
			"domain_types": schema.ListAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Domain types libvirt offers for the host's architecture, for example `[\"kvm\", \"qemu\"]`."},
			"libvirt_version":    schema.StringAttribute{Computed: true, MarkdownDescription: "Version of the libvirt daemon, `major.minor.micro`."},
			"hypervisor_version": schema.StringAttribute{Computed: true, MarkdownDescription: "Version of the hypervisor behind the connection (QEMU for `qemu://` URIs)."},
			"lxc_version": schema.StringAttribute{Computed: true, MarkdownDescription: "Version of liblxc on the host the provider runs on; " +
				"null when this build or host has no LXC (a warning says why)."},
		},
	}
}

func (d *hostDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	d.clients = c
}

func (d *hostDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg hostModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	lv, err := d.clients.Libvirt(ctx, cfg.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	info, err := lv.HostInfo(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read host facts", fmt.Sprintf("libvirt at %s: %v", lv.URI(), err))
		return
	}
	domainTypes, diags := types.ListValueFrom(ctx, types.StringType, info.DomainTypes)
	resp.Diagnostics.Append(diags...)

	state := hostModel{
		Host:              cfg.Host,
		ID:                types.StringValue(info.Hostname),
		Hostname:          types.StringValue(info.Hostname),
		Arch:              types.StringValue(info.Arch),
		CPUs:              types.Int64Value(int64(info.CPUs)),
		Memory:            types.Int64Value(int64(info.MemoryBytes >> 20)),
		KVMAvailable:      types.BoolValue(info.KVMAvailable),
		DomainTypes:       domainTypes,
		LibvirtVersion:    types.StringValue(info.LibvirtVersion),
		HypervisorVersion: types.StringValue(info.HypervisorVersion),
		LXCVersion:        types.StringNull(),
	}
	if lx, err := d.clients.LXC(); err != nil {
		resp.Diagnostics.AddWarning("LXC not available", err.Error())
	} else {
		state.LXCVersion = types.StringValue(lx.Version())
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}
