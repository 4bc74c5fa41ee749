package container

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// stepStopContainer shuts the build container down: cleanly through its
// init within stop_timeout, else killed.
type stepStopContainer struct{}

func (s *stepStopContainer) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get(stateConfig).(*Config)
	drv := state.Get(stateDriver).(driver)
	ui := state.Get(stateUI).(packersdk.Ui)

	grace := cfg.StopTimeout
	if standIn, _ := state.Get(stateStandInInit).(bool); standIn {
		// The stand-in init ignores the halt signal (it is PID 1 with no
		// handler), and there is nothing to shut down cleanly.
		grace = 0
	}
	ui.Say(fmt.Sprintf("Stopping build container %q...", cfg.ContainerName))
	if err := drv.StopContainer(ctx, cfg.ContainerName, grace); err != nil {
		return halt(state, fmt.Errorf("stop build container: %w", err))
	}
	return multistep.ActionContinue
}

func (s *stepStopContainer) Cleanup(multistep.StateBag) {}
