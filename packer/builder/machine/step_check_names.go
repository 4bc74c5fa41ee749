package machine

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// stepCheckNames fails before any work when a name the build would take is
// taken on the host: the output volume, the build machine, and the volumes
// the build makes beside it.
type stepCheckNames struct{}

func (s *stepCheckNames) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	d := state.Get(stateDriver).(Driver)
	var errs []error
	for _, name := range c.volumeNames() {
		_, err := d.Volume(ctx, c.OutputPool, name)
		switch {
		case err == nil:
			errs = append(errs, fmt.Errorf("volume %q already exists in pool %q on %s; delete it or choose another output_volume", name, c.OutputPool, c.URI))
		case !errors.Is(err, virt.ErrNotFound):
			errs = append(errs, fmt.Errorf("look up volume %q in pool %q: %w", name, c.OutputPool, err))
		}
	}
	exists, err := d.MachineExists(ctx, c.VMName)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("look up machine %q: %w", c.VMName, err))
	case exists:
		errs = append(errs, fmt.Errorf("machine %q already exists on %s; remove it or set vm_name", c.VMName, c.URI))
	}
	if len(errs) > 0 {
		return halt(state, errors.Join(errs...))
	}
	return multistep.ActionContinue
}

func (s *stepCheckNames) Cleanup(multistep.StateBag) {}

// volumeNames are the names of every volume the build may make.
func (c *Config) volumeNames() []string {
	return []string{c.OutputVolume, c.buildVolumeName(), c.VMName + "-iso", c.VMName + "-cd"}
}

func (c *Config) buildVolumeName() string { return c.VMName + "-disk" }

// halt records err for the builder to return and stops the run.
func halt(state multistep.StateBag, err error) multistep.StepAction {
	state.Put("error", err)
	return multistep.ActionHalt
}
