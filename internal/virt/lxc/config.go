package lxc

import (
	"bufio"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// A container's configuration lives in two files. LXC's own config (the
// template's, archive's or clone's base, stripped of every key the spec
// manages) ends with an lxc.include of ManagedConfigName, which holds exactly
// what the spec renders. Reading that file back tells the spec's mounts and
// extra keys apart from the template's own (the busybox template, for one,
// adds bind mounts of its own), and LXC never rewrites an included file the
// way it rewrites (and strips comments from) the main config on a clone.
const ManagedConfigName = "virt.conf"

const managedHeader = "# Written by terraform-provider-virt from the container's spec; LXC's own\n" +
	"# settings are in ./config, which includes this file last.\n"

// configItem is one "key = value" line of an LXC config file.
type configItem struct {
	Key, Value string
}

func (i configItem) String() string { return i.Key + " = " + i.Value }

const mib = 1 << 20

// Nesting is rendered as the keys of LXC's nesting.conf (minus its AppArmor
// profile name, which exists only where that profile is loaded) so the file
// does not depend on where LXC keeps its shared configs.
var nestingItems = []configItem{
	{"lxc.mount.entry", "proc dev/.lxc/proc proc create=dir,optional 0 0"},
	{"lxc.mount.entry", "sys dev/.lxc/sys sysfs create=dir,optional 0 0"},
	{"lxc.apparmor.allow_nesting", "1"},
}

// renderManagedConfig turns a spec (defaults applied, MACs filled in) into
// the keys of the managed config file, in a fixed order. Limits go to the
// cgroup hierarchy that holds their controller on this host; a limit whose
// controller is on neither is an error wrapping virt.ErrUnsupported.
func renderManagedConfig(s virt.ContainerSpec, cg cgroupLayout) ([]configItem, error) {
	var out []configItem
	add := func(k, v string) { out = append(out, configItem{k, v}) }

	add("lxc.uts.name", s.Hostname)
	for _, e := range s.IDMap {
		add("lxc.idmap", fmt.Sprintf("%s %d %d %d", e.Kind, e.ContainerID, e.HostID, e.Count))
	}
	for i, n := range s.Interfaces {
		p := fmt.Sprintf("lxc.net.%d.", i)
		add(p+"type", "veth")
		add(p+"link", n.Bridge)
		add(p+"name", n.Name)
		add(p+"flags", "up")
		if n.HWAddr != "" {
			add(p+"hwaddr", n.HWAddr)
		}
		if n.IPv4Address != "" {
			add(p+"ipv4.address", n.IPv4Address)
		}
		if n.IPv4Gateway != "" {
			add(p+"ipv4.gateway", n.IPv4Gateway)
		}
		if n.MTU != 0 {
			add(p+"mtu", strconv.FormatUint(uint64(n.MTU), 10))
		}
	}
	for _, m := range s.Mounts {
		opts := "bind"
		if m.ReadOnly {
			opts += ",ro"
		}
		if m.CreateDir {
			opts += ",create=dir"
		}
		// LXC reads entries like fstab lines: the target is relative to the
		// rootfs, and blanks must be octal-escaped.
		add("lxc.mount.entry", fmt.Sprintf("%s %s none %s 0 0",
			fstabEscape(m.Source), fstabEscape(strings.TrimPrefix(m.Target, "/")), opts))
	}
	if s.Nesting {
		out = append(out, nestingItems...)
	}

	if s.MemoryMiB != 0 {
		switch cg.version("memory") {
		case 1:
			add("lxc.cgroup.memory.limit_in_bytes", bytesOf(s.MemoryMiB))
			if s.SwapMiB != 0 {
				if !cg.memsw {
					return nil, fmt.Errorf("swap limit: the host's memory cgroup (v1) has no swap accounting "+
						"(memory.memsw.* files; boot with swapaccount=1): %w", virt.ErrUnsupported)
				}
				// v1 limits memory and swap together.
				add("lxc.cgroup.memory.memsw.limit_in_bytes", bytesOf(s.MemoryMiB+s.SwapMiB))
			}
		case 2:
			add("lxc.cgroup2.memory.max", bytesOf(s.MemoryMiB))
			if s.SwapMiB != 0 {
				add("lxc.cgroup2.memory.swap.max", bytesOf(s.SwapMiB))
			}
		default:
			return nil, noController("memory limit", "memory")
		}
	}
	if s.CPUs != "" {
		switch cg.version("cpuset") {
		case 1:
			add("lxc.cgroup.cpuset.cpus", s.CPUs)
		case 2:
			add("lxc.cgroup2.cpuset.cpus", s.CPUs)
		default:
			return nil, noController("cpus", "cpuset")
		}
	}
	if s.CPUWeight != 0 {
		switch cg.version("cpu") {
		case 1:
			add("lxc.cgroup.cpu.shares", strconv.FormatUint(weightToShares(s.CPUWeight), 10))
		case 2:
			add("lxc.cgroup2.cpu.weight", strconv.FormatUint(s.CPUWeight, 10))
		default:
			return nil, noController("cpu weight", "cpu")
		}
	}
	if s.StartOnBoot {
		add("lxc.start.auto", "1")
	}

	for _, k := range configKeys(s) {
		add(k, s.Config[k])
	}
	return out, nil
}

func noController(what, controller string) error {
	return fmt.Errorf("%s: the %s cgroup controller is on neither cgroup hierarchy of this host: %w", what, controller, virt.ErrUnsupported)
}

func bytesOf(miB uint64) string { return strconv.FormatUint(miB*mib, 10) }

// weightToShares maps cgroup v2's cpu.weight (default 100) to v1's
// cpu.shares (default 1024) as systemd does. Rounding down keeps
// sharesToWeight(weightToShares(w)) == w for every weight.
func weightToShares(w uint64) uint64 { return w * 1024 / 100 }

func sharesToWeight(s uint64) uint64 { return (s*100 + 512) / 1024 }

// comparedKeysPrefix starts the comment line of the managed file that
// lists the extra keys (Config) it has held since the container last ran
// with the file as it stands: the keys whose values pendingRestart compares
// with the running container's. A key the spec has dropped is no longer in
// the file, but may still be in the config the container runs with; this
// line is the only place that remembers it. Extra names cost one lookup
// each and never report anything by themselves.
const comparedKeysPrefix = "# Extra keys to compare with the running container:"

// formatManagedConfig is the managed file's text; comparedKeys (sorted,
// may be empty) go into its comparedKeysPrefix line.
func formatManagedConfig(items []configItem, comparedKeys []string) string {
	var b strings.Builder
	b.WriteString(managedHeader)
	if len(comparedKeys) > 0 {
		b.WriteString(comparedKeysPrefix + " " + strings.Join(comparedKeys, " ") + "\n")
	}
	for _, it := range items {
		b.WriteString(it.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// parseComparedKeys reads the comparedKeysPrefix line of a managed file.
func parseComparedKeys(text string) []string {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, comparedKeysPrefix); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}

// configKeys are the spec's extra keys, sorted.
func configKeys(s virt.ContainerSpec) []string {
	keys := make([]string, 0, len(s.Config))
	for k := range s.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// mergeKeys is the sorted union of key lists.
func mergeKeys(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// parseConfig reads the "key = value" lines of an LXC config, skipping
// comments and blank lines. Like LXC it trims blanks around keys and values
// and drops one pair of quotes around a value.
func parseConfig(text string) []configItem {
	var out []configItem
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		if it, ok := parseConfigLine(sc.Text()); ok {
			out = append(out, it)
		}
	}
	return out
}

func parseConfigLine(line string) (configItem, bool) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return configItem{}, false
	}
	k, v, ok := strings.Cut(line, "=")
	if !ok {
		return configItem{}, false
	}
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		v = v[1 : len(v)-1]
	}
	return configItem{k, v}, true
}

// baseKeyManaged says whether a key of LXC's own config (as a template, an
// archive's defaults or a clone bring it) is one the managed file sets, so
// that it must go from the base. Mount entries, includes and the rootfs stay:
// they belong to the template (its bind mounts, its common.conf), and the
// spec's are added in the managed file.
func baseKeyManaged(key string) bool {
	field, managed := virt.ContainerConfigKeyOwner(key)
	switch {
	case !managed:
		return false
	case field == "mounts", field == "nesting", field == "source":
		return false
	}
	return true
}

// rebaseConfig rewrites LXC's own config text for a container: it drops the
// keys the managed file sets, any include of another container's managed
// file (a clone inherits its template's) and the lines drop matches (keys set
// only for the create call, like its log file), and ends with the include of
// managedPath. Comments and everything else stay as they were.
func rebaseConfig(text, lxcPath, managedPath string, drop func(configItem) bool) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if it, ok := parseConfigLine(line); ok {
			if baseKeyManaged(it.Key) || (drop != nil && drop(it)) {
				continue
			}
			if it.Key == "lxc.include" && isManagedInclude(it.Value, lxcPath) {
				continue
			}
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteString("lxc.include = " + managedPath + "\n")
	return b.String()
}

func isManagedInclude(path, lxcPath string) bool {
	path = filepath.Clean(path)
	return filepath.Base(path) == ManagedConfigName && filepath.Dir(filepath.Dir(path)) == filepath.Clean(lxcPath)
}

// specFromConfig reads a spec's fields back from config keys. With managed
// set the items are the managed file's: bind mounts and unmanaged keys are
// the spec's own. Otherwise they come from a container this package did not
// make, where those cannot be told apart from the template's, so only the
// fields with keys of their own are read.
func specFromConfig(items []configItem, managed bool) (virt.ContainerSpec, error) {
	var s virt.ContainerSpec
	var memV1, memswV1 uint64
	nets := map[int]*virt.ContainerInterfaceSpec{}
	var netIdx []int

	for _, it := range items {
		k, v := it.Key, it.Value
		switch {
		case k == "lxc.uts.name":
			s.Hostname = v
		case k == "lxc.idmap":
			e, err := parseIDMapEntry(v)
			if err != nil {
				return s, err
			}
			s.IDMap = append(s.IDMap, e)
		case strings.HasPrefix(k, "lxc.net."):
			idxStr, sub, ok := strings.Cut(strings.TrimPrefix(k, "lxc.net."), ".")
			idx, err := strconv.Atoi(idxStr)
			if !ok || err != nil || idx < 0 {
				return s, fmt.Errorf("config key %q: not a per-interface lxc.net.N.* key", k)
			}
			n := nets[idx]
			if n == nil {
				n = &virt.ContainerInterfaceSpec{}
				nets[idx] = n
				netIdx = append(netIdx, idx)
			}
			switch sub {
			case "link":
				n.Bridge = v
			case "name":
				n.Name = v
			case "hwaddr":
				n.HWAddr = strings.ToLower(v)
			case "ipv4.address":
				n.IPv4Address = v
			case "ipv4.gateway":
				n.IPv4Gateway = v
			case "mtu":
				mtu, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return s, fmt.Errorf("config key %s: %q is not an MTU", k, v)
				}
				n.MTU = uint(mtu)
			}
		case k == "lxc.mount.entry":
			if !managed {
				continue
			}
			if m, ok := parseBindMount(v); ok {
				s.Mounts = append(s.Mounts, m)
			}
		case k == "lxc.apparmor.allow_nesting":
			s.Nesting = managed && v == "1"
		case k == "lxc.cgroup.memory.limit_in_bytes" || k == "lxc.cgroup2.memory.max":
			b, err := parseBytes(v)
			if err != nil {
				return s, fmt.Errorf("config key %s: %w", k, err)
			}
			s.MemoryMiB = b / mib
			memV1 = b
		case k == "lxc.cgroup.memory.memsw.limit_in_bytes":
			b, err := parseBytes(v)
			if err != nil {
				return s, fmt.Errorf("config key %s: %w", k, err)
			}
			memswV1 = b
		case k == "lxc.cgroup2.memory.swap.max":
			b, err := parseBytes(v)
			if err != nil {
				return s, fmt.Errorf("config key %s: %w", k, err)
			}
			s.SwapMiB = b / mib
		case k == "lxc.cgroup.cpuset.cpus" || k == "lxc.cgroup2.cpuset.cpus":
			s.CPUs = v
		case k == "lxc.cgroup.cpu.shares":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return s, fmt.Errorf("config key %s: %q is not a number", k, v)
			}
			s.CPUWeight = sharesToWeight(n)
		case k == "lxc.cgroup2.cpu.weight":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return s, fmt.Errorf("config key %s: %q is not a number", k, v)
			}
			s.CPUWeight = n
		case k == "lxc.start.auto":
			s.StartOnBoot = v == "1"
		default:
			if !managed {
				continue
			}
			if _, owned := virt.ContainerConfigKeyOwner(k); owned {
				continue
			}
			if s.Config == nil {
				s.Config = map[string]string{}
			}
			s.Config[k] = v
		}
	}
	if memswV1 > memV1 {
		s.SwapMiB = (memswV1 - memV1) / mib
	}
	slices.Sort(netIdx)
	for _, i := range netIdx {
		s.Interfaces = append(s.Interfaces, *nets[i])
	}
	s.Unprivileged = len(s.IDMap) > 0
	return s, nil
}

func parseIDMapEntry(v string) (virt.IDMapEntry, error) {
	f := strings.Fields(v)
	if len(f) != 4 || (f[0] != "u" && f[0] != "g") {
		return virt.IDMapEntry{}, fmt.Errorf("lxc.idmap %q is not \"u|g container-id host-id count\"", v)
	}
	var n [3]uint32
	for i, s := range f[1:] {
		x, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return virt.IDMapEntry{}, fmt.Errorf("lxc.idmap %q: %q is not an id", v, s)
		}
		n[i] = uint32(x)
	}
	return virt.IDMapEntry{Kind: f[0], ContainerID: n[0], HostID: n[1], Count: n[2]}, nil
}

// parseBindMount reads back an entry renderManagedConfig wrote for a
// MountSpec; other entries (nesting's proc and sys) report false.
func parseBindMount(v string) (virt.MountSpec, bool) {
	f := strings.Fields(v)
	if len(f) < 4 {
		return virt.MountSpec{}, false
	}
	opts := strings.Split(f[3], ",")
	if !slices.Contains(opts, "bind") && !slices.Contains(opts, "rbind") {
		return virt.MountSpec{}, false
	}
	return virt.MountSpec{
		Source:    fstabUnescape(f[0]),
		Target:    "/" + strings.TrimPrefix(fstabUnescape(f[1]), "/"),
		ReadOnly:  slices.Contains(opts, "ro"),
		CreateDir: slices.Contains(opts, "create=dir"),
	}, true
}

// parseBytes reads a memory limit as the kernel writes or accepts it: bytes,
// optionally with a K, M or G suffix.
func parseBytes(v string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(v, "K") || strings.HasSuffix(v, "k"):
		mult, v = 1<<10, v[:len(v)-1]
	case strings.HasSuffix(v, "M") || strings.HasSuffix(v, "m"):
		mult, v = 1<<20, v[:len(v)-1]
	case strings.HasSuffix(v, "G") || strings.HasSuffix(v, "g"):
		mult, v = 1<<30, v[:len(v)-1]
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a byte count", v)
	}
	return n * mult, nil
}

// fstabEscape octal-escapes what would split an fstab-style field, as
// getmntent(3), which LXC parses mount entries with, expects.
func fstabEscape(s string) string {
	r := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`)
	return r.Replace(s)
}

func fstabUnescape(s string) string {
	r := strings.NewReplacer(`\134`, `\`, `\040`, " ", `\011`, "\t", `\012`, "\n")
	return r.Replace(s)
}
