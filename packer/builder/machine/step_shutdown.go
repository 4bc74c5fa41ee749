package machine

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/redact"
)

const defaultShutdownTimeout = 5 * time.Minute

// stepShutdown stops the guest cleanly: shutdown_command over the
// communicator, then a wait for the guest to power off; without one, the
// ACPI power button. A guest that does not stop in shutdown_timeout fails
// the build: a template cut off mid-write is worse than none.
type stepShutdown struct{}

func (s *stepShutdown) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)
	timeout := c.ShutdownTimeout
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
	}
	comm, _ := state.Get("communicator").(packersdk.Communicator)
	if c.ShutdownCommand == "" || comm == nil {
		ui.Say("Shutting down the guest (ACPI)...")
		if err := d.ShutdownMachine(ctx, c.VMName, timeout); err != nil {
			return halt(state, fmt.Errorf("shut down %q: %w", c.VMName, err))
		}
		return multistep.ActionContinue
	}
	// The UI's messages go to Packer's log as well; a shutdown command may
	// set secrets as NAME='value' for what it runs.
	ui.Say(fmt.Sprintf("Shutting down the guest with %q...", redact.ShellEnv(c.ShutdownCommand)))
	cmd := &packersdk.RemoteCmd{Command: c.ShutdownCommand}
	if err := comm.Start(ctx, cmd); err != nil {
		return halt(state, fmt.Errorf("shutdown_command: %w", err))
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := d.WaitMachineStopped(wctx, c.VMName); err != nil {
		return halt(state, fmt.Errorf("the guest did not power off within shutdown_timeout (%s) after shutdown_command: %w", timeout, err))
	}
	return multistep.ActionContinue
}

func (s *stepShutdown) Cleanup(multistep.StateBag) {}
