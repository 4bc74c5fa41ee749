package provider

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/lxc"
)

// The data source reads a container made outside Terraform with every
// attribute set, running and then stopped; each attribute is compared with
// what lxc-info and the container's config files say. A missing container
// and an invalid name are errors.
func TestAccContainerDataSource(t *testing.T) {
	testAccPreCheck(t)
	lx := ctdsLXCClient(t)
	name := testenv.Name(t, "tf-ctds")
	mountSource := t.TempDir() // before the container, so it is removed after it
	// The container's root is an unprivileged host uid, which must reach it.
	for _, d := range []string{filepath.Dir(mountSource), mountSource} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec := virt.ContainerSpec{
		Name:         name,
		Hostname:     "ctds-host",
		LXCTemplate:  &virt.LXCTemplate{Name: "busybox"},
		Unprivileged: true,
		MemoryMiB:    64,
		SwapMiB:      32,
		CPUs:         "0",
		CPUWeight:    200,
		Interfaces: []virt.ContainerInterfaceSpec{{
			IPv4Address: ctdsFreeIP(t) + "/24",
			IPv4Gateway: "10.0.3.1",
			MTU:         1400,
		}},
		Mounts:      []virt.MountSpec{{Source: mountSource, Target: "/mnt/host", ReadOnly: true, CreateDir: true}},
		Nesting:     true,
		StartOnBoot: true,
		Config:      map[string]string{"lxc.environment": "VT_CTDS=1"},
	}
	ctdsCreate(t, lx, spec)
	ctdsQuietRCS(t, lx, name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := lx.StartContainer(ctx, name); err != nil {
		t.Fatal(err)
	}

	const data = "data.virt_container.test"
	missing := testenv.Name(t, "tf-ctds")
	matches := ctdsMatchesLXC{address: data, name: name, lxcPath: lx.LXCPath(), config: spec.Config}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:            providerConfig() + fmt.Sprintf("data \"virt_container\" \"test\" {\n  name = %q\n}\n", name),
				ConfigStateChecks: []statecheck.StateCheck{matches.running(true)},
			},
			{
				PreConfig: func() {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if err := lx.StopContainer(ctx, name, 0); err != nil {
						t.Fatal(err)
					}
				},
				Config:            providerConfig() + fmt.Sprintf("data \"virt_container\" \"test\" {\n  name = %q\n}\n", name),
				ConfigStateChecks: []statecheck.StateCheck{matches.running(false)},
			},
			{
				Config:      providerConfig() + "data \"virt_container\" \"test\" {\n  name = \"-bad/name\"\n}\n",
				ExpectError: spaced(`"-bad/name" is not a valid container name: 1 to 64 letters`),
			},
			{
				Config:      providerConfig() + fmt.Sprintf("data \"virt_container\" \"test\" {\n  name = %q\n}\n", missing),
				ExpectError: spaced(fmt.Sprintf("There is no container named %q in %s", missing, lx.LXCPath())),
			},
		},
	})
}

// ctdsMatchesLXC compares every attribute of a virt_container data source
// with what LXC's own tools and files say about the container.
type ctdsMatchesLXC struct {
	address, name, lxcPath string
	// template is the container a clone lies on ("" for none), config the
	// extra keys it was made with: both are known to the test that made it.
	template   string
	config     map[string]string
	expectRuns bool
}

func (c ctdsMatchesLXC) running(runs bool) ctdsMatchesLXC { c.expectRuns = runs; return c }

func (c ctdsMatchesLXC) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	attrs := stateAttributes(req, c.address)
	if attrs == nil {
		resp.Error = fmt.Errorf("%s is not in the state", c.address)
		return
	}
	want, err := c.fromLXC()
	if err != nil {
		resp.Error = err
		return
	}
	if runs := want["state"] == string(virt.ContainerRunning); runs != c.expectRuns {
		resp.Error = fmt.Errorf("lxc-info says %s is %s; the test expected running=%v", c.name, want["state"], c.expectRuns)
		return
	}
	got := map[string]string{}
	ctdsFlatten(got, "", attrs)
	var problems []string
	keys := maps.Clone(got)
	maps.Copy(keys, want)
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		g, gok := got[k]
		w, wok := want[k]
		switch {
		case !gok:
			problems = append(problems, fmt.Sprintf("%s: missing, LXC says %q", k, w))
		case !wok:
			problems = append(problems, fmt.Sprintf("%s = %q, which the test did not expect", k, g))
		case g != w:
			problems = append(problems, fmt.Sprintf("%s = %q, LXC says %q", k, g, w))
		}
	}
	if len(problems) > 0 {
		resp.Error = fmt.Errorf("%s differs from LXC:\n  %s", c.address, strings.Join(problems, "\n  "))
	}
}

// fromLXC is the data source's state as the flat map ctdsFlatten makes,
// built from lxc-info (which reads the config with its includes, or asks
// the running container) and the provider's managed config file.
func (c ctdsMatchesLXC) fromLXC() (map[string]string, error) {
	w := map[string]string{"name": c.name, "id": c.name, "pending_restart.#": "0"}
	var firstErr error
	key := func(k string) []string {
		v, err := lxcInfoConfig(c.lxcPath, c.name, k)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return v
	}
	one := func(k string) string { return strings.Join(key(k), "\n") }
	orNull := func(s string) string {
		if s == "" {
			return ctdsNull
		}
		return s
	}

	w["hostname"] = one("lxc.uts.name")
	w["template"] = orNull(c.template)

	idmap := key("lxc.idmap")
	w["unprivileged"] = strconv.FormatBool(len(idmap) > 0)
	w["idmap.#"] = strconv.Itoa(len(idmap))
	for i, line := range idmap {
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("lxc-info: lxc.idmap line %q", line)
		}
		for j, attr := range []string{"kind", "container_id", "host_id", "count"} {
			w[fmt.Sprintf("idmap.%d.%s", i, attr)] = f[j]
		}
	}

	// Limits: the key of whichever cgroup hierarchy the layer wrote to.
	const mib = 1 << 20
	mem, swap := ctdsNull, ctdsNull
	if v := one("lxc.cgroup.memory.limit_in_bytes"); v != "" {
		m, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, err
		}
		mem = strconv.FormatUint(m/mib, 10)
		if sw := one("lxc.cgroup.memory.memsw.limit_in_bytes"); sw != "" {
			s, err := strconv.ParseUint(sw, 10, 64)
			if err != nil {
				return nil, err
			}
			swap = strconv.FormatUint((s-m)/mib, 10)
		}
	}
	if v := one("lxc.cgroup2.memory.max"); v != "" {
		m, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, err
		}
		mem = strconv.FormatUint(m/mib, 10)
		if sw := one("lxc.cgroup2.memory.swap.max"); sw != "" {
			s, err := strconv.ParseUint(sw, 10, 64)
			if err != nil {
				return nil, err
			}
			swap = strconv.FormatUint(s/mib, 10)
		}
	}
	w["memory"], w["swap"] = mem, swap
	w["cpus"] = orNull(one("lxc.cgroup.cpuset.cpus") + one("lxc.cgroup2.cpuset.cpus"))
	weight := ctdsNull
	if v := one("lxc.cgroup2.cpu.weight"); v != "" {
		weight = v
	}
	if v := one("lxc.cgroup.cpu.shares"); v != "" {
		// The weight scale is cgroup v2's; v1 gets shares = weight*1024/100.
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, err
		}
		weight = strconv.FormatUint(s*100/1024, 10)
	}
	w["cpu_weight"] = weight

	// "lxc.net" lists the interfaces' types, one line each.
	n := 0
	for ; n < len(key("lxc.net")); n++ {
		p := fmt.Sprintf("lxc.net.%d.", n)
		a := fmt.Sprintf("network_interface.%d.", n)
		w[a+"bridge"] = one(p + "link")
		w[a+"name"] = one(p + "name")
		w[a+"hwaddr"] = orNull(strings.ToLower(one(p + "hwaddr")))
		w[a+"ipv4_address"] = orNull(one(p + "ipv4.address"))
		w[a+"ipv4_gateway"] = orNull(one(p + "ipv4.gateway"))
		w[a+"mtu"] = orNull(one(p + "mtu"))
	}
	w["network_interface.#"] = strconv.Itoa(n)

	// Bind mounts are the provider's when its managed file has them (the
	// busybox template brings bind mounts of its own); LXC must see them.
	entries := key("lxc.mount.entry")
	managed, err := os.ReadFile(filepath.Join(c.lxcPath, c.name, lxc.ManagedConfigName))
	if err != nil {
		return nil, err
	}
	nm := 0
	for _, line := range strings.Split(string(managed), "\n") {
		k, v, _ := strings.Cut(line, "=")
		v = strings.TrimSpace(v)
		if strings.TrimSpace(k) != "lxc.mount.entry" || !strings.Contains(v, "bind") {
			continue
		}
		if !slices.Contains(entries, v) {
			return nil, fmt.Errorf("lxc-info does not show the managed mount entry %q (it shows %q)", v, entries)
		}
		f := strings.Fields(v) // source target fstype options dump pass
		opts := strings.Split(f[3], ",")
		a := fmt.Sprintf("mount.%d.", nm)
		w[a+"source"] = f[0]
		w[a+"target"] = "/" + f[1]
		w[a+"read_only"] = strconv.FormatBool(slices.Contains(opts, "ro"))
		w[a+"create_dir"] = strconv.FormatBool(slices.Contains(opts, "create=dir"))
		nm++
	}
	w["mount.#"] = strconv.Itoa(nm)
	nesting := slices.ContainsFunc(entries, func(e string) bool { return strings.HasPrefix(e, "proc dev/.lxc/proc proc ") })
	w["features.nesting"] = strconv.FormatBool(nesting && one("lxc.apparmor.allow_nesting") == "1")
	w["start_on_boot"] = strconv.FormatBool(one("lxc.start.auto") == "1")

	w["config.%"] = strconv.Itoa(len(c.config))
	for k := range c.config {
		w["config."+k] = one(k)
	}

	state, err := runHostTool("lxc-info", "-n", c.name, "-P", c.lxcPath, "-s", "-p", "-i", "-H")
	if err != nil {
		return nil, err
	}
	w["pid"] = ctdsNull
	var ips []string
	for _, line := range strings.Split(state, "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "State":
			w["state"] = v
		case "PID":
			w["pid"] = v
		case "IP":
			if !strings.Contains(v, ":") {
				ips = append(ips, v)
			}
		}
	}
	slices.Sort(ips)
	w["running"] = strconv.FormatBool(slices.Contains([]string{"RUNNING", "STARTING", "FROZEN"}, w["state"]))
	w["ipv4_addresses.#"] = strconv.Itoa(len(ips))
	for i, ip := range ips {
		w[fmt.Sprintf("ipv4_addresses.%d", i)] = ip
	}
	return w, firstErr
}

// lxcInfoConfig asks lxc-info for a config key of the container; it prints
// "KEY = first value" and further values on lines of their own. A key that
// is not set has no values.
func lxcInfoConfig(lxcPath, name, key string) ([]string, error) {
	out, err := runHostTool("lxc-info", "-n", name, "-P", lxcPath, "-c", key)
	if err != nil {
		return nil, err
	}
	out, ok := strings.CutPrefix(out, key+" =")
	if !ok {
		return nil, fmt.Errorf("lxc-info -n %s -c %s: unexpected output %q", name, key, out)
	}
	var vals []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			vals = append(vals, line)
		}
	}
	return vals, nil
}

// ctdsNull stands for a null value in a flattened state.
const ctdsNull = "<null>"

// ctdsFlatten writes a state value as flat keys the way Terraform's flatmap
// did: "a.0.b", with "#" for list lengths and "%" for the sizes of map
// attributes (config, metadata; JSON does not tell them from objects).
func ctdsFlatten(out map[string]string, prefix string, v any) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch v := v.(type) {
	case nil:
		out[prefix] = ctdsNull
	case map[string]any:
		if prefix == "config" || strings.HasSuffix(prefix, ".metadata") {
			out[join("%")] = strconv.Itoa(len(v))
		}
		for k, e := range v {
			ctdsFlatten(out, join(k), e)
		}
	case []any:
		out[join("#")] = strconv.Itoa(len(v))
		for i, e := range v {
			ctdsFlatten(out, join(strconv.Itoa(i)), e)
		}
	default:
		out[prefix] = fmt.Sprint(v)
	}
}

// ctdsLXCClient is an LXC client of its own for the tests, on the LXC path
// the provider uses by default.
func ctdsLXCClient(t *testing.T) *lxc.Client {
	t.Helper()
	if _, err := os.Stat("/sys/class/net/" + virt.DefaultContainerBridge + "/bridge"); err != nil {
		t.Fatalf("test environment incomplete: no bridge %s (run `make testenv`)", virt.DefaultContainerBridge)
	}
	lx, err := lxc.New(DefaultLXCPath, hclog.New(&hclog.LoggerOptions{Name: "lxc", Level: hclog.Warn, Output: os.Stderr}))
	if err != nil {
		t.Fatal(err)
	}
	return lx
}

// ctdsCreate makes a container and removes it when the test ends, however
// it ends; t.Cleanup runs in reverse, so clones made later go before their
// templates.
func ctdsCreate(t *testing.T, lx *lxc.Client, spec virt.ContainerSpec) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := lx.DestroyContainer(ctx, spec.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := lx.CreateContainer(ctx, spec); err != nil {
		t.Fatalf("create container %s: %v", spec.Name, err)
	}
}

// ctdsFreeIP picks an address on lxcbr0 from the range these tests own.
func ctdsFreeIP(t *testing.T) string {
	t.Helper()
	var b [1]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("10.0.3.%d", 230+int(b[0])%20)
}

// ctdsQuietRCS takes udhcpc out of the busybox template's rcS: run in the
// foreground with no DHCP server on the bridge, it never lets the boot
// finish, and it would flush the static address the test compares.
func ctdsQuietRCS(t *testing.T, lx *lxc.Client, name string) {
	t.Helper()
	p := filepath.Join(lx.LXCPath(), name, "rootfs", "etc", "init.d", "rcS")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "/bin/udhcpc\n", "")), st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if err := os.Chown(p, int(sys.Uid), int(sys.Gid)); err != nil {
		t.Fatal(err)
	}
}

// The mapping for containers that other tools made: unset limits and
// addresses are null, collections empty, defaults filled in.
func TestContainerDataFromSpec(t *testing.T) {
	m := containerDataFromSpec(virt.ContainerSpec{
		Name:       "plain",
		Interfaces: []virt.ContainerInterfaceSpec{{HWAddr: "00:16:3E:AA:BB:CC"}},
		State:      virt.ContainerStopped,
	})
	switch {
	case m.ID.ValueString() != "plain", m.Hostname.ValueString() != "plain":
		t.Errorf("id %s, hostname %s; want the name", m.ID, m.Hostname)
	case !m.Memory.IsNull(), !m.Swap.IsNull(), !m.CPUs.IsNull(), !m.CPUWeight.IsNull(), !m.Template.IsNull(), !m.PID.IsNull():
		t.Errorf("unset values not null: %+v", m)
	case m.Running.ValueBool(), m.Unprivileged.ValueBool():
		t.Errorf("running %s, unprivileged %s", m.Running, m.Unprivileged)
	case m.IDMap == nil, m.Mount == nil, m.Config == nil, m.IPv4Addresses == nil, m.PendingRestart == nil:
		t.Errorf("empty collections must be empty, not null: %+v", m)
	}
	want := containerDataInterface{
		Bridge: types.StringValue(virt.DefaultContainerBridge), Name: types.StringValue("eth0"),
		HWAddr: types.StringValue("00:16:3e:aa:bb:cc"), IPv4Address: types.StringNull(), IPv4Gateway: types.StringNull(),
		MTU: types.Int64Null(),
	}
	if len(m.NetworkInterface) != 1 || m.NetworkInterface[0] != want {
		t.Errorf("interfaces %+v, want [%+v]", m.NetworkInterface, want)
	}

	m = containerDataFromSpec(virt.ContainerSpec{Name: "r", State: virt.ContainerFrozen, PID: 42, MemoryMiB: 64,
		PendingRestart: []string{"interfaces[0].ipv4_address", "nesting", `config["lxc.x"]`}})
	if !m.Running.ValueBool() || m.PID.ValueInt64() != 42 || m.Memory.ValueInt64() != 64 {
		t.Errorf("frozen container: running %s, pid %s, memory %s", m.Running, m.PID, m.Memory)
	}
	if want := []string{"network_interface[0].ipv4_address", "features.nesting", `config["lxc.x"]`}; !slices.Equal(m.PendingRestart, want) {
		t.Errorf("pending_restart %q, want %q", m.PendingRestart, want)
	}
}
