package provider

import (
	"context"
	"errors"
	"fmt"
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
	_ datasource.DataSource              = (*containerDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*containerDataSource)(nil)
)

func newContainerDataSource() datasource.DataSource { return &containerDataSource{} }

type containerDataSource struct {
	clients *clients
}

// containerDataModel is the data source's state. Nested objects are plain Go
// values: a data source only ever writes them, and the framework turns a
// non-nil empty slice or map into an empty (not null) collection.
type containerDataModel struct {
	Name             types.String             `tfsdk:"name"`
	ID               types.String             `tfsdk:"id"`
	Hostname         types.String             `tfsdk:"hostname"`
	Template         types.String             `tfsdk:"template"`
	Unprivileged     types.Bool               `tfsdk:"unprivileged"`
	IDMap            []containerDataIDMap     `tfsdk:"idmap"`
	Memory           types.Int64              `tfsdk:"memory"`
	Swap             types.Int64              `tfsdk:"swap"`
	CPUs             types.String             `tfsdk:"cpus"`
	CPUWeight        types.Int64              `tfsdk:"cpu_weight"`
	NetworkInterface []containerDataInterface `tfsdk:"network_interface"`
	Mount            []containerDataMount     `tfsdk:"mount"`
	Features         containerDataFeatures    `tfsdk:"features"`
	Running          types.Bool               `tfsdk:"running"`
	StartOnBoot      types.Bool               `tfsdk:"start_on_boot"`
	Config           map[string]string        `tfsdk:"config"`
	State            types.String             `tfsdk:"state"`
	PID              types.Int64              `tfsdk:"pid"`
	IPv4Addresses    []string                 `tfsdk:"ipv4_addresses"`
	PendingRestart   []string                 `tfsdk:"pending_restart"`
}

type containerDataIDMap struct {
	Kind        types.String `tfsdk:"kind"`
	ContainerID types.Int64  `tfsdk:"container_id"`
	HostID      types.Int64  `tfsdk:"host_id"`
	Count       types.Int64  `tfsdk:"count"`
}

type containerDataInterface struct {
	Bridge      types.String `tfsdk:"bridge"`
	Name        types.String `tfsdk:"name"`
	HWAddr      types.String `tfsdk:"hwaddr"`
	IPv4Address types.String `tfsdk:"ipv4_address"`
	IPv4Gateway types.String `tfsdk:"ipv4_gateway"`
	MTU         types.Int64  `tfsdk:"mtu"`
}

type containerDataMount struct {
	Source    types.String `tfsdk:"source"`
	Target    types.String `tfsdk:"target"`
	ReadOnly  types.Bool   `tfsdk:"read_only"`
	CreateDir types.Bool   `tfsdk:"create_dir"`
}

type containerDataFeatures struct {
	Nesting types.Bool `tfsdk:"nesting"`
}

// containerDataStates are the run states LXC reports, for the description.
var containerDataStates = []virt.ContainerState{
	virt.ContainerRunning, virt.ContainerStopped, virt.ContainerStarting, virt.ContainerStopping, virt.ContainerFrozen,
}

func (d *containerDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_container"
}

func (d *containerDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	num := func(desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Computed: true, MarkdownDescription: desc}
	}
	flag := func(desc string) schema.BoolAttribute {
		return schema.BoolAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads an LXC container on the host the provider runs on (under the provider's `lxc_path`) " +
			"by name, whoever made it: its limits, network interfaces, mounts, run state and addresses, and for a " +
			"snapshot clone the template it lies on. A container that does not exist is an error.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the container.",
				Validators:          []validator.String{containerDataNameValidator{}},
			},
			"id":       str("The container's name."),
			"hostname": str("Host name the container's system gets (`lxc.uts.name`); the name when the config sets none."),
			"template": str("For a snapshot clone, the name of the template container whose root filesystem it " +
				"is an overlay on; null for containers that are not clones."),
			"unprivileged": flag("Whether the container's ids are mapped to unprivileged host ids (it has an `idmap`)."),
			"idmap": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The container's id map (`lxc.idmap`); empty for a privileged container.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"kind":         str("`u` for user ids, `g` for group ids."),
					"container_id": num("First id in the container."),
					"host_id":      num("Host id the first container id is mapped to."),
					"count":        num("Number of ids mapped."),
				}},
			},
			"memory": num("Memory limit in MiB; null when there is none."),
			"swap":   num("Swap the container may use on top of `memory`, in MiB; null when it is not limited."),
			"cpus":   str("Host CPUs the container may run on, as a cpuset like `0-1`; null for all of them."),
			"cpu_weight": num(fmt.Sprintf("Relative CPU weight, 1 to %d on cgroup v2's scale (the kernel's default is 100); "+
				"null when the container keeps the default.", virt.MaxContainerCPUWeight)),
			"network_interface": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "Network interfaces, in the configuration's order.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"bridge":       str("Host bridge the interface is on."),
					"name":         str("Interface name inside the container."),
					"hwaddr":       str("MAC address; null when LXC picks one at each start."),
					"ipv4_address": str("Static IPv4 address in CIDR form; null when the container configures its own (DHCP)."),
					"ipv4_gateway": str("Static IPv4 default gateway; null when none is set."),
					"mtu":          num("MTU; null when the interface keeps the bridge's."),
				}},
			},
			"mount": schema.ListNestedAttribute{
				Computed: true,
				MarkdownDescription: "Host paths bind-mounted into the container by this provider, in order. Mounts that " +
					"a template's own configuration brings along are not listed.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"source":     str("Absolute path on the host."),
					"target":     str("Absolute path in the container."),
					"read_only":  flag("Whether the container sees it read-only."),
					"create_dir": flag("Whether a missing target directory is created at start."),
				}},
			},
			"features": schema.SingleNestedAttribute{
				Computed:            true,
				MarkdownDescription: "Optional container features.",
				Attributes: map[string]schema.Attribute{
					"nesting": flag("Whether the container may run containers itself (`/proc` and `/sys` uncovered for them)."),
				},
			},
			"running":       flag("Whether the container has processes: state `RUNNING`, `STARTING` or `FROZEN`."),
			"start_on_boot": flag("Whether LXC starts the container when the host boots (`lxc.start.auto`)."),
			"config": schema.MapAttribute{
				Computed:    true,
				ElementType: types.StringType,
				MarkdownDescription: "Extra raw `lxc.*` keys this provider wrote for the container, beyond those the " +
					"other attributes manage; empty when there are none.",
			},
			"state": str("Run state as LXC reports it: " + describeValues(containerDataStates) + "."),
			"pid":   num("Host process id of the container's init; null while it is stopped."),
			"ipv4_addresses": schema.ListAttribute{
				Computed:            true,
				ElementType:         types.StringType,
				MarkdownDescription: "IPv4 addresses the running container has now, sorted; empty while it is stopped.",
			},
			"pending_restart": schema.ListAttribute{
				Computed:    true,
				ElementType: types.StringType,
				MarkdownDescription: "Attributes whose saved value the running container does not use yet, because only " +
					"a restart applies them (for example `network_interface[0].ipv4_address`); empty when it is stopped.",
			},
		},
	}
}

func (d *containerDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	d.clients = c
}

func (d *containerDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var nameAttr types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("name"), &nameAttr)...)
	if resp.Diagnostics.HasError() {
		return
	}
	lx, err := d.clients.LXC()
	if err != nil {
		resp.Diagnostics.AddError("Cannot use LXC", err.Error())
		return
	}
	name := nameAttr.ValueString()
	spec, err := lx.Container(ctx, name)
	if errors.Is(err, virt.ErrNotFound) {
		resp.Diagnostics.AddError("Container not found",
			fmt.Sprintf("There is no container named %q in %s (the provider's lxc_path).", name, d.clients.lxcPath))
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read container "+name, fmt.Sprintf("in %s: %v", d.clients.lxcPath, err))
		return
	}
	state := containerDataFromSpec(*spec)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// containerDataFromSpec maps a container read back onto the data source's
// state. Defaults are applied first so a container made by other tools (no
// hostname, unnamed interfaces) reads the way the resource would show it.
// Zero limits mean "none" in the spec and are null here.
func containerDataFromSpec(spec virt.ContainerSpec) containerDataModel {
	s := spec.WithDefaults()
	m := containerDataModel{
		Name:             types.StringValue(s.Name),
		ID:               types.StringValue(s.Name),
		Hostname:         types.StringValue(s.Hostname),
		Template:         containerDataString(s.Template),
		Unprivileged:     types.BoolValue(s.Unprivileged),
		IDMap:            make([]containerDataIDMap, 0, len(s.IDMap)),
		Memory:           containerDataInt(s.MemoryMiB),
		Swap:             containerDataInt(s.SwapMiB),
		CPUs:             containerDataString(s.CPUs),
		CPUWeight:        containerDataInt(s.CPUWeight),
		NetworkInterface: make([]containerDataInterface, 0, len(s.Interfaces)),
		Mount:            make([]containerDataMount, 0, len(s.Mounts)),
		Features:         containerDataFeatures{Nesting: types.BoolValue(s.Nesting)},
		Running:          types.BoolValue(containerRuns(s.State)),
		StartOnBoot:      types.BoolValue(s.StartOnBoot),
		Config:           map[string]string{},
		State:            types.StringValue(string(s.State)),
		PID:              types.Int64Null(),
		IPv4Addresses:    append([]string{}, s.IPv4Addresses...),
		PendingRestart:   make([]string, 0, len(s.PendingRestart)),
	}
	for _, e := range s.IDMap {
		m.IDMap = append(m.IDMap, containerDataIDMap{
			Kind:        types.StringValue(e.Kind),
			ContainerID: types.Int64Value(int64(e.ContainerID)),
			HostID:      types.Int64Value(int64(e.HostID)),
			Count:       types.Int64Value(int64(e.Count)),
		})
	}
	for _, n := range s.Interfaces {
		m.NetworkInterface = append(m.NetworkInterface, containerDataInterface{
			Bridge:      types.StringValue(n.Bridge),
			Name:        types.StringValue(n.Name),
			HWAddr:      containerDataString(n.HWAddr),
			IPv4Address: containerDataString(n.IPv4Address),
			IPv4Gateway: containerDataString(n.IPv4Gateway),
			MTU:         containerDataInt(uint64(n.MTU)),
		})
	}
	for _, mt := range s.Mounts {
		m.Mount = append(m.Mount, containerDataMount{
			Source:    types.StringValue(mt.Source),
			Target:    types.StringValue(mt.Target),
			ReadOnly:  types.BoolValue(mt.ReadOnly),
			CreateDir: types.BoolValue(mt.CreateDir),
		})
	}
	for k, v := range s.Config {
		m.Config[k] = v
	}
	if s.PID > 0 {
		m.PID = types.Int64Value(int64(s.PID))
	}
	// The resource's path mapping, so both name a pending change alike.
	for _, f := range s.PendingRestart {
		if p, ok := containerFieldPath(f); ok {
			f = p.String()
		}
		if !slices.Contains(m.PendingRestart, f) {
			m.PendingRestart = append(m.PendingRestart, f)
		}
	}
	return m
}

func containerDataString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

func containerDataInt(n uint64) types.Int64 {
	if n == 0 {
		return types.Int64Null()
	}
	return types.Int64Value(int64(n))
}

// containerDataNameValidator refuses names LXC could not have, at validate time,
// with the layer's own rule.
type containerDataNameValidator struct{}

func (containerDataNameValidator) Description(context.Context) string {
	return "value must be a container name: 1 to 64 letters, digits, '-', '_' or '.', not starting with '-' or '.'"
}

func (v containerDataNameValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v containerDataNameValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if name := req.ConfigValue.ValueString(); !virt.ValidContainerName(name) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid container name",
			fmt.Sprintf("%q is not a valid container name: %s.", name, strings.TrimPrefix(v.Description(ctx), "value must be a container name: ")))
	}
}
