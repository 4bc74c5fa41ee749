// Package container is the virt-container Packer builder: it builds an LXC
// container from a bootstrap tool, an archive, an LXC template script or an
// existing template container, provisions it through a communicator that
// executes inside it, and leaves a template container that
// virt_container.template clones, and/or a root file system archive.
package container

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt/lxc"
)

// BuilderID identifies the builder's artifacts.
const BuilderID = "virtforge.virt-container"

// Builder bakes a template.
type Builder struct {
	config Config
	// newDriver connects to LXC; tests replace it.
	newDriver func(lxcPath string) (driver, error)
}

var _ packersdk.Builder = (*Builder)(nil)

func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	warnings, err := b.config.Prepare(raws...)
	return nil, warnings, err
}

func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	newDriver := b.newDriver
	if newDriver == nil {
		newDriver = func(lxcPath string) (driver, error) {
			// The plugin's log goes to Packer's log (PACKER_LOG=1).
			logger := hclog.New(&hclog.LoggerOptions{Name: "virt-container", Output: log.Writer(), Level: hclog.Debug})
			return lxc.New(lxcPath, logger)
		}
	}
	drv, err := newDriver(b.config.LXCPath)
	if err != nil {
		return nil, fmt.Errorf("connect to LXC: %w", err)
	}

	state := new(multistep.BasicStateBag)
	state.Put(stateConfig, &b.config)
	state.Put(stateDriver, drv)
	state.Put(stateHook, hook)
	state.Put(stateUI, ui)

	steps := []multistep.Step{
		&stepCheckHost{},
		&stepBootstrap{},
		&stepCreateContainer{},
		&stepStartContainer{},
		&commonsteps.StepProvision{},
		&stepReadMetadata{},
		&stepStopContainer{},
		&stepOutputTemplate{},
		&stepOutputArchive{},
	}
	runner := commonsteps.NewRunner(steps, b.config.PackerConfig, ui)
	runner.Run(ctx, state)

	if rawErr, ok := state.GetOk(stateError); ok {
		return nil, rawErr.(error)
	}
	if _, ok := state.GetOk(multistep.StateCancelled); ok {
		return nil, errors.New("build was cancelled")
	}
	if _, ok := state.GetOk(multistep.StateHalted); ok {
		return nil, errors.New("build was halted")
	}

	md, _ := state.Get(stateMetadata).(map[string]string)
	a := &Artifact{
		driver:   drv,
		lxcPath:  drv.LXCPath(),
		Template: b.config.OutputTemplate,
		Metadata: md,
	}
	if files, ok := state.GetOk(stateArchiveFiles); ok {
		fs := files.([]string)
		a.Archive, a.MetadataFile = fs[0], fs[1]
	}
	return a, nil
}

// halt records err as the build's error, says it, and stops the run.
func halt(state multistep.StateBag, err error) multistep.StepAction {
	state.Put(stateError, err)
	state.Get(stateUI).(packersdk.Ui).Error(err.Error())
	return multistep.ActionHalt
}

// buildFailed reports whether the build will not produce its artifact: a
// step failed, or the user interrupted it.
func buildFailed(state multistep.StateBag) bool {
	_, failed := state.GetOk(stateError)
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	return failed || cancelled || halted
}
