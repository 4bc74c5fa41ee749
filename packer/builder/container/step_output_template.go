package container

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// stepOutputTemplate turns the stopped build container into the output
// template: the build's stand-in init is dropped from its config, and the
// metadata file that virt_container_template lists is written into its
// directory. The container itself stays because stepCreateContainer keeps
// it when the build succeeds.
type stepOutputTemplate struct{}

func (s *stepOutputTemplate) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get(stateConfig).(*Config)
	if cfg.OutputTemplate == "" {
		return multistep.ActionContinue
	}
	drv := state.Get(stateDriver).(driver)
	ui := state.Get(stateUI).(packersdk.Ui)

	if standIn, _ := state.Get(stateStandInInit).(bool); standIn {
		cur, err := drv.Container(ctx, cfg.OutputTemplate)
		if err != nil {
			return halt(state, fmt.Errorf("output_template: read %q: %w", cfg.OutputTemplate, err))
		}
		delete(cur.Config, "lxc.init.cmd")
		if _, err := drv.UpdateContainer(ctx, cfg.OutputTemplate, *cur); err != nil {
			return halt(state, fmt.Errorf("output_template: drop the build's stand-in init from %q: %w", cfg.OutputTemplate, err))
		}
	}
	md := state.Get(stateMetadata).(map[string]string)
	if err := virt.WriteContainerMetadata(filepath.Join(drv.LXCPath(), cfg.OutputTemplate), md); err != nil {
		return halt(state, fmt.Errorf("output_template: %w", err))
	}
	ui.Say(fmt.Sprintf("Template container %q is ready in %s", cfg.OutputTemplate, drv.LXCPath()))
	return multistep.ActionContinue
}

func (s *stepOutputTemplate) Cleanup(multistep.StateBag) {}
