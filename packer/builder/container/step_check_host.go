package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// geteuid is the effective user; tests replace it.
var geteuid = os.Geteuid

// stepCheckHost makes sure, before any work starts, that the names the
// build takes are free and the host has what the container needs (its
// bridge, subordinate ids, the source template), so that a long bootstrap
// does not end in an error that was knowable at the start. With -force an
// earlier output_template and output_archive are removed here.
type stepCheckHost struct{}

func (s *stepCheckHost) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get(stateConfig).(*Config)
	drv := state.Get(stateDriver).(driver)
	ui := state.Get(stateUI).(packersdk.Ui)
	if err := checkHost(ctx, cfg, drv, ui); err != nil {
		return halt(state, err)
	}
	return multistep.ActionContinue
}

func (s *stepCheckHost) Cleanup(multistep.StateBag) {}

func checkHost(ctx context.Context, cfg *Config, drv driver, ui packersdk.Ui) error {
	var errs []error
	if geteuid() != 0 {
		errs = append(errs, errors.New("virt-container builds LXC containers as root: run packer as root"))
	}

	_, err := drv.Container(ctx, cfg.ContainerName)
	switch {
	case errors.Is(err, virt.ErrNotFound):
	case err != nil:
		errs = append(errs, fmt.Errorf("container_name: look up container %q: %w", cfg.ContainerName, err))
	case cfg.ContainerName == cfg.OutputTemplate && cfg.PackerForce:
		ui.Say(fmt.Sprintf("Removing the earlier template container %q (-force)...", cfg.OutputTemplate))
		if err := drv.DestroyContainer(ctx, cfg.OutputTemplate); err != nil {
			errs = append(errs, fmt.Errorf("output_template: remove the earlier %q (-force): %w", cfg.OutputTemplate, err))
		}
	case cfg.ContainerName == cfg.OutputTemplate:
		errs = append(errs, fmt.Errorf("output_template: a container %q already exists in %s; choose another name, remove it, or build with -force", cfg.OutputTemplate, drv.LXCPath()))
	default:
		errs = append(errs, fmt.Errorf("container_name: a container %q already exists in %s; choose another name or remove it", cfg.ContainerName, drv.LXCPath()))
	}

	if cfg.OutputArchive != "" {
		for _, p := range []string{cfg.OutputArchive, metadataPath(cfg.OutputArchive)} {
			_, err := os.Lstat(p)
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				errs = append(errs, fmt.Errorf("output_archive: %w", err))
			case cfg.PackerForce:
				// Replaced when the new one is complete.
			default:
				errs = append(errs, fmt.Errorf("output_archive: %s already exists; remove it or build with -force", p))
			}
		}
	}

	// The layer checks the bridge, subordinate ids and the source. A
	// bootstrap's archive does not exist yet, so its source is left out.
	spec := cfg.containerSpec("")
	if err := drv.CheckHost(spec); err != nil {
		var se virt.SpecErrors
		if errors.As(err, &se) {
			for _, e := range se {
				errs = append(errs, fmt.Errorf("%s: %s", configField(e.Field), e.Reason))
			}
		} else {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// configField names a spec field of the layer as this config does.
func configField(specField string) string {
	if f, ok := specFieldNames[specField]; ok {
		return f
	}
	return specField
}
