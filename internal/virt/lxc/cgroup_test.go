package lxc

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

func TestCgroupLayout(t *testing.T) {
	for _, tc := range []struct {
		mountinfo string
		// files under the fake root, path → content
		files map[string]string
		want  cgroupLayout
	}{
		{
			// This project's test machines (Debian 12, legacy boot):
			// every controller on v1, v2 with only hugetlb.
			mountinfo: "mountinfo-hybrid",
			files: map[string]string{
				"sys/fs/cgroup/unified/cgroup.controllers":         "hugetlb\n",
				"sys/fs/cgroup/memory/memory.memsw.limit_in_bytes": "",
			},
			want: cgroupLayout{controllers: map[string]int{
				"cpu": 1, "cpuacct": 1, "cpuset": 1, "memory": 1, "devices": 1, "freezer": 1,
				"blkio": 1, "pids": 1, "hugetlb": 2,
			}, memsw: true},
		},
		{
			mountinfo: "mountinfo-unified",
			files: map[string]string{
				"sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n",
			},
			want: cgroupLayout{controllers: map[string]int{
				"cpuset": 2, "cpu": 2, "io": 2, "memory": 2, "hugetlb": 2, "pids": 2, "rdma": 2, "misc": 2,
			}},
		},
		{
			// No v2 at all, co-mounted cpu,cpuacct, no swap accounting, and
			// a mount point with an escaped blank.
			mountinfo: "mountinfo-legacy",
			files:     map[string]string{"sys/fs/cgroup/my hier/pids.max": ""},
			want: cgroupLayout{controllers: map[string]int{
				"cpu": 1, "cpuacct": 1, "memory": 1, "cpuset": 1, "pids": 1,
			}},
		},
	} {
		t.Run(tc.mountinfo, func(t *testing.T) {
			root := t.TempDir()
			for p, content := range tc.files {
				full := filepath.Join(root, p)
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.Open(filepath.Join("testdata", tc.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			m, err := parseCgroupMounts(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.layout(root)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("layout:\n got %v memsw=%v\nwant %v memsw=%v", got, got.memsw, tc.want, tc.want.memsw)
			}
		})
	}
}

func TestCgroupLayoutMissingControllersFile(t *testing.T) {
	m := cgroupMounts{v1: map[string]string{}, v2: "/sys/fs/cgroup"}
	if _, err := m.layout(t.TempDir()); err == nil {
		t.Fatal("a v2 mount without cgroup.controllers must be an error, not an empty layout")
	}
}

// The host this runs on must have a layout that says where memory is; the
// integration tests check that LXC agrees.
func TestDetectCgroupLayoutHere(t *testing.T) {
	l, err := detectCgroupLayout()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cgroup layout of this host: %v (v1 swap accounting: %v)", l, l.memsw)
}

func TestLimitWrites(t *testing.T) {
	base := virt.ContainerSpec{MemoryMiB: 64, SwapMiB: 32, CPUs: "0", CPUWeight: 50}
	for _, tc := range []struct {
		name      string
		layout    cgroupLayout
		old, next virt.ContainerSpec
		want      []cgroupWrite
	}{
		{"nothing changes", hybridLayout, base, base, nil},
		{"v1 memory and swap up", hybridLayout, base,
			virt.ContainerSpec{MemoryMiB: 128, SwapMiB: 64, CPUs: "0", CPUWeight: 50},
			[]cgroupWrite{{"memory.limit_in_bytes", "134217728"}, {"memory.memsw.limit_in_bytes", "201326592"}}},
		{"v1 swap only: memsw moves, memory stays", hybridLayout, base,
			virt.ContainerSpec{MemoryMiB: 64, SwapMiB: 0, CPUs: "0", CPUWeight: 50},
			[]cgroupWrite{{"memory.memsw.limit_in_bytes", "-1"}}},
		{"v1 no limits at all", hybridLayout, base, virt.ContainerSpec{},
			[]cgroupWrite{{"memory.limit_in_bytes", "-1"}, {"memory.memsw.limit_in_bytes", "-1"}, {"cpuset.cpus", "0-3"}, {"cpu.shares", "1024"}}},
		{"v1 without swap accounting", cgroupLayout{controllers: hybridLayout.controllers}, base,
			virt.ContainerSpec{MemoryMiB: 128, SwapMiB: 32, CPUs: "0-1", CPUWeight: 200},
			[]cgroupWrite{{"memory.limit_in_bytes", "134217728"}, {"cpuset.cpus", "0-1"}, {"cpu.shares", "2048"}}},
		{"v2", unifiedLayout, base, virt.ContainerSpec{MemoryMiB: 128},
			[]cgroupWrite{{"memory.max", "134217728"}, {"memory.swap.max", "max"}, {"cpuset.cpus", ""}, {"cpu.weight", "100"}}},
		{"v2 from none", unifiedLayout, virt.ContainerSpec{}, base,
			[]cgroupWrite{{"memory.max", "67108864"}, {"memory.swap.max", "33554432"}, {"cpuset.cpus", "0"}, {"cpu.weight", "50"}}},
		{"no controllers: nothing to write", cgroupLayout{}, base, virt.ContainerSpec{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.layout.limitWrites(tc.old, tc.next, "0-3")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("limitWrites = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLimitProblems(t *testing.T) {
	all := virt.ContainerSpec{MemoryMiB: 64, SwapMiB: 32, CPUs: "0", CPUWeight: 50}
	for _, tc := range []struct {
		name   string
		layout cgroupLayout
		want   []string
	}{
		{"hybrid with swap accounting", hybridLayout, nil},
		{"unified", unifiedLayout, nil},
		{"v1 without swap accounting", cgroupLayout{controllers: hybridLayout.controllers}, []string{"swap"}},
		{"no controllers", cgroupLayout{}, []string{"memory", "cpus", "cpu_weight"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fields []string
			for _, e := range tc.layout.limitProblems(all) {
				fields = append(fields, e.Field)
				if !strings.Contains(e.Reason, "leave "+e.Field+" unset") {
					t.Errorf("%s: %q does not say what to do", e.Field, e.Reason)
				}
			}
			if !reflect.DeepEqual(fields, tc.want) {
				t.Errorf("fields %q, want %q", fields, tc.want)
			}
			// What limitProblems lets through, renderManagedConfig renders.
			if _, err := renderManagedConfig(all, tc.layout); (err == nil) != (len(tc.want) == 0) {
				t.Errorf("renderManagedConfig: %v, but limitProblems found %q", err, fields)
			}
		})
	}
	if errs := (cgroupLayout{}).limitProblems(virt.ContainerSpec{}); len(errs) != 0 {
		t.Errorf("no limits on a host without controllers: %v", errs)
	}
}

func TestParseCPUSet(t *testing.T) {
	set, err := parseCPUSet("0-2,5\n")
	if err != nil || !reflect.DeepEqual(set, cpuSet{0: true, 1: true, 2: true, 5: true}) {
		t.Fatalf("parseCPUSet = %v, %v", set, err)
	}
	want, _ := parseCPUSet("1,5-7")
	if got := want.missing(set); !reflect.DeepEqual(got, []int{6, 7}) {
		t.Errorf("missing = %v, want [6 7]", got)
	}
	for _, bad := range []string{"a", "3-1", "1,,2", "-1", "9000"} {
		if _, err := parseCPUSet(bad); err == nil {
			t.Errorf("parseCPUSet(%q) accepted", bad)
		}
	}
	if set, err := parseCPUSet(""); err != nil || len(set) != 0 {
		t.Errorf("parseCPUSet(\"\") = %v, %v", set, err)
	}
}
