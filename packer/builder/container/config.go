//go:generate packer-sdc mapstructure-to-hcl2 -type Config,BootstrapConfig,LXCTemplateConfig

package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
	"github.com/hashicorp/packer-plugin-sdk/uuid"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// Bootstrap tools the builder knows how to drive. debootstrap is the one
// this project tests; dnf and zypper are accepted where the host has them.
const (
	ToolDebootstrap = "debootstrap"
	ToolDNF         = "dnf"
	ToolZypper      = "zypper"
)

var bootstrapTools = []string{ToolDebootstrap, ToolDNF, ToolZypper}

// debootstrapVariants are debootstrap's --variant values; "-" is its name
// for its own default (required and important packages).
var debootstrapVariants = []string{"minbase", "buildd", "fakechroot", "-"}

// Output formats of output_archive.
const (
	FormatTarGz = "tar.gz"
	FormatLXD   = "lxd"
)

var outputFormats = []string{FormatTarGz, FormatLXD}

// DefaultDebianMirror is debootstrap's mirror when bootstrap names none.
const DefaultDebianMirror = "http://deb.debian.org/debian"

// Defaults of the timeouts.
const (
	DefaultStopTimeout    = 30 * time.Second
	DefaultAddressTimeout = 2 * time.Minute
	DefaultBootTimeout    = 2 * time.Minute
)

// lookPath finds bootstrap tools; tests replace it.
var lookPath = exec.LookPath

// BootstrapConfig builds the root file system on the host with a
// distribution's bootstrap tool.
type BootstrapConfig struct {
	// The bootstrap tool: `debootstrap` (default), `dnf` or `zypper`. It
	// must be installed on the host running Packer.
	Tool string `mapstructure:"tool"`
	// The release to install: a Debian or Ubuntu suite for debootstrap
	// (`bookworm`), the release version for dnf and zypper (`40`, `15.6`).
	Release string `mapstructure:"release" required:"true"`
	// The package mirror. Defaults to `http://deb.debian.org/debian` for
	// debootstrap; required for dnf and zypper (the repository's base URL).
	Mirror string `mapstructure:"mirror"`
	// debootstrap's `--variant`: `minbase` (default), `buildd`,
	// `fakechroot`, or `-` for debootstrap's own default.
	Variant string `mapstructure:"variant"`
	// Extra packages installed by the bootstrap tool on the host, so the
	// container needs no network for them. A root file system without
	// `/sbin/init` is built with a stand-in init; add `init` (or
	// `systemd-sysv`, `sysvinit-core`) for templates whose clones boot.
	Packages []string `mapstructure:"packages"`
}

// LXCTemplateConfig runs an LXC template script.
type LXCTemplateConfig struct {
	// The template script: a name under LXC's templates (`busybox`,
	// `debian`) or an absolute path.
	Name string `mapstructure:"name" required:"true"`
	// Arguments passed to the template script.
	Args []string `mapstructure:"args"`
}

// Config is the virt-container builder's configuration.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Build the root file system with a bootstrap tool on the host. One
	// of `bootstrap`, `archive`, `lxc_template` and `template` is required.
	Bootstrap *BootstrapConfig `mapstructure:"bootstrap"`
	// A tarball of a root file system (plain, gzip, bzip2, xz or zstd).
	Archive string `mapstructure:"archive"`
	// Run an LXC template script.
	LXCTemplate *LXCTemplateConfig `mapstructure:"lxc_template"`
	// A stopped template container on the host to start from: the build
	// container is its copy-on-write (overlayfs) snapshot clone.
	Template string `mapstructure:"template"`

	// Name of the build container. Defaults to `output_template` when that
	// is set (the build container becomes the template), else to
	// `packer-<id>`.
	ContainerName string `mapstructure:"container_name"`
	// The container's hostname. Defaults to the container's name.
	Hostname string `mapstructure:"hostname"`
	// Map the container's ids to root's subordinate ranges (`/etc/subuid`,
	// `/etc/subgid`). Defaults to `true`.
	Unprivileged *bool `mapstructure:"unprivileged"`
	// LXC's container directory. Defaults to LXC's (`/var/lib/lxc`).
	LXCPath string `mapstructure:"lxc_path"`
	// The host bridge the container's `eth0` joins. Defaults to `lxcbr0`.
	Bridge string `mapstructure:"bridge"`
	// A static IPv4 address for `eth0` in CIDR form (`10.0.3.50/24`), set by
	// LXC before init starts, so it needs no DHCP client in the container.
	// Default: none (DHCP, if the container runs a client).
	IPv4Address string `mapstructure:"ipv4_address"`
	// The default gateway with `ipv4_address`.
	IPv4Gateway string `mapstructure:"ipv4_gateway"`
	// Wait until the container has an IPv4 address before provisioning
	// (for provisioners that download). Default `false`.
	WaitForAddress bool `mapstructure:"wait_for_address"`
	// How long to wait for the address. Default `2m`.
	AddressTimeout time.Duration `mapstructure:"address_timeout"`
	// How long to wait, after the start, for the container's init to finish
	// booting before provisioning begins (systemd: `systemctl
	// is-system-running --wait`; sysvinit: until rcS is done, which empties
	// `/tmp`, where provisioners upload their scripts). When it runs out,
	// provisioning begins anyway. Default `2m`.
	BootTimeout time.Duration `mapstructure:"boot_timeout"`
	// How long init may take to shut the container down cleanly before it
	// is killed. Default `30s`.
	StopTimeout time.Duration `mapstructure:"stop_timeout"`

	// The template container to leave on the host, which
	// `virt_container.template` clones. At least one of `output_template`
	// and `output_archive` is required.
	OutputTemplate string `mapstructure:"output_template"`
	// Path of a root file system archive to write; a metadata file
	// (`<output_archive>.json`: os, release, arch, build_time and
	// `metadata`) is written beside it.
	OutputArchive string `mapstructure:"output_archive"`
	// `tar.gz` (default): a gzip tarball of the root file system, the
	// form `virt_container.archive` takes. `lxd`: an LXD/Incus unified image
	// (`metadata.yaml` and `rootfs/`), for `incus image import`.
	OutputFormat string `mapstructure:"output_format"`
	// Extra metadata keys (snake_case) written with the standard ones; `os`,
	// `release` and `arch` may be overridden, `build_time` may not.
	Metadata map[string]string `mapstructure:"metadata"`

	ctx interpolate.Context
}

// metadataKeyRE is the rule the LXC layer applies to metadata keys
// (snake_case, usable as HCL map keys and shell names).
var metadataKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Prepare decodes raws into c, fills in defaults and reports every problem
// at once, each naming its field.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         BuilderID,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...)
	if err != nil {
		return nil, err
	}
	var errs *packersdk.MultiError
	add := func(format string, args ...any) {
		errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, args...))
	}
	var warnings []string

	c.prepareSource(add)

	if c.Unprivileged == nil {
		t := true
		c.Unprivileged = &t
	}
	if c.Bridge == "" {
		c.Bridge = virt.DefaultContainerBridge
	}
	if c.BootTimeout == 0 {
		c.BootTimeout = DefaultBootTimeout
	}
	if c.AddressTimeout == 0 {
		c.AddressTimeout = DefaultAddressTimeout
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	switch {
	case c.AddressTimeout < 0:
		add("address_timeout: must not be negative, got %s", c.AddressTimeout)
	case c.StopTimeout < 0:
		add("stop_timeout: must not be negative, got %s", c.StopTimeout)
	}
	if c.BootTimeout < 0 {
		add("boot_timeout: must not be negative, got %s", c.BootTimeout)
	}

	// Outputs.
	if c.OutputTemplate == "" && c.OutputArchive == "" {
		add("output_template or output_archive: at least one output is required (a template container to leave on the host, or a root file system archive)")
	}
	if c.OutputTemplate != "" {
		switch {
		case !virt.ValidContainerName(c.OutputTemplate):
			add("output_template: %q is not a valid container name: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '-' or '.'", c.OutputTemplate)
		case c.OutputTemplate == c.Template:
			add("output_template: %q is the source template; a build cannot replace the template it clones", c.OutputTemplate)
		}
	}
	if c.OutputArchive != "" {
		abs, err := filepath.Abs(c.OutputArchive)
		if err != nil {
			add("output_archive: %v", err)
		} else {
			c.OutputArchive = abs
			if st, err := os.Stat(filepath.Dir(abs)); err != nil || !st.IsDir() {
				add("output_archive: directory %s does not exist", filepath.Dir(abs))
			}
		}
	}
	if c.OutputFormat == "" {
		c.OutputFormat = FormatTarGz
	}
	if !slices.Contains(outputFormats, c.OutputFormat) {
		add("output_format: %q is not one of %s", c.OutputFormat, quoteList(outputFormats))
	} else if c.OutputFormat != FormatTarGz && c.OutputArchive == "" {
		warnings = append(warnings, fmt.Sprintf("output_format %q has no effect without output_archive", c.OutputFormat))
	}
	for _, k := range sortedKeys(c.Metadata) {
		switch {
		case !metadataKeyRE.MatchString(k):
			add("metadata[%q]: not a metadata key: use 1 to 64 lower-case letters, digits and '_', starting with a letter", k)
		case k == virt.MetadataBuildTime:
			add("metadata[%q]: set by the build; it cannot be given", k)
		case strings.ContainsAny(c.Metadata[k], "\r\n\x00"):
			add("metadata[%q]: value must be a single line", k)
		}
	}

	// Names: the build container becomes output_template.
	switch {
	case c.ContainerName == "" && c.OutputTemplate != "":
		c.ContainerName = c.OutputTemplate
	case c.ContainerName == "":
		c.ContainerName = "packer-" + uuid.TimeOrderedUUID()[:8]
	case c.OutputTemplate != "" && c.ContainerName != c.OutputTemplate:
		add("container_name: the build container becomes output_template %q; leave container_name unset or set it to the same name", c.OutputTemplate)
	}

	// The rest of the container is checked by the layer's own rules, so
	// the builder accepts exactly what the provider accepts.
	spec := c.containerSpec("/placeholder.tar")
	if err := spec.Validate(); err != nil {
		var se virt.SpecErrors
		if errors.As(err, &se) {
			for _, e := range se {
				if f, ok := specFieldNames[e.Field]; ok {
					add("%s: %s", f, e.Reason)
				} else if !strings.HasPrefix(e.Field, "template") && !strings.HasPrefix(e.Field, "archive") && !strings.HasPrefix(e.Field, "lxc_template") {
					add("%s: %s", e.Field, e.Reason)
				}
			}
		} else {
			add("%v", err)
		}
	}
	if c.WaitForAddress && c.Bridge == "" {
		add("wait_for_address: the container has no interface")
	}

	if errs != nil && len(errs.Errors) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

// specFieldNames maps the layer's spec fields to this config's names;
// source fields are checked here before the spec is built.
var specFieldNames = map[string]string{
	"name":                       "container_name",
	"hostname":                   "hostname",
	"interfaces[0].bridge":       "bridge",
	"interfaces[0].ipv4_address": "ipv4_address",
	"interfaces[0].ipv4_gateway": "ipv4_gateway",
}

func (c *Config) prepareSource(add func(string, ...any)) {
	var set []string
	if c.Bootstrap != nil {
		set = append(set, "bootstrap")
	}
	if c.Archive != "" {
		set = append(set, "archive")
	}
	if c.LXCTemplate != nil {
		set = append(set, "lxc_template")
	}
	if c.Template != "" {
		set = append(set, "template")
	}
	switch len(set) {
	case 0:
		add("bootstrap, archive, lxc_template or template: a build needs exactly one source (none is set)")
	case 1:
	default:
		add("%s: a build needs exactly one source, got %s", strings.Join(set, ", "), strings.Join(set, " and "))
	}

	if b := c.Bootstrap; b != nil {
		if b.Tool == "" {
			b.Tool = ToolDebootstrap
		}
		if !slices.Contains(bootstrapTools, b.Tool) {
			add("bootstrap.tool: %q is not one of %s", b.Tool, quoteList(bootstrapTools))
		} else if _, err := lookPath(b.Tool); err != nil {
			add("bootstrap.tool: %s is not installed on this host (not found in PATH)", b.Tool)
		}
		if b.Release == "" {
			add("bootstrap.release: required (a suite such as bookworm for debootstrap, a release version for dnf and zypper)")
		} else if strings.ContainsAny(b.Release, " /\t\n") || strings.HasPrefix(b.Release, "-") {
			add("bootstrap.release: %q is not a release name", b.Release)
		}
		switch {
		case b.Mirror == "" && b.Tool == ToolDebootstrap:
			b.Mirror = DefaultDebianMirror
		case b.Mirror == "" && b.Tool != ToolDebootstrap:
			add("bootstrap.mirror: required for %s (the repository's base URL)", b.Tool)
		case !strings.Contains(b.Mirror, "://") && !strings.HasPrefix(b.Mirror, "/"):
			add("bootstrap.mirror: %q is neither a URL nor an absolute path", b.Mirror)
		}
		switch {
		case b.Tool == ToolDebootstrap && b.Variant == "":
			b.Variant = "minbase"
		case b.Tool == ToolDebootstrap && !slices.Contains(debootstrapVariants, b.Variant):
			add("bootstrap.variant: %q is not one of %s", b.Variant, quoteList(debootstrapVariants))
		case b.Tool != ToolDebootstrap && b.Variant != "":
			add("bootstrap.variant: only debootstrap has variants, not %s", b.Tool)
		}
		if b.Tool != ToolDebootstrap && len(b.Packages) == 0 {
			add("bootstrap.packages: %s installs only what it is asked for: name at least one package", b.Tool)
		}
		for i, p := range b.Packages {
			if p == "" || strings.ContainsAny(p, " ,\t\n") || strings.HasPrefix(p, "-") {
				add("bootstrap.packages[%d]: %q is not a package name", i, p)
			}
		}
	}
	if c.Archive != "" {
		abs, err := filepath.Abs(c.Archive)
		if err == nil {
			c.Archive = abs
		}
		if st, err := os.Stat(c.Archive); err != nil {
			add("archive: %v", err)
		} else if !st.Mode().IsRegular() {
			add("archive: %s is not a regular file", c.Archive)
		}
	}
	if t := c.LXCTemplate; t != nil && t.Name == "" {
		add("lxc_template.name: required: the name of an LXC template script (busybox, debian...) or its absolute path")
	}
	if c.Template != "" && !virt.ValidContainerName(c.Template) {
		add("template: %q is not a valid container name", c.Template)
	}
}

// containerSpec is the build container; archive stands in for the source
// when the build bootstraps its own.
func (c *Config) containerSpec(archive string) virt.ContainerSpec {
	s := virt.ContainerSpec{
		Name:         c.ContainerName,
		Hostname:     c.Hostname,
		Template:     c.Template,
		Archive:      c.Archive,
		Unprivileged: c.Unprivileged != nil && *c.Unprivileged,
	}
	if c.Bootstrap != nil {
		s.Archive = archive
	}
	if c.LXCTemplate != nil {
		s.LXCTemplate = &virt.LXCTemplate{Name: c.LXCTemplate.Name, Args: c.LXCTemplate.Args}
	}
	if c.Bridge != "" {
		s.Interfaces = []virt.ContainerInterfaceSpec{{
			Bridge:      c.Bridge,
			IPv4Address: c.IPv4Address,
			IPv4Gateway: c.IPv4Gateway,
		}}
	}
	return s
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
