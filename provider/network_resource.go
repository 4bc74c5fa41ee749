package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var (
	_ resource.Resource                   = (*networkResource)(nil)
	_ resource.ResourceWithConfigure      = (*networkResource)(nil)
	_ resource.ResourceWithImportState    = (*networkResource)(nil)
	_ resource.ResourceWithValidateConfig = (*networkResource)(nil)
)

func newNetworkResource() resource.Resource { return &networkResource{} }

type networkResource struct {
	clients *clients
}

type networkModel struct {
	Host      types.String `tfsdk:"host"`
	ID        types.String `tfsdk:"id"`
	Name      types.String `tfsdk:"name"`
	Mode      types.String `tfsdk:"mode"`
	Bridge    types.String `tfsdk:"bridge"`
	Addresses types.List   `tfsdk:"addresses"`
	DHCP      types.Bool   `tfsdk:"dhcp"`
	Domain    types.String `tfsdk:"domain"`
	Autostart types.Bool   `tfsdk:"autostart"`
	Active    types.Bool   `tfsdk:"active"`
}

// networkModeDescriptions explains each of virt.NetworkModes; the schema's
// description and validator are both built from that list.
var networkModeDescriptions = map[string]string{
	virt.NetworkNAT: "guests reach the outside through the host, masqueraded behind the host's address " +
		"(like libvirt's `default` network)",
	virt.NetworkRoute: "the host routes the network's traffic without NAT, so the outside needs a route back " +
		"to the subnet through the host",
	virt.NetworkIsolated: "guests reach each other and the host only",
	virt.NetworkBridge: "guests join an existing host bridge named by `bridge`, whose addresses come from the " +
		"host's own network set-up (so `addresses`, `dhcp` and `domain` are not available)",
}

func networkModesMarkdown() string {
	parts := make([]string, 0, len(virt.NetworkModes))
	for _, m := range virt.NetworkModes {
		parts = append(parts, fmt.Sprintf("`%s`: %s", m, networkModeDescriptions[m]))
	}
	return strings.Join(parts, "; ")
}

const replacesNetwork = " Changing it replaces the network (libvirt cannot change it on a defined network)."

func (r *networkResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_network"
}

func (r *networkResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A libvirt virtual network: a host bridge with, depending on `mode`, NAT or routing to the " +
			"outside and a DHCP and DNS server (libvirt's dnsmasq) for the guests attached to it. The network is " +
			"defined, started and (by default) set to start with libvirtd. Only `autostart` changes in place; " +
			"a change of any other argument replaces the network, so machines attached to it lose their link " +
			"until they are attached again. A network stopped outside Terraform is started again by the next apply.",
		Attributes: map[string]schema.Attribute{
			"host": hostResourceAttribute(),
			"id": schema.StringAttribute{
				MarkdownDescription: "The network's UUID.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the network on the host; machines refer to it by this name." + replacesNetwork,
				Required:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"mode": schema.StringAttribute{
				MarkdownDescription: "How the network reaches beyond the host, one of " + networkModesMarkdown() +
					". Defaults to `" + virt.NetworkNAT + "`." + replacesNetwork,
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString(virt.NetworkNAT),
				Validators:    []validator.String{stringvalidator.OneOf(virt.NetworkModes...)},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"bridge": schema.StringAttribute{
				MarkdownDescription: "Name of the host bridge (a Linux interface name, at most 15 bytes). In `" +
					virt.NetworkBridge + "` mode it is required and names an existing bridge that libvirt neither " +
					"creates nor removes; in the other modes libvirt creates it and, when unset, names it " +
					"`virbrN`." + replacesNetwork,
				Optional:   true,
				Computed:   true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers: []planmodifier.String{
					stringplanmodifier.UseStateForUnknown(),
					stringplanmodifier.RequiresReplace(),
				},
			},
			"addresses": schema.ListAttribute{
				MarkdownDescription: "The host's addresses on the network in canonical CIDR form, which also give the " +
					"network's subnets: `10.17.3.1/24` makes the host 10.17.3.1 on 10.17.3.0/24. At most one IPv4 and " +
					"one IPv6 address; the host address must not be the subnet's network or broadcast address. " +
					"At least one is needed in `" + virt.NetworkNAT + "` and `" + virt.NetworkRoute + "` mode, which " +
					"forward that subnet; an `" + virt.NetworkIsolated + "` network without addresses is a plain " +
					"link between guests. Not available in `" + virt.NetworkBridge + "` mode." + replacesNetwork,
				Optional:      true,
				ElementType:   types.StringType,
				Validators:    []validator.List{listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))},
				PlanModifiers: []planmodifier.List{listplanmodifier.RequiresReplace()},
			},
			"dhcp": schema.BoolAttribute{
				MarkdownDescription: "Whether libvirt's dnsmasq hands out addresses to guests: every address of each " +
					"subnet of `addresses` except the host's own (in subnets of more than 65536 addresses, such as an " +
					"IPv6 /64, the 65536-address block around the host address). Defaults to `true` when `addresses` " +
					"is set and to `false` otherwise; `true` without addresses is an error." + replacesNetwork,
				Optional:      true,
				Computed:      true,
				PlanModifiers: []planmodifier.Bool{dhcpFollowsAddresses{}, boolplanmodifier.RequiresReplace()},
			},
			"domain": schema.StringAttribute{
				MarkdownDescription: "DNS domain of the network: dnsmasq answers for `<guest hostname>.<domain>` and " +
					"keeps queries for the domain local. Not available in `" + virt.NetworkBridge + "` mode." +
					replacesNetwork,
				Optional:      true,
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"autostart": schema.BoolAttribute{
				MarkdownDescription: "Whether libvirtd starts the network when it starts. Defaults to `true`. " +
					"Changes in place without disturbing the running network.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"active": schema.BoolAttribute{
				MarkdownDescription: "Whether the network is running. Terraform keeps it running: a network " +
					"stopped outside Terraform reads as `false`, the next plan shows an in-place update to `true`, " +
					"and apply starts it.",
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
		},
	}
}

// dhcpFollowsAddresses plans dhcp as "on when there are addresses" when the
// configuration leaves it out, which is what a network with a subnet is
// usually for (libvirt's own default network serves DHCP too).
type dhcpFollowsAddresses struct{}

func (dhcpFollowsAddresses) Description(context.Context) string {
	return "defaults to true when addresses are set, false otherwise"
}

func (m dhcpFollowsAddresses) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (dhcpFollowsAddresses) PlanModifyBool(ctx context.Context, req planmodifier.BoolRequest, resp *planmodifier.BoolResponse) {
	if !req.ConfigValue.IsNull() {
		return
	}
	var addrs types.List
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("addresses"), &addrs)...)
	if addrs.IsUnknown() {
		resp.PlanValue = types.BoolUnknown()
		return
	}
	resp.PlanValue = types.BoolValue(len(addrs.Elements()) > 0)
}

func (r *networkResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	r.clients = c
}

// ValidateConfig applies internal/virt's own rules at plan time (address
// families, network and broadcast addresses, what bridge mode excludes), so
// that they live in one place and a bad network fails at `terraform
// validate`, not halfway through an apply. A configuration with values not
// yet known is checked again by the layer at apply.
func (r *networkResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var cfg networkModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, known := networkSpecFromConfig(cfg)
	if !known {
		return
	}
	spec = spec.WithDefaults()
	if !slices.Contains(virt.NetworkModes, spec.Mode) {
		return // the mode attribute's validator has said so; the rest depends on it
	}
	addNetworkSpecErrors(&resp.Diagnostics, spec.Validate())
}

// networkSpecFromConfig builds the spec a configuration asks for with the
// defaults the plan would give it, and reports whether every value is known.
func networkSpecFromConfig(cfg networkModel) (virt.NetworkSpec, bool) {
	for _, v := range []attr.Value{cfg.Name, cfg.Mode, cfg.Bridge, cfg.Addresses, cfg.DHCP, cfg.Domain} {
		if v.IsUnknown() {
			return virt.NetworkSpec{}, false
		}
	}
	spec := virt.NetworkSpec{
		Name:   cfg.Name.ValueString(),
		Mode:   cfg.Mode.ValueString(),
		Bridge: cfg.Bridge.ValueString(),
		Domain: cfg.Domain.ValueString(),
	}
	for _, e := range cfg.Addresses.Elements() {
		s, ok := e.(types.String)
		if !ok || s.IsUnknown() {
			return virt.NetworkSpec{}, false
		}
		spec.Addresses = append(spec.Addresses, s.ValueString())
	}
	if cfg.DHCP.IsNull() {
		// The default (see dhcpFollowsAddresses) is never an error in
		// itself: bridge mode with addresses is reported on addresses.
		spec.DHCP = len(spec.Addresses) > 0 && spec.Mode != virt.NetworkBridge
	} else {
		spec.DHCP = cfg.DHCP.ValueBool()
	}
	return spec, true
}

// addNetworkSpecErrors reports the layer's validation errors on the
// attributes they name, and any other error as it is.
func addNetworkSpecErrors(diags *diag.Diagnostics, err error) {
	if err == nil {
		return
	}
	var es virt.SpecErrors
	if !errors.As(err, &es) {
		diags.AddError("Invalid network", err.Error())
		return
	}
	for _, e := range es {
		diags.AddAttributeError(networkSpecFieldPath(e.Field), "Invalid network "+networkFieldRoot(e.Field), e.Error())
	}
}

func networkFieldRoot(field string) string {
	root, _, _ := strings.Cut(field, "[")
	return root
}

var specFieldIndexRE = regexp.MustCompile(`^([a-z_]+)\[(\d+)\]$`)

// networkSpecFieldPath maps a SpecError field ("addresses[1]") to its
// attribute path; the spec's snake_case names are the schema's names.
func networkSpecFieldPath(field string) path.Path {
	if m := specFieldIndexRE.FindStringSubmatch(field); m != nil {
		i, _ := strconv.Atoi(m[2])
		return path.Root(m[1]).AtListIndex(i)
	}
	return path.Root(field)
}

// networkSpecFromPlan is what Create sends to the layer.
func networkSpecFromPlan(ctx context.Context, plan networkModel) (virt.NetworkSpec, diag.Diagnostics) {
	var diags diag.Diagnostics
	spec := virt.NetworkSpec{
		Name:      plan.Name.ValueString(),
		Mode:      plan.Mode.ValueString(),
		Bridge:    plan.Bridge.ValueString(), // "" when unknown: libvirt names it
		DHCP:      plan.DHCP.ValueBool(),
		Domain:    plan.Domain.ValueString(),
		Autostart: plan.Autostart.ValueBool(),
	}
	if !plan.Addresses.IsNull() {
		diags.Append(plan.Addresses.ElementsAs(ctx, &spec.Addresses, false)...)
	}
	return spec, diags
}

// syncFromSpec is the one read-back mapping that Create, Read, Update and
// Import share. It keeps what only the configuration knows: the host, and
// an empty list of addresses as opposed to none at all.
func (m *networkModel) syncFromSpec(ctx context.Context, spec *virt.NetworkSpec) diag.Diagnostics {
	var diags diag.Diagnostics
	m.ID = types.StringValue(spec.UUID)
	m.Name = types.StringValue(spec.Name)
	m.Mode = types.StringValue(spec.Mode)
	m.Bridge = networkString(spec.Bridge)
	m.Domain = networkString(spec.Domain)
	m.DHCP = types.BoolValue(spec.DHCP)
	m.Autostart = types.BoolValue(spec.Autostart)
	m.Active = types.BoolValue(spec.Active)
	switch {
	case len(spec.Addresses) > 0:
		var d diag.Diagnostics
		m.Addresses, d = types.ListValueFrom(ctx, types.StringType, spec.Addresses)
		diags.Append(d...)
	case !m.Addresses.IsNull() && !m.Addresses.IsUnknown() && len(m.Addresses.Elements()) == 0:
		// addresses = [] stays [], or every plan would show a change.
	default:
		m.Addresses = types.ListNull(types.StringType)
	}
	return diags
}

// networkString maps the empty string libvirt gives for "not set" to null.
func networkString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

func (r *networkResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan networkModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec, diags := networkSpecFromPlan(ctx, plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	lv, err := r.clients.Libvirt(ctx, plan.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	got, err := lv.CreateNetwork(ctx, spec)
	var specErrs virt.SpecErrors
	switch {
	case errors.As(err, &specErrs):
		addNetworkSpecErrors(&resp.Diagnostics, err)
		return
	case errors.Is(err, virt.ErrExists):
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Network already exists",
			fmt.Sprintf("A network named %q already exists on %s. Choose another name, or bring the existing one "+
				"under Terraform with `terraform import` (name or UUID).", spec.Name, lv.URI()))
		return
	case err != nil:
		resp.Diagnostics.AddError("Cannot create network",
			fmt.Sprintf("create network %q on %s: %v", spec.Name, lv.URI(), err))
		return
	}
	resp.Diagnostics.Append(plan.syncFromSpec(ctx, got)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *networkResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state networkModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	lv, err := r.clients.Libvirt(ctx, state.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	got, err := lv.Network(ctx, state.Name.ValueString())
	if errors.Is(err, virt.ErrNotFound) {
		// Deleted outside Terraform: the next plan creates it again.
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read network",
			fmt.Sprintf("read network %q on %s: %v", state.Name.ValueString(), lv.URI(), err))
		return
	}
	resp.Diagnostics.Append(state.syncFromSpec(ctx, got)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update changes what can change without replacing the network: autostart,
// and the run state (a network stopped out of band is started).
func (r *networkResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state networkModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := state.Name.ValueString()
	lv, err := r.clients.Libvirt(ctx, state.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	if !state.Active.ValueBool() {
		if err := lv.StartNetwork(ctx, name); err != nil {
			resp.Diagnostics.AddError("Cannot start network",
				fmt.Sprintf("start network %q on %s: %v", name, lv.URI(), err))
			return
		}
	}
	if !plan.Autostart.Equal(state.Autostart) {
		if err := lv.SetNetworkAutostart(ctx, name, plan.Autostart.ValueBool()); err != nil {
			resp.Diagnostics.AddError("Cannot change network autostart",
				fmt.Sprintf("set autostart of network %q on %s: %v", name, lv.URI(), err))
			return
		}
	}
	got, err := lv.Network(ctx, name)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read network",
			fmt.Sprintf("read network %q on %s after update: %v", name, lv.URI(), err))
		return
	}
	resp.Diagnostics.Append(plan.syncFromSpec(ctx, got)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *networkResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state networkModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	lv, err := r.clients.Libvirt(ctx, state.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	name := state.Name.ValueString()
	if err := lv.DeleteNetwork(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddError("Cannot delete network",
			fmt.Sprintf("delete network %q on %s: %v", name, lv.URI(), err))
	}
}

// networkUUIDRE is libvirt's printed UUID form: an import ID of that shape
// is looked up as a UUID when no network has it as its name.
var networkUUIDRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ImportState takes NAME or UUID for the provider's default host and
// HOST/NAME or HOST/UUID for one of its hosts; network names cannot hold
// a slash, so the first slash always ends the host.
func (r *networkResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	host, id := "", req.ID
	if h, rest, ok := strings.Cut(req.ID, "/"); ok {
		host, id = h, rest
	}
	if id == "" {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("%q: expected NAME or UUID, or HOST/NAME or HOST/UUID for a host of the provider's hosts map.", req.ID))
		return
	}
	lv, err := r.clients.Libvirt(ctx, host)
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	got, err := lv.Network(ctx, id)
	if errors.Is(err, virt.ErrNotFound) && networkUUIDRE.MatchString(id) {
		got, err = lv.NetworkByUUID(ctx, id)
	}
	if errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddError("Network not found",
			fmt.Sprintf("No network is named %q or has it as UUID on %s.", id, lv.URI()))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot import network", fmt.Sprintf("look up network %q on %s: %v", id, lv.URI(), err))
		return
	}
	if host != "" {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("host"), host)...)
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), got.UUID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), got.Name)...)
}
