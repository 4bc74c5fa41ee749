package provider

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/cloudinit"
)

// This file is the one mapping between the virt_machine model and
// virt.MachineSpec, each way. Create, Read, Update, Import, the plan checks
// and the data source all go through it.

type machineModel struct {
	ID             types.String   `tfsdk:"id"`
	Host           types.String   `tfsdk:"host"`
	Name           types.String   `tfsdk:"name"`
	Type           types.String   `tfsdk:"type"`
	Description    types.String   `tfsdk:"description"`
	VCPU           types.Int64    `tfsdk:"vcpu"`
	MaxVCPU        types.Int64    `tfsdk:"max_vcpu"`
	Memory         types.Int64    `tfsdk:"memory"`
	MaxMemory      types.Int64    `tfsdk:"max_memory"`
	Firmware       types.String   `tfsdk:"firmware"`
	Running        types.Bool     `tfsdk:"running"`
	Autostart      types.Bool     `tfsdk:"autostart"`
	RebootOnUpdate types.Bool     `tfsdk:"reboot_on_update"`
	QemuAgent      types.Bool     `tfsdk:"qemu_agent"`
	RNG            types.Bool     `tfsdk:"rng"`
	Balloon        types.Bool     `tfsdk:"balloon"`
	State          types.String   `tfsdk:"state"`
	PendingRestart types.List     `tfsdk:"pending_restart"`
	Boot           types.Object   `tfsdk:"boot"`
	Disks          types.List     `tfsdk:"disk"`
	Interfaces     types.List     `tfsdk:"network_interface"`
	CloudInit      types.Object   `tfsdk:"cloud_init"`
	Console        types.Object   `tfsdk:"console"`
	Graphics       types.Object   `tfsdk:"graphics"`
	Timeouts       timeouts.Value `tfsdk:"timeouts"`
}

type bootModel struct {
	Kernel  types.String `tfsdk:"kernel"`
	Initrd  types.String `tfsdk:"initrd"`
	Cmdline types.String `tfsdk:"cmdline"`
}

var bootAttrTypes = map[string]attr.Type{
	"kernel":  types.StringType,
	"initrd":  types.StringType,
	"cmdline": types.StringType,
}

type diskModel struct {
	VolumeID types.String `tfsdk:"volume_id"`
	Path     types.String `tfsdk:"path"`
	Format   types.String `tfsdk:"format"`
	Bus      types.String `tfsdk:"bus"`
	Device   types.String `tfsdk:"device"`
	ReadOnly types.Bool   `tfsdk:"readonly"`
	Target   types.String `tfsdk:"target"`
}

var diskAttrTypes = map[string]attr.Type{
	"volume_id": types.StringType,
	"path":      types.StringType,
	"format":    types.StringType,
	"bus":       types.StringType,
	"device":    types.StringType,
	"readonly":  types.BoolType,
	"target":    types.StringType,
}

type interfaceModel struct {
	Network        types.String `tfsdk:"network"`
	Bridge         types.String `tfsdk:"bridge"`
	Model          types.String `tfsdk:"model"`
	MAC            types.String `tfsdk:"mac"`
	WaitForAddress types.Bool   `tfsdk:"wait_for_address"`
	Addresses      types.List   `tfsdk:"addresses"`
}

var interfaceAttrTypes = map[string]attr.Type{
	"network":          types.StringType,
	"bridge":           types.StringType,
	"model":            types.StringType,
	"mac":              types.StringType,
	"wait_for_address": types.BoolType,
	"addresses":        types.ListType{ElemType: types.StringType},
}

type cloudInitModel struct {
	UserData      types.String `tfsdk:"user_data"`
	MetaData      types.String `tfsdk:"meta_data"`
	NetworkConfig types.String `tfsdk:"network_config"`
	Pool          types.String `tfsdk:"pool"`
}

var cloudInitAttrTypes = map[string]attr.Type{
	"user_data":      types.StringType,
	"meta_data":      types.StringType,
	"network_config": types.StringType,
	"pool":           types.StringType,
}

type consoleModel struct {
	Type types.String `tfsdk:"type"`
	Path types.String `tfsdk:"path"`
}

var consoleAttrTypes = map[string]attr.Type{
	"type": types.StringType,
	"path": types.StringType,
}

type graphicsModel struct {
	Type   types.String `tfsdk:"type"`
	Listen types.String `tfsdk:"listen"`
}

var graphicsAttrTypes = map[string]attr.Type{
	"type":   types.StringType,
	"listen": types.StringType,
}

// objectAs decodes a single nested block; nil when it is absent or not yet
// known.
func objectAs[T any](ctx context.Context, o types.Object) (*T, diag.Diagnostics) {
	if o.IsNull() || o.IsUnknown() {
		return nil, nil
	}
	var out T
	diags := o.As(ctx, &out, basetypes.ObjectAsOptions{})
	return &out, diags
}

// listAs decodes a list block; nil when it is absent or not yet known (a
// dynamic block over a value known only after apply).
func listAs[T any](ctx context.Context, l types.List) ([]T, diag.Diagnostics) {
	if l.IsNull() || l.IsUnknown() {
		return nil, nil
	}
	var out []T
	diags := l.ElementsAs(ctx, &out, false)
	return out, diags
}

// unknownPlaceholder stands for a value known only after apply, where an
// update is graded and there is no old value to assume: it differs from
// every real value, and passes for an absolute path.
const unknownPlaceholder = "/(known after apply)"

// specBuilder turns a model into a spec. A value not known yet (a volume
// key from a volume being replaced, say) becomes, by default, "" or 0: the
// layer's default, which is right for computed attributes on create. When
// the builder records unknowns, each is noted by its spec field name; with
// an old spec, it takes the old value (so that the layer grades the rest),
// or the placeholder where there is none.
type specBuilder struct {
	unknown map[string]bool
}

func (b specBuilder) note(field string, unknown bool) bool {
	if unknown && b.unknown != nil {
		b.unknown[field] = true
	}
	return unknown
}

// unknownFields lists the fields noted, sorted.
func (b specBuilder) unknownFields() []string {
	out := make([]string, 0, len(b.unknown))
	for f := range b.unknown {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// involvesUnknown reports whether a SpecError's field is, contains or lies
// in a value not known yet: the error may not hold once it is.
func (b specBuilder) involvesUnknown(field string) bool {
	for f := range b.unknown {
		if f == field || strings.HasPrefix(f, field+".") || strings.HasPrefix(field, f+".") {
			return true
		}
	}
	return false
}

// toSpec maps the model to the spec the layer defines. old, when given, is
// what unknown values fall back to (see specBuilder). The cloud-init seed,
// when there is one, is the last disk: a CD-ROM on the virtio-scsi bus (the
// Debian cloud kernel, like many, has no AHCI driver built in, so a SATA
// CD-ROM would be invisible to it).
func (b specBuilder) toSpec(ctx context.Context, m machineModel, old *virt.MachineSpec) (virt.MachineSpec, diag.Diagnostics) {
	var diags diag.Diagnostics
	str := func(v types.String, field string, oldValue func(*virt.MachineSpec) (string, bool)) string {
		if !b.note(field, v.IsUnknown()) {
			return v.ValueString()
		}
		if old == nil {
			return ""
		}
		if oldValue == nil {
			return unknownPlaceholder
		}
		if ov, ok := oldValue(old); ok {
			return ov
		}
		return unknownPlaceholder
	}
	num := func(v types.Int64, field string, oldValue func(*virt.MachineSpec) int64) int64 {
		if !b.note(field, v.IsUnknown()) {
			return max(v.ValueInt64(), 0)
		}
		if old == nil {
			return 0
		}
		return oldValue(old)
	}
	flag := func(v types.Bool, field string, oldValue func(*virt.MachineSpec) bool) bool {
		if !b.note(field, v.IsUnknown()) {
			return v.ValueBool()
		}
		return old != nil && oldValue(old)
	}
	top := func(get func(*virt.MachineSpec) string) func(*virt.MachineSpec) (string, bool) {
		return func(o *virt.MachineSpec) (string, bool) { return get(o), true }
	}

	spec := virt.MachineSpec{
		Name:         str(m.Name, "name", top(func(o *virt.MachineSpec) string { return o.Name })),
		Type:         virt.DomainType(str(m.Type, "type", top(func(o *virt.MachineSpec) string { return string(o.Type) }))),
		Description:  str(m.Description, "description", top(func(o *virt.MachineSpec) string { return o.Description })),
		VCPU:         uint(num(m.VCPU, "vcpu", func(o *virt.MachineSpec) int64 { return int64(o.VCPU) })),
		MaxVCPU:      uint(num(m.MaxVCPU, "max_vcpu", func(o *virt.MachineSpec) int64 { return int64(o.MaxVCPU) })),
		MemoryMiB:    uint64(num(m.Memory, "memory", func(o *virt.MachineSpec) int64 { return int64(o.MemoryMiB) })),
		MaxMemoryMiB: uint64(num(m.MaxMemory, "max_memory", func(o *virt.MachineSpec) int64 { return int64(o.MaxMemoryMiB) })),
		Firmware:     virt.Firmware(str(m.Firmware, "firmware", top(func(o *virt.MachineSpec) string { return string(o.Firmware) }))),
		QemuAgent:    flag(m.QemuAgent, "qemu_agent", func(o *virt.MachineSpec) bool { return o.QemuAgent }),
		RNG:          flag(m.RNG, "rng", func(o *virt.MachineSpec) bool { return o.RNG }),
		Balloon:      flag(m.Balloon, "balloon", func(o *virt.MachineSpec) bool { return o.Balloon }),
		Autostart:    flag(m.Autostart, "autostart", func(o *virt.MachineSpec) bool { return o.Autostart }),
	}
	if !m.ID.IsUnknown() {
		spec.UUID = m.ID.ValueString()
	}

	boot, d := objectAs[bootModel](ctx, m.Boot)
	diags.Append(d...)
	if boot != nil {
		oldBoot := func(get func(*virt.DirectBoot) string) func(*virt.MachineSpec) (string, bool) {
			return func(o *virt.MachineSpec) (string, bool) {
				if o.Boot == nil {
					return "", false
				}
				return get(o.Boot), true
			}
		}
		spec.Boot = &virt.DirectBoot{
			Kernel:  str(boot.Kernel, "boot.kernel", oldBoot(func(b *virt.DirectBoot) string { return b.Kernel })),
			Initrd:  str(boot.Initrd, "boot.initrd", oldBoot(func(b *virt.DirectBoot) string { return b.Initrd })),
			Cmdline: str(boot.Cmdline, "boot.cmdline", oldBoot(func(b *virt.DirectBoot) string { return b.Cmdline })),
		}
	}

	disks, d := listAs[diskModel](ctx, m.Disks)
	diags.Append(d...)
	for i, dm := range disks {
		oldDisk := func(get func(*virt.DiskSpec) string) func(*virt.MachineSpec) (string, bool) {
			return func(o *virt.MachineSpec) (string, bool) {
				if i >= len(o.Disks) {
					return "", false
				}
				return get(&o.Disks[i]), true
			}
		}
		f := fmt.Sprintf("disks[%d].", i)
		spec.Disks = append(spec.Disks, virt.DiskSpec{
			VolumeKey: str(dm.VolumeID, f+"volume_key", oldDisk(func(d *virt.DiskSpec) string { return d.VolumeKey })),
			Path:      str(dm.Path, f+"path", oldDisk(func(d *virt.DiskSpec) string { return d.Path })),
			Format:    str(dm.Format, f+"format", oldDisk(func(d *virt.DiskSpec) string { return d.Format })),
			Bus:       str(dm.Bus, f+"bus", oldDisk(func(d *virt.DiskSpec) string { return d.Bus })),
			Device:    str(dm.Device, f+"device", oldDisk(func(d *virt.DiskSpec) string { return d.Device })),
			ReadOnly:  flag(dm.ReadOnly, f+"readonly", func(o *virt.MachineSpec) bool { return i < len(o.Disks) && o.Disks[i].ReadOnly }),
			Target:    str(dm.Target, f+"target", oldDisk(func(d *virt.DiskSpec) string { return d.Target })),
		})
	}
	ci, d := objectAs[cloudInitModel](ctx, m.CloudInit)
	diags.Append(d...)
	if ci != nil {
		spec.Disks = append(spec.Disks, seedDisk(str(ci.Pool, "cloud_init.pool", nil), spec.Name))
	}

	nics, d := listAs[interfaceModel](ctx, m.Interfaces)
	diags.Append(d...)
	for i, n := range nics {
		oldNIC := func(get func(*virt.InterfaceSpec) string) func(*virt.MachineSpec) (string, bool) {
			return func(o *virt.MachineSpec) (string, bool) {
				if i >= len(o.Interfaces) {
					return "", false
				}
				return get(&o.Interfaces[i]), true
			}
		}
		f := fmt.Sprintf("interfaces[%d].", i)
		nic := virt.InterfaceSpec{
			Network: str(n.Network, f+"network", oldNIC(func(n *virt.InterfaceSpec) string { return n.Network })),
			Bridge:  str(n.Bridge, f+"bridge", oldNIC(func(n *virt.InterfaceSpec) string { return n.Bridge })),
			Model:   str(n.Model, f+"model", oldNIC(func(n *virt.InterfaceSpec) string { return n.Model })),
		}
		// An unknown MAC is libvirt's (or the old NIC's) to choose, never a
		// value to compare.
		if !n.MAC.IsUnknown() {
			nic.MAC = n.MAC.ValueString()
		}
		spec.Interfaces = append(spec.Interfaces, nic)
	}

	console, d := objectAs[consoleModel](ctx, m.Console)
	diags.Append(d...)
	if console != nil {
		spec.Console = virt.ConsoleSpec{
			Type: str(console.Type, "console.type", top(func(o *virt.MachineSpec) string { return o.Console.Type })),
			Path: str(console.Path, "console.path", top(func(o *virt.MachineSpec) string { return o.Console.Path })),
		}
	}
	graphics, d := objectAs[graphicsModel](ctx, m.Graphics)
	diags.Append(d...)
	if graphics != nil {
		spec.Graphics = virt.GraphicsSpec{
			Type:   str(graphics.Type, "graphics.type", top(func(o *virt.MachineSpec) string { return o.Graphics.Type })),
			Listen: str(graphics.Listen, "graphics.listen", top(func(o *virt.MachineSpec) string { return o.Graphics.Listen })),
		}
	}
	return spec, diags
}

// gradingModel is the plan as the layer is to judge it: attributes that
// are computed without a schema default are taken from the configuration,
// so that what the user left unset is "" (the layer's default, or what the
// machine keeps) rather than a value the framework carried over from state
// by position, or an unknown.
func gradingModel(ctx context.Context, plan, config machineModel) (machineModel, diag.Diagnostics) {
	var diags diag.Diagnostics
	g := plan
	g.MaxVCPU = config.MaxVCPU
	g.MaxMemory = config.MaxMemory

	disks, d := listAs[diskModel](ctx, plan.Disks)
	diags.Append(d...)
	cfgDisks, d := listAs[diskModel](ctx, config.Disks)
	diags.Append(d...)
	if disks != nil && len(disks) == len(cfgDisks) {
		for i := range disks {
			disks[i].Bus = cfgDisks[i].Bus
			disks[i].ReadOnly = cfgDisks[i].ReadOnly
			disks[i].Target = cfgDisks[i].Target
			disks[i].Format = cfgDisks[i].Format
		}
		g.Disks, d = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: diskAttrTypes}, disks)
		diags.Append(d...)
	}

	nics, d := listAs[interfaceModel](ctx, plan.Interfaces)
	diags.Append(d...)
	cfgNICs, d := listAs[interfaceModel](ctx, config.Interfaces)
	diags.Append(d...)
	if nics != nil && len(nics) == len(cfgNICs) {
		for i := range nics {
			nics[i].MAC = cfgNICs[i].MAC
		}
		g.Interfaces, d = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: interfaceAttrTypes}, nics)
		diags.Append(d...)
	}

	if console, _ := objectAs[consoleModel](ctx, plan.Console); console != nil {
		if cfg, _ := objectAs[consoleModel](ctx, config.Console); cfg != nil {
			console.Type = cfg.Type
			g.Console, d = types.ObjectValueFrom(ctx, consoleAttrTypes, console)
			diags.Append(d...)
		}
	}
	if graphics, _ := objectAs[graphicsModel](ctx, plan.Graphics); graphics != nil {
		if cfg, _ := objectAs[graphicsModel](ctx, config.Graphics); cfg != nil {
			graphics.Listen = cfg.Listen
			g.Graphics, d = types.ObjectValueFrom(ctx, graphicsAttrTypes, graphics)
			diags.Append(d...)
		}
	}
	return g, diags
}

// withSchemaDefaults gives a configuration the schema's defaults, for
// validating it as the plan will be.
func withSchemaDefaults(m machineModel) machineModel {
	defStr := func(v *types.String, def string) {
		if v.IsNull() {
			*v = types.StringValue(def)
		}
	}
	defInt := func(v *types.Int64, def int64) {
		if v.IsNull() {
			*v = types.Int64Value(def)
		}
	}
	defBool := func(v *types.Bool, def bool) {
		if v.IsNull() {
			*v = types.BoolValue(def)
		}
	}
	defStr(&m.Type, string(virt.DomainKVM))
	defStr(&m.Firmware, string(virt.FirmwareBIOS))
	defInt(&m.VCPU, 1)
	defInt(&m.Memory, 512)
	defBool(&m.Running, true)
	defBool(&m.Autostart, false)
	defBool(&m.QemuAgent, true)
	defBool(&m.RNG, true)
	defBool(&m.Balloon, true)
	return m
}

// seedVolumeName is the cloud-init seed's volume name: derived from the
// machine's, so that Read, Delete and the sweeper find it without state.
func seedVolumeName(machine string) string { return machine + "-cidata.iso" }

func seedDisk(pool, machine string) virt.DiskSpec {
	if pool == "" {
		pool = virt.DefaultPool
	}
	return virt.DiskSpec{Pool: pool, Volume: seedVolumeName(machine), Device: virt.DeviceCDROM, Bus: virt.BusSCSI, ReadOnly: true}
}

// isSeedDisk recognises the machine's cloud-init seed among the disks read
// back, however it was referenced.
func isSeedDisk(machine string, d virt.DiskSpec) bool {
	if d.Device != virt.DeviceCDROM {
		return false
	}
	name := seedVolumeName(machine)
	for _, ref := range []string{d.Volume, d.VolumeKey, d.Path} {
		if ref != "" && filepath.Base(ref) == name {
			return true
		}
	}
	return false
}

// cloudInitConfig is what the seed carries. Without meta_data the machine's
// UUID is the instance-id (stable for the machine's life, so cloud-init
// runs its once-per-instance modules once) and its name the hostname.
func cloudInitConfig(ci *cloudInitModel, uuid, name string) cloudinit.Config {
	cfg := cloudinit.Config{
		UserData:      ci.UserData.ValueString(),
		MetaData:      ci.MetaData.ValueString(),
		NetworkConfig: ci.NetworkConfig.ValueString(),
	}
	if ci.MetaData.IsNull() {
		cfg.MetaData = cloudinit.DefaultMetaData(uuid, name)
	}
	return cfg
}

// optString maps a value read back to an attribute: "" is null, unless the
// user wrote "" (prior), which must read back as written.
func optString(v string, prior types.String) types.String {
	if v == "" {
		if !prior.IsNull() && !prior.IsUnknown() && prior.ValueString() == "" {
			return types.StringValue("")
		}
		return types.StringNull()
	}
	return types.StringValue(v)
}

// modelFromSpec maps a machine read back onto the model. prior is what
// state (or, in Create, the plan) held: attributes libvirt does not keep
// (reboot_on_update, wait_for_address, cloud-init content, timeouts) come
// from it, and so does the choice between null and a default the user wrote
// out (a console block saying "pty", say).
func modelFromSpec(ctx context.Context, spec *virt.MachineSpec, prior machineModel) (machineModel, diag.Diagnostics) {
	var diags diag.Diagnostics
	m := machineModel{
		ID:             types.StringValue(spec.UUID),
		Host:           prior.Host,
		Name:           types.StringValue(spec.Name),
		Type:           types.StringValue(string(spec.Type)),
		Description:    optString(spec.Description, prior.Description),
		VCPU:           types.Int64Value(int64(spec.VCPU)),
		MaxVCPU:        types.Int64Value(int64(spec.MaxVCPU)),
		Memory:         types.Int64Value(int64(spec.MemoryMiB)),
		MaxMemory:      types.Int64Value(int64(spec.MaxMemoryMiB)),
		Firmware:       types.StringValue(string(spec.Firmware)),
		Running:        types.BoolValue(machineRuns(spec.State)),
		Autostart:      types.BoolValue(spec.Autostart),
		RebootOnUpdate: prior.RebootOnUpdate,
		QemuAgent:      types.BoolValue(spec.QemuAgent),
		RNG:            types.BoolValue(spec.RNG),
		Balloon:        types.BoolValue(spec.Balloon),
		State:          types.StringValue(string(spec.State)),
		Timeouts:       prior.Timeouts,
	}
	pending, d := types.ListValueFrom(ctx, types.StringType, pendingRestart(spec))
	diags.Append(d...)
	m.PendingRestart = pending
	if m.RebootOnUpdate.IsNull() || m.RebootOnUpdate.IsUnknown() {
		m.RebootOnUpdate = types.BoolValue(false)
	}

	priorBoot, d := objectAs[bootModel](ctx, prior.Boot)
	diags.Append(d...)
	if priorBoot == nil {
		priorBoot = &bootModel{}
	}
	m.Boot = types.ObjectNull(bootAttrTypes)
	if spec.Boot != nil {
		obj, d := types.ObjectValueFrom(ctx, bootAttrTypes, bootModel{
			Kernel:  optString(spec.Boot.Kernel, priorBoot.Kernel),
			Initrd:  optString(spec.Boot.Initrd, priorBoot.Initrd),
			Cmdline: optString(spec.Boot.Cmdline, priorBoot.Cmdline),
		})
		diags.Append(d...)
		m.Boot = obj
	}

	seedFound := false
	disks := []diskModel{}
	for _, d := range spec.Disks {
		if isSeedDisk(spec.Name, d) {
			seedFound = true
			continue
		}
		dm := diskModel{
			VolumeID: optString(d.VolumeKey, types.StringNull()),
			Path:     optString(d.Path, types.StringNull()),
			Format:   optString(d.Format, types.StringNull()),
			Bus:      types.StringValue(d.Bus),
			Device:   types.StringValue(d.Device),
			ReadOnly: types.BoolValue(d.ReadOnly),
			Target:   types.StringValue(d.Target),
		}
		disks = append(disks, dm)
	}
	list, d := types.ListValueFrom(ctx, types.ObjectType{AttrTypes: diskAttrTypes}, disks)
	diags.Append(d...)
	m.Disks = list

	priorNICs, d := listAs[interfaceModel](ctx, prior.Interfaces)
	diags.Append(d...)
	nics := []interfaceModel{}
	for i, n := range spec.Interfaces {
		var p interfaceModel
		if i < len(priorNICs) {
			p = priorNICs[i]
		}
		wait := p.WaitForAddress
		if wait.IsNull() || wait.IsUnknown() {
			wait = types.BoolValue(false)
		}
		addrs, d := types.ListValueFrom(ctx, types.StringType, interfaceAddresses(n))
		diags.Append(d...)
		nics = append(nics, interfaceModel{
			Network:        optString(n.Network, p.Network),
			Bridge:         optString(n.Bridge, p.Bridge),
			Model:          types.StringValue(n.Model),
			MAC:            types.StringValue(n.MAC),
			WaitForAddress: wait,
			Addresses:      addrs,
		})
	}
	list, d = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: interfaceAttrTypes}, nics)
	diags.Append(d...)
	m.Interfaces = list

	// The seed's content cannot be read back; it is what state says as long
	// as the seed is still attached. A seed that went missing reads as no
	// cloud_init, so the next plan puts it back.
	m.CloudInit = types.ObjectNull(cloudInitAttrTypes)
	if seedFound && !prior.CloudInit.IsNull() && !prior.CloudInit.IsUnknown() {
		m.CloudInit = prior.CloudInit
	}

	priorConsole, d := objectAs[consoleModel](ctx, prior.Console)
	diags.Append(d...)
	m.Console = types.ObjectNull(consoleAttrTypes)
	if priorConsole != nil || spec.Console.Type != virt.ConsolePTY || spec.Console.Path != "" {
		if priorConsole == nil {
			priorConsole = &consoleModel{}
		}
		obj, d := types.ObjectValueFrom(ctx, consoleAttrTypes, consoleModel{
			Type: types.StringValue(spec.Console.Type),
			Path: optString(spec.Console.Path, priorConsole.Path),
		})
		diags.Append(d...)
		m.Console = obj
	}

	priorGraphics, d := objectAs[graphicsModel](ctx, prior.Graphics)
	diags.Append(d...)
	m.Graphics = types.ObjectNull(graphicsAttrTypes)
	if priorGraphics != nil || spec.Graphics.Type != virt.GraphicsNone {
		if priorGraphics == nil {
			priorGraphics = &graphicsModel{}
		}
		obj, d := types.ObjectValueFrom(ctx, graphicsAttrTypes, graphicsModel{
			Type:   types.StringValue(spec.Graphics.Type),
			Listen: optString(spec.Graphics.Listen, priorGraphics.Listen),
		})
		diags.Append(d...)
		m.Graphics = obj
	}
	return m, diags
}

// pendingRestart names, as attribute paths, the changes the running
// machine waits for a restart to get.
func pendingRestart(spec *virt.MachineSpec) []string {
	userDisks := len(spec.Disks)
	if slices.ContainsFunc(spec.Disks, func(d virt.DiskSpec) bool { return isSeedDisk(spec.Name, d) }) {
		userDisks--
	}
	out := []string{}
	for _, f := range spec.PendingRestart {
		if p, ok := specFieldPath(f, userDisks); ok {
			f = p.String()
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// machineRuns says whether a QEMU process exists for the machine: what
// running = true asks for. A paused machine runs (it holds its memory); one
// that is shutting down is taken at its word.
func machineRuns(s virt.MachineState) bool {
	switch s {
	case virt.StateShutoff, virt.StateCrashed, virt.StateUnknown, "":
		return false
	}
	return true
}

// interfaceAddresses lists a NIC's addresses as the layer reads them back.
func interfaceAddresses(n virt.InterfaceSpec) []string {
	if n.Addresses == nil {
		return []string{}
	}
	return n.Addresses
}

var specIndexRE = regexp.MustCompile(`^([a-z_]+)\[(\d+)\]$`)

// specFieldPath maps a field of a virt.SpecError ("disks[1].bus") to the
// attribute it came from. userDisks is how many disks the user declared:
// the disk after them is the cloud-init seed. ok is false when no attribute
// matches (the error is then the resource's as a whole).
func specFieldPath(field string, userDisks int) (path.Path, bool) {
	parts := strings.Split(field, ".")
	p := path.Empty()
	for i, part := range parts {
		name, index := part, -1
		if m := specIndexRE.FindStringSubmatch(part); m != nil {
			name = m[1]
			index, _ = strconv.Atoi(m[2])
		}
		if i == 0 {
			switch name {
			case "disks":
				if index >= userDisks {
					return path.Root("cloud_init"), true
				}
				name = "disk"
			case "interfaces":
				name = "network_interface"
			case "uuid":
				name = "id"
			case "name", "type", "description", "vcpu", "max_vcpu", "memory", "max_memory", "firmware",
				"boot", "console", "graphics", "qemu_agent", "rng", "balloon", "autostart":
			default:
				return path.Empty(), false
			}
			p = path.Root(name)
		} else {
			switch name {
			case "volume_key":
				name = "volume_id"
			case "pool", "volume":
				return p, true
			}
			p = p.AtName(name)
		}
		if index >= 0 {
			p = p.AtListIndex(index)
		}
	}
	return p, true
}

// addSpecErrors reports a layer error: each SpecError at its attribute,
// anything else as summary with the error as detail.
func addSpecErrors(diags *diag.Diagnostics, summary string, err error, userDisks int, skip func(field string) bool) {
	var specErrs virt.SpecErrors
	if !asSpecErrors(err, &specErrs) {
		diags.AddError(summary, err.Error())
		return
	}
	for _, e := range specErrs {
		if skip != nil && skip(e.Field) {
			continue
		}
		if p, ok := specFieldPath(e.Field, userDisks); ok {
			diags.AddAttributeError(p, summary, e.Reason)
		} else {
			diags.AddError(summary, e.Error())
		}
	}
}

// asSpecErrors finds SpecErrors in err's chain.
func asSpecErrors(err error, target *virt.SpecErrors) bool {
	return errors.As(err, target)
}

// describeValues renders valid values for a MarkdownDescription, from the
// same list the validator takes.
func describeValues[T ~string](values []T) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("`%s`", v)
	}
	return strings.Join(q, ", ")
}

func stringsOf[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}
