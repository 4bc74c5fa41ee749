package provider

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var (
	_ datasource.DataSource              = (*containerTemplateDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*containerTemplateDataSource)(nil)
)

func newContainerTemplateDataSource() datasource.DataSource { return &containerTemplateDataSource{} }

type containerTemplateDataSource struct {
	clients *clients
}

type containerTemplateDataModel struct {
	NameRegex types.String            `tfsdk:"name_regex"`
	ID        types.String            `tfsdk:"id"`
	Templates []containerTemplateData `tfsdk:"templates"`
}

type containerTemplateData struct {
	Name     string            `tfsdk:"name"`
	Clones   []string          `tfsdk:"clones"`
	Metadata map[string]string `tfsdk:"metadata"`
}

func (d *containerTemplateDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_container_template"
}

func (d *containerTemplateDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists the template containers on the host the provider runs on (under the provider's " +
			"`lxc_path`): stopped containers that `virt_container`'s `template` can clone, with the snapshot clones " +
			"that already lie on each and what the template's build recorded about its contents.",
		Attributes: map[string]schema.Attribute{
			"name_regex": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Only list templates whose name matches this regular expression " +
					"([RE2 syntax](https://github.com/google/re2/wiki/Syntax); unanchored: use `^...$` for a whole name). " +
					"Unset: all of them.",
				Validators: []validator.String{nameRegexValidator{}},
			},
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The LXC path the templates were listed from."},
			"templates": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The templates, sorted by name; empty when none matches.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{Computed: true, MarkdownDescription: "Name of the template container."},
					"clones": schema.ListAttribute{Computed: true, ElementType: types.StringType,
						MarkdownDescription: "Snapshot clones whose root filesystems are overlays on this template, sorted; " +
							"the template cannot be destroyed while there are any. A clone under another LXC path is " +
							"given as its full path."},
					"metadata": schema.MapAttribute{Computed: true, ElementType: types.StringType,
						MarkdownDescription: "What the template's build recorded about it (operating system, release, " +
							"architecture, build time); empty for containers made otherwise."},
				}},
			},
		},
	}
}

func (d *containerTemplateDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	d.clients = c
}

func (d *containerTemplateDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var nameRegex types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("name_regex"), &nameRegex)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var re *regexp.Regexp
	if !nameRegex.IsNull() {
		var err error
		// Validated already; a value known only at apply was not.
		if re, err = regexp.Compile(nameRegex.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("name_regex"), "Invalid regular expression", err.Error())
			return
		}
	}
	lx, err := d.clients.LXC()
	if err != nil {
		resp.Diagnostics.AddError("Cannot use LXC", err.Error())
		return
	}
	all, err := lx.ContainerTemplates(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Cannot list container templates", fmt.Sprintf("in %s: %v", d.clients.lxcPath, err))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, containerTemplatesData(d.clients.lxcPath, nameRegex, all, re))...)
}

// containerTemplatesData filters and sorts what the layer listed, with
// empty (not null) clones and metadata so that length() and lookup() work on
// them without a null check.
func containerTemplatesData(lxcPath string, nameRegex types.String, all []virt.ContainerTemplate, re *regexp.Regexp) *containerTemplateDataModel {
	m := &containerTemplateDataModel{
		NameRegex: nameRegex,
		ID:        types.StringValue(lxcPath),
		Templates: make([]containerTemplateData, 0, len(all)),
	}
	for _, t := range all {
		if re != nil && !re.MatchString(t.Name) {
			continue
		}
		td := containerTemplateData{
			Name:     t.Name,
			Clones:   slices.Sorted(slices.Values(t.Clones)),
			Metadata: maps.Clone(t.Metadata),
		}
		if td.Clones == nil {
			td.Clones = []string{}
		}
		if td.Metadata == nil {
			td.Metadata = map[string]string{}
		}
		m.Templates = append(m.Templates, td)
	}
	slices.SortFunc(m.Templates, func(a, b containerTemplateData) int { return strings.Compare(a.Name, b.Name) })
	return m
}

// nameRegexValidator refuses a value that is not a Go regular expression, at
// validate time, with the parser's reason.
type nameRegexValidator struct{}

func (nameRegexValidator) Description(context.Context) string {
	return "value must be a regular expression in RE2 syntax"
}

func (v nameRegexValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (nameRegexValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := regexp.Compile(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid regular expression",
			fmt.Sprintf("%q is not a regular expression: %v.", req.ConfigValue.ValueString(), err))
	}
}
