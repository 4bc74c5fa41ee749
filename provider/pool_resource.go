package provider

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var (
	_ resource.Resource                   = (*poolResource)(nil)
	_ resource.ResourceWithConfigure      = (*poolResource)(nil)
	_ resource.ResourceWithImportState    = (*poolResource)(nil)
	_ resource.ResourceWithValidateConfig = (*poolResource)(nil)
)

func newPoolResource() resource.Resource { return &poolResource{} }

type poolResource struct {
	clients *clients
}

type poolModel struct {
	Host       types.String `tfsdk:"host"`
	ID         types.String `tfsdk:"id"`
	Name       types.String `tfsdk:"name"`
	Type       types.String `tfsdk:"type"`
	Path       types.String `tfsdk:"path"`
	Autostart  types.Bool   `tfsdk:"autostart"`
	Active     types.Bool   `tfsdk:"active"`
	Capacity   types.Int64  `tfsdk:"capacity"`
	Allocation types.Int64  `tfsdk:"allocation"`
	Available  types.Int64  `tfsdk:"available"`
}

// poolTypeDescriptions explains each of virt.PoolTypes; the schema's
// description and validator are both built from that list.
var poolTypeDescriptions = map[string]string{
	virt.PoolDir: "volumes are files in the directory `path` (qcow2 or raw); clones are qcow2 files backed " +
		"by their template",
}

func poolTypesMarkdown() string {
	parts := make([]string, 0, len(virt.PoolTypes))
	for _, t := range virt.PoolTypes {
		parts = append(parts, fmt.Sprintf("`%s`: %s", t, poolTypeDescriptions[t]))
	}
	return strings.Join(parts, "; ")
}

const replacesPool = " Changing it replaces the pool, which fails while the pool still holds volumes."

func (r *poolResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_pool"
}

func (r *poolResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A libvirt storage pool: a directory on the host that holds volumes (`virt_volume`). " +
			"The pool is defined, its directory created (mode 0711; an existing directory is kept as it is), " +
			"and the pool started and (by default) set to start with libvirtd. Destroying it removes the " +
			"directory and the definition, and is refused while the pool still holds volumes, whether Terraform " +
			"made them or not: the error names them. A pool stopped outside Terraform is started again by the " +
			"next apply.",
		Attributes: map[string]schema.Attribute{
			"host": hostResourceAttribute(),
			"id": schema.StringAttribute{
				MarkdownDescription: "The pool's UUID.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the pool on the host; volumes name their pool by it. One path element: " +
					"no `/`, not `.` or `..`, at most 251 bytes." + replacesPool,
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"type": schema.StringAttribute{
				MarkdownDescription: "Kind of pool, one of " + poolTypesMarkdown() + ". Defaults to `" +
					virt.PoolDir + "`." + replacesPool,
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString(virt.PoolDir),
				Validators:    []validator.String{stringvalidator.OneOf(virt.PoolTypes...)},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "The pool's directory on the host, absolute and in clean form (no trailing " +
					"slash, no `.` or `..` elements), as libvirt stores it. Missing parent directories are created." +
					replacesPool,
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"autostart": schema.BoolAttribute{
				MarkdownDescription: "Whether libvirtd starts the pool when it starts, so that machines with disks " +
					"in it can start after a host reboot. Defaults to `true`. Changes in place.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"active": schema.BoolAttribute{
				MarkdownDescription: "Whether the pool is running (its volumes are usable only then). Terraform keeps " +
					"it running: a pool stopped outside Terraform reads as `false`, the next plan shows an in-place " +
					"update to `true`, and apply starts it.",
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			// The sizes change whenever a volume is made, grows or is
			// written to. Computed only, they are refreshed by every read
			// and never show as a change of their own.
			"capacity": schema.Int64Attribute{
				MarkdownDescription: "Size of the file system that holds the pool, in bytes, as of the last refresh.",
				Computed:            true,
			},
			"allocation": schema.Int64Attribute{
				MarkdownDescription: "Bytes of that file system in use (by anything, not only the pool's volumes), " +
					"as of the last refresh.",
				Computed: true,
			},
			"available": schema.Int64Attribute{
				MarkdownDescription: "Bytes free for new data in the pool, as of the last refresh. Thin volumes " +
					"(and clones) take space as guests write, so this can fall without any change in Terraform.",
				Computed: true,
			},
		},
	}
}

func (r *poolResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	r.clients = c
}

// poolSpecFields maps the layer's PoolSpec field names to attributes.
var poolSpecFields = map[string]string{"name": "name", "type": "type", "path": "path"}

// ValidateConfig applies internal/virt's own rules for names and paths at
// plan time, so that they live in one place and a bad pool fails at
// `terraform validate`, not at apply.
func (r *poolResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var cfg poolModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	spec := virt.PoolSpec{
		Name: knownStringOr(cfg.Name, "placeholder"),
		Type: knownStringOr(cfg.Type, virt.PoolDir),
		Path: knownStringOr(cfg.Path, "/placeholder"),
	}
	if !slices.Contains(virt.PoolTypes, spec.Type) {
		spec.Type = virt.PoolDir // the type attribute's validator has said so
	}
	addStorageSpecErrors(&resp.Diagnostics, "pool", spec.WithDefaults().Validate(), poolSpecFields)
}

func poolSpecFromPlan(plan poolModel) virt.PoolSpec {
	return virt.PoolSpec{
		Name:      plan.Name.ValueString(),
		Type:      plan.Type.ValueString(),
		Path:      plan.Path.ValueString(),
		Autostart: plan.Autostart.ValueBool(),
	}
}

// syncFromSpec is the one read-back mapping that Create, Read, Update and
// Import share; the host is all it keeps from before.
func (m *poolModel) syncFromSpec(spec *virt.PoolSpec) {
	m.ID = types.StringValue(spec.UUID)
	m.Name = types.StringValue(spec.Name)
	m.Type = types.StringValue(spec.Type)
	m.Path = types.StringValue(spec.Path)
	m.Autostart = types.BoolValue(spec.Autostart)
	m.Active = types.BoolValue(spec.Active)
	m.Capacity = types.Int64Value(int64(spec.CapacityBytes))
	m.Allocation = types.Int64Value(int64(spec.AllocationBytes))
	m.Available = types.Int64Value(int64(spec.AvailableBytes))
}

func (r *poolResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan poolModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	lv, err := r.clients.Libvirt(ctx, plan.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	spec := poolSpecFromPlan(plan)
	got, err := lv.CreatePool(ctx, spec)
	var specErrs virt.SpecErrors
	switch {
	case errors.As(err, &specErrs):
		addStorageSpecErrors(&resp.Diagnostics, "pool", err, poolSpecFields)
		return
	case errors.Is(err, virt.ErrExists):
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Pool already exists",
			fmt.Sprintf("A pool named %q already exists on %s. Choose another name, or bring the existing one "+
				"under Terraform with `terraform import` (name or UUID).", spec.Name, lv.URI()))
		return
	case err != nil:
		resp.Diagnostics.AddError("Cannot create pool",
			fmt.Sprintf("create pool %q at %s on %s: %v", spec.Name, spec.Path, lv.URI(), err))
		return
	}
	plan.syncFromSpec(got)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *poolResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state poolModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	lv, err := r.clients.Libvirt(ctx, state.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	got, err := lv.Pool(ctx, state.Name.ValueString())
	if errors.Is(err, virt.ErrNotFound) {
		// Deleted outside Terraform: the next plan creates it again.
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read pool",
			fmt.Sprintf("read pool %q on %s: %v", state.Name.ValueString(), lv.URI(), err))
		return
	}
	state.syncFromSpec(got)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update changes what can change without replacing the pool: autostart, and
// the run state (a pool stopped out of band is started).
func (r *poolResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state poolModel
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
		if err := lv.StartPool(ctx, name); err != nil {
			resp.Diagnostics.AddError("Cannot start pool", fmt.Sprintf("start pool %q on %s: %v", name, lv.URI(), err))
			return
		}
	}
	if !plan.Autostart.Equal(state.Autostart) {
		if err := lv.SetPoolAutostart(ctx, name, plan.Autostart.ValueBool()); err != nil {
			resp.Diagnostics.AddError("Cannot change pool autostart",
				fmt.Sprintf("set autostart of pool %q on %s: %v", name, lv.URI(), err))
			return
		}
	}
	got, err := lv.Pool(ctx, name)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read pool", fmt.Sprintf("read pool %q on %s after update: %v", name, lv.URI(), err))
		return
	}
	plan.syncFromSpec(got)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *poolResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state poolModel
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
	if err := lv.DeletePool(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddError("Cannot delete pool", fmt.Sprintf("delete pool %q on %s: %v", name, lv.URI(), err))
	}
}

// poolUUIDRE is libvirt's printed UUID form: an import ID of that shape is
// looked up as a UUID when no pool has it as its name.
var poolUUIDRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ImportState takes NAME or UUID for the provider's default host and
// HOST/NAME or HOST/UUID for one of its hosts; pool names cannot hold a
// slash, so the first slash always ends the host.
func (r *poolResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	host, id := "", req.ID
	if h, rest, ok := strings.Cut(req.ID, "/"); ok {
		host, id = h, rest
	}
	if id == "" || strings.Contains(id, "/") {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("%q: expected NAME or UUID, or HOST/NAME or HOST/UUID for a host of the provider's hosts map.", req.ID))
		return
	}
	lv, err := r.clients.Libvirt(ctx, host)
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	got, err := lv.Pool(ctx, id)
	if errors.Is(err, virt.ErrNotFound) && poolUUIDRE.MatchString(id) {
		got, err = lv.PoolByUUID(ctx, id)
	}
	if errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddError("Pool not found", fmt.Sprintf("No pool is named %q or has it as UUID on %s.", id, lv.URI()))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot import pool", fmt.Sprintf("look up pool %q on %s: %v", id, lv.URI(), err))
		return
	}
	if host != "" {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("host"), host)...)
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), got.UUID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), got.Name)...)
}
