package lxc

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
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
