//go:generate packer-sdc mapstructure-to-hcl2 -type Config,KernelBoot

package machine

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/bootcommand"
	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/shutdowncommand"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

// KernelBoot boots a kernel and initrd straight from files, without a
// boot loader on the disk (and without typing at an installer's menu).
type KernelBoot struct {
	// Host path of the kernel. With an ISO source, use iso_kernel instead to
	// take it from the ISO.
	Kernel string `mapstructure:"kernel"`
	// Host path of the initrd.
	Initrd string `mapstructure:"initrd"`
	// The kernel command line, e.g. "root=/dev/vda console=ttyS0". Installers
	// read their answer file location from it (auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg).
	Cmdline string `mapstructure:"cmdline"`
}

// Config is the virt-machine builder's configuration. Exactly one source:
// an ISO (iso_url or iso_path, with iso_checksum) installed to a new blank
// disk, a local disk image (disk_image), or a volume on the host
// (source_volume) cloned copy-on-write.
type Config struct {
	common.PackerConfig            `mapstructure:",squash"`
	commonsteps.HTTPConfig         `mapstructure:",squash"`
	commonsteps.ISOConfig          `mapstructure:",squash"`
	commonsteps.CDConfig           `mapstructure:",squash"`
	commonsteps.FloppyConfig       `mapstructure:",squash"`
	bootcommand.BootConfig         `mapstructure:",squash"`
	shutdowncommand.ShutdownConfig `mapstructure:",squash"`
	Comm                           communicator.Config `mapstructure:",squash"`

	// libvirt URI of the host to build on. Default qemu:///system.
	// Parameters that switch off the check of the host's identity are
	// refused: no_verify (other than no_verify=0) and known_hosts_verify=auto
	// or ignore. Add the host's SSH key to the known_hosts file, or trust the
	// CA of its TLS certificate with pkipath=DIR, instead.
	URI string `mapstructure:"uri"`
	// A local ISO file (instead of iso_url; iso_checksum is then optional).
	ISOPath string `mapstructure:"iso_path"`
	// Path inside the ISO of the kernel to boot directly (e.g.
	// /install.amd/vmlinuz); with iso_initrd, the installer starts without a
	// boot menu and without typing. Only the first boot: when the installer
	// reboots, the machine is power-cycled and boots from its disk (then the
	// ISO). Needs isoinfo (genisoimage) on this machine.
	ISOKernel string `mapstructure:"iso_kernel"`
	// Path inside the ISO of the initrd (e.g. /install.amd/initrd.gz).
	ISOInitrd string `mapstructure:"iso_initrd"`
	// A local qcow2 or raw disk image to start from; uploaded to the host.
	DiskImage string `mapstructure:"disk_image"`
	// A volume on the host to start from, as pool/name or its key (path);
	// cloned copy-on-write, and flattened into the output.
	SourceVolume string `mapstructure:"source_volume"`
	// Direct kernel boot.
	Boot *KernelBoot `mapstructure:"boot"`
	// A regular expression awaited on the guest's serial console before
	// the boot command is typed (instead of a fixed boot_wait).
	BootWaitFor string `mapstructure:"boot_wait_for"`

	// Name of the build machine. Default: output_volume with "-build".
	VMName string `mapstructure:"vm_name"`
	// Domain type: kvm (default) or qemu (emulation, for hosts without KVM).
	DomainType string `mapstructure:"type"`
	// Virtual CPUs. Default 1.
	VCPU int `mapstructure:"vcpu"`
	// Memory in MiB. Default 1024.
	Memory int `mapstructure:"memory"`
	// Disk size, in bytes or with a suffix (10G, 512M, 1T; powers of 1024).
	// Required with an ISO (the blank disk); with an image or volume, the
	// disk is grown to it.
	DiskSize string `mapstructure:"disk_size"`
	// Disk bus: virtio (default), sata, scsi, ide.
	DiskBus string `mapstructure:"disk_bus"`
	// libvirt network of the NIC. Default "default".
	Network string `mapstructure:"network"`
	// NIC model: virtio (default), e1000, e1000e, rtl8139, vmxnet3.
	NICModel string `mapstructure:"nic_model"`
	// Firmware: bios (default) or efi.
	Firmware string `mapstructure:"firmware"`
	// Bus of the CD-ROMs (the installer ISO, the cd_files CD): sata
	// (default), scsi (virtio-scsi: for guests without an AHCI driver, such
	// as cloud kernels) or ide (old installers).
	CDROMBus string `mapstructure:"cdrom_bus"`

	// Pool of the output volume (and of the build's volumes). Default "default".
	OutputPool string `mapstructure:"output_pool"`
	// Name of the output volume. Default "packer-" and the build's name.
	OutputVolume string `mapstructure:"output_volume"`
	// Format of the output volume: qcow2 (default) or raw.
	Format string `mapstructure:"format"`
	// Write the output as a fresh sparse copy (compressed when qcow2 and the
	// host is this machine) instead of keeping the build disk.
	Compact bool `mapstructure:"compact"`
	// A local directory to receive a copy of the disk, the domain XML,
	// SHA256SUMS and a manifest. Must not exist (or be empty).
	OutputDirectory string `mapstructure:"output_directory"`
	// Prepare the guest for cloning before it shuts down (over the
	// communicator): empty machine-id, no SSH host keys, cloud-init clean,
	// fstrim.
	CleanForClone bool `mapstructure:"clean_for_clone"`

	diskSizeBytes uint64
	// httpBindDefault: http_bind_address was not set, so the HTTP server
	// binds to the host's address on the network (stepHTTPServer), not to
	// the SDK's default of all addresses.
	httpBindDefault bool
	ctx             interpolate.Context
}

var (
	domainTypes  = []string{string(virt.DomainKVM), string(virt.DomainQEMU)}
	firmwares    = []string{string(virt.FirmwareBIOS), string(virt.FirmwareEFI)}
	outputFormat = []string{virt.FormatQCOW2, virt.FormatRaw}
	// The layer's buses without the floppy controller: the build disk
	// and CD-ROMs cannot go there.
	diskBuses  = slices.DeleteFunc(slices.Clone(virt.DiskBuses), func(b string) bool { return b == virt.BusFDC })
	cdromBuses = []string{virt.BusSATA, virt.BusSCSI, virt.BusIDE}
)

// Prepare decodes raws into c and validates it, reporting every problem at
// once.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         BuilderID,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter: &interpolate.RenderFilter{
			// Rendered when typed, when the HTTP server's port is known.
			Exclude: []string{"boot_command", "boot.cmdline"},
		},
	}, raws...)
	if err != nil {
		return nil, err
	}
	var warnings []string
	var errs *packersdk.MultiError
	add := func(format string, a ...any) { errs = packersdk.MultiErrorAppend(errs, fmt.Errorf(format, a...)) }
	addAll := func(es []error) { errs = packersdk.MultiErrorAppend(errs, es...) }

	c.setDefaults()

	// The same check as the connection's own (libvirt.New), made here so
	// that a wrong URI, or one that would skip the host's key or
	// certificate check, fails at validate rather than at the first step.
	if _, err := libvirt.ParseURI(c.URI); err != nil {
		add("uri: %v", err)
	}

	isISO := c.ISOPath != "" || c.RawSingleISOUrl != "" || len(c.ISOUrls) > 0
	sources := []string{}
	if isISO {
		sources = append(sources, "iso_url/iso_path")
	}
	if c.DiskImage != "" {
		sources = append(sources, "disk_image")
	}
	if c.SourceVolume != "" {
		sources = append(sources, "source_volume")
	}
	if len(sources) != 1 {
		add("set exactly one source: iso_url (or iso_path) with iso_checksum, disk_image, or source_volume (%s given)", describeSources(sources))
	}
	if isISO {
		if c.ISOPath != "" {
			if c.RawSingleISOUrl != "" || len(c.ISOUrls) > 0 {
				add("iso_path: set either iso_path or iso_url/iso_urls, not both")
			} else if _, err := os.Stat(c.ISOPath); err != nil {
				add("iso_path: %v", err)
			}
			if c.ISOChecksum == "" {
				c.ISOChecksum = "none"
			}
			c.ISOUrls = []string{c.ISOPath}
		}
		w, es := c.ISOConfig.Prepare(&c.ctx)
		warnings = append(warnings, w...)
		addAll(es)
		if c.DiskSize == "" {
			add("disk_size: required with an ISO source (the size of the blank disk to install to)")
		}
	}
	if c.DiskImage != "" {
		if _, err := virt.ProbeImageFile(c.DiskImage); err != nil {
			add("disk_image: %s: %v", c.DiskImage, err)
		}
	}
	if (c.ISOKernel != "" || c.ISOInitrd != "") && !isISO {
		add("iso_kernel, iso_initrd: only with an ISO source (iso_url or iso_path)")
	}
	if c.ISOInitrd != "" && c.ISOKernel == "" {
		add("iso_initrd: needs iso_kernel")
	}
	if c.Boot != nil {
		switch {
		case c.Boot.Kernel == "" && c.ISOKernel == "":
			add("boot.kernel: required for direct kernel boot (or iso_kernel with an ISO source)")
		case c.Boot.Kernel != "" && c.ISOKernel != "":
			add("boot.kernel: set either boot.kernel or iso_kernel, not both")
		}
		for field, p := range map[string]string{"boot.kernel": c.Boot.Kernel, "boot.initrd": c.Boot.Initrd} {
			if p != "" && !filepath.IsAbs(p) {
				add("%s: %q is not an absolute path on the host", field, p)
			}
		}
	}

	if c.DiskSize != "" {
		n, err := parseSize(c.DiskSize)
		if err != nil {
			add("disk_size: %v", err)
		}
		c.diskSizeBytes = n
	}
	if !slices.Contains(domainTypes, c.DomainType) {
		add("type: %q is not one of %s", c.DomainType, quoted(domainTypes))
	}
	if !slices.Contains(firmwares, c.Firmware) {
		add("firmware: %q is not one of %s", c.Firmware, quoted(firmwares))
	}
	if !slices.Contains(outputFormat, c.Format) {
		add("format: %q is not one of %s", c.Format, quoted(outputFormat))
	}
	if !slices.Contains(diskBuses, c.DiskBus) {
		add("disk_bus: %q is not one of %s", c.DiskBus, quoted(diskBuses))
	}
	if !slices.Contains(cdromBuses, c.CDROMBus) {
		add("cdrom_bus: %q is not one of %s", c.CDROMBus, quoted(cdromBuses))
	}
	if !slices.Contains(virt.InterfaceModels, c.NICModel) {
		add("nic_model: %q is not one of %s", c.NICModel, quoted(virt.InterfaceModels))
	}
	if c.VCPU < 1 {
		add("vcpu: must be at least 1, got %d", c.VCPU)
	}
	if c.Memory < virt.MinMemoryMiB {
		add("memory: %d MiB is less than the minimum of %d MiB", c.Memory, virt.MinMemoryMiB)
	}
	if !machineNameRE.MatchString(c.VMName) {
		add("vm_name: %q is not a valid machine name: use 1 to 64 letters, digits, '-', '_' or '.', starting with a letter or digit", c.VMName)
	}
	for field, v := range map[string]string{"output_volume": c.OutputVolume, "output_pool": c.OutputPool} {
		if es := (virt.VolumeSpec{Name: v, Pool: "p", Format: virt.FormatRaw, CapacityBytes: 1}).Validate(); field == "output_volume" && es != nil {
			add("output_volume: %v", es)
		}
		if v == "" || strings.ContainsRune(v, '/') {
			add("%s: %q is not a valid name (non-empty, no '/')", field, v)
		}
	}
	if c.BootWaitFor != "" {
		if _, err := regexp.Compile(c.BootWaitFor); err != nil {
			add("boot_wait_for: not a regular expression: %v", err)
		}
	}
	if c.OutputDirectory != "" {
		if entries, err := os.ReadDir(c.OutputDirectory); err == nil && len(entries) > 0 && !c.PackerForce {
			add("output_directory: %s exists and is not empty (use -force to replace it)", c.OutputDirectory)
		}
	}
	if c.CleanForClone && c.Comm.Type == "none" {
		add("clean_for_clone: needs a communicator (it runs inside the guest); communicator is \"none\"")
	}

	c.httpBindDefault = c.HTTPAddress == ""
	addAll(c.HTTPConfig.Prepare(&c.ctx))
	if c.servesHTTP() && !c.httpBindDefault && isWildcard(c.HTTPAddress) {
		warnings = append(warnings, fmt.Sprintf("http_bind_address %q: the HTTP server, which serves answer files (and the passwords in them), listens on all of this machine's addresses; "+
			"unset, it binds to the host's address on network %q only", c.HTTPAddress, c.Network))
	}
	addAll(c.CDConfig.Prepare(&c.ctx))
	addAll(c.FloppyConfig.Prepare(&c.ctx))
	addAll(c.BootConfig.Prepare(&c.ctx))
	addAll(c.ShutdownConfig.Prepare(&c.ctx))
	addAll(c.Comm.Prepare(&c.ctx))

	if errs != nil && len(errs.Errors) > 0 {
		return warnings, errs
	}
	return warnings, nil
}

func (c *Config) setDefaults() {
	if c.URI == "" {
		c.URI = "qemu:///system"
	}
	if c.DomainType == "" {
		c.DomainType = string(virt.DomainKVM)
	}
	if c.VCPU == 0 {
		c.VCPU = 1
	}
	if c.Memory == 0 {
		c.Memory = 1024
	}
	if c.DiskBus == "" {
		c.DiskBus = virt.BusVirtio
	}
	if c.CDROMBus == "" {
		c.CDROMBus = virt.BusSATA
	}
	if c.Network == "" {
		c.Network = virt.DefaultNetwork
	}
	if c.NICModel == "" {
		c.NICModel = virt.ModelVirtio
	}
	if c.Firmware == "" {
		c.Firmware = string(virt.FirmwareBIOS)
	}
	if c.OutputPool == "" {
		c.OutputPool = virt.DefaultPool
	}
	if c.OutputVolume == "" && c.PackerBuildName != "" {
		c.OutputVolume = "packer-" + c.PackerBuildName
	}
	if c.Format == "" {
		c.Format = virt.FormatQCOW2
	}
	if c.VMName == "" {
		c.VMName = c.OutputVolume + "-build"
	}
	if c.Comm.Type == "" {
		c.Comm.Type = "ssh"
	}
}

// machineNameRE is the layer's rule for machine names (virt.MachineSpec.Validate).
var machineNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

var sizeRE = regexp.MustCompile(`^\s*([0-9]+)\s*([KMGT]?)(I?B)?\s*$`)

// parseSize reads a size in bytes, or with a K, M, G or T suffix (powers
// of 1024, as qemu-img reads them; "G", "GB" and "GiB" alike).
func parseSize(s string) (uint64, error) {
	m := sizeRE.FindStringSubmatch(strings.ToUpper(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size: use bytes or a number with K, M, G or T (e.g. 10G)", s)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]
	if n == 0 || n > (1<<63)>>shift {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return n << shift, nil
}

func describeSources(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " and ")
}

func quoted(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}
