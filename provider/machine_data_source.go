package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var (
	_ datasource.DataSource              = (*machineDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*machineDataSource)(nil)
)

func newMachineDataSource() datasource.DataSource { return &machineDataSource{} }

type machineDataSource struct {
	clients *clients
}

type machineDataModel struct {
	Host        types.String `tfsdk:"host"`
	Name        types.String `tfsdk:"name"`
	ID          types.String `tfsdk:"id"`
	Type        types.String `tfsdk:"type"`
	Description types.String `tfsdk:"description"`
	VCPU        types.Int64  `tfsdk:"vcpu"`
	MaxVCPU     types.Int64  `tfsdk:"max_vcpu"`
	Memory      types.Int64  `tfsdk:"memory"`
	MaxMemory   types.Int64  `tfsdk:"max_memory"`
	Firmware    types.String `tfsdk:"firmware"`
	Running     types.Bool   `tfsdk:"running"`
	Autostart   types.Bool   `tfsdk:"autostart"`
	State       types.String `tfsdk:"state"`
	Disks       types.List   `tfsdk:"disk"`
	Interfaces  types.List   `tfsdk:"network_interface"`
}

type machineDataDisk struct {
	VolumeID types.String `tfsdk:"volume_id"`
	Path     types.String `tfsdk:"path"`
	Format   types.String `tfsdk:"format"`
	Bus      types.String `tfsdk:"bus"`
	Device   types.String `tfsdk:"device"`
	ReadOnly types.Bool   `tfsdk:"readonly"`
	Target   types.String `tfsdk:"target"`
}

type machineDataInterface struct {
	Network   types.String `tfsdk:"network"`
	Bridge    types.String `tfsdk:"bridge"`
	Model     types.String `tfsdk:"model"`
	MAC       types.String `tfsdk:"mac"`
	Addresses types.List   `tfsdk:"addresses"`
}

var machineDataInterfaceAttrTypes = map[string]attr.Type{
	"network":   types.StringType,
	"bridge":    types.StringType,
	"model":     types.StringType,
	"mac":       types.StringType,
	"addresses": types.ListType{ElemType: types.StringType},
}

func (d *machineDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_machine"
}

func (d *machineDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a machine (libvirt domain) by name, whoever made it: its size, run state, " +
			"disks and network interfaces with their MAC and IP addresses.",
		Attributes: map[string]schema.Attribute{
			"host":        hostDataSourceAttribute(),
			"name":        schema.StringAttribute{Required: true, MarkdownDescription: "Name of the machine."},
			"id":          computed("The machine's UUID."),
			"type":        computed("Domain type: " + describeValues(virt.DomainTypes) + "."),
			"description": computed("Description kept in the definition; empty when there is none."),
			"vcpu":        schema.Int64Attribute{Computed: true, MarkdownDescription: "Number of vCPUs at boot."},
			"max_vcpu":    schema.Int64Attribute{Computed: true, MarkdownDescription: "Number of vCPU slots."},
			"memory":      schema.Int64Attribute{Computed: true, MarkdownDescription: "Memory in MiB."},
			"max_memory":  schema.Int64Attribute{Computed: true, MarkdownDescription: "Most memory in MiB the machine can be given while it runs."},
			"firmware":    computed("Firmware: " + describeValues(virt.Firmwares) + "."),
			"running":     schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the machine runs (or is paused)."},
			"autostart":   schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether libvirt starts it when the host boots."},
			"state":       computed("Run state as libvirt reports it: `running`, `shutoff`, `paused`..."),
			"disk": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "Disks and CD-ROMs, in the definition's order.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"volume_id": computed("Key of the volume the disk was attached by, if it was attached by this provider from a volume."),
					"path":      computed("Host path of the image or device, for a disk not attached from a volume."),
					"format":    computed("Image format."),
					"bus":       computed("Bus: " + describeValues(virt.DiskBuses) + "."),
					"device":    computed("Device kind: " + describeValues(virt.DiskDevices) + "."),
					"readonly":  schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the guest sees it read-only."},
					"target":    computed("Device name offered to the guest."),
				}},
			},
			"network_interface": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "Network interfaces, in the definition's order.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"network": computed("Libvirt network the interface is on."),
					"bridge":  computed("Host bridge the interface is on."),
					"model":   computed("NIC model."),
					"mac":     computed("MAC address."),
					"addresses": schema.ListAttribute{Computed: true, ElementType: types.StringType,
						MarkdownDescription: "IP addresses of the running guest on this interface, from DHCP leases, the guest agent or the host's ARP table."},
				}},
			},
		},
	}
}

func (d *machineDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	d.clients = c
}

func (d *machineDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg machineDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	lv, err := d.clients.Libvirt(ctx, cfg.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	name := cfg.Name.ValueString()
	spec, err := lv.Machine(ctx, name)
	if errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddError("Machine not found", fmt.Sprintf("There is no machine named %q on %s.", name, lv.URI()))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read machine "+name, fmt.Sprintf("on %s: %v", lv.URI(), err))
		return
	}

	// The resource's mapping, so that both read a machine the same way;
	// the data source shows every disk, the cloud-init seed included.
	m, diags := modelFromSpec(ctx, spec, machineModel{})
	resp.Diagnostics.Append(diags...)
	disks := make([]machineDataDisk, 0, len(spec.Disks))
	for _, disk := range spec.Disks {
		disks = append(disks, machineDataDisk{
			VolumeID: optString(disk.VolumeKey, types.StringNull()),
			Path:     optString(disk.Path, types.StringNull()),
			Format:   optString(disk.Format, types.StringNull()),
			Bus:      types.StringValue(disk.Bus),
			Device:   types.StringValue(disk.Device),
			ReadOnly: types.BoolValue(disk.ReadOnly),
			Target:   types.StringValue(disk.Target),
		})
	}
	diskList, diags := types.ListValueFrom(ctx, types.ObjectType{AttrTypes: diskAttrTypes}, disks)
	resp.Diagnostics.Append(diags...)
	nics, diags := listAs[interfaceModel](ctx, m.Interfaces)
	resp.Diagnostics.Append(diags...)
	dataNICs := make([]machineDataInterface, len(nics))
	for i, n := range nics {
		dataNICs[i] = machineDataInterface{Network: n.Network, Bridge: n.Bridge, Model: n.Model, MAC: n.MAC, Addresses: n.Addresses}
	}
	nicList, diags := types.ListValueFrom(ctx, types.ObjectType{AttrTypes: machineDataInterfaceAttrTypes}, dataNICs)
	resp.Diagnostics.Append(diags...)

	state := machineDataModel{
		Host:        cfg.Host,
		Name:        m.Name,
		ID:          m.ID,
		Type:        m.Type,
		Description: types.StringValue(spec.Description),
		VCPU:        m.VCPU,
		MaxVCPU:     m.MaxVCPU,
		Memory:      m.Memory,
		MaxMemory:   m.MaxMemory,
		Firmware:    m.Firmware,
		Running:     m.Running,
		Autostart:   m.Autostart,
		State:       m.State,
		Disks:       diskList,
		Interfaces:  nicList,
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}
