package machine

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/bootcommand"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// stepBoot waits for the guest to be ready for typing (boot_wait_for on the
// serial console, or boot_wait), then types boot_command through send-key.
type stepBoot struct{}

func (s *stepBoot) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)

	switch {
	case c.BootWaitFor != "":
		ui.Say(fmt.Sprintf("Waiting for %q on the serial console...", c.BootWaitFor))
		if err := state.Get(stateConsole).(*consoleLog).waitFor(ctx, regexp.MustCompile(c.BootWaitFor)); err != nil {
			return halt(state, err)
		}
	case c.BootWait > 0 && len(c.BootCommand) > 0:
		ui.Say(fmt.Sprintf("Waiting %s for boot...", c.BootWait))
		select {
		case <-time.After(c.BootWait):
		case <-ctx.Done():
			return halt(state, ctx.Err())
		}
	}
	if len(c.BootCommand) == 0 {
		return multistep.ActionContinue
	}
	ictx := c.ctx
	ictx.Data = state.Get("boot_data")
	command, err := interpolate.Render(c.FlatBootCommand(), &ictx)
	if err != nil {
		return halt(state, fmt.Errorf("boot_command: %w", err))
	}
	seq, err := bootcommand.GenerateExpressionSequence(command)
	if err != nil {
		return halt(state, fmt.Errorf("boot_command: %w", err))
	}
	ui.Say("Typing the boot command...")
	drv := &keyDriver{ctx: ctx, send: d, machine: c.VMName, interval: c.BootGroupInterval}
	if drv.interval <= 0 {
		drv.interval = 20 * time.Millisecond
	}
	if err := seq.Do(ctx, drv); err != nil {
		return halt(state, fmt.Errorf("type the boot command: %w", err))
	}
	return multistep.ActionContinue
}

func (s *stepBoot) Cleanup(multistep.StateBag) {}
