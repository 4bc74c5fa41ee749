package virt

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// containerErrFields returns the fields a Validate error names, in order.
func containerErrFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es SpecErrors
	if !errors.As(err, &es) {
		t.Fatalf("error %v (%T) is not SpecErrors", err, err)
	}
	var fields []string
	for _, e := range es {
		fields = append(fields, e.Field)
	}
	return fields
}

func TestContainerWithDefaults(t *testing.T) {
	in := ContainerSpec{
		Name:        "web",
		LXCTemplate: &LXCTemplate{Name: "busybox", Args: []string{"--x"}},
		Interfaces:  []ContainerInterfaceSpec{{}, {Bridge: "br1", Name: "lan", HWAddr: "00:16:3E:AA:BB:CC"}},
		Mounts:      []MountSpec{{Source: "/srv/data/", Target: "/data/"}},
		Config:      map[string]string{"lxc.signal.halt": "SIGUSR1"},
	}
	got := in.WithDefaults()
	want := ContainerSpec{
		Name:        "web",
		Hostname:    "web",
		LXCTemplate: &LXCTemplate{Name: "busybox", Args: []string{"--x"}},
		Interfaces: []ContainerInterfaceSpec{
			{Bridge: "lxcbr0", Name: "eth0"},
			{Bridge: "br1", Name: "lan", HWAddr: "00:16:3e:aa:bb:cc"},
		},
		Mounts: []MountSpec{{Source: "/srv/data", Target: "/data"}},
		Config: map[string]string{"lxc.signal.halt": "SIGUSR1"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("WithDefaults:\n got %+v\nwant %+v", got, want)
	}
	if again := got.WithDefaults(); !reflect.DeepEqual(again, got) {
		t.Fatalf("WithDefaults is not idempotent:\n%+v\n%+v", again, got)
	}

	// The copy must not share memory with the input: front ends keep their
	// spec and compare it with what comes back.
	got.Interfaces[0].Name = "changed"
	got.LXCTemplate.Args[0] = "changed"
	got.Config["lxc.signal.halt"] = "changed"
	if in.Interfaces[0].Name != "" || in.LXCTemplate.Args[0] != "--x" || in.Config["lxc.signal.halt"] != "SIGUSR1" {
		t.Fatalf("WithDefaults shares memory with its input: %+v", in)
	}

	if kept := (ContainerSpec{Name: "a", Hostname: "b"}).WithDefaults(); kept.Hostname != "b" {
		t.Fatalf("WithDefaults overwrote hostname: %q", kept.Hostname)
	}
	if priv := (ContainerSpec{Name: "a"}).WithDefaults(); priv.Unprivileged {
		t.Fatal("WithDefaults turned on unprivileged; that is the front ends' default to set")
	}
}

func TestContainerValidate(t *testing.T) {
	ok := func() ContainerSpec {
		return ContainerSpec{
			Name:         "web-1",
			LXCTemplate:  &LXCTemplate{Name: "busybox"},
			Unprivileged: true,
			Interfaces:   []ContainerInterfaceSpec{{IPv4Address: "10.0.3.10/24", IPv4Gateway: "10.0.3.1"}},
			Mounts:       []MountSpec{{Source: "/srv/data", Target: "/data", CreateDir: true}},
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*ContainerSpec)
		want   []string // fields in error, nil for valid
	}{
		{"valid", func(s *ContainerSpec) {}, nil},
		{"archive source", func(s *ContainerSpec) { s.LXCTemplate = nil; s.Archive = "rootfs.tar.gz" }, nil},
		{"clone source", func(s *ContainerSpec) { s.LXCTemplate = nil; s.Template = "base" }, nil},
		{"template by path", func(s *ContainerSpec) { s.LXCTemplate.Name = "/opt/lxc/lxc-mine" }, nil},
		{"privileged", func(s *ContainerSpec) { s.Unprivileged = false }, nil},
		{"name with dot and underscore", func(s *ContainerSpec) { s.Name = "_a.b-c" }, nil},
		{"64 char name", func(s *ContainerSpec) { s.Name = strings.Repeat("a", 64) }, nil},

		{"empty name", func(s *ContainerSpec) { s.Name = "" }, []string{"name", "hostname"}},
		{"name starts with dash", func(s *ContainerSpec) { s.Name = "-x"; s.Hostname = "x" }, []string{"name"}},
		{"name starts with dot", func(s *ContainerSpec) { s.Name = ".x"; s.Hostname = "x" }, []string{"name"}},
		{"name with slash", func(s *ContainerSpec) { s.Name = "a/b"; s.Hostname = "x" }, []string{"name"}},
		{"65 char name", func(s *ContainerSpec) { s.Name = strings.Repeat("a", 65); s.Hostname = "x" }, []string{"name"}},
		{"hostname with space", func(s *ContainerSpec) { s.Hostname = "a b" }, []string{"hostname"}},

		{"no source", func(s *ContainerSpec) { s.LXCTemplate = nil }, []string{"template"}},
		{"two sources", func(s *ContainerSpec) { s.Archive = "/x.tar" }, []string{"lxc_template"}},
		{"three sources", func(s *ContainerSpec) { s.Archive = "/x.tar"; s.Template = "base" }, []string{"archive", "lxc_template"}},
		{"bad template name", func(s *ContainerSpec) { s.LXCTemplate = nil; s.Template = "-base" }, []string{"template"}},
		{"clone of itself", func(s *ContainerSpec) { s.LXCTemplate = nil; s.Template = s.Name }, []string{"template"}},
		{"empty lxc template", func(s *ContainerSpec) { s.LXCTemplate.Name = "" }, []string{"lxc_template.name"}},
		{"relative template path", func(s *ContainerSpec) { s.LXCTemplate.Name = "../lxc-x" }, []string{"lxc_template.name"}},
		{"NUL in template arg", func(s *ContainerSpec) { s.LXCTemplate.Args = []string{"ok", "a\x00b"} }, []string{"lxc_template.args[1]"}},
		{"newline in archive", func(s *ContainerSpec) { s.LXCTemplate = nil; s.Archive = "/a\nb" }, []string{"archive"}},

		{"idmap", func(s *ContainerSpec) {
			s.IDMap = []IDMapEntry{{"u", 0, 200000, 65536}, {"g", 0, 200000, 65536}}
		}, nil},
		{"idmap on privileged", func(s *ContainerSpec) {
			s.Unprivileged = false
			s.IDMap = []IDMapEntry{{"u", 0, 200000, 65536}, {"g", 0, 200000, 65536}}
		}, []string{"idmap"}},
		{"idmap bad kind and no gid 0", func(s *ContainerSpec) {
			s.IDMap = []IDMapEntry{{"u", 0, 200000, 65536}, {"b", 0, 200000, 65536}}
		}, []string{"idmap[1].kind", "idmap"}},
		{"idmap zero count", func(s *ContainerSpec) {
			s.IDMap = []IDMapEntry{{"u", 0, 200000, 0}, {"g", 0, 200000, 65536}}
		}, []string{"idmap[0].count", "idmap"}},
		{"idmap overflow", func(s *ContainerSpec) {
			s.IDMap = []IDMapEntry{{"u", 0, 4294967000, 65536}, {"g", 0, 200000, 65536}}
		}, []string{"idmap[0].count"}},
		{"idmap overlap", func(s *ContainerSpec) {
			s.IDMap = []IDMapEntry{{"u", 0, 200000, 65536}, {"u", 1000, 1000, 1}, {"g", 0, 200000, 65536}}
		}, []string{"idmap[1]"}},
		{"idmap without root", func(s *ContainerSpec) {
			s.IDMap = []IDMapEntry{{"u", 1, 200000, 65535}, {"g", 0, 200000, 65536}}
		}, []string{"idmap"}},

		{"memory", func(s *ContainerSpec) { s.MemoryMiB = 16; s.SwapMiB = 64 }, nil},
		{"memory too small", func(s *ContainerSpec) { s.MemoryMiB = 15 }, []string{"memory"}},
		{"memory too large", func(s *ContainerSpec) { s.MemoryMiB = 1 << 60 }, []string{"memory"}},
		{"swap without memory", func(s *ContainerSpec) { s.SwapMiB = 64 }, []string{"swap"}},
		{"cpus", func(s *ContainerSpec) { s.CPUs = "0-3,5,7-7" }, nil},
		{"cpus single", func(s *ContainerSpec) { s.CPUs = "1" }, nil},
		{"cpus backwards", func(s *ContainerSpec) { s.CPUs = "3-1" }, []string{"cpus"}},
		{"cpus empty part", func(s *ContainerSpec) { s.CPUs = "0,,1" }, []string{"cpus"}},
		{"cpus words", func(s *ContainerSpec) { s.CPUs = "all" }, []string{"cpus"}},
		{"cpus spaces", func(s *ContainerSpec) { s.CPUs = "0, 1" }, []string{"cpus"}},
		{"cpus too high", func(s *ContainerSpec) { s.CPUs = "0-99999" }, []string{"cpus"}},
		{"cpu weight", func(s *ContainerSpec) { s.CPUWeight = 10000 }, nil},
		{"cpu weight too high", func(s *ContainerSpec) { s.CPUWeight = 10001 }, []string{"cpu_weight"}},

		{"dhcp interface", func(s *ContainerSpec) { s.Interfaces = []ContainerInterfaceSpec{{}} }, nil},
		{"no interface", func(s *ContainerSpec) { s.Interfaces = nil }, nil},
		{"full interface", func(s *ContainerSpec) {
			s.Interfaces = []ContainerInterfaceSpec{{Bridge: "br0", Name: "lan0", HWAddr: "00:16:3e:00:00:01", IPv4Address: "192.168.1.5/32", MTU: 9000}}
		}, nil},
		{"bad cidr", func(s *ContainerSpec) { s.Interfaces[0].IPv4Address = "10.0.3.10" }, []string{"interfaces[0].ipv4_address"}},
		{"ipv6 as ipv4", func(s *ContainerSpec) {
			s.Interfaces[0].IPv4Address = "fd00::1/64"
			s.Interfaces[0].IPv4Gateway = ""
		}, []string{"interfaces[0].ipv4_address"}},
		{"slash zero", func(s *ContainerSpec) { s.Interfaces[0].IPv4Address = "10.0.3.10/0" }, []string{"interfaces[0].ipv4_address"}},
		{"network address", func(s *ContainerSpec) { s.Interfaces[0].IPv4Address = "10.0.3.0/24" }, []string{"interfaces[0].ipv4_address"}},
		{"broadcast address", func(s *ContainerSpec) { s.Interfaces[0].IPv4Address = "10.0.3.255/24" }, []string{"interfaces[0].ipv4_address"}},
		{"bad gateway", func(s *ContainerSpec) { s.Interfaces[0].IPv4Gateway = "10.0.3" }, []string{"interfaces[0].ipv4_gateway"}},
		{"gateway without address", func(s *ContainerSpec) { s.Interfaces[0].IPv4Address = "" }, []string{"interfaces[0].ipv4_gateway"}},
		{"gateway is own address", func(s *ContainerSpec) { s.Interfaces[0].IPv4Gateway = "10.0.3.10" }, []string{"interfaces[0].ipv4_gateway"}},
		{"bad mac", func(s *ContainerSpec) { s.Interfaces[0].HWAddr = "00:16:3e:00:00" }, []string{"interfaces[0].hwaddr"}},
		{"mac with dashes", func(s *ContainerSpec) { s.Interfaces[0].HWAddr = "00-16-3e-00-00-01" }, []string{"interfaces[0].hwaddr"}},
		{"multicast mac", func(s *ContainerSpec) { s.Interfaces[0].HWAddr = "01:16:3e:00:00:01" }, []string{"interfaces[0].hwaddr"}},
		{"mtu too small", func(s *ContainerSpec) { s.Interfaces[0].MTU = 67 }, []string{"interfaces[0].mtu"}},
		{"long bridge", func(s *ContainerSpec) { s.Interfaces[0].Bridge = "a-very-long-bridge" }, []string{"interfaces[0].bridge"}},
		{"bridge with space", func(s *ContainerSpec) { s.Interfaces[0].Bridge = "br 0" }, []string{"interfaces[0].bridge"}},
		{"duplicate names", func(s *ContainerSpec) {
			s.Interfaces = append(s.Interfaces, ContainerInterfaceSpec{Name: "eth0"})
		}, []string{"interfaces[1].name"}},
		{"duplicate macs and addresses", func(s *ContainerSpec) {
			s.Interfaces = []ContainerInterfaceSpec{
				{HWAddr: "00:16:3e:00:00:01", IPv4Address: "10.0.3.10/24"},
				{HWAddr: "00:16:3E:00:00:01", IPv4Address: "10.0.3.10/24"},
			}
		}, []string{"interfaces[1].hwaddr", "interfaces[1].ipv4_address"}},

		{"read-only mount", func(s *ContainerSpec) { s.Mounts[0].ReadOnly = true }, nil},
		{"mount path with space", func(s *ContainerSpec) { s.Mounts[0].Source = "/srv/my data" }, nil},
		{"relative source", func(s *ContainerSpec) { s.Mounts[0].Source = "srv/data" }, []string{"mounts[0].source"}},
		{"relative target", func(s *ContainerSpec) { s.Mounts[0].Target = "data" }, []string{"mounts[0].target"}},
		{"root target", func(s *ContainerSpec) { s.Mounts[0].Target = "/" }, []string{"mounts[0].target"}},
		{"climbing target is cleaned", func(s *ContainerSpec) { s.Mounts[0].Target = "/../etc" }, nil},
		{"newline in target", func(s *ContainerSpec) { s.Mounts[0].Target = "/a\nlxc.idmap = u 0 0 1" }, []string{"mounts[0].target"}},
		{"duplicate target", func(s *ContainerSpec) {
			s.Mounts = append(s.Mounts, MountSpec{Source: "/other", Target: "/data/"})
		}, []string{"mounts[1].target"}},

		{"extra config", func(s *ContainerSpec) {
			s.Config = map[string]string{"lxc.signal.halt": "SIGUSR1", "lxc.cgroup2.cpu.max": "50000 100000", "lxc.cgroup.hugetlb.2MB.limit_in_bytes": "0"}
		}, nil},
		{"config key without lxc prefix", func(s *ContainerSpec) { s.Config = map[string]string{"uts.name": "x"} }, []string{`config["uts.name"]`}},
		{"config key with space", func(s *ContainerSpec) { s.Config = map[string]string{"lxc.a b": "x"} }, []string{`config["lxc.a b"]`}},
		{"config value with newline", func(s *ContainerSpec) {
			s.Config = map[string]string{"lxc.signal.halt": "SIGUSR1\nlxc.idmap = u 0 0 1"}
		}, []string{`config["lxc.signal.halt"]`}},
		{"managed config keys", func(s *ContainerSpec) {
			s.Config = map[string]string{}
			for _, k := range []string{
				"lxc.idmap", "lxc.net.0.link", "lxc.net", "lxc.network.type", "lxc.mount.entry",
				"lxc.cgroup.memory.limit_in_bytes", "lxc.cgroup2.memory.max", "lxc.cgroup2.memory.swap.max",
				"lxc.cgroup.cpuset.cpus", "lxc.cgroup2.cpu.weight", "lxc.cgroup.cpu.shares",
				"lxc.uts.name", "lxc.start.auto", "lxc.include", "lxc.rootfs.path", "LXC.UTS.NAME",
			} {
				s.Config[k] = "x"
			}
		}, []string{
			`config["LXC.UTS.NAME"]`, `config["lxc.cgroup.cpu.shares"]`, `config["lxc.cgroup.cpuset.cpus"]`,
			`config["lxc.cgroup.memory.limit_in_bytes"]`, `config["lxc.cgroup2.cpu.weight"]`,
			`config["lxc.cgroup2.memory.max"]`, `config["lxc.cgroup2.memory.swap.max"]`,
			`config["lxc.idmap"]`, `config["lxc.include"]`, `config["lxc.mount.entry"]`, `config["lxc.net"]`,
			`config["lxc.net.0.link"]`, `config["lxc.network.type"]`, `config["lxc.rootfs.path"]`,
			`config["lxc.start.auto"]`, `config["lxc.uts.name"]`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok()
			tc.mutate(&s)
			got := containerErrFields(t, s.Validate())
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Validate fields = %q, want %q (error: %v)", got, tc.want, s.Validate())
			}
		})
	}
}

// The reasons are what users read; spot-check that they say what to do.
func TestContainerValidateMessages(t *testing.T) {
	s := ContainerSpec{
		Name:        "a",
		LXCTemplate: &LXCTemplate{Name: "busybox"},
		MemoryMiB:   8,
		Config:      map[string]string{"lxc.net.0.link": "br0"},
	}
	msg := s.Validate().Error()
	for _, want := range []string{
		"memory: 8 MiB is less than the minimum of 16 MiB",
		`config["lxc.net.0.link"]: lxc.net.0.link is managed by interfaces`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
}

func TestContainerConfigKeyOwner(t *testing.T) {
	for key, want := range map[string]string{
		"lxc.uts.name":                           "hostname",
		"lxc.net.1.ipv4.address":                 "interfaces",
		"lxc.cgroup.memory.memsw.limit_in_bytes": "swap",
		"lxc.cgroup2.cpuset.cpus":                "cpus",
		"lxc.signal.halt":                        "",
		"lxc.cgroup2.cpu.max":                    "",
		"lxc.cgroup2.memory.high":                "",
		"lxc.mount.auto":                         "",
		"lxc.netns":                              "", // not lxc.net.*
		"lxc.include":                            "nesting",
		"lxc.idmap":                              "idmap",
		"lxc.rootfs.path":                        "source",
		"lxc.network.0.type":                     "interfaces",
	} {
		got, managed := ContainerConfigKeyOwner(key)
		if managed != (want != "") || got != want {
			t.Errorf("ContainerConfigKeyOwner(%q) = %q, %v; want %q", key, got, managed, want)
		}
	}
}

func TestHasClonesError(t *testing.T) {
	err := error(&HasClonesError{Name: "base", Clones: []string{"c1", "c2"}})
	if !strings.Contains(err.Error(), `"base"`) || !strings.Contains(err.Error(), "c1, c2") {
		t.Fatalf("error %q does not name the template and its clones", err)
	}
	var hc *HasClonesError
	if !errors.As(fmt.Errorf("destroy: %w", err), &hc) || hc.Name != "base" {
		t.Fatal("HasClonesError is not found through wrapping")
	}
}

// The metadata file a template build writes is what ContainerTemplates
// reads back, with the mode and format the Packer builder relies on.
func TestContainerMetadata(t *testing.T) {
	dir := t.TempDir()
	if md, err := ReadContainerMetadata(dir); err != nil || md != nil {
		t.Fatalf("no file: %v, %v; want nil, nil", md, err)
	}
	built := time.Date(2026, 11, 26, 22, 30, 0, 0, time.FixedZone("CET", 3600))
	md := NewContainerMetadata("debian", "12", "amd64", built)
	md["variant"] = "minbase"
	if err := WriteContainerMetadata(dir, md); err != nil {
		t.Fatal(err)
	}
	path := ContainerMetadataPath(filepath.Dir(dir), filepath.Base(dir))
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != ContainerMetadataMode {
		t.Errorf("mode %v, want %v", st.Mode().Perm(), ContainerMetadataMode)
	}
	// Users without access to the template's LXC config have none to
	// what it holds either.
	if st.Mode().Perm()&0o007 != 0 {
		t.Errorf("mode %v lets every user read the metadata", st.Mode().Perm())
	}
	got, err := ReadContainerMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"os": "debian", "release": "12", "arch": "amd64", "build_time": "2026-11-26T21:30:00Z", "variant": "minbase"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %v, want %v", got, want)
	}
	raw, _ := os.ReadFile(path)
	var plain map[string]string
	if err := json.Unmarshal(raw, &plain); err != nil || plain["os"] != "debian" {
		t.Errorf("the file is not a plain JSON object of strings: %s", raw)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	for _, tc := range []struct {
		md    map[string]string
		field string
	}{
		{map[string]string{"OS": "x"}, `metadata["OS"]`},
		{map[string]string{"os": "two\nlines"}, `metadata["os"]`},
		{map[string]string{"build_time": "yesterday"}, `metadata["build_time"]`},
	} {
		err := WriteContainerMetadata(dir, tc.md)
		var es SpecErrors
		if !errors.As(err, &es) || es[0].Field != tc.field {
			t.Errorf("WriteContainerMetadata(%v) = %v; want a spec error on %s", tc.md, err, tc.field)
		}
	}
	if err := os.WriteFile(path, []byte(`{"os": 12}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadContainerMetadata(dir); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a malformed file: %v; want an error naming %s", err, path)
	}
}
