package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var (
	_ datasource.DataSource              = (*volumeDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*volumeDataSource)(nil)
)

func newVolumeDataSource() datasource.DataSource { return &volumeDataSource{} }

type volumeDataSource struct {
	clients *clients
}

type volumeDataModel struct {
	Host         types.String `tfsdk:"host"`
	Pool         types.String `tfsdk:"pool"`
	Name         types.String `tfsdk:"name"`
	ID           types.String `tfsdk:"id"`
	Path         types.String `tfsdk:"path"`
	Format       types.String `tfsdk:"format"`
	Size         types.Int64  `tfsdk:"size"`
	Allocation   types.Int64  `tfsdk:"allocation"`
	BaseVolumeID types.String `tfsdk:"base_volume_id"`
}

func (d *volumeDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_volume"
}

func (d *volumeDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Finds an existing volume by pool and name, typically a template made outside this " +
			"configuration (by Packer, say), so that `virt_volume` can clone it through `base_volume_id`.",
		Attributes: map[string]schema.Attribute{
			"host": hostDataSourceAttribute(),
			"pool": schema.StringAttribute{
				MarkdownDescription: "Name of the pool that holds the volume. Defaults to `" + virt.DefaultPool + "`.",
				Optional:            true,
				Computed:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the volume in the pool.",
				Required:            true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"id": schema.StringAttribute{
				MarkdownDescription: "The volume's key (its path, for a directory pool): what `base_volume_id` takes.",
				Computed:            true,
			},
			"path": schema.StringAttribute{MarkdownDescription: "Path of the volume's file on the host.", Computed: true},
			"format": schema.StringAttribute{
				MarkdownDescription: "Image format, for example `qcow2` or `raw`.",
				Computed:            true,
			},
			"size":       schema.Int64Attribute{MarkdownDescription: "Virtual size of the disk in bytes.", Computed: true},
			"allocation": schema.Int64Attribute{MarkdownDescription: "Bytes the volume takes on the host.", Computed: true},
			"base_volume_id": schema.StringAttribute{
				MarkdownDescription: "Key of the volume this one is a copy-on-write clone of, or null when it has no " +
					"backing volume (or its backing file is in no pool).",
				Computed: true,
			},
		},
	}
}

func (d *volumeDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	d.clients = c
}

func (d *volumeDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg volumeDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	pool := knownStringOr(cfg.Pool, virt.DefaultPool)
	name := cfg.Name.ValueString()
	lv, err := d.clients.Libvirt(ctx, cfg.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	got, err := lv.Volume(ctx, pool, name)
	if errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Volume not found",
			fmt.Sprintf("No volume %q in pool %q on %s: %v", name, pool, lv.URI(), err))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read volume", fmt.Sprintf("read volume %q in pool %q on %s: %v", name, pool, lv.URI(), err))
		return
	}
	state := volumeDataModel{
		Host:         cfg.Host,
		Pool:         types.StringValue(got.Pool),
		Name:         types.StringValue(got.Name),
		ID:           types.StringValue(got.Key),
		Path:         types.StringValue(got.Path),
		Format:       types.StringValue(got.Format),
		Size:         types.Int64Value(int64(got.CapacityBytes)),
		Allocation:   types.Int64Value(int64(got.AllocationBytes)),
		BaseVolumeID: types.StringNull(),
	}
	if got.BackingVolumeKey != "" {
		state.BaseVolumeID = types.StringValue(got.BackingVolumeKey)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}
