package container

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// cleanupTimeout bounds the removal of the build container: the build's
// own context is gone by then when the user interrupted it.
const cleanupTimeout = 2 * time.Minute

// stepCreateContainer makes the build container from the source, and
// removes it in Cleanup unless it became the output template.
type stepCreateContainer struct {
	created string
}

func (s *stepCreateContainer) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get(stateConfig).(*Config)
	drv := state.Get(stateDriver).(driver)
	ui := state.Get(stateUI).(packersdk.Ui)

	archive, _ := state.Get(stateSourceArchive).(string)
	spec := cfg.containerSpec(archive)
	if standIn, _ := state.Get(stateStandInInit).(bool); standIn {
		spec.Config = map[string]string{"lxc.init.cmd": standInInit}
	}
	ui.Say(fmt.Sprintf("Creating build container %q from %s...", spec.Name, sourceDescription(cfg)))
	start := time.Now()
	_, err := drv.CreateContainer(ctx, spec)
	if err != nil {
		if errors.Is(err, virt.ErrExists) {
			// Someone took the name since the check.
			return halt(state, fmt.Errorf("container_name: %w", err))
		}
		return halt(state, fmt.Errorf("create build container %q: %w", spec.Name, err))
	}
	s.created = spec.Name
	ui.Say(fmt.Sprintf("Created in %s", time.Since(start).Round(100*time.Millisecond)))
	return multistep.ActionContinue
}

func (s *stepCreateContainer) Cleanup(state multistep.StateBag) {
	if s.created == "" {
		return
	}
	cfg := state.Get(stateConfig).(*Config)
	if s.created == cfg.OutputTemplate && !buildFailed(state) {
		return // it is the artifact
	}
	drv := state.Get(stateDriver).(driver)
	ui := state.Get(stateUI).(packersdk.Ui)
	ui.Say(fmt.Sprintf("Removing build container %q...", s.created))
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := drv.DestroyContainer(ctx, s.created); err != nil && !errors.Is(err, virt.ErrNotFound) {
		ui.Error(fmt.Sprintf("Could not remove build container %q: %v (remove it with lxc-destroy -n %s)", s.created, err, s.created))
	}
}

func sourceDescription(cfg *Config) string {
	switch {
	case cfg.Bootstrap != nil:
		return "the bootstrapped root file system"
	case cfg.Archive != "":
		return "archive " + cfg.Archive
	case cfg.LXCTemplate != nil:
		return "LXC template " + cfg.LXCTemplate.Name
	}
	return "template container " + cfg.Template
}
