package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
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
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/lxc"
	"github.com/virtforge/terraform-provider-virt/provider/validators"
)

var (
	_ resource.Resource                   = (*containerResource)(nil)
	_ resource.ResourceWithConfigure      = (*containerResource)(nil)
	_ resource.ResourceWithImportState    = (*containerResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*containerResource)(nil)
	_ resource.ResourceWithValidateConfig = (*containerResource)(nil)
)

const (
	// A create may run an LXC template script (debootstrap takes about a
	// minute); a clone takes milliseconds.
	defaultContainerCreateTimeout = 10 * time.Minute
	defaultContainerUpdateTimeout = 5 * time.Minute
	defaultContainerDeleteTimeout = 5 * time.Minute
	// containerCleanupTimeout bounds the undo of a failed create, which runs
	// even after the create's own deadline has passed.
	containerCleanupTimeout = time.Minute
)

func newContainerResource() resource.Resource { return &containerResource{} }

type containerResource struct {
	clients *clients
}

func (r *containerResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_container"
}

// replaceUnlessUnknownBefore replaces the container when a source changes,
// except when state had no value: LXC does not record an archive or a
// template script, so after an import the first apply only writes down
// the source the configuration names.
func replaceUnlessUnknownBefore(what string) (func(context.Context, planmodifier.StringRequest, *stringplanmodifier.RequiresReplaceIfFuncResponse), string) {
	desc := "Changing " + what + " replaces the container (after an import, the first apply only records it)."
	return func(_ context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
		resp.RequiresReplace = !req.StateValue.IsNull()
	}, desc
}

func (r *containerResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	archiveReplace, archiveDesc := replaceUnlessUnknownBefore("archive")
	resp.Schema = schema.Schema{
		MarkdownDescription: "An LXC system container on the host the provider runs on: the same kernel as the " +
			"host, no emulation, started in well under a second. There is no `host` attribute: LXC has no remote " +
			"API here, so containers are managed through liblxc locally, under the provider's `lxc_path`.\n\n" +
			"The root filesystem comes from exactly one source: `template` (a copy-on-write snapshot clone, on " +
			"overlayfs, of a stopped template container on the host, such as one a Packer build made: it takes " +
			"milliseconds whatever the template's size), `archive` (a rootfs tarball) or `lxc_template` (an LXC " +
			"template script such as `busybox` or `download`). Containers are unprivileged by default: root in the " +
			"container is a high uid on the host, from root's ranges in `/etc/subuid` and `/etc/subgid`.\n\n" +
			"Changes are applied in the gentlest way LXC allows. The limits (`memory`, `swap`, `cpus`, " +
			"`cpu_weight`) change the running container at once, through its cgroup, and are saved. `running` " +
			"starts or stops it. The other settings (`hostname`, `network_interface`, `mount`, `features`, " +
			"`config`) are saved for the next start: the plan warns that the running container needs a restart " +
			"and `pending_restart` lists them until it has one; `restart_on_update = true` makes the apply " +
			"restart it. Changing `name`, the source or `unprivileged` replaces the container.\n\n" +
			"Destroying the container asks its init to shut down, kills it after `stop_timeout`, and removes it " +
			"with its storage (a clone's overlay included; its template stays). A template container that still " +
			"has clones cannot be destroyed.\n\n" +
			"Import takes the container's name. LXC does not record an `archive` or an `lxc_template` a " +
			"container was made from: after an import they are empty, and the first apply only records what the " +
			"configuration says (a clone's `template` is read from its config).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The container's name.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the container (its directory under the LXC path): 1 to 64 letters, " +
					"digits, `-`, `_` or `.`, not starting with `-` or `.`. Changing it replaces the container.",
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"hostname": schema.StringAttribute{
				MarkdownDescription: "Host name inside the container (`lxc.uts.name`). Default: `name`. A change " +
					"takes effect at the next start.",
				Optional: true,
				Computed: true,
			},
			"template": schema.StringAttribute{
				MarkdownDescription: "Name of a stopped template container on the host: the container is a " +
					"copy-on-write snapshot clone of it (overlayfs), whatever its size in milliseconds, and shares " +
					"its id map. The template must stay while clones of it exist. Exactly one of `template`, " +
					"`archive` and `lxc_template`. Changing it replaces the container.",
				Optional:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"archive": schema.StringAttribute{
				MarkdownDescription: "Absolute path of a root filesystem tarball on the host (tar, optionally " +
					"gzip, bzip2, xz or zstd compressed), unpacked into the container as a Proxmox container " +
					"template is. For an unprivileged container the files' owners are mapped into its id range. " +
					"Exactly one of `template`, `archive` and `lxc_template`. " + archiveDesc,
				Optional:      true,
				Validators:    []validator.String{validators.AbsolutePath()},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplaceIf(archiveReplace, archiveDesc, archiveDesc)},
			},
			"unprivileged": schema.BoolAttribute{
				MarkdownDescription: "Whether the container runs in a user namespace, its ids mapped to root's " +
					"subordinate ranges in `/etc/subuid` and `/etc/subgid` (see `idmap`): root in the container is " +
					"then an ordinary high uid on the host. Default `true`. A clone must match its template. " +
					"Changing it replaces the container.",
				Optional:      true,
				Computed:      true,
				Default:       booldefault.StaticBool(true),
				PlanModifiers: []planmodifier.Bool{boolplanmodifier.RequiresReplace()},
			},
			"idmap": schema.ListNestedAttribute{
				MarkdownDescription: "The container's id map (`lxc.idmap`): empty for a privileged container.",
				Computed:            true,
				PlanModifiers:       []planmodifier.List{listplanmodifier.UseStateForUnknown()},
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"kind": schema.StringAttribute{
							MarkdownDescription: "`u` for user ids, `g` for group ids.",
							Computed:            true,
						},
						"container_id": schema.Int64Attribute{
							MarkdownDescription: "First id in the container.",
							Computed:            true,
						},
						"host_id": schema.Int64Attribute{
							MarkdownDescription: "The host id that `container_id` is.",
							Computed:            true,
						},
						"count": schema.Int64Attribute{
							MarkdownDescription: "How many ids the range holds.",
							Computed:            true,
						},
					},
				},
			},
			"memory": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Memory limit in MiB, at least %d; unset, the container has no "+
					"limit of its own. Written to whichever cgroup hierarchy (v1 or v2) holds the memory controller "+
					"on the host. Changes live.", virt.MinContainerMemoryMiB),
				Optional:   true,
				Validators: []validator.Int64{int64validator.AtLeast(virt.MinContainerMemoryMiB)},
			},
			"swap": schema.Int64Attribute{
				MarkdownDescription: "Swap in MiB the container may use on top of `memory` (needs `memory`); unset, " +
					"swap is not limited. Changes live.",
				Optional:   true,
				Validators: []validator.Int64{int64validator.AtLeast(0)},
			},
			"cpus": schema.StringAttribute{
				MarkdownDescription: "The host CPUs the container may run on, as a cpuset list (`0-1`, `0,2`); unset, " +
					"all of them. Changes live.",
				Optional: true,
			},
			"cpu_weight": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Relative CPU share under contention, 1 to %d on cgroup v2's "+
					"`cpu.weight` scale (a container without one gets the kernel's 100); on a cgroup v1 host it is "+
					"converted to `cpu.shares`. Changes live.", virt.MaxContainerCPUWeight),
				Optional:   true,
				Validators: []validator.Int64{int64validator.Between(1, virt.MaxContainerCPUWeight)},
			},
			"running": schema.BoolAttribute{
				MarkdownDescription: "Whether the container runs. Default `true`. A container found stopped (or " +
					"started) outside Terraform is planned back to this.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"start_on_boot": schema.BoolAttribute{
				MarkdownDescription: "Whether `lxc-autostart` starts the container when the host boots " +
					"(`lxc.start.auto`). Default `false`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"config": schema.MapAttribute{
				MarkdownDescription: containerConfigDescription(),
				Optional:            true,
				ElementType:         types.StringType,
			},
			"restart_on_update": schema.BoolAttribute{
				MarkdownDescription: "Whether an apply may restart the running container (stop within " +
					"`stop_timeout`, then start) to bring in changes that take a restart. Default `false`: such " +
					"changes are saved, the plan warns, and `pending_restart` lists them until the container is " +
					"next started.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"stop_timeout": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Seconds the container's init gets to shut down cleanly "+
					"(`lxc.signal.halt`) when the container is destroyed, set to `running = false` or restarted, "+
					"before it is killed; `0` kills it at once, like `lxc-stop -k`. Default %d. The operation's "+
					"timeout bounds it too.", defaultContainerStopTimeout),
				Optional:   true,
				Computed:   true,
				Default:    int64default.StaticInt64(defaultContainerStopTimeout),
				Validators: []validator.Int64{int64validator.AtLeast(0)},
			},
			"state": schema.StringAttribute{
				MarkdownDescription: "Run state as LXC reports it: `RUNNING`, `STOPPED`, `STARTING`, `STOPPING`, `FROZEN`.",
				Computed:            true,
			},
			"pid": schema.Int64Attribute{
				MarkdownDescription: "Host process id of the container's init; null while it is stopped.",
				Computed:            true,
			},
			"ipv4_addresses": schema.ListAttribute{
				MarkdownDescription: "IPv4 addresses the container has, as last read. They change outside " +
					"Terraform's control (DHCP), so they never cause a change in a plan.",
				Computed:    true,
				ElementType: types.StringType,
			},
			"pending_restart": schema.ListAttribute{
				MarkdownDescription: "Changes saved to the container's configuration that the running container " +
					"gets only when it is next started (see `restart_on_update`), as attribute paths. Empty when " +
					"there are none.",
				Computed:    true,
				ElementType: types.StringType,
			},
		},
		Blocks: map[string]schema.Block{
			"lxc_template": schema.SingleNestedBlock{
				MarkdownDescription: "An LXC template script that builds the root filesystem, as `lxc-create -t` " +
					"runs it. Exactly one of `template`, `archive` and `lxc_template`. Changing it replaces the " +
					"container (after an import, the first apply only records it).",
				PlanModifiers: []planmodifier.Object{objectplanmodifier.RequiresReplaceIf(
					func(_ context.Context, req planmodifier.ObjectRequest, resp *objectplanmodifier.RequiresReplaceIfFuncResponse) {
						resp.RequiresReplace = !req.StateValue.IsNull()
					},
					"Changing lxc_template replaces the container (after an import, the first apply only records it).",
					"Changing `lxc_template` replaces the container (after an import, the first apply only records it).",
				)},
				Attributes: map[string]schema.Attribute{
					// Required in effect (the layer says so at validate):
					// the framework would demand a Required attribute of an
					// absent block too.
					"name": schema.StringAttribute{
						MarkdownDescription: "The template's name (`busybox`, `debian`, `download`...), from LXC's " +
							"templates directory, or the absolute path of a template script. Required.",
						Optional: true,
					},
					"args": schema.ListAttribute{
						MarkdownDescription: "Arguments for the template script, as after `--` on `lxc-create` " +
							"(for `download`: `[\"-d\", \"debian\", \"-r\", \"bookworm\", \"-a\", \"amd64\"]`).",
						Optional:    true,
						ElementType: types.StringType,
					},
				},
			},
			"network_interface": schema.ListNestedBlock{
				MarkdownDescription: "A network interface: a veth pair whose host end joins a bridge. Changes " +
					"take effect at the next start.",
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"bridge": schema.StringAttribute{
							MarkdownDescription: "Host bridge the interface joins. Default `" + virt.DefaultContainerBridge +
								"`. It must exist (checked at plan time).",
							Optional: true,
							Computed: true,
							Default:  stringdefault.StaticString(virt.DefaultContainerBridge),
						},
						"name": schema.StringAttribute{
							MarkdownDescription: "Interface name inside the container. Default `eth0` for the first " +
								"interface, `eth1` for the second, and so on.",
							Optional: true,
							Computed: true,
						},
						"hwaddr": schema.StringAttribute{
							MarkdownDescription: "MAC address in lower case. Generated (in LXC's `00:16:3e` range) " +
								"when unset, and kept for the life of the interface, so DHCP leases stay too.",
							Optional:      true,
							Computed:      true,
							PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
							// The layer writes MACs in lower case; one written
							// otherwise would read back as a change.
							Validators: []validator.String{stringvalidator.RegexMatches(regexp.MustCompile(`^[^A-F]*$`),
								"must be in lower case, as LXC's configuration keeps MAC addresses")},
						},
						"ipv4_address": schema.StringAttribute{
							MarkdownDescription: "Static IPv4 address in CIDR form (`10.0.3.10/24`), set by LXC " +
								"before the container's init starts. Unset: the container configures the interface " +
								"itself (DHCP, usually).",
							Optional: true,
						},
						"ipv4_gateway": schema.StringAttribute{
							MarkdownDescription: "Default gateway for a static `ipv4_address`.",
							Optional:            true,
						},
						"mtu": schema.Int64Attribute{
							MarkdownDescription: "MTU of the interface, 68 to 65535; unset, the bridge's.",
							Optional:            true,
							Validators:          []validator.Int64{int64validator.AtLeast(0)},
						},
					},
				},
			},
			"mount": schema.ListNestedBlock{
				MarkdownDescription: "A bind mount of a host path into the container. For an unprivileged " +
					"container the files keep their host owners, which the container sees as `nobody` unless they are " +
					"in its id range. Changes take effect at the next start.",
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"source": schema.StringAttribute{
							MarkdownDescription: "Absolute path on the host; it must exist.",
							Required:            true,
						},
						"target": schema.StringAttribute{
							MarkdownDescription: "Absolute path in the container.",
							Required:            true,
						},
						"read_only": schema.BoolAttribute{
							MarkdownDescription: "Whether the container sees the mount read-only. Default `false`.",
							Optional:            true,
							Computed:            true,
							Default:             booldefault.StaticBool(false),
						},
						"create_dir": schema.BoolAttribute{
							MarkdownDescription: "Whether the target directory is made in the container when it " +
								"is missing. Default `false`.",
							Optional: true,
							Computed: true,
							Default:  booldefault.StaticBool(false),
						},
					},
				},
			},
			"features": schema.SingleNestedBlock{
				MarkdownDescription: "Optional container features. Changes take effect at the next start.",
				Attributes: map[string]schema.Attribute{
					"nesting": schema.BoolAttribute{
						MarkdownDescription: "Whether containers can run inside this one (LXC's `nesting.conf`: " +
							"`/proc` and `/sys` uncovered under `/dev/.lxc`). Default `false`.",
						Optional: true,
						Computed: true,
						Default:  booldefault.StaticBool(false),
					},
				},
			},
			"timeouts": timeouts.Block(ctx, timeouts.Opts{
				Create: true, Update: true, Delete: true,
				CreateDescription: "Default 10m. Covers making the root filesystem (an LXC template script may " +
					"download and unpack a distribution) and the first start.",
				UpdateDescription: "Default 5m. Covers the live changes, starting, stopping and restarting.",
				DeleteDescription: "Default 5m. Covers the clean shutdown (at most `stop_timeout`) and the removal.",
			}),
		},
	}
}

func (r *containerResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	r.clients = c
}

// lxcClient returns the provider's LXC client, reporting a failure (a
// build or host without liblxc, say) as an error diagnostic.
func (r *containerResource) lxcClient(diags *diag.Diagnostics) *lxc.Client {
	if r.clients == nil {
		diags.AddError("Provider not configured", "The virt provider has not been configured; this is a bug in the provider, please report it.")
		return nil
	}
	lx, err := r.clients.LXC()
	if err != nil {
		diags.AddError("Cannot use LXC", err.Error())
		return nil
	}
	return lx
}

// ValidateConfig runs the layer's own validation of the container spec on
// what is known, so that each rule (exactly one source, the name, CIDRs and
// MACs, absolute mount paths, swap without memory, managed config keys...)
// fails at validate with the attribute path and is written in one place.
// It also warns about each config key that reaches outside the container;
// validate runs before every plan, so the plan shows them.
func (r *containerResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m containerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	warnContainerHostAccess(m.Config, &resp.Diagnostics)
	b := containerSpecBuilder{unknown: map[string]bool{}}
	spec, diags := b.toSpec(ctx, containerWithSchemaDefaults(m))
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	if err := spec.Validate(); err != nil {
		addContainerSpecErrors(&resp.Diagnostics, "Invalid container", err, func(field string) bool {
			return b.involvesUnknown(field) || containerCoveredBySchema(spec, field)
		})
	}
}

// containerCoveredBySchema tells the layer's complaints that the schema's
// validators already make, so that each mistake is reported once.
func containerCoveredBySchema(spec virt.ContainerSpec, field string) bool {
	switch field {
	case "memory":
		return spec.MemoryMiB < virt.MinContainerMemoryMiB
	case "cpu_weight":
		return spec.CPUWeight > virt.MaxContainerCPUWeight
	}
	return false
}

// containerWithSchemaDefaults gives a configuration the schema's defaults,
// for validating it as the plan will be.
func containerWithSchemaDefaults(m containerModel) containerModel {
	if m.Unprivileged.IsNull() {
		m.Unprivileged = types.BoolValue(true)
	}
	return m
}

// ModifyPlan fills in the defaults that depend on other attributes (the
// hostname, the interfaces' names), warns when a change waits for a restart,
// and checks the container against the host.
func (r *containerResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan, config containerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	var state *containerModel
	if !req.State.Raw.IsNull() {
		state = &containerModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(fillContainerPlanDefaults(ctx, &plan, config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// Terraform plans a replacement again as a create, with no state.
	if state != nil && containerReplaced(plan, *state) {
		state = nil
	} else if state != nil {
		warnContainerRestart(ctx, plan, *state, &resp.Diagnostics)
	}
	if r.clients != nil {
		r.checkHost(ctx, plan, state, &resp.Diagnostics)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// fillContainerPlanDefaults sets what the layer will make of attributes
// left unset whose default depends on another value: the id and the
// hostname are the name, interface i is called eth<i>.
func fillContainerPlanDefaults(ctx context.Context, plan *containerModel, config containerModel) diag.Diagnostics {
	var diags diag.Diagnostics
	plan.ID = plan.Name // unknown while the name is
	if config.Hostname.IsNull() {
		plan.Hostname = plan.Name
	}
	nics, d := listAs[containerInterfaceModel](ctx, plan.Interfaces)
	diags.Append(d...)
	cfgNICs, d := listAs[containerInterfaceModel](ctx, config.Interfaces)
	diags.Append(d...)
	if nics == nil || len(nics) != len(cfgNICs) {
		return diags
	}
	for i := range nics {
		if cfgNICs[i].Name.IsNull() {
			nics[i].Name = types.StringValue(fmt.Sprintf("eth%d", i))
		}
	}
	list, d := types.ListValueFrom(ctx, types.ObjectType{AttrTypes: containerInterfaceAttrTypes}, nics)
	diags.Append(d...)
	plan.Interfaces = list
	return diags
}

// containerReplaced reports whether the plan replaces the container: the
// same judgement as the attributes' RequiresReplace plan modifiers, which
// ModifyPlan does not see.
func containerReplaced(plan, state containerModel) bool {
	return !plan.Name.Equal(state.Name) ||
		!plan.Template.Equal(state.Template) ||
		!plan.Unprivileged.Equal(state.Unprivileged) ||
		(!state.Archive.IsNull() && !plan.Archive.Equal(state.Archive)) ||
		(!state.LXCTemplate.IsNull() && !plan.LXCTemplate.Equal(state.LXCTemplate))
}

// warnContainerRestart warns when the apply saves changes that the running
// container only sees after a restart, and says whether the apply restarts
// it (restart_on_update) or leaves that to the user.
func warnContainerRestart(ctx context.Context, plan, state containerModel, diags *diag.Diagnostics) {
	if !plan.Running.ValueBool() || !state.Running.ValueBool() || plan.Running.IsUnknown() {
		return
	}
	old, d := containerSpecBuilder{}.toSpec(ctx, state)
	diags.Append(d...)
	b := containerSpecBuilder{unknown: map[string]bool{}}
	want, d := b.toSpec(ctx, plan)
	diags.Append(d...)
	if diags.HasError() {
		return
	}
	var lines []string
	for _, c := range containerRestartChanges(old, want) {
		lines = append(lines, "- "+c.String())
	}
	for _, f := range slices.Sorted(maps.Keys(b.unknown)) {
		if p, ok := containerFieldPath(f); ok && containerRestartField(f) {
			lines = append(lines, "- "+p.String()+" (known after apply; may take a restart)")
		}
	}
	name := plan.Name.ValueString()
	restart := plan.RestartOnUpdate.ValueBool() && !plan.RestartOnUpdate.IsUnknown()
	if restart {
		// Changes saved by an earlier apply are waiting too: they are why
		// a restart is due even when this plan changes nothing else.
		pending, _ := listAs[types.String](ctx, state.PendingRestart)
		for _, p := range pending {
			line := "- " + p.ValueString() + " (saved earlier)"
			if !slices.Contains(lines, "- "+p.ValueString()) {
				lines = append(lines, line)
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	if restart {
		diags.AddWarning(fmt.Sprintf("Container %q will be restarted", name),
			fmt.Sprintf("These changes take a restart, and restart_on_update is true: the apply stops the container "+
				"(a clean shutdown within stop_timeout, %d s) and starts it again.\n\n%s",
				plan.StopTimeout.ValueInt64(), strings.Join(lines, "\n")))
		return
	}
	diags.AddWarning(fmt.Sprintf("Container %q needs a restart", name),
		fmt.Sprintf("These changes are saved to the container's configuration but reach it only when it is next "+
			"started (restart_on_update is false; pending_restart lists them until then):\n\n%s", strings.Join(lines, "\n")))
}

// containerRestartField says whether a spec field is one of those a running
// container only reads when it starts.
func containerRestartField(field string) bool {
	head, _, _ := strings.Cut(field, ".")
	if i := strings.Index(head, "["); i >= 0 {
		head = head[:i]
	}
	switch head {
	case "hostname", "interfaces", "mounts", "nesting", "config":
		return true
	}
	return false
}

// checkHost refuses, at plan time, a container the host cannot have. An
// update is judged only on what it changes: a container whose bridge went
// away must still plan cleanly for its other changes, and the source of an
// existing container is not judged again.
func (r *containerResource) checkHost(ctx context.Context, plan containerModel, state *containerModel, diags *diag.Diagnostics) {
	lx, err := r.clients.LXC()
	if err != nil {
		diags.AddError("Cannot use LXC", err.Error())
		return
	}
	b := containerSpecBuilder{unknown: map[string]bool{}}
	want, d := b.toSpec(ctx, plan)
	diags.Append(d...)
	var old *virt.ContainerSpec
	if state != nil {
		o, d := containerSpecBuilder{}.toSpec(ctx, *state)
		diags.Append(d...)
		old = &o
		// The source of an existing container is not judged again (its
		// template may be running by now): the check skips what is unset.
		want.Template, want.Archive, want.LXCTemplate = "", "", nil
	}
	if diags.HasError() {
		return
	}
	err = lx.CheckHost(want)
	if err == nil {
		return
	}
	var es virt.SpecErrors
	if !errors.As(err, &es) {
		diags.AddError("Cannot check the host for container "+plan.Name.ValueString(), err.Error())
		return
	}
	addContainerSpecErrors(diags, "Container needs what this host lacks", err, func(field string) bool {
		return b.involvesUnknown(field) || (old != nil && !containerFieldChanged(*old, want, field))
	})
}

// containerFieldChanged says whether an update changes what a spec field
// (of a host check's complaint) is about. Source fields, the id map and
// unprivileged never change in an update: a change replaces.
func containerFieldChanged(old, want virt.ContainerSpec, field string) bool {
	old, want = old.WithDefaults(), want.WithDefaults()
	var i int
	var rest string
	if n, _ := fmt.Sscanf(field, "interfaces[%d]%s", &i, &rest); n >= 1 {
		if i >= len(old.Interfaces) || i >= len(want.Interfaces) {
			return true
		}
		o, w := old.Interfaces[i], want.Interfaces[i]
		w.HWAddr, o.HWAddr = "", ""
		return o != w
	}
	if n, _ := fmt.Sscanf(field, "mounts[%d]%s", &i, &rest); n >= 1 {
		return i >= len(old.Mounts) || i >= len(want.Mounts) || old.Mounts[i] != want.Mounts[i]
	}
	switch containerFieldGroup(field) {
	case "template", "idmap", "unprivileged", "name":
		return false
	case "memory":
		return old.MemoryMiB != want.MemoryMiB || old.SwapMiB != want.SwapMiB
	case "cpus":
		return old.CPUs != want.CPUs
	case "cpu_weight":
		return old.CPUWeight != want.CPUWeight
	}
	return true
}

func (r *containerResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan containerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultContainerCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	lx := r.lxcClient(&resp.Diagnostics)
	if lx == nil {
		return
	}
	spec, diags := containerSpecBuilder{}.toSpec(ctx, plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := spec.Name
	summary := "Cannot create container " + name

	// The layer removes what a failed create made.
	got, err := lx.CreateContainer(ctx, spec)
	if err != nil {
		if errors.Is(err, virt.ErrExists) {
			resp.Diagnostics.AddAttributeError(path.Root("name"), summary, fmt.Sprintf(
				"A container named %q already exists under %s. Import it (terraform import) to manage it, or choose another name.",
				name, lx.LXCPath()))
			return
		}
		addContainerSpecErrors(&resp.Diagnostics, summary, err, nil)
		return
	}

	// The container exists from here on. Recording it now means that, should
	// a later step fail and undoing it fail too, Terraform keeps it (as
	// tainted, to be replaced) instead of losing track of it.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)

	if plan.Running.ValueBool() {
		// What was read back on create knows nothing of the run: the start
		// adds it, without reading the rest again.
		started, err := lx.StartCreated(ctx, got)
		if err != nil {
			resp.Diagnostics.AddError(summary, err.Error())
			undoContainerCreate(ctx, lx, name, resp)
			return
		}
		got = started
	}
	m, diags := containerModelFromSpec(ctx, got, plan)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// undoContainerCreate destroys a container whose create failed after the
// layer made it. Only when it is gone does the resource leave state;
// otherwise the id recorded earlier keeps it there, tainted.
func undoContainerCreate(ctx context.Context, lx *lxc.Client, name string, resp *resource.CreateResponse) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), containerCleanupTimeout)
	defer cancel()
	if err := lx.DestroyContainer(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddError("Cannot remove the failed container "+name,
			fmt.Sprintf("%v\n\nThe container stays in the state as tainted; the next apply replaces it.", err))
		return
	}
	resp.State.RemoveResource(ctx)
}

func (r *containerResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state containerModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	lx := r.lxcClient(&resp.Diagnostics)
	if lx == nil {
		return
	}
	got, err := lx.Container(ctx, state.Name.ValueString())
	if errors.Is(err, virt.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read container "+state.Name.ValueString(), err.Error())
		return
	}
	m, diags := containerModelFromSpec(ctx, got, state)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// stopTimeout is stop_timeout as a duration.
func (m containerModel) stopTimeout() time.Duration {
	if m.StopTimeout.IsNull() || m.StopTimeout.IsUnknown() {
		return defaultContainerStopTimeout * time.Second
	}
	return time.Duration(max(m.StopTimeout.ValueInt64(), 0)) * time.Second
}

func (r *containerResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state containerModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultContainerUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	lx := r.lxcClient(&resp.Diagnostics)
	if lx == nil {
		return
	}
	name := state.Name.ValueString()
	summary := "Cannot update container " + name
	old, diags := containerSpecBuilder{}.toSpec(ctx, state)
	resp.Diagnostics.Append(diags...)
	want, diags := containerSpecBuilder{}.toSpec(ctx, plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	// Whatever happens below, state ends as the container is.
	var got *virt.ContainerSpec
	defer func() {
		if got == nil {
			return
		}
		m, diags := containerModelFromSpec(ctx, got, plan)
		resp.Diagnostics.Append(diags...)
		resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	}()

	cur, err := lx.Container(ctx, name)
	if err != nil {
		resp.Diagnostics.AddError(summary, err.Error())
		return
	}
	wasRunning := containerRuns(cur.State)
	wantRunning := plan.Running.ValueBool()
	grace := plan.stopTimeout()

	// A container to stop is stopped first: the update then only saves.
	if wasRunning && !wantRunning {
		if err := lx.StopContainer(ctx, name, grace); err != nil {
			resp.Diagnostics.AddError(summary, err.Error())
			got = readBackAfterFailure(ctx, lx, name)
			return
		}
	}
	got = cur
	if containerSpecChanged(old, want) {
		upd, err := lx.UpdateContainer(ctx, name, want)
		if err != nil {
			addContainerSpecErrors(&resp.Diagnostics, summary, err, nil)
			// Some changes may have been made: state says what the
			// container is now, so the next plan shows what is still to do.
			got = readBackAfterFailure(ctx, lx, name)
			return
		}
		got = upd
	}
	switch {
	case wantRunning && !wasRunning:
		if err := lx.StartContainer(ctx, name); err != nil {
			resp.Diagnostics.AddError(summary, err.Error())
			got = readBackAfterFailure(ctx, lx, name)
			return
		}
	case wantRunning && plan.RestartOnUpdate.ValueBool() && len(got.PendingRestart) > 0:
		if err := restartContainer(ctx, lx, name, grace); err != nil {
			resp.Diagnostics.AddError(summary, fmt.Sprintf("restart to bring in %s: %v", strings.Join(got.PendingRestart, ", "), err))
			got = readBackAfterFailure(ctx, lx, name)
			return
		}
	}
	if got, err = lx.Container(ctx, name); err != nil {
		resp.Diagnostics.AddError(summary, fmt.Sprintf("read it back: %v", err))
	}
}

// readBackAfterFailure reads the container after a failed step, for state;
// nil (state left as planned by the framework) when that fails too.
func readBackAfterFailure(ctx context.Context, lx *lxc.Client, name string) *virt.ContainerSpec {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), containerCleanupTimeout)
	defer cancel()
	got, err := lx.Container(ctx, name)
	if err != nil {
		return nil
	}
	return got
}

func restartContainer(ctx context.Context, lx *lxc.Client, name string, grace time.Duration) error {
	if err := lx.StopContainer(ctx, name, grace); err != nil {
		return err
	}
	return lx.StartContainer(ctx, name)
}

func (r *containerResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state containerModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultContainerDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	lx := r.lxcClient(&resp.Diagnostics)
	if lx == nil {
		return
	}
	name := state.Name.ValueString()
	summary := "Cannot delete container " + name
	// A clean shutdown within stop_timeout, as the docs promise, then the
	// removal, with one handle of the container.
	err := lx.RemoveContainer(ctx, name, state.stopTimeout())
	var hasClones *virt.HasClonesError
	switch {
	case err == nil, errors.Is(err, virt.ErrNotFound):
	case errors.As(err, &hasClones):
		resp.Diagnostics.AddError(fmt.Sprintf("Container %q still has clones", name), fmt.Sprintf(
			"Container %q is the template of the snapshot clones %s, whose root filesystems are overlays on its "+
				"own: it cannot be destroyed before them. Destroy the clones first. Clones managed in the same "+
				"configuration should name their template by reference (template = virt_container.base.name, "+
				"not a literal), so that Terraform destroys them before it.",
			name, strings.Join(hasClones.Clones, ", ")))
	default:
		resp.Diagnostics.AddError(summary, err.Error())
	}
}

// ImportState takes a container's name; Read fills in the rest.
func (r *containerResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !virt.ValidContainerName(req.ID) {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf(
			"%q is not a container name: expected the name of an LXC container under the provider's lxc_path "+
				"(containers have no host prefix: they are always on the host the provider runs on).", req.ID))
		return
	}
	lx := r.lxcClient(&resp.Diagnostics)
	if lx == nil {
		return
	}
	if _, err := lx.Container(ctx, req.ID); err != nil {
		if errors.Is(err, virt.ErrNotFound) {
			resp.Diagnostics.AddError("Cannot import container "+req.ID,
				fmt.Sprintf("There is no container named %q under %s.", req.ID, lx.LXCPath()))
			return
		}
		resp.Diagnostics.AddError("Cannot import container "+req.ID, err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), req.ID)...)
}
