package provider

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// This file is the one mapping between the virt_container model and
// virt.ContainerSpec, each way. Create, Read, Update, Import and the plan
// checks go through it; the functions that turn parts of a spec into
// attribute values (containerIDMapValue, containerInterfacesValue, ...) are
// meant for the container data sources too.

// defaultContainerStopTimeout is stop_timeout's default, in seconds.
const defaultContainerStopTimeout = 30

type containerModel struct {
	ID              types.String   `tfsdk:"id"`
	Name            types.String   `tfsdk:"name"`
	Hostname        types.String   `tfsdk:"hostname"`
	Template        types.String   `tfsdk:"template"`
	Archive         types.String   `tfsdk:"archive"`
	LXCTemplate     types.Object   `tfsdk:"lxc_template"`
	Unprivileged    types.Bool     `tfsdk:"unprivileged"`
	IDMap           types.List     `tfsdk:"idmap"`
	Memory          types.Int64    `tfsdk:"memory"`
	Swap            types.Int64    `tfsdk:"swap"`
	CPUs            types.String   `tfsdk:"cpus"`
	CPUWeight       types.Int64    `tfsdk:"cpu_weight"`
	Interfaces      types.List     `tfsdk:"network_interface"`
	Mounts          types.List     `tfsdk:"mount"`
	Features        types.Object   `tfsdk:"features"`
	Running         types.Bool     `tfsdk:"running"`
	StartOnBoot     types.Bool     `tfsdk:"start_on_boot"`
	Config          types.Map      `tfsdk:"config"`
	RestartOnUpdate types.Bool     `tfsdk:"restart_on_update"`
	StopTimeout     types.Int64    `tfsdk:"stop_timeout"`
	State           types.String   `tfsdk:"state"`
	PID             types.Int64    `tfsdk:"pid"`
	IPv4Addresses   types.List     `tfsdk:"ipv4_addresses"`
	PendingRestart  types.List     `tfsdk:"pending_restart"`
	Timeouts        timeouts.Value `tfsdk:"timeouts"`
}

type containerLXCTemplateModel struct {
	Name types.String `tfsdk:"name"`
	Args types.List   `tfsdk:"args"`
}

var containerLXCTemplateAttrTypes = map[string]attr.Type{
	"name": types.StringType,
	"args": types.ListType{ElemType: types.StringType},
}

type containerIDMapModel struct {
	Kind        types.String `tfsdk:"kind"`
	ContainerID types.Int64  `tfsdk:"container_id"`
	HostID      types.Int64  `tfsdk:"host_id"`
	Count       types.Int64  `tfsdk:"count"`
}

var containerIDMapAttrTypes = map[string]attr.Type{
	"kind":         types.StringType,
	"container_id": types.Int64Type,
	"host_id":      types.Int64Type,
	"count":        types.Int64Type,
}

type containerInterfaceModel struct {
	Bridge      types.String `tfsdk:"bridge"`
	Name        types.String `tfsdk:"name"`
	HWAddr      types.String `tfsdk:"hwaddr"`
	IPv4Address types.String `tfsdk:"ipv4_address"`
	IPv4Gateway types.String `tfsdk:"ipv4_gateway"`
	MTU         types.Int64  `tfsdk:"mtu"`
}

var containerInterfaceAttrTypes = map[string]attr.Type{
	"bridge":       types.StringType,
	"name":         types.StringType,
	"hwaddr":       types.StringType,
	"ipv4_address": types.StringType,
	"ipv4_gateway": types.StringType,
	"mtu":          types.Int64Type,
}

type containerMountModel struct {
	Source    types.String `tfsdk:"source"`
	Target    types.String `tfsdk:"target"`
	ReadOnly  types.Bool   `tfsdk:"read_only"`
	CreateDir types.Bool   `tfsdk:"create_dir"`
}

var containerMountAttrTypes = map[string]attr.Type{
	"source":     types.StringType,
	"target":     types.StringType,
	"read_only":  types.BoolType,
	"create_dir": types.BoolType,
}

type containerFeaturesModel struct {
	Nesting types.Bool `tfsdk:"nesting"`
}

var containerFeaturesAttrTypes = map[string]attr.Type{
	"nesting": types.BoolType,
}

// containerSpecBuilder turns a model into a spec. A value not known yet
// becomes the layer's zero value and, when the builder records unknowns, is
// noted by its spec field name, so that validation can leave alone what
// depends on it.
type containerSpecBuilder struct {
	unknown map[string]bool
}

func (b containerSpecBuilder) note(field string, unknown bool) bool {
	if unknown && b.unknown != nil {
		b.unknown[field] = true
	}
	return unknown
}

func (b containerSpecBuilder) str(v types.String, field string) string {
	if b.note(field, v.IsUnknown()) {
		return ""
	}
	return v.ValueString()
}

func (b containerSpecBuilder) num(v types.Int64, field string) uint64 {
	if b.note(field, v.IsUnknown()) {
		return 0
	}
	return uint64(max(v.ValueInt64(), 0))
}

func (b containerSpecBuilder) flag(v types.Bool, field string) bool {
	if b.note(field, v.IsUnknown()) {
		return false
	}
	return v.ValueBool()
}

// containerFieldGroup is what a spec field is judged together with: an
// error about swap may be about memory, "none of the sources" about any
// of them, the default hostname about the name, and an interface's gateway
// about its address.
func containerFieldGroup(field string) string {
	if strings.HasPrefix(field, "config[") {
		return field
	}
	head, rest, _ := strings.Cut(field, ".")
	switch {
	case head == "swap":
		return "memory"
	case head == "template", head == "archive", head == "lxc_template":
		return "template"
	case head == "hostname":
		return "name"
	case strings.HasPrefix(head, "idmap"):
		return "idmap"
	case strings.HasPrefix(head, "interfaces[") && rest == "ipv4_gateway":
		return head + ".ipv4_address"
	}
	return field
}

// involvesUnknown reports whether a SpecError's field may depend on a value
// not known yet: the error may not hold once it is.
func (b containerSpecBuilder) involvesUnknown(field string) bool {
	g := containerFieldGroup(field)
	for f := range b.unknown {
		if containerFieldGroup(f) == g || strings.HasPrefix(field, f) || strings.HasPrefix(f, field) {
			return true
		}
	}
	return false
}

// toSpec maps the model to the spec the layer creates or updates to.
func (b containerSpecBuilder) toSpec(ctx context.Context, m containerModel) (virt.ContainerSpec, diag.Diagnostics) {
	var diags diag.Diagnostics
	spec := virt.ContainerSpec{
		Name:         b.str(m.Name, "name"),
		Hostname:     b.str(m.Hostname, "hostname"),
		Template:     b.str(m.Template, "template"),
		Archive:      b.str(m.Archive, "archive"),
		Unprivileged: b.flag(m.Unprivileged, "unprivileged"),
		MemoryMiB:    b.num(m.Memory, "memory"),
		SwapMiB:      b.num(m.Swap, "swap"),
		CPUs:         b.str(m.CPUs, "cpus"),
		CPUWeight:    b.num(m.CPUWeight, "cpu_weight"),
		StartOnBoot:  b.flag(m.StartOnBoot, "start_on_boot"),
	}
	if m.LXCTemplate.IsUnknown() {
		b.note("lxc_template", true)
	}
	tmpl, d := objectAs[containerLXCTemplateModel](ctx, m.LXCTemplate)
	diags.Append(d...)
	if tmpl != nil {
		spec.LXCTemplate = &virt.LXCTemplate{Name: b.str(tmpl.Name, "lxc_template.name")}
		if b.note("lxc_template.args", tmpl.Args.IsUnknown()) {
			tmpl.Args = types.ListNull(types.StringType)
		}
		args, d := listAs[types.String](ctx, tmpl.Args)
		diags.Append(d...)
		for i, a := range args {
			spec.LXCTemplate.Args = append(spec.LXCTemplate.Args, b.str(a, fmt.Sprintf("lxc_template.args[%d]", i)))
		}
	}
	// Which source is set is a question about all three.
	if b.unknown["template"] || b.unknown["archive"] || b.unknown["lxc_template"] || b.unknown["lxc_template.name"] {
		b.note("template", true)
	}

	if b.note("idmap", m.IDMap.IsUnknown()) {
		m.IDMap = types.ListNull(types.ObjectType{AttrTypes: containerIDMapAttrTypes})
	}
	idmap, d := listAs[containerIDMapModel](ctx, m.IDMap)
	diags.Append(d...)
	for _, e := range idmap {
		spec.IDMap = append(spec.IDMap, virt.IDMapEntry{
			Kind:        e.Kind.ValueString(),
			ContainerID: uint32(e.ContainerID.ValueInt64()),
			HostID:      uint32(e.HostID.ValueInt64()),
			Count:       uint32(e.Count.ValueInt64()),
		})
	}

	b.note("interfaces", m.Interfaces.IsUnknown())
	nics, d := listAs[containerInterfaceModel](ctx, m.Interfaces)
	diags.Append(d...)
	for i, n := range nics {
		f := fmt.Sprintf("interfaces[%d].", i)
		nic := virt.ContainerInterfaceSpec{
			Bridge:      b.str(n.Bridge, f+"bridge"),
			Name:        b.str(n.Name, f+"name"),
			IPv4Address: b.str(n.IPv4Address, f+"ipv4_address"),
			IPv4Gateway: b.str(n.IPv4Gateway, f+"ipv4_gateway"),
			MTU:         uint(b.num(n.MTU, f+"mtu")),
		}
		// An unknown MAC is the layer's to choose, never a value to judge.
		if !n.HWAddr.IsUnknown() {
			nic.HWAddr = n.HWAddr.ValueString()
		}
		spec.Interfaces = append(spec.Interfaces, nic)
	}

	b.note("mounts", m.Mounts.IsUnknown())
	mounts, d := listAs[containerMountModel](ctx, m.Mounts)
	diags.Append(d...)
	for i, mt := range mounts {
		f := fmt.Sprintf("mounts[%d].", i)
		spec.Mounts = append(spec.Mounts, virt.MountSpec{
			Source:    b.str(mt.Source, f+"source"),
			Target:    b.str(mt.Target, f+"target"),
			ReadOnly:  b.flag(mt.ReadOnly, f+"read_only"),
			CreateDir: b.flag(mt.CreateDir, f+"create_dir"),
		})
	}

	b.note("nesting", m.Features.IsUnknown())
	features, d := objectAs[containerFeaturesModel](ctx, m.Features)
	diags.Append(d...)
	if features != nil {
		spec.Nesting = b.flag(features.Nesting, "nesting")
	}

	if !b.note("config", m.Config.IsUnknown()) && !m.Config.IsNull() {
		spec.Config = map[string]string{}
		for k, v := range m.Config.Elements() {
			s, ok := v.(types.String)
			if !ok {
				continue
			}
			spec.Config[k] = b.str(s, fmt.Sprintf("config[%q]", k))
		}
	}
	return spec, diags
}

// optInt64 maps a number read back to an attribute: 0 is null (unset),
// unless the user wrote 0 (prior), which must read back as written.
func optInt64(v uint64, prior types.Int64) types.Int64 {
	if v == 0 {
		if !prior.IsNull() && !prior.IsUnknown() && prior.ValueInt64() == 0 {
			return types.Int64Value(0)
		}
		return types.Int64Null()
	}
	return types.Int64Value(int64(v))
}

// samePath keeps the user's spelling of a path ("/srv/" for "/srv") when
// the layer read back its cleaned form.
func samePath(v string, prior types.String) types.String {
	if !prior.IsNull() && !prior.IsUnknown() && filepath.IsAbs(prior.ValueString()) && filepath.Clean(prior.ValueString()) == v {
		return prior
	}
	return types.StringValue(v)
}

// containerRuns says whether the container has processes: what
// running = true asks for. A frozen container runs (it holds its memory);
// one that is stopping is taken at its word.
func containerRuns(s virt.ContainerState) bool {
	switch s {
	case virt.ContainerRunning, virt.ContainerStarting, virt.ContainerFrozen:
		return true
	}
	return false
}

// containerIDMapValue is the idmap attribute.
func containerIDMapValue(ctx context.Context, entries []virt.IDMapEntry) (types.List, diag.Diagnostics) {
	out := []containerIDMapModel{}
	for _, e := range entries {
		out = append(out, containerIDMapModel{
			Kind:        types.StringValue(e.Kind),
			ContainerID: types.Int64Value(int64(e.ContainerID)),
			HostID:      types.Int64Value(int64(e.HostID)),
			Count:       types.Int64Value(int64(e.Count)),
		})
	}
	return types.ListValueFrom(ctx, types.ObjectType{AttrTypes: containerIDMapAttrTypes}, out)
}

// containerInterfacesValue is the network_interface list; prior (may be
// nil) is what state or the plan held, for the values the user may have
// written out as "" or 0.
func containerInterfacesValue(ctx context.Context, nics []virt.ContainerInterfaceSpec, prior []containerInterfaceModel) (types.List, diag.Diagnostics) {
	out := []containerInterfaceModel{}
	for i, n := range nics {
		var p containerInterfaceModel
		if i < len(prior) {
			p = prior[i]
		}
		out = append(out, containerInterfaceModel{
			Bridge:      types.StringValue(n.Bridge),
			Name:        types.StringValue(n.Name),
			HWAddr:      optString(n.HWAddr, types.StringNull()),
			IPv4Address: optString(n.IPv4Address, p.IPv4Address),
			IPv4Gateway: optString(n.IPv4Gateway, p.IPv4Gateway),
			MTU:         optInt64(uint64(n.MTU), p.MTU),
		})
	}
	return types.ListValueFrom(ctx, types.ObjectType{AttrTypes: containerInterfaceAttrTypes}, out)
}

// containerMountsValue is the mount list; prior as for
// containerInterfacesValue.
func containerMountsValue(ctx context.Context, mounts []virt.MountSpec, prior []containerMountModel) (types.List, diag.Diagnostics) {
	out := []containerMountModel{}
	for i, m := range mounts {
		var p containerMountModel
		if i < len(prior) {
			p = prior[i]
		}
		out = append(out, containerMountModel{
			Source:    samePath(m.Source, p.Source),
			Target:    samePath(m.Target, p.Target),
			ReadOnly:  types.BoolValue(m.ReadOnly),
			CreateDir: types.BoolValue(m.CreateDir),
		})
	}
	return types.ListValueFrom(ctx, types.ObjectType{AttrTypes: containerMountAttrTypes}, out)
}

// containerFeaturesValue is the features block: absent while every
// feature is off, unless prior has the block.
func containerFeaturesValue(ctx context.Context, spec *virt.ContainerSpec, prior types.Object) (types.Object, diag.Diagnostics) {
	if !spec.Nesting && (prior.IsNull() || prior.IsUnknown()) {
		return types.ObjectNull(containerFeaturesAttrTypes), nil
	}
	return types.ObjectValueFrom(ctx, containerFeaturesAttrTypes, containerFeaturesModel{Nesting: types.BoolValue(spec.Nesting)})
}

// containerConfigValue is the config map: null when there are no extra
// keys, unless prior is an empty map.
func containerConfigValue(ctx context.Context, cfg map[string]string, prior types.Map) (types.Map, diag.Diagnostics) {
	if len(cfg) == 0 && (prior.IsNull() || prior.IsUnknown() || len(prior.Elements()) > 0) {
		return types.MapNull(types.StringType), nil
	}
	if cfg == nil {
		cfg = map[string]string{}
	}
	return types.MapValueFrom(ctx, types.StringType, cfg)
}

// containerLXCTemplateValue is the lxc_template block.
func containerLXCTemplateValue(ctx context.Context, t *virt.LXCTemplate, prior types.Object) (types.Object, diag.Diagnostics) {
	if t == nil {
		return types.ObjectNull(containerLXCTemplateAttrTypes), nil
	}
	p, diags := objectAs[containerLXCTemplateModel](ctx, prior)
	args := types.ListNull(types.StringType)
	if len(t.Args) > 0 || (p != nil && !p.Args.IsNull() && !p.Args.IsUnknown()) {
		a, d := types.ListValueFrom(ctx, types.StringType, append([]string{}, t.Args...))
		diags.Append(d...)
		args = a
	}
	obj, d := types.ObjectValueFrom(ctx, containerLXCTemplateAttrTypes, containerLXCTemplateModel{Name: types.StringValue(t.Name), Args: args})
	diags.Append(d...)
	return obj, diags
}

// containerStringsValue is a list of strings that is empty, not null, when
// there are none (ipv4_addresses).
func containerStringsValue(ctx context.Context, v []string) (types.List, diag.Diagnostics) {
	if v == nil {
		v = []string{}
	}
	return types.ListValueFrom(ctx, types.StringType, v)
}

// containerPendingRestartValue names the fields waiting for a restart as
// attribute paths.
func containerPendingRestartValue(ctx context.Context, spec *virt.ContainerSpec) (types.List, diag.Diagnostics) {
	out := []string{}
	for _, f := range spec.PendingRestart {
		if p, ok := containerFieldPath(f); ok {
			f = p.String()
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return types.ListValueFrom(ctx, types.StringType, out)
}

// containerPIDValue is the init's pid, null when the container has none.
func containerPIDValue(pid int) types.Int64 {
	if pid <= 0 {
		return types.Int64Null()
	}
	return types.Int64Value(int64(pid))
}

// containerModelFromSpec maps a container read back onto the model. prior
// is what state (or, in Create, the plan) held: what LXC does not keep
// (archive, lxc_template, restart_on_update, stop_timeout, timeouts) comes
// from it, and so does the choice between null and a value the user wrote
// out.
func containerModelFromSpec(ctx context.Context, spec *virt.ContainerSpec, prior containerModel) (containerModel, diag.Diagnostics) {
	var diags diag.Diagnostics
	known := func(v attr.Value) bool { return !v.IsNull() && !v.IsUnknown() }
	m := containerModel{
		ID:              types.StringValue(spec.Name),
		Name:            types.StringValue(spec.Name),
		Hostname:        optString(spec.Hostname, prior.Hostname),
		Template:        types.StringNull(),
		Archive:         types.StringNull(),
		Unprivileged:    types.BoolValue(spec.Unprivileged),
		Memory:          optInt64(spec.MemoryMiB, prior.Memory),
		Swap:            optInt64(spec.SwapMiB, prior.Swap),
		CPUs:            optString(spec.CPUs, prior.CPUs),
		CPUWeight:       optInt64(spec.CPUWeight, prior.CPUWeight),
		Running:         types.BoolValue(containerRuns(spec.State)),
		StartOnBoot:     types.BoolValue(spec.StartOnBoot),
		RestartOnUpdate: types.BoolValue(false),
		StopTimeout:     types.Int64Value(defaultContainerStopTimeout),
		State:           types.StringValue(string(spec.State)),
		PID:             containerPIDValue(spec.PID),
		Timeouts:        prior.Timeouts,
	}
	// A clone's template is in its config; the other sources leave no
	// trace LXC keeps, so they are what state says.
	switch {
	case spec.Template != "":
		m.Template = types.StringValue(spec.Template)
	case known(prior.Template):
		m.Template = prior.Template
	}
	if spec.Archive != "" {
		m.Archive = samePath(spec.Archive, prior.Archive)
	} else if known(prior.Archive) {
		m.Archive = prior.Archive
	}
	if spec.LXCTemplate != nil {
		obj, d := containerLXCTemplateValue(ctx, spec.LXCTemplate, prior.LXCTemplate)
		diags.Append(d...)
		m.LXCTemplate = obj
	} else if known(prior.LXCTemplate) {
		m.LXCTemplate = prior.LXCTemplate
	} else {
		m.LXCTemplate = types.ObjectNull(containerLXCTemplateAttrTypes)
	}
	if known(prior.RestartOnUpdate) {
		m.RestartOnUpdate = prior.RestartOnUpdate
	}
	if known(prior.StopTimeout) {
		m.StopTimeout = prior.StopTimeout
	}

	var d diag.Diagnostics
	m.IDMap, d = containerIDMapValue(ctx, spec.IDMap)
	diags.Append(d...)
	priorNICs, d := listAs[containerInterfaceModel](ctx, prior.Interfaces)
	diags.Append(d...)
	m.Interfaces, d = containerInterfacesValue(ctx, spec.Interfaces, priorNICs)
	diags.Append(d...)
	priorMounts, d := listAs[containerMountModel](ctx, prior.Mounts)
	diags.Append(d...)
	m.Mounts, d = containerMountsValue(ctx, spec.Mounts, priorMounts)
	diags.Append(d...)
	m.Features, d = containerFeaturesValue(ctx, spec, prior.Features)
	diags.Append(d...)
	m.Config, d = containerConfigValue(ctx, spec.Config, prior.Config)
	diags.Append(d...)
	m.IPv4Addresses, d = containerStringsValue(ctx, spec.IPv4Addresses)
	diags.Append(d...)
	m.PendingRestart, d = containerPendingRestartValue(ctx, spec)
	diags.Append(d...)
	return m, diags
}

// containerFieldPath maps a field of a virt.SpecError or of PendingRestart
// ("interfaces[1].ipv4_address", `config["lxc.x"]`) to the attribute it
// came from; ok is false when no attribute matches.
func containerFieldPath(field string) (path.Path, bool) {
	if rest, ok := strings.CutPrefix(field, "config["); ok && strings.HasSuffix(rest, "]") {
		key, err := strconv.Unquote(strings.TrimSuffix(rest, "]"))
		if err != nil {
			return path.Root("config"), true
		}
		return path.Root("config").AtMapKey(key), true
	}
	p := path.Empty()
	for i, part := range strings.Split(field, ".") {
		name, index := part, -1
		if m := specIndexRE.FindStringSubmatch(part); m != nil {
			name = m[1]
			index, _ = strconv.Atoi(m[2])
		}
		if i == 0 {
			switch name {
			case "interfaces":
				name = "network_interface"
			case "mounts":
				name = "mount"
			case "nesting":
				p = path.Root("features").AtName("nesting")
				continue
			case "name", "hostname", "template", "archive", "lxc_template", "unprivileged", "idmap",
				"memory", "swap", "cpus", "cpu_weight", "start_on_boot", "config", "features":
			default:
				return path.Empty(), false
			}
			p = path.Root(name)
		} else {
			p = p.AtName(name)
		}
		if index >= 0 {
			p = p.AtListIndex(index)
		}
	}
	return p, true
}

// addContainerSpecErrors reports a layer error: each SpecError at its
// attribute (unless skip says it is reported otherwise or cannot be judged
// yet), anything else as summary with the error as detail.
func addContainerSpecErrors(diags *diag.Diagnostics, summary string, err error, skip func(field string) bool) {
	var specErrs virt.SpecErrors
	if !asSpecErrors(err, &specErrs) {
		diags.AddError(summary, err.Error())
		return
	}
	for _, e := range specErrs {
		if skip != nil && skip(e.Field) {
			continue
		}
		if p, ok := containerFieldPath(e.Field); ok {
			diags.AddAttributeError(p, summary, e.Reason)
		} else {
			diags.AddError(summary, e.Error())
		}
	}
}

// containerChange is one difference between two specs that a running
// container only sees after a restart.
type containerChange struct {
	Path   string
	Action string // "", "added" or "removed"
}

func (c containerChange) String() string {
	if c.Action == "" {
		return c.Path
	}
	return c.Path + " (" + c.Action + ")"
}

// containerRestartChanges lists, in attribute terms, what differs between
// old and want among the settings LXC reads only when a container starts:
// hostname, interfaces, mounts, nesting and raw config. Limits change live
// and start_on_boot matters only when the host boots, so neither is here;
// source changes replace the container and are not here either. An
// interface's MAC left to the layer ("") is not a change.
func containerRestartChanges(old, want virt.ContainerSpec) []containerChange {
	old, want = old.WithDefaults(), want.WithDefaults()
	var out []containerChange
	if old.Hostname != want.Hostname {
		out = append(out, containerChange{Path: "hostname"})
	}
	for i := range max(len(old.Interfaces), len(want.Interfaces)) {
		p := fmt.Sprintf("network_interface[%d]", i)
		switch {
		case i >= len(old.Interfaces):
			out = append(out, containerChange{Path: p, Action: "added"})
		case i >= len(want.Interfaces):
			out = append(out, containerChange{Path: p, Action: "removed"})
		default:
			o, w := old.Interfaces[i], want.Interfaces[i]
			if w.HWAddr == "" {
				w.HWAddr = o.HWAddr
			}
			for _, f := range []struct {
				name string
				a, b any
			}{
				{"bridge", o.Bridge, w.Bridge}, {"name", o.Name, w.Name}, {"hwaddr", o.HWAddr, w.HWAddr},
				{"ipv4_address", o.IPv4Address, w.IPv4Address}, {"ipv4_gateway", o.IPv4Gateway, w.IPv4Gateway},
				{"mtu", o.MTU, w.MTU},
			} {
				if f.a != f.b {
					out = append(out, containerChange{Path: p + "." + f.name})
				}
			}
		}
	}
	for i := range max(len(old.Mounts), len(want.Mounts)) {
		p := fmt.Sprintf("mount[%d]", i)
		switch {
		case i >= len(old.Mounts):
			out = append(out, containerChange{Path: p, Action: "added"})
		case i >= len(want.Mounts):
			out = append(out, containerChange{Path: p, Action: "removed"})
		case old.Mounts[i] != want.Mounts[i]:
			out = append(out, containerChange{Path: p})
		}
	}
	if old.Nesting != want.Nesting {
		out = append(out, containerChange{Path: "features.nesting"})
	}
	keys := slices.Sorted(maps.Keys(old.Config))
	for _, k := range slices.Sorted(maps.Keys(want.Config)) {
		if _, ok := old.Config[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := fmt.Sprintf("config[%q]", k)
		ov, inOld := old.Config[k]
		wv, inWant := want.Config[k]
		switch {
		case !inOld:
			out = append(out, containerChange{Path: p, Action: "added"})
		case !inWant:
			out = append(out, containerChange{Path: p, Action: "removed"})
		case ov != wv:
			out = append(out, containerChange{Path: p})
		}
	}
	return out
}

// containerSpecChanged reports whether want asks UpdateContainer for
// anything: the source fields are not its business (they replace), nor
// are what is only read back, nor a MAC left to the layer.
func containerSpecChanged(old, want virt.ContainerSpec) bool {
	norm := func(s virt.ContainerSpec) virt.ContainerSpec {
		s = s.WithDefaults()
		s.Template, s.Archive, s.LXCTemplate = "", "", nil
		s.State, s.PID, s.IPv4Addresses, s.PendingRestart = "", 0, nil, nil
		if len(s.Config) == 0 {
			s.Config = nil
		}
		if len(s.IDMap) == 0 {
			s.IDMap = nil
		}
		if len(s.Interfaces) == 0 {
			s.Interfaces = nil
		}
		if len(s.Mounts) == 0 {
			s.Mounts = nil
		}
		return s
	}
	o, w := norm(old), norm(want)
	for i := range w.Interfaces {
		if w.Interfaces[i].HWAddr == "" && i < len(o.Interfaces) {
			w.Interfaces[i].HWAddr = o.Interfaces[i].HWAddr
		}
	}
	return !reflect.DeepEqual(o, w)
}
