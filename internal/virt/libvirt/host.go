package libvirt

import (
	"context"
	"fmt"
	"slices"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var _ virt.HostBackend = (*Client)(nil)

// HostInfo reports the host's identity, size and what libvirt offers on it.
//
// KVMAvailable is what libvirt says: the kvm domain type is offered for the
// host's architecture, which libvirt decides from /dev/kvm being usable. It
// cannot tell whether KVM guests actually run: inside a nested VM /dev/kvm
// may open fine while guests hang at their first instructions. Callers that
// must boot guests on such hosts choose the qemu (TCG) domain type
// themselves. LXCVersion is left empty; the LXC backend fills it.
func (c *Client) HostInfo(ctx context.Context) (*virt.HostInfo, error) {
	info := &virt.HostInfo{}
	var capsXML, model string
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		if info.Hostname, err = lv.ConnectGetHostname(); err != nil {
			return fmt.Errorf("get hostname: %w", err)
		}
		rModel, memKiB, cpus, _, _, _, _, _, err := lv.NodeGetInfo()
		if err != nil {
			return fmt.Errorf("get node info: %w", err)
		}
		model = cString(rModel[:])
		info.CPUs = uint(cpus)
		if info.MemoryBytes, err = hostMemoryBytes(lv, memKiB); err != nil {
			return err
		}
		if capsXML, err = lv.ConnectGetCapabilities(); err != nil {
			return fmt.Errorf("get capabilities: %w", err)
		}
		libVer, err := lv.ConnectGetLibVersion()
		if err != nil {
			return fmt.Errorf("get libvirt version: %w", err)
		}
		info.LibvirtVersion = formatVersion(libVer)
		hvVer, err := lv.ConnectGetVersion()
		if err != nil {
			return fmt.Errorf("get hypervisor version: %w", err)
		}
		info.HypervisorVersion = formatVersion(hvVer)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("host info from %s: %w", c.uri, err)
	}

	var caps libvirtxml.Caps
	if err := caps.Unmarshal(capsXML); err != nil {
		return nil, fmt.Errorf("host info from %s: parse capabilities: %w", c.uri, err)
	}
	info.Arch = model
	if caps.Host.CPU != nil && caps.Host.CPU.Arch != "" {
		// NodeGetInfo's "model" is the CPU model on some drivers; the
		// capabilities name the architecture itself.
		info.Arch = caps.Host.CPU.Arch
	}
	info.DomainTypes = domainTypes(&caps, info.Arch)
	info.KVMAvailable = slices.Contains(info.DomainTypes, string(virt.DomainKVM))
	return info, nil
}

// hostMemoryBytes prefers the kernel's total (/proc/meminfo MemTotal, which
// the all-cells memory stats report) to NodeGetInfo's figure: libvirt builds
// the latter from the NUMA nodes' sizes, which on some virtual hosts cover
// only part of the memory (7 GiB of 24 on the machines tests run on). Drivers
// without memory stats, such as the test driver, get NodeGetInfo's figure.
func hostMemoryBytes(lv *golibvirt.Libvirt, nodeInfoKiB uint64) (uint64, error) {
	const allCells = -1 // VIR_NODE_MEMORY_STATS_ALL_CELLS
	_, n, err := lv.NodeGetMemoryStats(0, allCells, 0)
	if golibvirt.ErrorNumber(libvirtCode(err)) == golibvirt.ErrNoSupport {
		return nodeInfoKiB * 1024, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count memory stats: %w", err)
	}
	stats, _, err := lv.NodeGetMemoryStats(n, allCells, 0)
	if err != nil {
		return 0, fmt.Errorf("get memory stats: %w", err)
	}
	for _, s := range stats {
		if s.Field == golibvirt.NodeMemoryStatsTotal {
			return s.Value * 1024, nil
		}
	}
	return nodeInfoKiB * 1024, nil
}

// domainTypes lists, in the order libvirt gives them and without repeats, the
// domain types offered for guests of the host's own architecture: a type
// offered only for emulated architectures says nothing about acceleration.
func domainTypes(caps *libvirtxml.Caps, arch string) []string {
	types := []string{}
	for _, g := range caps.Guests {
		if g.Arch.Name != arch {
			continue
		}
		for _, d := range g.Arch.Domains {
			if !slices.Contains(types, d.Type) {
				types = append(types, d.Type)
			}
		}
	}
	return types
}

// formatVersion turns libvirt's packed version number (major*1,000,000 +
// minor*1,000 + micro) into major.minor.micro.
func formatVersion(v uint64) string {
	return fmt.Sprintf("%d.%d.%d", v/1000000, v/1000%1000, v%1000)
}

// cString reads a NUL-terminated C char array.
func cString(b []int8) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}
