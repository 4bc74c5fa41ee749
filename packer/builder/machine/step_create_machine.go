package machine

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// bootTemplateData is what boot_command and boot.cmdline may refer to.
type bootTemplateData struct {
	HTTPIP   string
	HTTPPort int
	Name     string
}

// stepCreateMachine defines and starts the build guest: the build disk
// first (it boots), then the installer ISO, the CD and the floppy, one NIC on the
// network, and a pty serial console that libvirt streams to a file here
// (consoleLog), which boot_wait_for, output_directory and provisioners
// (build.ConsoleLog) read. Streamed rather than written by QEMU to a file
// on the host, so that it works the same when the host is remote.
type stepCreateMachine struct {
	stopConsole context.CancelFunc
	consoleDone chan struct{}
	console     *consoleLog
}

func (s *stepCreateMachine) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)

	// The HTTP server's step found it already when it bound to it.
	httpIP, _ := state.Get(stateHTTPIP).(string)
	if httpIP == "" {
		var err error
		if httpIP, err = networkAddress(ctx, d, c.Network); err != nil {
			ui.Say(fmt.Sprintf("No host address on network %q for {{ .HTTPIP }}: %v", c.Network, err))
		}
		state.Put(stateHTTPIP, httpIP)
	}
	data := bootTemplateData{HTTPIP: httpIP, HTTPPort: httpPort(state), Name: c.VMName}

	build := state.Get(stateBuildVolume).(*virt.VolumeSpec)
	disks := []virt.DiskSpec{{VolumeKey: build.Key, Format: build.Format, Bus: c.DiskBus}}
	for _, k := range []string{stateISOVolume, stateCDVolume} {
		if v, ok := state.Get(k).(*virt.VolumeSpec); ok {
			disks = append(disks, virt.DiskSpec{VolumeKey: v.Key, Device: virt.DeviceCDROM, Bus: c.CDROMBus})
		}
	}
	if v, ok := state.Get(stateFloppy).(*virt.VolumeSpec); ok {
		disks = append(disks, virt.DiskSpec{VolumeKey: v.Key, Device: virt.DeviceFloppy})
	}
	var boot *virt.DirectBoot
	if b, ok := state.Get(stateKernel).(*virt.DirectBoot); ok {
		boot = b
	} else if c.Boot != nil {
		boot = &virt.DirectBoot{Kernel: c.Boot.Kernel, Initrd: c.Boot.Initrd, Cmdline: c.Boot.Cmdline}
	}
	if boot != nil && boot.Cmdline != "" {
		ictx := c.ctx
		ictx.Data = data
		cmdline, err := interpolate.Render(boot.Cmdline, &ictx)
		if err != nil {
			return halt(state, fmt.Errorf("boot.cmdline: %w", err))
		}
		boot.Cmdline = cmdline
	}
	console, err := newConsoleLog(filepath.Join(state.Get(stateTempDir).(string), "console.log"))
	if err != nil {
		return halt(state, err)
	}
	s.console = console
	state.Put(stateConsole, console)
	(&packerbuilderdata.GeneratedData{State: state}).Put("ConsoleLog", console.path)
	spec := virt.MachineSpec{
		Name:        c.VMName,
		Type:        virt.DomainType(c.DomainType),
		Description: "packer build " + c.PackerBuildName + ": output " + c.OutputPool + "/" + c.OutputVolume,
		VCPU:        uint(c.VCPU),
		MemoryMiB:   uint64(c.Memory),
		Firmware:    virt.Firmware(c.Firmware),
		Boot:        boot,
		Disks:       disks,
		Interfaces:  []virt.InterfaceSpec{{Network: c.Network, Model: c.NICModel}},
		Console:     virt.ConsoleSpec{Type: virt.ConsolePTY},
		// The guest agent, when the guest runs one, is the last way to its
		// address (after the DHCP lease and ARP).
		QemuAgent: true,
	}
	// Defined first and started once the console stream is up, so that
	// the console log holds the boot from its start: what boot_wait_for
	// looks for (a boot loader's prompt) comes early, and a stream dialled
	// after the start (over SSH to a remote host, a handshake) would miss
	// it.
	m, err := d.CreateMachine(ctx, spec, false)
	if err != nil {
		return halt(state, fmt.Errorf("create machine %q on %s: %w", c.VMName, c.URI, err))
	}
	state.Put(stateMachine, m)
	state.Put("boot_data", data)

	streamCtx, stop := context.WithCancel(ctx)
	s.stopConsole, s.consoleDone = stop, make(chan struct{})
	streaming := make(chan struct{})
	streamErr := make(chan error, 1)
	go func() {
		defer close(s.consoleDone)
		err := d.StreamConsole(streamCtx, c.VMName, console, func() { close(streaming) })
		if err == nil || streamCtx.Err() != nil {
			return
		}
		select {
		case <-streaming:
			ui.Error(fmt.Sprintf("The serial console of %s is no longer recorded: %v", c.VMName, err))
		default: // before the start: the step fails
			streamErr <- err
		}
	}()
	select {
	case <-streaming:
	case err := <-streamErr:
		return halt(state, fmt.Errorf("stream the console of machine %q: %w", c.VMName, err))
	case <-ctx.Done():
		return halt(state, ctx.Err())
	}
	ui.Say(fmt.Sprintf("Starting machine %s (%s, %d vCPU, %d MiB)...", c.VMName, c.DomainType, c.VCPU, c.Memory))
	if err := d.StartMachine(ctx, c.VMName); err != nil {
		return halt(state, fmt.Errorf("start machine %q on %s: %w", c.VMName, c.URI, err))
	}
	return multistep.ActionContinue
}

// Cleanup ends the console stream and removes the build machine, running or
// not.
func (s *stepCreateMachine) Cleanup(state multistep.StateBag) {
	if s.stopConsole != nil {
		s.stopConsole()
		<-s.consoleDone
	}
	if s.console != nil {
		_ = s.console.Close()
	}
	m, ok := state.Get(stateMachine).(*virt.MachineSpec)
	if !ok {
		return
	}
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)
	ctx, cancel := cleanupContext()
	defer cancel()
	if err := d.UndefineMachine(ctx, m.Name); err != nil && !isNotFound(err) {
		ui.Error(fmt.Sprintf("Error removing machine %s: %v", m.Name, err))
	}
}

// networkAddress is the host's IPv4 address on a libvirt network: where the
// guest reaches Packer's HTTP server.
func networkAddress(ctx context.Context, d Driver, network string) (string, error) {
	n, err := d.Network(ctx, network)
	if err != nil {
		return "", err
	}
	return hostAddress(n)
}

// hostAddress is the host's first IPv4 address on the network, from its
// definition.
func hostAddress(n *virt.NetworkSpec) (string, error) {
	for _, a := range n.Addresses {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			if ip, err2 := netip.ParseAddr(strings.TrimSpace(a)); err2 == nil && ip.Is4() {
				return ip.String(), nil
			}
			continue
		}
		if p.Addr().Is4() {
			return p.Addr().String(), nil
		}
	}
	return "", fmt.Errorf("network %q has no IPv4 address", n.Name)
}

func httpPort(state multistep.StateBag) int {
	p, _ := state.Get("http_port").(int)
	return p
}
