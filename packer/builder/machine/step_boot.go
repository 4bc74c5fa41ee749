package machine

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/bootcommand"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// consolePoll is how often boot_wait_for looks at the console log: QEMU
// appends to a plain file and nothing signals a write.
const consolePoll = 200 * time.Millisecond

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
		if err := waitForConsole(ctx, state.Get(stateConsoleLog).(string), regexp.MustCompile(c.BootWaitFor)); err != nil {
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

// waitForConsole waits until the console log matches re.
func waitForConsole(ctx context.Context, path string, re *regexp.Regexp) error {
	t := time.NewTicker(consolePoll)
	defer t.Stop()
	for {
		b, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("read the console log %s: %w", path, err)
		}
		if re.Match([]byte(strings.ReplaceAll(string(b), "\r", ""))) {
			return nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q on the serial console: %w", re, ctx.Err())
		}
	}
}
