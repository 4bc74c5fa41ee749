package lxc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// cgroupLayout says which cgroup hierarchy each controller is on, as the
// kernel has it mounted: a controller bound to a v1 hierarchy cannot be on
// the v2 one at the same time, and LXC (cgfsng) puts a container into every
// hierarchy, writing lxc.cgroup.* keys to the v1 ones and lxc.cgroup2.* keys
// to the unified one. So the key that takes effect for a limit is the one of
// the hierarchy that holds its controller. Hosts differ (pure v1, pure v2,
// and hybrids like Debian hosts booted with systemd's legacy layout, where
// v2 is mounted at /sys/fs/cgroup/unified with few or no controllers), hence
// detection rather than a guess.
type cgroupLayout struct {
	controllers map[string]int // controller name → 1 or 2
	// memsw reports swap accounting on a v1 memory hierarchy (its
	// memory.memsw.* files exist only then).
	memsw bool
}

// version is 1 or 2 for the hierarchy holding controller, 0 when neither.
func (l cgroupLayout) version(controller string) int { return l.controllers[controller] }

func (l cgroupLayout) String() string {
	names := make([]string, 0, len(l.controllers))
	for c := range l.controllers {
		names = append(names, c)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, c := range names {
		parts[i] = fmt.Sprintf("%s:v%d", c, l.controllers[c])
	}
	return strings.Join(parts, " ")
}

// v1Controllers are the kernel's controllers that a v1 mount lists among its
// super options (the rest are options like rw or name=systemd).
var v1Controllers = []string{
	"blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb",
	"memory", "misc", "net_cls", "net_prio", "perf_event", "pids", "rdma",
}

// cgroupMounts is what /proc/self/mountinfo says about cgroup file systems.
type cgroupMounts struct {
	v1 map[string]string // controller → mount point
	v2 string            // mount point of the unified hierarchy, "" if none
}

// parseCgroupMounts reads mountinfo(5) lines.
func parseCgroupMounts(r io.Reader) (cgroupMounts, error) {
	m := cgroupMounts{v1: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		preF, postF := strings.Fields(pre), strings.Fields(post)
		if len(preF) < 5 || len(postF) < 3 {
			continue
		}
		mountPoint := unescapeMountinfo(preF[4])
		switch postF[0] {
		case "cgroup":
			for _, opt := range strings.Split(postF[2], ",") {
				if slices.Contains(v1Controllers, opt) {
					if _, seen := m.v1[opt]; !seen {
						m.v1[opt] = mountPoint
					}
				}
			}
		case "cgroup2":
			if m.v2 == "" {
				m.v2 = mountPoint
			}
		}
	}
	return m, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes of blanks and
// backslashes in mountinfo paths.
func unescapeMountinfo(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// layout completes the mounts with what the hierarchies' files say: the
// unified hierarchy's controllers, and whether v1 memory accounts swap.
// root is prefixed to every path, for tests.
func (m cgroupMounts) layout(root string) (cgroupLayout, error) {
	l := cgroupLayout{controllers: map[string]int{}}
	for c := range m.v1 {
		l.controllers[c] = 1
	}
	if m.v2 != "" {
		b, err := os.ReadFile(filepath.Join(root, m.v2, "cgroup.controllers"))
		if err != nil {
			return l, fmt.Errorf("read the controllers of the unified cgroup hierarchy: %w", err)
		}
		for _, c := range strings.Fields(string(b)) {
			if _, onV1 := l.controllers[c]; !onV1 {
				l.controllers[c] = 2
			}
		}
	}
	if mp, ok := m.v1["memory"]; ok {
		_, err := os.Stat(filepath.Join(root, mp, "memory.memsw.limit_in_bytes"))
		l.memsw = err == nil
	}
	return l, nil
}

// detectCgroupLayout reads this host's cgroup layout.
func detectCgroupLayout() (cgroupLayout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return cgroupLayout{}, fmt.Errorf("detect cgroup layout: %w", err)
	}
	defer func() { _ = f.Close() }() // opened read-only: nothing to flush
	m, err := parseCgroupMounts(f)
	if err != nil {
		return cgroupLayout{}, fmt.Errorf("detect cgroup layout: read mountinfo: %w", err)
	}
	l, err := m.layout("/")
	if err != nil {
		return l, fmt.Errorf("detect cgroup layout: %w", err)
	}
	return l, nil
}
