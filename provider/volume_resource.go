package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/provider/validators"
)

var (
	_ resource.Resource                   = (*volumeResource)(nil)
	_ resource.ResourceWithConfigure      = (*volumeResource)(nil)
	_ resource.ResourceWithImportState    = (*volumeResource)(nil)
	_ resource.ResourceWithValidateConfig = (*volumeResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*volumeResource)(nil)
)

func newVolumeResource() resource.Resource { return &volumeResource{} }

type volumeResource struct {
	clients *clients
}

type volumeModel struct {
	Host         types.String   `tfsdk:"host"`
	ID           types.String   `tfsdk:"id"`
	Name         types.String   `tfsdk:"name"`
	Pool         types.String   `tfsdk:"pool"`
	Size         types.Int64    `tfsdk:"size"`
	Format       types.String   `tfsdk:"format"`
	BaseVolumeID types.String   `tfsdk:"base_volume_id"`
	Source       types.String   `tfsdk:"source"`
	SourceSHA256 types.String   `tfsdk:"source_sha256"`
	Path         types.String   `tfsdk:"path"`
	Allocation   types.Int64    `tfsdk:"allocation"`
	Timeouts     timeouts.Value `tfsdk:"timeouts"`
}

// Default timeouts: an upload streams the whole image to the host; every
// other volume operation takes well under a second.
const (
	volumeCreateTimeout = 20 * time.Minute
	volumeUpdateTimeout = 5 * time.Minute
	volumeDeleteTimeout = 5 * time.Minute
)

// volumeFormatDescriptions explains each of virt.VolumeFormats; the schema's
// description and validator are both built from that list.
var volumeFormatDescriptions = map[string]string{
	virt.FormatQCOW2: "QEMU's copy-on-write format, thin on the host; the only format a clone can have",
	virt.FormatRaw:   "a plain disk image, a sparse file on the host",
}

func volumeFormatsMarkdown() string {
	parts := make([]string, 0, len(virt.VolumeFormats))
	for _, f := range virt.VolumeFormats {
		parts = append(parts, fmt.Sprintf("`%s`: %s", f, volumeFormatDescriptions[f]))
	}
	return strings.Join(parts, "; ")
}

const replacesVolume = " Changing it replaces the volume."

func (r *volumeResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_volume"
}

func (r *volumeResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A storage volume in a libvirt pool: an empty disk, a copy-on-write clone of a template " +
			"volume (`base_volume_id`: only a small qcow2 file that refers to the template, as quick to make " +
			"for a 100 GiB template as for a small one), or a disk image uploaded from the machine Terraform runs on (`source`). " +
			"A larger `size` grows a volume in place; a smaller one is refused, since it would cut off the guest's " +
			"data. A volume deleted outside Terraform is created again by the next apply.\n\n" +
			"A template must outlive its clones: libvirt does not track clones, so destroy clones first (Terraform " +
			"does, when they refer to the template's `id`).",
		Attributes: map[string]schema.Attribute{
			"host": hostResourceAttribute(),
			"id": schema.StringAttribute{
				MarkdownDescription: "The volume's key, which for a directory pool is its path on the host. Machines' " +
					"disks and clones' `base_volume_id` refer to a volume by it.",
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the volume in its pool, which for a directory pool is its file name. " +
					"One path element: no `/`, not `.` or `..`." + replacesVolume,
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"pool": schema.StringAttribute{
				MarkdownDescription: "Name of the pool that holds the volume. Defaults to `" + virt.DefaultPool +
					"`, the pool virt-install and virt-manager use." + replacesVolume,
				Optional:      true,
				Computed:      true,
				Default:       stringdefault.StaticString(virt.DefaultPool),
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"size": schema.Int64Attribute{
				MarkdownDescription: "Virtual size of the disk in bytes, as the guest sees it. Required for an empty " +
					"volume. For a clone it defaults to the template's size, and for an upload to the image's " +
					"virtual size; a larger value grows the new volume. Growing an existing volume happens in place " +
					"(the guest sees the new size after a reboot or a rescan, and its partitions and file systems " +
					"still need growing, which cloud-init's growpart does); shrinking is refused at plan time.",
				Optional:   true,
				Computed:   true,
				Validators: []validator.Int64{int64validator.AtLeast(1)},
				// Unset in the configuration, the size stays what it is:
				// removing the argument must not plan a change.
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
			"format": schema.StringAttribute{
				MarkdownDescription: "Image format, one of " + volumeFormatsMarkdown() + ". Defaults to `" +
					virt.FormatQCOW2 + "`, and for an upload to the image's own format (which, if set, this must " +
					"match: the image is sent as it is, not converted)." + replacesVolume,
				Optional:   true,
				Computed:   true,
				Validators: []validator.String{stringvalidator.OneOf(virt.VolumeFormats...)},
				PlanModifiers: []planmodifier.String{
					stringplanmodifier.UseStateForUnknown(),
					stringplanmodifier.RequiresReplace(),
				},
			},
			"base_volume_id": schema.StringAttribute{
				MarkdownDescription: "`id` of a template volume, on the same host, to clone copy-on-write: the new " +
					"volume is a qcow2 file whose backing file is the template, so it starts with the template's " +
					"content and stores only what the guest changes. Typically the `id` of a `virt_volume` " +
					"uploaded from an image, or of the `virt_volume` data source for a template built by Packer. " +
					"Conflicts with `source`." + replacesVolume,
				Optional: true,
				Validators: []validator.String{
					stringvalidator.LengthAtLeast(1),
					stringvalidator.ConflictsWith(path.MatchRoot("source")),
				},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"source": schema.StringAttribute{
				MarkdownDescription: "Absolute path of a disk image (qcow2 or raw) on the machine Terraform runs on, " +
					"to upload into the volume; the host may be remote. qcow2 images with a backing file, encryption " +
					"or an external data file, and other formats (vmdk, vhdx...), are refused at plan time: convert " +
					"them with `qemu-img convert -O qcow2` first. Data travels as it is stored, and the holes of a " +
					"sparse raw image stay holes. A change of the path, or of the image's content (see " +
					"`source_sha256`), replaces the volume. The file may be removed after the upload: the volume is " +
					"then kept as it is. Conflicts with `base_volume_id`.",
				Optional: true,
				Validators: []validator.String{
					validators.AbsolutePath(),
					stringvalidator.ConflictsWith(path.MatchRoot("base_volume_id")),
				},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplaceIf(
					sourceChangeReplaces,
					"A change of the path replaces the volume, except after an import (which cannot know the path).",
					"A change of the path replaces the volume, except after an import (which cannot know the path).",
				)},
			},
			"source_sha256": schema.StringAttribute{
				MarkdownDescription: "SHA-256 of `source` as uploaded, in hexadecimal (what Terraform's `filesha256` " +
					"gives). Each plan compares it with the file, and a difference replaces the volume, so a rebuilt " +
					"image reaches the host. To keep plans fast, the file is hashed again only when its size or " +
					"modification time changed since it was last hashed. Null without `source`, and after an import " +
					"until the next apply.",
				Computed: true,
			},
			"path": schema.StringAttribute{
				MarkdownDescription: "Path of the volume's file on the host.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			// Allocation grows as the guest writes: computed only, refreshed
			// by every read, never a change of its own.
			"allocation": schema.Int64Attribute{
				MarkdownDescription: "Bytes the volume takes on the host as of the last refresh: small for a new " +
					"thin volume or clone, growing as the guest writes.",
				Computed: true,
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": volumeTimeoutsBlock(ctx),
		},
	}
}

func volumeTimeoutsBlock(ctx context.Context) schema.Block {
	b := timeouts.Block(ctx, timeouts.Opts{Create: true, Update: true, Delete: true})
	nested, ok := b.(schema.SingleNestedBlock)
	if !ok {
		return b
	}
	nested.MarkdownDescription = fmt.Sprintf("How long each operation may take before it is abandoned, as durations "+
		"such as `\"30m\"`: `create` (default %s; an upload streams the whole image), `update` (default %s) and "+
		"`delete` (default %s). Waits for libvirt to finish another job on the same pool count against them.",
		shortDuration(volumeCreateTimeout), shortDuration(volumeUpdateTimeout), shortDuration(volumeDeleteTimeout))
	return nested
}

// sourceChangeReplaces replaces the volume when its source path changes,
// but not when the state has no path yet: an imported volume adopts the
// path in place.
func sourceChangeReplaces(_ context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !req.StateValue.IsNull()
}

func (r *volumeResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	r.clients = c
}

// volumeSpecFields maps the layer's VolumeSpec field names to attributes.
var volumeSpecFields = map[string]string{
	"name":               "name",
	"pool":               "pool",
	"format":             "format",
	"capacity_bytes":     "size",
	"backing_volume_key": "base_volume_id",
}

// ValidateConfig applies internal/virt's own rules (names, a clone's
// format) at `terraform validate` time, so they live in one place. Values
// not known yet stand in as valid ones; the layer checks again at apply.
func (r *volumeResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var cfg volumeModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	clone, upload := !cfg.BaseVolumeID.IsNull(), !cfg.Source.IsNull()
	if !clone && !upload && cfg.Size.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("size"), "Missing volume size",
			"An empty volume (one with neither base_volume_id nor source) needs a size in bytes.")
	}
	spec := virt.VolumeSpec{
		Name:   knownStringOr(cfg.Name, "placeholder"),
		Pool:   knownStringOr(cfg.Pool, virt.DefaultPool),
		Format: knownStringOr(cfg.Format, virt.FormatQCOW2),
		// Sizes are checked above and by the attribute's validator.
		CapacityBytes: 1,
	}
	if !slices.Contains(virt.VolumeFormats, spec.Format) {
		spec.Format = virt.FormatQCOW2 // the format attribute's validator has said so
	}
	if clone && !upload {
		spec.BackingVolumeKey = "placeholder"
	}
	addStorageSpecErrors(&resp.Diagnostics, "volume", spec.WithDefaults().Validate(), volumeSpecFields)
}

// ModifyPlan fills in what the configuration leaves to the image or the
// defaults, and refuses at plan time what would fail or lose data at apply:
//   - an upload's format and size are the image's, read from its header now
//     (the provider runs where the file is), so the plan shows them and a
//     mismatch fails here;
//   - a smaller size than the volume has is refused: shrinking cuts off the
//     guest's data;
//   - source_sha256 is the image's current checksum, and a change of content
//     replaces the volume.
func (r *volumeResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan, cfg volumeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	var state *volumeModel
	if !req.State.Raw.IsNull() {
		state = &volumeModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}

	src := plan.Source.ValueString()
	srcKnown := !plan.Source.IsNull() && !plan.Source.IsUnknown()
	var img *virt.ImageInfo
	if srcKnown {
		info, err := virt.ProbeImageFile(src)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// Made later in this apply, or removed after its upload: the
			// image is read when (and if) it is uploaded.
		case err != nil:
			resp.Diagnostics.AddAttributeError(path.Root("source"), "Unusable source image", fmt.Sprintf("%s: %v", src, err))
			return
		default:
			img = &info
		}
	}

	if plan.Format.IsUnknown() {
		switch {
		case plan.Source.IsNull():
			plan.Format = types.StringValue(virt.FormatQCOW2)
		case img != nil:
			plan.Format = types.StringValue(img.Format)
		}
	}
	if img != nil && knownString(cfg.Format) && cfg.Format.ValueString() != img.Format {
		resp.Diagnostics.AddAttributeError(path.Root("format"), "Format differs from the image's",
			fmt.Sprintf("%s is a %s image, and an upload keeps the image's format: set format to %q or leave it unset.",
				src, img.Format, img.Format))
	}

	if plan.Size.IsUnknown() && img != nil {
		plan.Size = types.Int64Value(int64(img.VirtualSize))
	}
	if img != nil && knownInt64(plan.Size) && uint64(plan.Size.ValueInt64()) < img.VirtualSize {
		resp.Diagnostics.AddAttributeError(path.Root("size"), "Size smaller than the image",
			fmt.Sprintf("size is %d bytes, but %s has a virtual size of %d bytes; leave size unset or make it at least that.",
				plan.Size.ValueInt64(), src, img.VirtualSize))
	}
	if state != nil && knownInt64(plan.Size) && knownInt64(state.Size) && plan.Size.ValueInt64() < state.Size.ValueInt64() {
		resp.Diagnostics.AddAttributeError(path.Root("size"), "Volume cannot shrink",
			fmt.Sprintf("Volume %q has %d bytes; shrinking it to %d would cut off whatever the guest keeps at the end "+
				"of its disk, so it is refused. Keep the size, or replace the volume on purpose (`terraform apply "+
				"-replace=...`) to start over with a smaller, empty one.",
				state.Name.ValueString(), state.Size.ValueInt64(), plan.Size.ValueInt64()))
	}

	sameSource := state != nil && state.Source.Equal(plan.Source)
	switch {
	case plan.Source.IsNull():
		plan.SourceSHA256 = types.StringNull()
	case !srcKnown:
		plan.SourceSHA256 = types.StringUnknown()
	case img == nil:
		// A file removed after its upload leaves the volume as it is.
		if sameSource {
			plan.SourceSHA256 = state.SourceSHA256
		} else {
			plan.SourceSHA256 = types.StringUnknown()
		}
	default:
		var recorded *sourceFingerprint
		if sameSource {
			recorded = recordedSourceFingerprint(ctx, req.Private)
		}
		fp, _, err := currentSourceFingerprint(src, recorded)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("source"), "Cannot read source image", err.Error())
			return
		}
		plan.SourceSHA256 = types.StringValue(fp.SHA256)
		if sameSource && !state.SourceSHA256.IsNull() && state.SourceSHA256.ValueString() != fp.SHA256 {
			resp.RequiresReplace = append(resp.RequiresReplace, path.Root("source_sha256"))
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// syncFromSpec is the one read-back mapping that Create, Read, Update and
// Import share. What only the configuration knows (host, source and its
// checksum, timeouts) it leaves alone.
func (m *volumeModel) syncFromSpec(spec *virt.VolumeSpec) {
	m.ID = types.StringValue(spec.Key)
	m.Name = types.StringValue(spec.Name)
	m.Pool = types.StringValue(spec.Pool)
	m.Size = types.Int64Value(int64(spec.CapacityBytes))
	m.Format = types.StringValue(spec.Format)
	m.Path = types.StringValue(spec.Path)
	m.Allocation = types.Int64Value(int64(spec.AllocationBytes))
	if spec.BackingVolumeKey != "" {
		m.BaseVolumeID = types.StringValue(spec.BackingVolumeKey)
	} else {
		m.BaseVolumeID = types.StringNull()
	}
}

func (r *volumeResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan volumeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, volumeCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lv, err := r.clients.Libvirt(ctx, plan.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}

	spec := virt.VolumeSpec{
		Pool:             plan.Pool.ValueString(),
		Name:             plan.Name.ValueString(),
		Format:           plan.Format.ValueString(), // "" when unknown: the image's
		BackingVolumeKey: plan.BaseVolumeID.ValueString(),
	}
	if knownInt64(plan.Size) {
		spec.CapacityBytes = uint64(plan.Size.ValueInt64())
	}
	var got *virt.VolumeSpec
	var fp sourceFingerprint
	if plan.Source.IsNull() {
		got, err = lv.CreateVolume(ctx, spec)
	} else {
		src := plan.Source.ValueString()
		var exists bool
		fp, exists, err = currentSourceFingerprint(src, nil)
		if err == nil && !exists {
			err = fmt.Errorf("%s: %w", src, fs.ErrNotExist)
		}
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("source"), "Cannot read source image", err.Error())
			return
		}
		if knownString(plan.SourceSHA256) && plan.SourceSHA256.ValueString() != fp.SHA256 {
			resp.Diagnostics.AddAttributeError(path.Root("source"), "Source image changed since the plan",
				fmt.Sprintf("%s no longer has the content the plan saw (SHA-256 %s, now %s). Run terraform plan again.",
					src, plan.SourceSHA256.ValueString(), fp.SHA256))
			return
		}
		got, err = lv.UploadVolume(ctx, spec, src)
	}
	if err != nil {
		addVolumeError(&resp.Diagnostics, "create", spec, lv.URI(), err)
		return
	}
	plan.syncFromSpec(got)
	if !plan.Source.IsNull() {
		plan.SourceSHA256 = types.StringValue(fp.SHA256)
		resp.Diagnostics.Append(recordSourceFingerprint(ctx, resp.Private, fp)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// addVolumeError reports a failed create on the attribute it concerns.
func addVolumeError(diags *diag.Diagnostics, op string, spec virt.VolumeSpec, uri string, err error) {
	var specErrs virt.SpecErrors
	switch {
	case errors.As(err, &specErrs):
		addStorageSpecErrors(diags, "volume", err, volumeSpecFields)
	case errors.Is(err, virt.ErrExists):
		diags.AddAttributeError(path.Root("name"), "Volume already exists",
			fmt.Sprintf("A volume named %q already exists in pool %q on %s. Choose another name, or bring the existing "+
				"one under Terraform with `terraform import` (POOL/NAME or its key).", spec.Name, spec.Pool, uri))
	default:
		diags.AddError("Cannot "+op+" volume",
			fmt.Sprintf("%s volume %q in pool %q on %s: %v", op, spec.Name, spec.Pool, uri, err))
	}
}

func (r *volumeResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state volumeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	lv, err := r.clients.Libvirt(ctx, state.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	key := state.ID.ValueString()
	got, err := lv.VolumeByKey(ctx, key)
	if errors.Is(err, virt.ErrNotFound) {
		// libvirt finds no volume of a stopped pool; that is not a deleted
		// volume, and planning to create it again would be wrong.
		if pool, perr := lv.Pool(ctx, state.Pool.ValueString()); perr == nil && !pool.Active {
			resp.Diagnostics.AddWarning("Pool not running",
				fmt.Sprintf("Volume %s is in pool %q on %s, which is stopped, so it cannot be read; its state is kept "+
					"as it was. Start the pool (a virt_pool resource does so on apply).", key, pool.Name, lv.URI()))
			return
		}
		// Deleted outside Terraform: the next plan creates it again.
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read volume", fmt.Sprintf("read volume %s on %s: %v", key, lv.URI(), err))
		return
	}
	state.syncFromSpec(got)
	// A source touched but not changed (copied again, say) is hashed once
	// here, and plans go back to trusting its size and time.
	if knownString(state.Source) && knownString(state.SourceSHA256) {
		recorded := recordedSourceFingerprint(ctx, req.Private)
		fp, exists, err := currentSourceFingerprint(state.Source.ValueString(), recorded)
		if err == nil && exists && fp.SHA256 == state.SourceSHA256.ValueString() && (recorded == nil || *recorded != fp) {
			resp.Diagnostics.Append(recordSourceFingerprint(ctx, resp.Private, fp)...)
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update grows the volume when size grew (ModifyPlan refuses shrinking), and
// adopts a source path after an import. Everything else replaces.
func (r *volumeResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state volumeModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, volumeUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lv, err := r.clients.Libvirt(ctx, state.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	key := state.ID.ValueString()
	if knownInt64(plan.Size) && plan.Size.ValueInt64() > state.Size.ValueInt64() {
		if err := lv.ResizeVolume(ctx, key, uint64(plan.Size.ValueInt64())); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("size"), "Cannot grow volume",
				fmt.Sprintf("grow volume %s on %s to %d bytes: %v", key, lv.URI(), plan.Size.ValueInt64(), err))
			return
		}
	}
	got, err := lv.VolumeByKey(ctx, key)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read volume", fmt.Sprintf("read volume %s on %s after update: %v", key, lv.URI(), err))
		return
	}
	plan.syncFromSpec(got)
	if knownString(plan.Source) && knownString(plan.SourceSHA256) {
		fp, exists, err := currentSourceFingerprint(plan.Source.ValueString(), recordedSourceFingerprint(ctx, req.Private))
		if err == nil && exists && fp.SHA256 == plan.SourceSHA256.ValueString() {
			resp.Diagnostics.Append(recordSourceFingerprint(ctx, resp.Private, fp)...)
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *volumeResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state volumeModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, volumeDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lv, err := r.clients.Libvirt(ctx, state.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	key := state.ID.ValueString()
	if err := lv.DeleteVolume(ctx, key); err != nil && !errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddError("Cannot delete volume", fmt.Sprintf("delete volume %s on %s: %v", key, lv.URI(), err))
	}
}

// ImportState takes a volume's key (its path, for a directory pool) or
// POOL/NAME for the provider's default host, and HOST//KEY or
// HOST/POOL/NAME for one of its hosts: keys of directory pools start with a
// slash, and pool and volume names cannot hold one.
func (r *volumeResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	host, key, pool, name, ok := parseVolumeImportID(req.ID)
	if !ok {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("%q: expected the volume's key (its path, such as /var/lib/libvirt/images/disk.qcow2) or "+
				"POOL/NAME, or HOST//KEY or HOST/POOL/NAME for a host of the provider's hosts map.", req.ID))
		return
	}
	lv, err := r.clients.Libvirt(ctx, host)
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	var got *virt.VolumeSpec
	what := key
	if key != "" {
		got, err = lv.VolumeByKey(ctx, key)
	} else {
		what = pool + "/" + name
		got, err = lv.Volume(ctx, pool, name)
	}
	if errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddError("Volume not found", fmt.Sprintf("No volume %s on %s: %v", what, lv.URI(), err))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot import volume", fmt.Sprintf("look up volume %s on %s: %v", what, lv.URI(), err))
		return
	}
	if host != "" {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("host"), host)...)
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), got.Key)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("pool"), got.Pool)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), got.Name)...)
}

// parseVolumeImportID splits an import ID into the host and either a key or
// a pool and name (see ImportState).
func parseVolumeImportID(id string) (host, key, pool, name string, ok bool) {
	if strings.HasPrefix(id, "/") {
		return "", id, "", "", true
	}
	parts := strings.Split(id, "/")
	switch {
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return "", "", parts[0], parts[1], true
	case len(parts) >= 3 && parts[0] != "" && parts[1] == "" && len(id) > len(parts[0])+2:
		return parts[0], id[len(parts[0])+1:], "", "", true
	case len(parts) == 3 && parts[0] != "" && parts[1] != "" && parts[2] != "":
		return parts[0], "", parts[1], parts[2], true
	}
	return "", "", "", "", false
}

// sourceFingerprint stands for an uploaded image's content: while the
// file's size and modification time stay as recorded, its SHA-256 is taken
// to be the same, so that a plan hashes a multi-gigabyte image only after
// the file was written to. It lives in the resource's private state.
type sourceFingerprint struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

const sourceFingerprintKey = "source_fingerprint"

// currentSourceFingerprint returns the fingerprint of the file at path,
// taking the checksum from recorded when size and time still match it and
// hashing the file otherwise. exists is false when there is no file.
func currentSourceFingerprint(path string, recorded *sourceFingerprint) (fp sourceFingerprint, exists bool, err error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fp, false, nil
	}
	if err != nil {
		return fp, false, err
	}
	fp = sourceFingerprint{Size: st.Size(), ModTime: st.ModTime().UnixNano()}
	if recorded != nil && recorded.SHA256 != "" && recorded.Size == fp.Size && recorded.ModTime == fp.ModTime {
		fp.SHA256 = recorded.SHA256
		return fp, true, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fp, true, err
	}
	defer func() { _ = f.Close() }() // opened read-only: nothing to flush
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fp, true, fmt.Errorf("hash %s: %w", path, err)
	}
	after, err := f.Stat()
	if err != nil {
		return fp, true, err
	}
	if after.Size() != fp.Size || after.ModTime().UnixNano() != fp.ModTime {
		return fp, true, fmt.Errorf("%s changed while it was being read; try again once it is complete", path)
	}
	fp.SHA256 = hex.EncodeToString(h.Sum(nil))
	return fp, true, nil
}

// privateState is what the framework's private state data offers.
type privateState interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

// recordedSourceFingerprint returns the fingerprint recorded in private
// state, or nil: a missing or unreadable one only costs a hash.
func recordedSourceFingerprint(ctx context.Context, p privateState) *sourceFingerprint {
	if p == nil {
		return nil
	}
	raw, diags := p.GetKey(ctx, sourceFingerprintKey)
	if diags.HasError() || len(raw) == 0 {
		return nil
	}
	var fp sourceFingerprint
	if json.Unmarshal(raw, &fp) != nil {
		return nil
	}
	return &fp
}

func recordSourceFingerprint(ctx context.Context, p privateState, fp sourceFingerprint) diag.Diagnostics {
	raw, err := json.Marshal(fp)
	if err != nil {
		var diags diag.Diagnostics
		diags.AddError("Cannot record source fingerprint", err.Error())
		return diags
	}
	return p.SetKey(ctx, sourceFingerprintKey, raw)
}

// addStorageSpecErrors reports the layer's validation errors on the
// attributes they name (fields maps spec field to attribute), and any other
// error as it is.
func addStorageSpecErrors(diags *diag.Diagnostics, kind string, err error, fields map[string]string) {
	if err == nil {
		return
	}
	var es virt.SpecErrors
	if !errors.As(err, &es) {
		diags.AddError("Invalid "+kind, err.Error())
		return
	}
	for _, e := range es {
		attr, ok := fields[e.Field]
		if !ok {
			diags.AddError("Invalid "+kind, e.Error())
			continue
		}
		diags.AddAttributeError(path.Root(attr), "Invalid "+kind+" "+attr, attr+": "+e.Reason)
	}
}

func knownString(v types.String) bool { return !v.IsNull() && !v.IsUnknown() }
func knownInt64(v types.Int64) bool   { return !v.IsNull() && !v.IsUnknown() }

// knownStringOr is v's value, or fallback while v is null or not yet known.
func knownStringOr(v types.String, fallback string) string {
	if !knownString(v) {
		return fallback
	}
	return v.ValueString()
}

// shortDuration prints whole minutes as "20m" rather than "20m0s".
func shortDuration(d time.Duration) string { return strings.TrimSuffix(d.String(), "0s") }
