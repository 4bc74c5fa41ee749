package container

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// addressPoll is how often the container's addresses are read while
// waiting for one; LXC has no event for an address.
const addressPoll = 250 * time.Millisecond

// stepStartContainer starts the build container, waits until LXC reports
// it running (and, when asked, until it has an IPv4 address), and puts the
// communicator that executes in it into the state.
type stepStartContainer struct{}

func (s *stepStartContainer) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get(stateConfig).(*Config)
	drv := state.Get(stateDriver).(driver)
	ui := state.Get(stateUI).(packersdk.Ui)

	ui.Say(fmt.Sprintf("Starting build container %q...", cfg.ContainerName))
	if err := drv.StartContainer(ctx, cfg.ContainerName); err != nil {
		return halt(state, fmt.Errorf("start build container: %w", err))
	}
	waitForBoot(ctx, drv, ui, cfg.ContainerName, cfg.BootTimeout)
	if ctx.Err() != nil {
		return halt(state, ctx.Err())
	}
	if cfg.WaitForAddress {
		ui.Say("Waiting for an IPv4 address...")
		addr, err := waitForAddress(ctx, drv, cfg.ContainerName, cfg.AddressTimeout)
		if err != nil {
			return halt(state, err)
		}
		ui.Say("Address: " + addr)
	}
	state.Put(stateCommunicator, &Communicator{driver: drv, name: cfg.ContainerName})
	state.Put("instance_id", cfg.ContainerName)
	return multistep.ActionContinue
}

func (s *stepStartContainer) Cleanup(multistep.StateBag) {}

// bootWaitScript waits, inside the container, until its init has finished
// booting. Provisioning before that races with the boot: Debian's rcS
// (sysvinit) and systemd-tmpfiles (systemd) empty /tmp, where provisioners
// upload their scripts, so a script can vanish between its upload and its
// run. systemd says when its boot is done (is-system-running --wait), once
// it listens on its socket: right after the start, systemctl fails to
// connect and prints no state, and is asked again 100 ms later. sysvinit's
// runlevel says "unknown" until rcS is done, with no event to wait on, so
// it is asked every 100 ms. Other inits (busybox's, whose runlevel is a
// link to busybox and never changes) are not waited for. First, though,
// init must run: for a moment after the start, PID 1 is still LXC's set-up
// of the container, a process of the host's whose executable is no file
// in here (its name is not init's either), until it executes init.
const bootWaitScript = `i=0
while [ $i -lt 100 ] && [ ! -e "$(readlink /proc/1/exe 2>/dev/null)" ]; do sleep 0.1; i=$((i + 1)); done
case "$(cat /proc/1/comm 2>/dev/null)" in
systemd)
	while :; do
		case "$(systemctl is-system-running --wait 2>/dev/null)" in
		"" | offline | initializing | starting) sleep 0.1 ;;
		*) break ;;
		esac
	done
	;;
init)
	if [ -x /sbin/runlevel ] && [ ! -L /sbin/runlevel ]; then
		while [ "$(/sbin/runlevel 2>/dev/null)" = unknown ]; do sleep 0.1; done
	fi
	;;
esac
exit 0`

// waitForBoot runs bootWaitScript in the container for at most timeout;
// when the boot is not done by then, or the wait fails, provisioning
// begins anyway, with a warning.
func waitForBoot(ctx context.Context, drv driver, ui packersdk.Ui, name string, timeout time.Duration) {
	ui.Say("Waiting for the container's init to finish booting...")
	start := time.Now()
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := drv.Exec(bctx, name, virt.ExecSpec{Args: []string{"/bin/sh", "-c", bootWaitScript}})
	switch {
	case ctx.Err() != nil:
	case bctx.Err() != nil:
		ui.Say(fmt.Sprintf("Warning: init had not finished booting after %s (boot_timeout); provisioning anyway", timeout))
	case err != nil:
		ui.Say(fmt.Sprintf("Warning: cannot tell whether init finished booting (%v); provisioning anyway", err))
	default:
		ui.Say(fmt.Sprintf("Init finished booting (waited %s)", time.Since(start).Round(100*time.Millisecond)))
	}
}

func waitForAddress(ctx context.Context, drv driver, name string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(addressPoll)
	defer t.Stop()
	for {
		c, err := drv.Container(ctx, name)
		if err == nil && len(c.IPv4Addresses) > 0 {
			return c.IPv4Addresses[0], nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return "", fmt.Errorf("wait for an IPv4 address of %q: %w (last read: %w)", name, ctx.Err(), err)
			}
			return "", fmt.Errorf("container %q has no IPv4 address after %s: does it run a DHCP client? (or set ipv4_address)", name, timeout)
		case <-t.C:
		}
	}
}
