package lxc

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// Layouts as found on real hosts.
var (
	// Debian 12 booted with the legacy layout (this project's test
	// machines): everything on v1, v2 mounted with only hugetlb.
	hybridLayout = cgroupLayout{controllers: map[string]int{
		"cpu": 1, "cpuacct": 1, "cpuset": 1, "memory": 1, "devices": 1, "freezer": 1,
		"blkio": 1, "pids": 1, "hugetlb": 2,
	}, memsw: true}
	unifiedLayout = cgroupLayout{controllers: map[string]int{
		"cpu": 2, "cpuset": 2, "memory": 2, "io": 2, "pids": 2, "hugetlb": 2,
	}}
)

func fullSpec() virt.ContainerSpec {
	return virt.ContainerSpec{
		Name:         "web",
		Hostname:     "web.example",
		LXCTemplate:  &virt.LXCTemplate{Name: "busybox"},
		Unprivileged: true,
		IDMap:        []virt.IDMapEntry{{Kind: "u", HostID: 100000, Count: 65536}, {Kind: "g", HostID: 100000, Count: 65536}},
		MemoryMiB:    256,
		SwapMiB:      128,
		CPUs:         "0-1",
		CPUWeight:    50,
		Interfaces: []virt.ContainerInterfaceSpec{
			{Bridge: "lxcbr0", Name: "eth0", HWAddr: "00:16:3e:00:00:01", IPv4Address: "10.0.3.10/24", IPv4Gateway: "10.0.3.1", MTU: 1400},
			{Bridge: "br1", Name: "eth1", HWAddr: "00:16:3e:00:00:02"},
		},
		Mounts: []virt.MountSpec{
			{Source: "/srv/data", Target: "/data", CreateDir: true},
			{Source: "/srv/my conf", Target: "/etc/app", ReadOnly: true},
		},
		Nesting:     true,
		StartOnBoot: true,
		Config:      map[string]string{"lxc.signal.halt": "SIGUSR1", "lxc.cgroup2.cpu.max": "50000 100000"},
	}
}

func TestRenderManagedConfig(t *testing.T) {
	minimal := virt.ContainerSpec{Name: "min", LXCTemplate: &virt.LXCTemplate{Name: "busybox"}}.WithDefaults()
	for _, tc := range []struct {
		golden string
		spec   virt.ContainerSpec
		layout cgroupLayout
	}{
		{"full-hybrid.conf", fullSpec(), hybridLayout},
		{"full-unified.conf", fullSpec(), unifiedLayout},
		{"minimal.conf", minimal, hybridLayout},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			items, err := renderManagedConfig(tc.spec, tc.layout)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, formatManagedConfig(items, configKeys(tc.spec)))
		})
	}
}

func TestRenderManagedConfigUnsupported(t *testing.T) {
	noSwapAccounting := hybridLayout
	noSwapAccounting.memsw = false
	for _, tc := range []struct {
		name   string
		mutate func(*virt.ContainerSpec)
		layout cgroupLayout
		want   string
	}{
		{"no memory controller", func(s *virt.ContainerSpec) { s.CPUs, s.CPUWeight = "", 0 }, cgroupLayout{}, "memory limit: the memory cgroup controller"},
		{"no cpuset controller", func(s *virt.ContainerSpec) { s.MemoryMiB, s.SwapMiB, s.CPUWeight = 0, 0, 0 }, cgroupLayout{}, "cpus: the cpuset cgroup controller"},
		{"no cpu controller", func(s *virt.ContainerSpec) { s.MemoryMiB, s.SwapMiB, s.CPUs = 0, 0, "" }, cgroupLayout{}, "cpu weight: the cpu cgroup controller"},
		{"no swap accounting", func(s *virt.ContainerSpec) {}, noSwapAccounting, "swapaccount=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fullSpec()
			tc.mutate(&s)
			_, err := renderManagedConfig(s, tc.layout)
			if !errors.Is(err, virt.ErrUnsupported) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrUnsupported saying %q", err, tc.want)
			}
		})
	}
	// Without limits, no controller is needed.
	s := fullSpec()
	s.MemoryMiB, s.SwapMiB, s.CPUs, s.CPUWeight = 0, 0, "", 0
	if _, err := renderManagedConfig(s, cgroupLayout{}); err != nil {
		t.Fatalf("spec without limits needs no controllers: %v", err)
	}
}

// What is rendered must read back as the same spec: that is what lets
// front ends compare what they asked for with what the host has.
func TestManagedConfigRoundTrip(t *testing.T) {
	for name, layout := range map[string]cgroupLayout{"hybrid": hybridLayout, "unified": unifiedLayout} {
		t.Run(name, func(t *testing.T) {
			want := fullSpec().WithDefaults()
			items, err := renderManagedConfig(want, layout)
			if err != nil {
				t.Fatal(err)
			}
			got, err := specFromConfig(parseConfig(formatManagedConfig(items, configKeys(want))), true)
			if err != nil {
				t.Fatal(err)
			}
			got.Name, got.LXCTemplate = want.Name, want.LXCTemplate
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("read back:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestCPUWeightSharesRoundTrip(t *testing.T) {
	for w := uint64(1); w <= virt.MaxContainerCPUWeight; w++ {
		s := weightToShares(w)
		if s < 2 || s > 262144 {
			t.Fatalf("weight %d → shares %d, outside cgroup v1's 2-262144", w, s)
		}
		if back := sharesToWeight(s); back != w {
			t.Fatalf("weight %d → shares %d → weight %d", w, s, back)
		}
	}
	if weightToShares(100) != 1024 {
		t.Fatal("the default weight must map to the default shares")
	}
}

func TestParseConfig(t *testing.T) {
	text := `# comment
lxc.uts.name = "quoted"
   lxc.net.0.type=veth
lxc.mount.entry = /lib lib none ro,bind 0 0

not a config line
lxc.include = /usr/share/lxc/config/common.conf
`
	got := parseConfig(text)
	want := []configItem{
		{"lxc.uts.name", "quoted"},
		{"lxc.net.0.type", "veth"},
		{"lxc.mount.entry", "/lib lib none ro,bind 0 0"},
		{"lxc.include", "/usr/share/lxc/config/common.conf"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseConfig:\n got %q\nwant %q", got, want)
	}
}

// Configs as LXC writes them, rebased onto the managed file.
func TestRebaseConfig(t *testing.T) {
	const lxcPath = "/var/lib/lxc"
	for _, tc := range []struct{ in, golden, managed string }{
		// lxc-create -t busybox with the host's default.conf and an id map.
		{"busybox-created.in", "busybox-rebased.conf", "/var/lib/lxc/web/virt.conf"},
		// lxc-copy -s -B overlayfs of a container made by this package:
		// it carries the template's include, name and log file.
		{"clone-created.in", "clone-rebased.conf", "/var/lib/lxc/web2/virt.conf"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", tc.in))
			if err != nil {
				t.Fatal(err)
			}
			drop := func(it configItem) bool { return it.Key == "lxc.log.file" && it.Value == "/tmp/virt-lxc-1.log" }
			golden(t, tc.golden, rebaseConfig(string(in), lxcPath, tc.managed, drop))
		})
	}
}

// A container made by other tools has no managed file; only the fields with
// keys of their own are read from its config.
func TestSpecFromForeignConfig(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "busybox-created.in"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := specFromConfig(parseConfig(string(in)), false)
	if err != nil {
		t.Fatal(err)
	}
	want := virt.ContainerSpec{
		Hostname:     "web",
		Unprivileged: true,
		IDMap:        []virt.IDMapEntry{{Kind: "u", HostID: 100000, Count: 65536}, {Kind: "g", HostID: 100000, Count: 65536}},
		Interfaces:   []virt.ContainerInterfaceSpec{{Bridge: "lxcbr0", HWAddr: "00:16:3e:aa:bb:cc"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read back:\n got %+v\nwant %+v", got, want)
	}
}

func TestSpecFromConfigErrors(t *testing.T) {
	for _, text := range []string{
		"lxc.idmap = u 0 100000\n",
		"lxc.idmap = x 0 100000 65536\n",
		"lxc.net.x.link = br0\n",
		"lxc.net.0.mtu = big\n",
		"lxc.cgroup2.memory.max = lots\n",
		"lxc.cgroup.cpu.shares = -1\n",
	} {
		if _, err := specFromConfig(parseConfig(text), true); err == nil {
			t.Errorf("specFromConfig(%q) accepted it", text)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]uint64{"268435456": 256 << 20, "256M": 256 << 20, "1G": 1 << 30, "64k": 64 << 10} {
		got, err := parseBytes(in)
		if err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseBytes("max"); err == nil {
		t.Error(`parseBytes("max") accepted it`)
	}
}

func TestFstabEscape(t *testing.T) {
	for _, p := range []string{"/srv/data", "/srv/my data", "/a\tb", `/back\slash`} {
		e := fstabEscape(p)
		if strings.ContainsAny(e, " \t") {
			t.Errorf("fstabEscape(%q) = %q still splits", p, e)
		}
		if back := fstabUnescape(e); back != p {
			t.Errorf("fstabUnescape(fstabEscape(%q)) = %q", p, back)
		}
	}
}

func TestIsManagedInclude(t *testing.T) {
	for path, want := range map[string]bool{
		"/var/lib/lxc/base/virt.conf":       true,
		"/var/lib/lxc/base//virt.conf":      true,
		"/var/lib/lxc/base/other.conf":      false,
		"/usr/share/lxc/config/common.conf": false,
		"/elsewhere/base/virt.conf":         false,
	} {
		if got := isManagedInclude(path, "/var/lib/lxc"); got != want {
			t.Errorf("isManagedInclude(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestComparedKeys(t *testing.T) {
	text := formatManagedConfig([]configItem{{"lxc.uts.name", "a"}}, []string{"lxc.environment", "lxc.signal.halt"})
	if got := parseComparedKeys(text); !reflect.DeepEqual(got, []string{"lxc.environment", "lxc.signal.halt"}) {
		t.Errorf("parseComparedKeys = %q", got)
	}
	// LXC reads the line as a comment.
	if items := parseConfig(text); !reflect.DeepEqual(items, []configItem{{"lxc.uts.name", "a"}}) {
		t.Errorf("parseConfig = %v", items)
	}
	if got := parseComparedKeys(formatManagedConfig(nil, nil)); got != nil {
		t.Errorf("no keys: %q", got)
	}
	if got := mergeKeys([]string{"b", "a"}, nil, []string{"a", "c"}); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("mergeKeys = %q", got)
	}
}
