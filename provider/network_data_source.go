package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var (
	_ datasource.DataSource              = (*networkDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*networkDataSource)(nil)
)

func newNetworkDataSource() datasource.DataSource { return &networkDataSource{} }

type networkDataSource struct {
	clients *clients
}

type networkDataModel struct {
	Host      types.String        `tfsdk:"host"`
	ID        types.String        `tfsdk:"id"`
	Name      types.String        `tfsdk:"name"`
	Mode      types.String        `tfsdk:"mode"`
	Bridge    types.String        `tfsdk:"bridge"`
	Addresses []types.String      `tfsdk:"addresses"`
	DHCP      types.Bool          `tfsdk:"dhcp"`
	Domain    types.String        `tfsdk:"domain"`
	Autostart types.Bool          `tfsdk:"autostart"`
	Active    types.Bool          `tfsdk:"active"`
	Leases    []networkLeaseModel `tfsdk:"leases"`
}

type networkLeaseModel struct {
	MAC      types.String `tfsdk:"mac"`
	IP       types.String `tfsdk:"ip"`
	Hostname types.String `tfsdk:"hostname"`
	Expiry   types.String `tfsdk:"expiry"`
}

func (d *networkDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_network"
}

func (d *networkDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An existing libvirt network, found by name: use it to attach machines to a network " +
			"Terraform does not manage, such as libvirt's `default`, and to see the DHCP leases it has handed out.",
		Attributes: map[string]schema.Attribute{
			"host": hostDataSourceAttribute(),
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the network.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The network's UUID."},
			"mode": schema.StringAttribute{Computed: true, MarkdownDescription: "Forward mode: one of " +
				networkModesMarkdown() + ". Networks made by other tools may show other libvirt forward modes " +
				"(for example `passthrough`) as libvirt names them."},
			"bridge": schema.StringAttribute{Computed: true, MarkdownDescription: "Name of the host bridge; null for " +
				"networks without one (for example macvtap pools)."},
			"addresses": schema.ListAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "The host's addresses on the network in CIDR form, such as `192.168.122.1/24`."},
			"dhcp":      schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the network serves DHCP ranges."},
			"domain":    schema.StringAttribute{Computed: true, MarkdownDescription: "DNS domain of the network; null when it has none."},
			"autostart": schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether libvirtd starts the network when it starts."},
			"active":    schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the network is running."},
			"leases": schema.ListNestedAttribute{
				Computed: true,
				MarkdownDescription: "DHCP leases the network's dnsmasq has handed out, as of the read: empty when " +
					"it has none or is not running.",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"mac":      schema.StringAttribute{Computed: true, MarkdownDescription: "MAC address of the guest's interface."},
						"ip":       schema.StringAttribute{Computed: true, MarkdownDescription: "Address leased, without prefix length."},
						"hostname": schema.StringAttribute{Computed: true, MarkdownDescription: "Host name the guest sent; null when it sent none."},
						"expiry":   schema.StringAttribute{Computed: true, MarkdownDescription: "When the lease ends, RFC 3339 in UTC."},
					},
				},
			},
		},
	}
}

func (d *networkDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	d.clients = c
}

func (d *networkDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg networkDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := cfg.Name.ValueString()
	lv, err := d.clients.Libvirt(ctx, cfg.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	spec, err := lv.Network(ctx, name)
	if errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Network not found",
			fmt.Sprintf("No network named %q on %s.", name, lv.URI()))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read network", fmt.Sprintf("read network %q on %s: %v", name, lv.URI(), err))
		return
	}
	leases, err := lv.Leases(ctx, name)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read DHCP leases",
			fmt.Sprintf("read DHCP leases of network %q on %s: %v", name, lv.URI(), err))
		return
	}

	state := networkDataModel{
		Host:      cfg.Host,
		ID:        types.StringValue(spec.UUID),
		Name:      types.StringValue(spec.Name),
		Mode:      types.StringValue(spec.Mode),
		Bridge:    networkString(spec.Bridge),
		Addresses: make([]types.String, 0, len(spec.Addresses)),
		DHCP:      types.BoolValue(spec.DHCP),
		Domain:    networkString(spec.Domain),
		Autostart: types.BoolValue(spec.Autostart),
		Active:    types.BoolValue(spec.Active),
		Leases:    make([]networkLeaseModel, 0, len(leases)),
	}
	for _, a := range spec.Addresses {
		state.Addresses = append(state.Addresses, types.StringValue(a))
	}
	for _, l := range leases {
		state.Leases = append(state.Leases, networkLeaseModel{
			MAC:      networkString(l.MAC),
			IP:       types.StringValue(l.IP),
			Hostname: networkString(l.Hostname),
			Expiry:   types.StringValue(l.Expiry.UTC().Format(time.RFC3339)),
		})
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}
