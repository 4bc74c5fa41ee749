package container

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
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
