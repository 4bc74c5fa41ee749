package virt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// DefaultContainerBridge is the host bridge a container interface joins
// when it names none: the one lxc-net (and scripts/testenv) sets up.
const DefaultContainerBridge = "lxcbr0"

// MinContainerMemoryMiB is the smallest memory limit a container may have.
// A busybox container peaks at about 2 MiB while LXC sets it up and its init
// starts (measured with LXC 5.0.2); below that the kernel OOM-kills init
// before LXC reports the container running, which surfaces as an obscure
// start failure. 16 MiB leaves headroom for that smallest case and catches
// the likelier mistake of a limit given in the wrong unit (16 meaning GiB).
const MinContainerMemoryMiB = 16

// MaxContainerCPUWeight is the top of the CPUWeight scale, which is cgroup
// v2's cpu.weight (1-10000, kernel default 100). On hosts where the cpu
// controller is on cgroup v1 the weight is converted to cpu.shares the way
// systemd does it (weight * 1024 / 100), so one scale works everywhere.
const MaxContainerCPUWeight = 10000

// WithDefaults returns a copy of s with every unset field given its default,
// so that a spec read back from the host compares equal to the one asked
// for. It is idempotent and never fails; Validate reports what is wrong.
//
// Unprivileged is left alone: false is a meaningful choice (a privileged
// container), so front ends default it to true in their own schema.
func (s ContainerSpec) WithDefaults() ContainerSpec {
	if s.Hostname == "" {
		s.Hostname = s.Name
	}
	if s.LXCTemplate != nil {
		t := *s.LXCTemplate
		t.Args = slices.Clone(t.Args)
		s.LXCTemplate = &t
	}
	s.IDMap = slices.Clone(s.IDMap)
	s.Interfaces = slices.Clone(s.Interfaces)
	for i := range s.Interfaces {
		n := &s.Interfaces[i]
		if n.Bridge == "" {
			n.Bridge = DefaultContainerBridge
		}
		if n.Name == "" {
			n.Name = fmt.Sprintf("eth%d", i)
		}
		// The config is written, and so read back, in lower case.
		n.HWAddr = strings.ToLower(n.HWAddr)
	}
	s.Mounts = slices.Clone(s.Mounts)
	for i := range s.Mounts {
		m := &s.Mounts[i]
		// Paths are written cleaned; cleaning here keeps "/srv/" and "/srv"
		// from reading back as a change, and leaves no ".." in a target
		// that could point out of the rootfs.
		if filepath.IsAbs(m.Source) {
			m.Source = filepath.Clean(m.Source)
		}
		if filepath.IsAbs(m.Target) {
			m.Target = filepath.Clean(m.Target)
		}
	}
	if s.Config != nil {
		c := make(map[string]string, len(s.Config))
		for k, v := range s.Config {
			c[k] = v
		}
		s.Config = c
	}
	s.IPv4Addresses = slices.Clone(s.IPv4Addresses)
	return s
}

// containerNameRE follows what LXC accepts as a directory name under its
// lxcpath and what lxc-* tools handle without quoting: no leading '-' (it
// would read as an option) and no leading '.' (hidden, and "." / "..").
var containerNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

var (
	containerMACRE      = regexp.MustCompile(`^[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)
	containerConfigKey  = regexp.MustCompile(`^lxc\.[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	lxcTemplateNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)
	containerCPUSetPart = regexp.MustCompile(`^([0-9]+)(?:-([0-9]+))?$`)
)

// maxCPUIndex bounds cpuset numbers: the kernel's NR_CPUS tops out at 8192.
const maxCPUIndex = 8191

// ValidContainerName reports whether name is acceptable as a container name.
// Backends check names they are given for lookups with it too, because the
// name becomes a directory under the LXC path.
func ValidContainerName(name string) bool {
	return containerNameRE.MatchString(name)
}

// Validate reports every problem of the spec at once, as SpecErrors whose
// field names are the spec's in snake_case ("interfaces[0].ipv4_address").
// It judges the spec with its defaults applied, so front ends can validate
// raw input. It checks what can be known without the host; the backend
// checks the rest (that a template container exists, a bridge is there).
func (s ContainerSpec) Validate() error {
	s = s.WithDefaults()
	var errs SpecErrors

	if !ValidContainerName(s.Name) {
		errs.add("name", "%q is not a valid container name: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '-' or '.'", s.Name)
	}
	if !containerNameRE.MatchString(s.Hostname) {
		errs.add("hostname", "%q is not a valid hostname: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '-' or '.'", s.Hostname)
	}
	s.validateSource(&errs)
	s.validateIDMap(&errs)
	s.validateLimits(&errs)
	s.validateInterfaces(&errs)
	s.validateMounts(&errs)
	s.validateConfig(&errs)
	return errs.err()
}

func (s ContainerSpec) validateSource(errs *SpecErrors) {
	var set []string
	if s.Template != "" {
		set = append(set, "template")
	}
	if s.Archive != "" {
		set = append(set, "archive")
	}
	if s.LXCTemplate != nil {
		set = append(set, "lxc_template")
	}
	switch len(set) {
	case 0:
		errs.add("template", "a container needs exactly one source: template, archive or lxc_template (none is set)")
	case 1:
	default:
		for _, f := range set[1:] {
			errs.add(f, "conflicts with %s: a container needs exactly one source", set[0])
		}
	}

	if s.Template != "" {
		switch {
		case !ValidContainerName(s.Template):
			errs.add("template", "%q is not a valid container name", s.Template)
		case s.Template == s.Name:
			errs.add("template", "a container cannot be a snapshot clone of itself")
		}
	}
	if s.Archive != "" && hasControl(s.Archive) {
		errs.add("archive", "must not contain control characters, got %q", s.Archive)
	}
	if t := s.LXCTemplate; t != nil {
		switch {
		case t.Name == "":
			errs.add("lxc_template.name", "required: the name of an LXC template script (busybox, debian, download...) or its absolute path")
		case filepath.IsAbs(t.Name):
			if hasControl(t.Name) {
				errs.add("lxc_template.name", "must not contain control characters, got %q", t.Name)
			}
		case !lxcTemplateNameRE.MatchString(t.Name):
			errs.add("lxc_template.name", "%q is neither a template name (letters, digits, '-', '_', '.', '+') nor an absolute path to a template script", t.Name)
		}
		for i, a := range t.Args {
			if strings.ContainsRune(a, 0) {
				errs.add(fmt.Sprintf("lxc_template.args[%d]", i), "must not contain NUL bytes")
			}
		}
	}
}

func (s ContainerSpec) validateIDMap(errs *SpecErrors) {
	if len(s.IDMap) == 0 {
		return
	}
	if !s.Unprivileged {
		errs.add("idmap", "only unprivileged containers use an id map: set unprivileged, or drop idmap")
	}
	type span struct{ from, to uint64 } // container ids [from, to)
	seen := map[string][]span{}
	for i, e := range s.IDMap {
		field := fmt.Sprintf("idmap[%d]", i)
		if e.Kind != "u" && e.Kind != "g" {
			errs.add(field+".kind", "%q is neither \"u\" (user ids) nor \"g\" (group ids)", e.Kind)
			continue
		}
		if e.Count == 0 {
			errs.add(field+".count", "must be at least 1")
			continue
		}
		if uint64(e.ContainerID)+uint64(e.Count) > math.MaxUint32+1 {
			errs.add(field+".count", "container ids %d+%d run past the largest id", e.ContainerID, e.Count)
		}
		if uint64(e.HostID)+uint64(e.Count) > math.MaxUint32+1 {
			errs.add(field+".count", "host ids %d+%d run past the largest id", e.HostID, e.Count)
		}
		cur := span{uint64(e.ContainerID), uint64(e.ContainerID) + uint64(e.Count)}
		for _, o := range seen[e.Kind] {
			if cur.from < o.to && o.from < cur.to {
				errs.add(field, "container %s ids %d-%d overlap another entry", e.Kind, cur.from, cur.to-1)
				break
			}
		}
		seen[e.Kind] = append(seen[e.Kind], cur)
	}
	for _, kind := range []string{"u", "g"} {
		mapsRoot := false
		for _, sp := range seen[kind] {
			if sp.from == 0 {
				mapsRoot = true
			}
		}
		if !mapsRoot {
			errs.add("idmap", "maps no container %sid 0: root in the container would have no host id and the container could not start", kind)
		}
	}
}

func (s ContainerSpec) validateLimits(errs *SpecErrors) {
	const maxMiB = math.MaxInt64 >> 20 // bytes must fit the kernel's signed 64 bits
	switch {
	case s.MemoryMiB != 0 && s.MemoryMiB < MinContainerMemoryMiB:
		errs.add("memory", "%d MiB is less than the minimum of %d MiB (0 means no limit)", s.MemoryMiB, MinContainerMemoryMiB)
	case s.MemoryMiB > maxMiB:
		errs.add("memory", "%d MiB is too large", s.MemoryMiB)
	}
	switch {
	case s.SwapMiB != 0 && s.MemoryMiB == 0:
		errs.add("swap", "a swap limit needs a memory limit: set memory too")
	case s.SwapMiB > maxMiB-s.MemoryMiB:
		errs.add("swap", "%d MiB is too large", s.SwapMiB)
	}
	if s.CPUs != "" {
		if problem := cpusetProblem(s.CPUs); problem != "" {
			errs.add("cpus", "%q is not a cpuset: %s", s.CPUs, problem)
		}
	}
	if s.CPUWeight > MaxContainerCPUWeight {
		errs.add("cpu_weight", "%d is above the maximum of %d (the scale is cgroup v2's cpu.weight, default 100; 0 leaves the default)", s.CPUWeight, MaxContainerCPUWeight)
	}
}

// cpusetProblem checks the kernel's cpuset list syntax ("0-3,5"), returning
// what is wrong or "".
func cpusetProblem(set string) string {
	for _, part := range strings.Split(set, ",") {
		m := containerCPUSetPart.FindStringSubmatch(part)
		if m == nil {
			return fmt.Sprintf("%q is not a CPU number or range (use forms like 0-3,5)", part)
		}
		lo, err := strconv.Atoi(m[1])
		if err != nil || lo > maxCPUIndex {
			return fmt.Sprintf("CPU %s is above %d", m[1], maxCPUIndex)
		}
		if m[2] == "" {
			continue
		}
		hi, err := strconv.Atoi(m[2])
		if err != nil || hi > maxCPUIndex {
			return fmt.Sprintf("CPU %s is above %d", m[2], maxCPUIndex)
		}
		if hi < lo {
			return fmt.Sprintf("range %q runs backwards", part)
		}
	}
	return ""
}

func (s ContainerSpec) validateInterfaces(errs *SpecErrors) {
	names := map[string]int{}
	macs := map[string]int{}
	addrs := map[netip.Addr]int{}
	for i, n := range s.Interfaces {
		field := fmt.Sprintf("interfaces[%d]", i)
		if p := linkNameProblem(n.Bridge); p != "" {
			errs.add(field+".bridge", "%s, got %q", p, n.Bridge)
		}
		if p := linkNameProblem(n.Name); p != "" {
			errs.add(field+".name", "%s, got %q", p, n.Name)
		} else if j, dup := names[n.Name]; dup {
			errs.add(field+".name", "%q is already the name of interfaces[%d]", n.Name, j)
		} else {
			names[n.Name] = i
		}

		if n.HWAddr != "" {
			switch {
			case !containerMACRE.MatchString(n.HWAddr):
				errs.add(field+".hwaddr", "%q is not a MAC address (six colon-separated hex pairs, like 00:16:3e:12:34:56)", n.HWAddr)
			case macFirstOctet(n.HWAddr)&1 == 1:
				errs.add(field+".hwaddr", "%s is a multicast address; an interface needs a unicast one (even first byte)", n.HWAddr)
			default:
				if j, dup := macs[n.HWAddr]; dup {
					errs.add(field+".hwaddr", "%s is already the address of interfaces[%d]", n.HWAddr, j)
				} else {
					macs[n.HWAddr] = i
				}
			}
		}

		var prefix netip.Prefix
		if n.IPv4Address != "" {
			p, err := netip.ParsePrefix(n.IPv4Address)
			switch {
			case err != nil || !p.Addr().Is4():
				errs.add(field+".ipv4_address", "%q is not an IPv4 address in CIDR form (like 10.0.3.10/24)", n.IPv4Address)
			case p.Bits() == 0:
				errs.add(field+".ipv4_address", "%q has a /0 prefix; give the network's prefix length", n.IPv4Address)
			case p.Bits() <= 30 && (p.Addr() == p.Masked().Addr() || p.Addr() == broadcast4(p)):
				errs.add(field+".ipv4_address", "%s is the network's own or broadcast address, not a host address", n.IPv4Address)
			default:
				prefix = p
				if j, dup := addrs[p.Addr()]; dup {
					errs.add(field+".ipv4_address", "%s is already the address of interfaces[%d]", p.Addr(), j)
				} else {
					addrs[p.Addr()] = i
				}
			}
		}
		if n.IPv4Gateway != "" {
			gw, err := netip.ParseAddr(n.IPv4Gateway)
			switch {
			case err != nil || !gw.Is4():
				errs.add(field+".ipv4_gateway", "%q is not an IPv4 address", n.IPv4Gateway)
			case n.IPv4Address == "":
				errs.add(field+".ipv4_gateway", "needs ipv4_address: a gateway is only used with a static address (DHCP supplies its own)")
			case prefix.IsValid() && gw == prefix.Addr():
				errs.add(field+".ipv4_gateway", "%s is the interface's own address", gw)
			}
		}
		if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
			errs.add(field+".mtu", "%d is outside 68-65535 (68 is IPv4's minimum; 0 keeps the bridge's)", n.MTU)
		}
	}
}

// linkNameProblem applies the kernel's rules for network interface names and
// returns what is wrong, or "".
func linkNameProblem(name string) string {
	const maxLen = 15 // IFNAMSIZ less the terminating NUL
	switch {
	case name == "":
		return "must not be empty"
	case len(name) > maxLen:
		return fmt.Sprintf("must be at most %d bytes long (a Linux interface name)", maxLen)
	case name == "." || name == "..":
		return "must not be \".\" or \"..\""
	case strings.ContainsAny(name, "/:") || strings.IndexFunc(name, unicode.IsSpace) >= 0 || hasControl(name):
		return "must not contain '/', ':', spaces or control characters"
	}
	return ""
}

func broadcast4(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b)
}

// macFirstOctet reads the first byte of a MAC that matched containerMACRE;
// its low bit marks multicast addresses.
func macFirstOctet(mac string) byte {
	v, _ := strconv.ParseUint(mac[:2], 16, 8)
	return byte(v)
}

func (s ContainerSpec) validateMounts(errs *SpecErrors) {
	targets := map[string]int{}
	for i, m := range s.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		switch {
		case !filepath.IsAbs(m.Source):
			errs.add(field+".source", "%q is not an absolute path on the host", m.Source)
		case hasControl(m.Source):
			errs.add(field+".source", "must not contain control characters, got %q", m.Source)
		}
		switch {
		case !filepath.IsAbs(m.Target):
			errs.add(field+".target", "%q is not an absolute path in the container", m.Target)
		case hasControl(m.Target):
			errs.add(field+".target", "must not contain control characters, got %q", m.Target)
		case m.Target == "/":
			errs.add(field+".target", "must not be the container's root")
		default:
			if j, dup := targets[m.Target]; dup {
				errs.add(field+".target", "%q is already the target of mounts[%d]", m.Target, j)
			} else {
				targets[m.Target] = i
			}
		}
	}
}

func (s ContainerSpec) validateConfig(errs *SpecErrors) {
	keys := make([]string, 0, len(s.Config))
	for k := range s.Config {
		keys = append(keys, k)
	}
	slices.Sort(keys) // report in a stable order
	for _, k := range keys {
		field := fmt.Sprintf("config[%q]", k)
		if !containerConfigKey.MatchString(k) {
			errs.add(field, "%q is not an LXC config key: keys start with \"lxc.\" and hold letters, digits, '.', '_' and '-'", k)
			continue
		}
		if owner, managed := ContainerConfigKeyOwner(k); managed {
			errs.add(field, "%s", managedKeyReason(k, owner))
			continue
		}
		// A line break in a value would start a new config line, which could
		// set any key behind the validation above.
		if strings.ContainsAny(s.Config[k], "\r\n\x00") {
			errs.add(field, "value must be a single line")
		}
	}
}

// ContainerConfigKeyOwner says which spec field renders the raw LXC config
// key, if any: "hostname", "idmap", "interfaces", "mounts", "memory", "swap",
// "cpus", "cpu_weight", "start_on_boot", "nesting", or "source" for the root
// filesystem that template, archive or lxc_template make. Validate refuses
// such keys in Config (two sources for one setting would fight, and the
// read-back could not say which won), and the LXC backend drops them from
// the configuration a template or a clone brings along before writing its
// own.
//
// Only keys the spec really writes are claimed: lxc.cgroup2.cpu.max, for
// example, has no field and stays available through Config.
func ContainerConfigKeyOwner(key string) (field string, managed bool) {
	k := strings.ToLower(key)
	switch k {
	case "lxc.uts.name":
		return "hostname", true
	case "lxc.idmap", "lxc.id_map":
		return "idmap", true
	case "lxc.net":
		return "interfaces", true
	case "lxc.mount.entry":
		return "mounts", true
	case "lxc.cgroup.memory.limit_in_bytes", "lxc.cgroup2.memory.max":
		return "memory", true
	case "lxc.cgroup.memory.memsw.limit_in_bytes", "lxc.cgroup2.memory.swap.max":
		return "swap", true
	case "lxc.cgroup.cpuset.cpus", "lxc.cgroup2.cpuset.cpus":
		return "cpus", true
	case "lxc.cgroup.cpu.shares", "lxc.cgroup2.cpu.weight", "lxc.cgroup2.cpu.weight.nice":
		return "cpu_weight", true
	case "lxc.start.auto":
		return "start_on_boot", true
	case "lxc.apparmor.allow_nesting", "lxc.include":
		return "nesting", true
	case "lxc.rootfs.path":
		return "source", true
	}
	if strings.HasPrefix(k, "lxc.net.") || strings.HasPrefix(k, "lxc.network") {
		return "interfaces", true
	}
	return "", false
}

// managedKeyReason explains a refused Config key in the user's terms.
func managedKeyReason(key, field string) string {
	k := strings.ToLower(key)
	switch {
	case k == "lxc.include":
		return key + " is managed by nesting, and other includes are not supported: their keys would bypass this validation"
	case strings.HasPrefix(k, "lxc.network"):
		return key + " is LXC's syntax before 3.0, which LXC 5 rejects; interfaces manages networking"
	case field == "idmap":
		return key + " is managed by unprivileged and idmap; set those instead"
	case field == "source":
		return key + " is managed by the source (template, archive or lxc_template)"
	}
	return key + " is managed by " + field + "; set that instead"
}

func hasControl(s string) bool {
	return strings.IndexFunc(s, unicode.IsControl) >= 0
}

// HasClonesError reports that a container cannot be destroyed because
// snapshot clones still use its root filesystem as their lower layer.
type HasClonesError struct {
	Name   string
	Clones []string
}

func (e *HasClonesError) Error() string {
	return fmt.Sprintf("container %q is the template of snapshot clones %s: destroy them first (their root filesystems are overlays on this one)",
		e.Name, strings.Join(e.Clones, ", "))
}

// ContainerMetadataName is the file in a template container's directory
// (beside LXC's config, under the LXC path) that says what the template
// holds. The build that makes a template (the Packer container builder)
// writes it with WriteContainerMetadata; ContainerTemplates reads it back
// into ContainerTemplate.Metadata. It is a JSON object of strings, so that
// tools other than this layer (jq, a shell script) can read it as well; the
// keys every build writes are the Metadata* constants, and a build may add
// more of its own.
const ContainerMetadataName = "virt-metadata.json"

// ContainerMetadataMode is the metadata file's mode: that of the LXC
// config beside it (0640, in a 0770 container directory), so that whoever
// may read the template's config may read what it holds, and nobody else.
// Its readers (ContainerTemplates, in the provider) run as the LXC path's
// owner; neither LXC nor the container reads it.
const ContainerMetadataMode fs.FileMode = 0o640

// Keys of the container metadata file.
const (
	// MetadataOS is the distribution, as os-release's ID: debian, ubuntu.
	MetadataOS = "os"
	// MetadataRelease is its version, as os-release's VERSION_ID: 12, 24.04.
	MetadataRelease = "release"
	// MetadataArch is the architecture, as Go names it: amd64, arm64.
	MetadataArch = "arch"
	// MetadataBuildTime is when the template was built, RFC 3339 in UTC.
	MetadataBuildTime = "build_time"
)

// metadataKeyRE keeps metadata keys usable as map keys in HCL and as
// shell variable names: snake_case.
var metadataKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// NewContainerMetadata returns the metadata every template build writes,
// with built as the build time.
func NewContainerMetadata(osID, release, arch string, built time.Time) map[string]string {
	return map[string]string{
		MetadataOS:        osID,
		MetadataRelease:   release,
		MetadataArch:      arch,
		MetadataBuildTime: built.UTC().Format(time.RFC3339),
	}
}

// ContainerMetadataPath is where the metadata of the container called name
// under lxcPath lives.
func ContainerMetadataPath(lxcPath, name string) string {
	return filepath.Join(lxcPath, name, ContainerMetadataName)
}

// validateContainerMetadata checks what WriteContainerMetadata writes and
// ReadContainerMetadata accepts.
func validateContainerMetadata(md map[string]string) error {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs SpecErrors
	for _, k := range keys {
		field := fmt.Sprintf("metadata[%q]", k)
		switch {
		case !metadataKeyRE.MatchString(k):
			errs.add(field, "%q is not a metadata key: use 1 to 64 lower-case letters, digits and '_', starting with a letter", k)
		case hasControl(md[k]):
			errs.add(field, "value must be a single line without control characters")
		case k == MetadataBuildTime:
			if _, err := time.Parse(time.RFC3339, md[k]); err != nil {
				errs.add(field, "%q is not an RFC 3339 time (like 2026-11-26T21:30:00Z)", md[k])
			}
		}
	}
	return errs.err()
}

// WriteContainerMetadata writes md as the metadata file of the container
// whose directory is containerDir, replacing any earlier one atomically (a
// reader never sees half a file), with ContainerMetadataMode.
func WriteContainerMetadata(containerDir string, md map[string]string) (err error) {
	if err := validateContainerMetadata(md); err != nil {
		return fmt.Errorf("container metadata: %w", err)
	}
	b, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return fmt.Errorf("container metadata: %w", err)
	}
	b = append(b, '\n')
	path := filepath.Join(containerDir, ContainerMetadataName)
	f, err := os.CreateTemp(containerDir, "."+ContainerMetadataName+".*")
	if err != nil {
		return fmt.Errorf("write container metadata: %w", err)
	}
	defer func() {
		if err != nil {
			// The temporary file is all there is to clean up; the error
			// that matters is the one being returned.
			_ = os.Remove(f.Name())
		}
	}()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(ContainerMetadataMode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write container metadata %s: %w", path, err)
	}
	return nil
}

// ReadContainerMetadata reads the metadata file of the container whose
// directory is containerDir; nil without error when there is none (a
// container that no template build made).
func ReadContainerMetadata(containerDir string) (map[string]string, error) {
	path := filepath.Join(containerDir, ContainerMetadataName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read container metadata: %w", err)
	}
	var md map[string]string
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("read container metadata %s: not a JSON object of strings: %w", path, err)
	}
	if err := validateContainerMetadata(md); err != nil {
		return nil, fmt.Errorf("read container metadata %s: %w", path, err)
	}
	return md, nil
}
