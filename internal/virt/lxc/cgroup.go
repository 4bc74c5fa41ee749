package lxc

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
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

// limitProblems reports, by field, the limits of s that this host's
// cgroups cannot enforce: the same cases renderManagedConfig refuses, said
// in the user's terms, so that a plan can fail before anything is made.
func (l cgroupLayout) limitProblems(s virt.ContainerSpec) virt.SpecErrors {
	var errs virt.SpecErrors
	add := func(field, reason string) { errs = append(errs, &virt.SpecError{Field: field, Reason: reason}) }
	if s.MemoryMiB != 0 {
		switch l.version("memory") {
		case 0:
			add("memory", "this host's memory cgroup controller is on neither cgroup hierarchy, so a memory limit cannot be enforced; leave memory unset")
		case 1:
			if s.SwapMiB != 0 && !l.memsw {
				add("swap", "this host's memory cgroup (v1) does not account swap (no memory.memsw.* files; boot the kernel with swapaccount=1), "+
					"so a swap limit cannot be enforced; leave swap unset")
			}
		}
	}
	if s.CPUs != "" && l.version("cpuset") == 0 {
		add("cpus", "this host's cpuset cgroup controller is on neither cgroup hierarchy, so CPUs cannot be pinned; leave cpus unset")
	}
	if s.CPUWeight != 0 && l.version("cpu") == 0 {
		add("cpu_weight", "this host's cpu cgroup controller is on neither cgroup hierarchy, so a CPU weight cannot be enforced; leave cpu_weight unset")
	}
	return errs
}

// cgroupWrite is one value for one cgroup file of a running container, by
// the file's name (memory.max), as go-lxc's SetCgroupItem takes it.
type cgroupWrite struct {
	key, value string
}

// limitWrites lists the cgroup files whose values change when a running
// container's limits go from those of old to those of next on this host,
// with the values that mean "no limit" where next has none (what the
// container would have had, had it been started without the limit).
// hostCPUs is the cpuset a v1 container has without a cpus limit.
//
// On v1, memory.memsw.limit_in_bytes (memory plus swap) may never be below
// memory.limit_in_bytes, so the order of the two writes depends on the
// values the running container has; they are listed memory first, which is
// right when the memory limit goes down, and applyLimits swaps them when it
// goes up.
func (l cgroupLayout) limitWrites(old, next virt.ContainerSpec, hostCPUs string) []cgroupWrite {
	var out []cgroupWrite
	add := func(k, v string) { out = append(out, cgroupWrite{k, v}) }
	switch l.version("memory") {
	case 1:
		if old.MemoryMiB != next.MemoryMiB {
			add("memory.limit_in_bytes", v1Limit(next.MemoryMiB))
		}
		if l.memsw && v1MemSwLimit(old) != v1MemSwLimit(next) {
			add("memory.memsw.limit_in_bytes", v1MemSwLimit(next))
		}
	case 2:
		if old.MemoryMiB != next.MemoryMiB {
			add("memory.max", v2Limit(next.MemoryMiB))
		}
		if old.SwapMiB != next.SwapMiB {
			add("memory.swap.max", v2Limit(next.SwapMiB))
		}
	}
	if old.CPUs != next.CPUs {
		switch l.version("cpuset") {
		case 1:
			cpus := next.CPUs
			if cpus == "" {
				cpus = hostCPUs
			}
			add("cpuset.cpus", cpus)
		case 2:
			// An empty cpuset.cpus takes the parent's: the v2 way of
			// saying "no limit".
			add("cpuset.cpus", next.CPUs)
		}
	}
	if old.CPUWeight != next.CPUWeight {
		switch l.version("cpu") {
		case 1:
			shares := uint64(1024) // the kernel's default
			if next.CPUWeight != 0 {
				shares = weightToShares(next.CPUWeight)
			}
			add("cpu.shares", strconv.FormatUint(shares, 10))
		case 2:
			weight := uint64(100) // the kernel's default
			if next.CPUWeight != 0 {
				weight = next.CPUWeight
			}
			add("cpu.weight", strconv.FormatUint(weight, 10))
		}
	}
	return out
}

// v1Limit is a v1 memory limit file's value: -1 is no limit.
func v1Limit(miB uint64) string {
	if miB == 0 {
		return "-1"
	}
	return bytesOf(miB)
}

// v1MemSwLimit is memory.memsw.limit_in_bytes for s, as rendered: memory
// plus swap when both are limited, else no limit.
func v1MemSwLimit(s virt.ContainerSpec) string {
	if s.MemoryMiB == 0 || s.SwapMiB == 0 {
		return "-1"
	}
	return bytesOf(s.MemoryMiB + s.SwapMiB)
}

func v2Limit(miB uint64) string {
	if miB == 0 {
		return "max"
	}
	return bytesOf(miB)
}

// cpuSet is a set of CPU numbers, as the kernel's list format ("0-3,5")
// names them.
type cpuSet map[int]bool

// parseCPUSet reads the kernel's CPU list format. virt.ContainerSpec's
// Validate has checked the syntax of what users give; this also reads
// what the kernel says.
func parseCPUSet(list string) (cpuSet, error) {
	set := cpuSet{}
	list = strings.TrimSpace(list)
	if list == "" {
		return set, nil
	}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q is not a CPU list", list)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a CPU list", list)
			}
		}
		if b > 8191 { // the kernel's largest NR_CPUS
			return nil, fmt.Errorf("%q names CPUs beyond 8191", list)
		}
		for i := a; i <= b; i++ {
			set[i] = true
		}
	}
	return set, nil
}

// missing lists the CPUs of s that are not in host, in order.
func (s cpuSet) missing(host cpuSet) []int {
	var out []int
	for i := range s {
		if !host[i] {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}
