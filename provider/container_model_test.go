package provider

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

func TestContainerFieldPath(t *testing.T) {
	for field, want := range map[string]path.Path{
		"name":                         path.Root("name"),
		"hostname":                     path.Root("hostname"),
		"memory":                       path.Root("memory"),
		"lxc_template.name":            path.Root("lxc_template").AtName("name"),
		"lxc_template.args[2]":         path.Root("lxc_template").AtName("args").AtListIndex(2),
		"interfaces[1].ipv4_address":   path.Root("network_interface").AtListIndex(1).AtName("ipv4_address"),
		"interfaces[0]":                path.Root("network_interface").AtListIndex(0),
		"mounts[3].target":             path.Root("mount").AtListIndex(3).AtName("target"),
		"nesting":                      path.Root("features").AtName("nesting"),
		"idmap[0].count":               path.Root("idmap").AtListIndex(0).AtName("count"),
		`config["lxc.net.0.link"]`:     path.Root("config").AtMapKey("lxc.net.0.link"),
		`config["lxc.a \"quoted\" k"]`: path.Root("config").AtMapKey(`lxc.a "quoted" k`),
	} {
		got, ok := containerFieldPath(field)
		if !ok || !got.Equal(want) {
			t.Errorf("containerFieldPath(%q) = %s, %v; want %s", field, got, ok, want)
		}
	}
	if p, ok := containerFieldPath("state"); ok {
		t.Errorf("containerFieldPath(state) = %s; want no attribute", p)
	}
}

// A spec read back maps to a model that maps back to the same spec.
func TestContainerModelRoundTrip(t *testing.T) {
	ctx := context.Background()
	spec := &virt.ContainerSpec{
		Name: "web", Hostname: "www", Template: "debian-12", Unprivileged: true,
		IDMap:     []virt.IDMapEntry{{Kind: "u", HostID: 100000, Count: 65536}, {Kind: "g", HostID: 100000, Count: 65536}},
		MemoryMiB: 512, SwapMiB: 256, CPUs: "0-1", CPUWeight: 200,
		Interfaces: []virt.ContainerInterfaceSpec{
			{Bridge: "lxcbr0", Name: "eth0", HWAddr: "00:16:3e:00:00:01", IPv4Address: "10.0.3.10/24", IPv4Gateway: "10.0.3.1", MTU: 1400},
			{Bridge: "br1", Name: "eth1", HWAddr: "00:16:3e:00:00:02"},
		},
		Mounts:      []virt.MountSpec{{Source: "/srv/www", Target: "/var/www", ReadOnly: true, CreateDir: true}},
		Nesting:     true,
		StartOnBoot: true,
		Config:      map[string]string{"lxc.signal.halt": "SIGUSR1"},
		State:       virt.ContainerRunning, PID: 4242, IPv4Addresses: []string{"10.0.3.10"},
		PendingRestart: []string{"hostname", "interfaces[1].bridge", `config["lxc.signal.halt"]`},
	}
	m, diags := containerModelFromSpec(ctx, spec, containerModel{})
	mustNoDiags(t, diags)
	if m.ID.ValueString() != "web" || !m.Running.ValueBool() || m.PID.ValueInt64() != 4242 || m.State.ValueString() != "RUNNING" {
		t.Errorf("read-back attributes: id %s running %s pid %s state %s", m.ID, m.Running, m.PID, m.State)
	}
	if m.StopTimeout.ValueInt64() != defaultContainerStopTimeout || m.RestartOnUpdate.ValueBool() {
		t.Errorf("defaults of what LXC does not keep: stop_timeout %s restart_on_update %s", m.StopTimeout, m.RestartOnUpdate)
	}
	var pending []string
	mustNoDiags(t, m.PendingRestart.ElementsAs(ctx, &pending, false))
	if want := []string{"hostname", "network_interface[1].bridge", `config["lxc.signal.halt"]`}; !reflect.DeepEqual(pending, want) {
		t.Errorf("pending_restart = %q, want %q", pending, want)
	}

	back, diags := containerSpecBuilder{}.toSpec(ctx, m)
	mustNoDiags(t, diags)
	want := *spec
	want.State, want.PID, want.IPv4Addresses, want.PendingRestart = "", 0, nil, nil
	if !reflect.DeepEqual(back, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, want)
	}
	if containerSpecChanged(*spec, back) {
		t.Error("containerSpecChanged reports a change for the same spec")
	}

	// Stopped, privileged, nothing optional: nulls, not zeros.
	m, diags = containerModelFromSpec(ctx, &virt.ContainerSpec{Name: "c", Hostname: "c", State: virt.ContainerStopped}, containerModel{})
	mustNoDiags(t, diags)
	for attr, v := range map[string]interface{ IsNull() bool }{
		"memory": m.Memory, "swap": m.Swap, "cpus": m.CPUs, "cpu_weight": m.CPUWeight, "pid": m.PID,
		"features": m.Features, "config": m.Config, "template": m.Template, "archive": m.Archive, "lxc_template": m.LXCTemplate,
	} {
		if !v.IsNull() {
			t.Errorf("%s = %v, want null", attr, v)
		}
	}
	if m.Running.ValueBool() || len(m.IDMap.Elements()) != 0 || len(m.IPv4Addresses.Elements()) != 0 || m.IPv4Addresses.IsNull() {
		t.Errorf("stopped privileged container: running %s idmap %s ipv4_addresses %s", m.Running, m.IDMap, m.IPv4Addresses)
	}
}

// What the user wrote comes back as written where the layer normalises
// it, and what LXC does not keep comes from state.
func TestContainerModelKeepsUserSpelling(t *testing.T) {
	ctx := context.Background()
	prior, diags := containerModelFromSpec(ctx, &virt.ContainerSpec{
		Name: "c", Hostname: "c",
		Interfaces: []virt.ContainerInterfaceSpec{{Bridge: "lxcbr0", Name: "eth0", HWAddr: "00:16:3e:00:00:01"}},
		Mounts:     []virt.MountSpec{{Source: "/srv", Target: "/mnt"}},
	}, containerModel{})
	mustNoDiags(t, diags)
	prior.Archive = types.StringValue("/var/lib/images/rootfs.tar.gz")
	prior.Swap = types.Int64Value(0)
	prior.Config = types.MapValueMust(types.StringType, nil)
	prior.StopTimeout = types.Int64Value(0)
	prior.RestartOnUpdate = types.BoolValue(true)
	prior.Features = types.ObjectValueMust(containerFeaturesAttrTypes, map[string]attr.Value{"nesting": types.BoolValue(false)})
	mounts := []containerMountModel{{Source: types.StringValue("/srv/"), Target: types.StringValue("/mnt/./"), ReadOnly: types.BoolValue(false), CreateDir: types.BoolValue(false)}}
	prior.Mounts, diags = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: containerMountAttrTypes}, mounts)
	mustNoDiags(t, diags)
	nics := []containerInterfaceModel{{
		Bridge: types.StringValue("lxcbr0"), Name: types.StringValue("eth0"), HWAddr: types.StringValue("00:16:3e:00:00:01"),
		IPv4Address: types.StringNull(), IPv4Gateway: types.StringNull(), MTU: types.Int64Value(0),
	}}
	prior.Interfaces, diags = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: containerInterfaceAttrTypes}, nics)
	mustNoDiags(t, diags)

	m, diags := containerModelFromSpec(ctx, &virt.ContainerSpec{
		Name: "c", Hostname: "c",
		Interfaces: []virt.ContainerInterfaceSpec{{Bridge: "lxcbr0", Name: "eth0", HWAddr: "00:16:3e:00:00:01"}},
		Mounts:     []virt.MountSpec{{Source: "/srv", Target: "/mnt"}},
	}, prior)
	mustNoDiags(t, diags)
	var got []containerMountModel
	mustNoDiags(t, m.Mounts.ElementsAs(ctx, &got, false))
	if got[0].Source.ValueString() != "/srv/" || got[0].Target.ValueString() != "/mnt/./" {
		t.Errorf("mount read back as %s -> %s, want the user's /srv/ -> /mnt/./", got[0].Source, got[0].Target)
	}
	var gotNICs []containerInterfaceModel
	mustNoDiags(t, m.Interfaces.ElementsAs(ctx, &gotNICs, false))
	for name, pair := range map[string][2]attr.Value{
		"archive":           {m.Archive, prior.Archive},
		"swap":              {m.Swap, prior.Swap},
		"config":            {m.Config, prior.Config},
		"stop_timeout":      {m.StopTimeout, prior.StopTimeout},
		"restart_on_update": {m.RestartOnUpdate, prior.RestartOnUpdate},
		"features":          {m.Features, prior.Features},
		"mtu":               {gotNICs[0].MTU, types.Int64Value(0)},
	} {
		if !pair[0].Equal(pair[1]) {
			t.Errorf("%s = %v, want %v as in state", name, pair[0], pair[1])
		}
	}
}

func mustNoDiags(t *testing.T, diags diag.Diagnostics) {
	t.Helper()
	if diags.HasError() {
		t.Fatal(diags)
	}
}

func TestContainerRestartChanges(t *testing.T) {
	old := virt.ContainerSpec{
		Name: "c", MemoryMiB: 64,
		Interfaces: []virt.ContainerInterfaceSpec{{HWAddr: "00:16:3e:00:00:01", IPv4Address: "10.0.3.10/24"}},
		Mounts:     []virt.MountSpec{{Source: "/a", Target: "/a"}},
		Config:     map[string]string{"lxc.a": "1", "lxc.b": "2"},
	}
	same := old
	same.MemoryMiB = 128 // live
	same.StartOnBoot = true
	same.Hostname = "c" // the default, written out
	same.Interfaces = []virt.ContainerInterfaceSpec{{Bridge: "lxcbr0", Name: "eth0", IPv4Address: "10.0.3.10/24"}}
	if got := containerRestartChanges(old, same); len(got) != 0 {
		t.Errorf("live changes and defaults written out: %v, want none", got)
	}
	if !containerSpecChanged(old, same) {
		t.Error("containerSpecChanged misses a memory change")
	}

	want := old
	want.Hostname = "d"
	want.Interfaces = []virt.ContainerInterfaceSpec{{IPv4Address: "10.0.3.11/24", MTU: 1400}, {Bridge: "br1"}}
	want.Mounts = nil
	want.Nesting = true
	want.Config = map[string]string{"lxc.a": "9", "lxc.c": "3"}
	var got []string
	for _, c := range containerRestartChanges(old, want) {
		got = append(got, c.String())
	}
	wantList := []string{
		"hostname",
		"network_interface[0].ipv4_address", "network_interface[0].mtu",
		"network_interface[1] (added)",
		"mount[0] (removed)",
		"features.nesting",
		`config["lxc.a"]`, `config["lxc.b"] (removed)`, `config["lxc.c"] (added)`,
	}
	if !reflect.DeepEqual(got, wantList) {
		t.Errorf("containerRestartChanges =\n %q\nwant\n %q", got, wantList)
	}
}

func TestContainerSpecChangedIgnoresWhatUpdateDoesNot(t *testing.T) {
	old := virt.ContainerSpec{
		Name: "c", Hostname: "c", Archive: "/a.tar", Unprivileged: true,
		Interfaces: []virt.ContainerInterfaceSpec{{Bridge: "lxcbr0", Name: "eth0", HWAddr: "00:16:3e:00:00:01"}},
		State:      virt.ContainerRunning, PID: 1, PendingRestart: []string{"hostname"},
	}
	want := virt.ContainerSpec{
		Name: "c", Unprivileged: true, Config: map[string]string{}, Mounts: []virt.MountSpec{},
		Interfaces: []virt.ContainerInterfaceSpec{{}},
	}
	if containerSpecChanged(old, want) {
		t.Error("source, read-back fields, defaults, empty collections and a MAC left to the layer count as a change")
	}
}

// Errors that may hinge on a value not known yet are left for later; the
// rest are reported at validate.
func TestContainerBuilderUnknowns(t *testing.T) {
	ctx := context.Background()
	m, diags := containerModelFromSpec(ctx, &virt.ContainerSpec{Name: "c", Hostname: "c"}, containerModel{})
	mustNoDiags(t, diags)
	m.Archive = types.StringUnknown()
	m.Memory = types.Int64Unknown()
	m.Swap = types.Int64Value(64)
	nics := []containerInterfaceModel{{
		Bridge: types.StringValue("lxcbr0"), Name: types.StringNull(), HWAddr: types.StringUnknown(),
		IPv4Address: types.StringUnknown(), IPv4Gateway: types.StringValue("10.0.3.1"), MTU: types.Int64Value(10),
	}}
	m.Interfaces, diags = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: containerInterfaceAttrTypes}, nics)
	mustNoDiags(t, diags)
	b := containerSpecBuilder{unknown: map[string]bool{}}
	spec, diags := b.toSpec(ctx, m)
	mustNoDiags(t, diags)
	var reported []string
	var d diag.Diagnostics
	addContainerSpecErrors(&d, "Invalid container", spec.Validate(), func(f string) bool {
		if b.involvesUnknown(f) {
			return true
		}
		reported = append(reported, f)
		return false
	})
	// No source (the archive is unknown), swap without memory (memory is
	// unknown) and a gateway without an address (unknown) all wait; the
	// MTU is wrong whatever comes.
	if want := []string{"interfaces[0].mtu"}; !reflect.DeepEqual(reported, want) {
		t.Errorf("reported %q, want %q (diagnostics: %v)", reported, want, d)
	}
}

func TestContainerRestartWarning(t *testing.T) {
	ctx := context.Background()
	state, diags := containerModelFromSpec(ctx, &virt.ContainerSpec{
		Name: "c", Hostname: "c", State: virt.ContainerRunning, PID: 7,
		PendingRestart: []string{"mounts[0]"},
	}, containerModel{})
	mustNoDiags(t, diags)
	plan := state
	plan.Hostname = types.StringValue("d")

	var d diag.Diagnostics
	warnContainerRestart(ctx, plan, state, &d)
	if len(d) != 1 || d[0].Summary() != `Container "c" needs a restart` || !strings.Contains(d[0].Detail(), "- hostname") {
		t.Fatalf("warnings %v", d)
	}
	if strings.Contains(d[0].Detail(), "mount[0]") {
		t.Errorf("without restart_on_update, earlier pending changes are not this plan's: %s", d[0].Detail())
	}

	plan.RestartOnUpdate = types.BoolValue(true)
	d = nil
	warnContainerRestart(ctx, plan, state, &d)
	if len(d) != 1 || d[0].Summary() != `Container "c" will be restarted` ||
		!strings.Contains(d[0].Detail(), "- hostname") || !strings.Contains(d[0].Detail(), "- mount[0] (saved earlier)") {
		t.Fatalf("warnings %v", d)
	}

	// Stopped, it takes everything at its next start: nothing to warn of.
	plan.Running = types.BoolValue(false)
	d = nil
	warnContainerRestart(ctx, plan, state, &d)
	if len(d) != 0 {
		t.Errorf("warnings for a container being stopped: %v", d)
	}
}
