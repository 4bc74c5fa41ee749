package machine

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// stepInstallerReboot lets an installer booted straight from its ISO's
// kernel and initrd (iso_kernel) reboot into the system it installed.
//
// QEMU handles a guest's reboot in place and keeps its -kernel, so the
// installer would start over, forever. So, right after the start, the
// machine's persistent definition loses the direct boot (its next start
// boots from the build disk, then the ISO, as a machine without one does),
// and the guest's first reboot is turned into a power cycle: on libvirt's
// reboot event the machine is stopped and started again. By then the guest
// has done its part of a reboot (unmounted, synced), so the stop loses
// nothing. Later reboots (by provisioners) are left to QEMU: the machine
// already boots from its disk.
type stepInstallerReboot struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *stepInstallerReboot) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	if _, ok := state.Get(stateKernel).(*virt.DirectBoot); !ok {
		return multistep.ActionContinue // no iso_kernel: nothing to undo
	}
	c := state.Get(stateConfig).(*Config)
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)

	// The watch first: an installer that fails at once may reboot quickly.
	wctx, cancel := context.WithCancel(ctx)
	watching := make(chan error, 1)
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		err := d.WaitMachineReboot(wctx, c.VMName, func() { watching <- nil })
		if err != nil {
			select {
			case watching <- err:
			default:
			}
			if wctx.Err() == nil {
				ui.Error(fmt.Sprintf("Watching %s for the installer's reboot: %v", c.VMName, err))
			}
			return
		}
		ui.Say("The guest rebooted: power-cycling it so that it boots from its disk, not the ISO's kernel...")
		if err := d.PowerCycleMachine(wctx, c.VMName); err != nil && wctx.Err() == nil {
			ui.Error(fmt.Sprintf("Power-cycling %s after the installer's reboot: %v", c.VMName, err))
		}
	}()
	select {
	case err := <-watching:
		if err != nil {
			return halt(state, fmt.Errorf("watch %q for the installer's reboot: %w", c.VMName, err))
		}
	case <-ctx.Done():
		return halt(state, ctx.Err())
	}

	m, err := d.Machine(ctx, c.VMName)
	if err != nil {
		return halt(state, fmt.Errorf("read machine %q: %w", c.VMName, err))
	}
	m.Boot = nil
	if _, err := d.UpdateMachine(ctx, c.VMName, *m, virt.UpdateOptions{}); err != nil {
		return halt(state, fmt.Errorf("drop the ISO's kernel from the next boot of %q: %w", c.VMName, err))
	}
	return multistep.ActionContinue
}

// Cleanup ends the watch (the build is over, or failed).
func (s *stepInstallerReboot) Cleanup(multistep.StateBag) {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}
