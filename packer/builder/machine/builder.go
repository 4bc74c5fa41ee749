// Package machine is the virt-machine Packer builder: it boots a guest on
// a libvirt host from an installer ISO, a disk image or a volume,
// provisions it, and leaves a template volume that virt_volume clones.
package machine

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

// BuilderID identifies the builder's artifacts.
const BuilderID = "virtforge.virt-machine"

// Builder bakes a machine template.
type Builder struct {
	config Config
	runner multistep.Runner
}

var _ packersdk.Builder = (*Builder)(nil)

func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

// generatedVars are what the build tells provisioners, as build.NAME:
// ConsoleLog is the local file the guest's serial console is recorded in
// while the build runs.
var generatedVars = []string{"ConsoleLog"}

func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	warnings, err := b.config.Prepare(raws...)
	if err != nil {
		return nil, warnings, err
	}
	return generatedVars, warnings, nil
}

func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	start := time.Now()
	c := &b.config
	// The plugin's log goes to Packer's log (PACKER_LOG=1), with the
	// libvirt layer's debug lines (calls, events, console streams).
	logger := hclog.New(&hclog.LoggerOptions{Name: "virt-machine", Output: log.Writer(), Level: hclog.Debug})
	client, err := libvirt.New(ctx, libvirt.Options{URI: c.URI, Logger: logger})
	if err != nil {
		return nil, err
	}
	defer func() { _ = client.Close() }()

	tmp, err := os.MkdirTemp("", "packer-virt-machine-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	state := new(multistep.BasicStateBag)
	state.Put("hook", hook)
	state.Put("ui", ui)
	state.Put(stateConfig, c)
	state.Put(stateDriver, Driver(client))
	state.Put(stateTempDir, tmp)

	b.runner = commonsteps.NewRunnerWithPauseFn(b.steps(), c.PackerConfig, ui, state)
	b.runner.Run(ctx, state)

	if err, ok := state.GetOk("error"); ok {
		return nil, err.(error)
	}
	if _, ok := state.GetOk(multistep.StateCancelled); ok {
		return nil, errors.New("build was cancelled")
	}
	if _, ok := state.GetOk(multistep.StateHalted); ok {
		return nil, errors.New("build was halted")
	}
	out, ok := state.Get(stateOutput).(*virt.VolumeSpec)
	if !ok {
		return nil, errors.New("the build made no output volume")
	}
	files, _ := state.Get(stateOutputFiles).([]string)
	ui.Say(fmt.Sprintf("virt-machine build of %s took %s", out.Name, time.Since(start).Round(100*time.Millisecond)))
	return &Artifact{
		driver:     client,
		volume:     *out,
		files:      files,
		domainType: c.DomainType,
		stateData:  map[string]interface{}{"generated_data": state.Get("generated_data")},
	}, nil
}

func (b *Builder) steps() []multistep.Step {
	c := &b.config
	steps := []multistep.Step{&stepCheckNames{}}
	if len(c.ISOUrls) > 0 || c.RawSingleISOUrl != "" {
		steps = append(steps,
			&commonsteps.StepDownload{
				Checksum:    c.ISOChecksum,
				Description: "ISO",
				Extension:   c.TargetExtension,
				ResultKey:   "iso_path",
				TargetPath:  c.TargetPath,
				Url:         c.ISOUrls,
			},
			&stepKernelFromISO{},
			&stepUploadMedia{pathKey: "iso_path", volumeKey: stateISOVolume, suffix: "-iso"},
		)
	}
	steps = append(steps, &stepPrepareDisk{})
	if len(c.CDFiles) > 0 || len(c.CDContent) > 0 {
		steps = append(steps,
			&commonsteps.StepCreateCD{Files: c.CDFiles, Content: c.CDContent, Label: c.CDLabel},
			&stepUploadMedia{pathKey: "cd_path", volumeKey: stateCDVolume, suffix: "-cd"},
		)
	}
	if len(c.FloppyFiles) > 0 || len(c.FloppyDirectories) > 0 || len(c.FloppyContent) > 0 {
		steps = append(steps,
			&commonsteps.StepCreateFloppy{Files: c.FloppyFiles, Directories: c.FloppyDirectories, Content: c.FloppyContent, Label: c.FloppyLabel},
			&stepUploadMedia{pathKey: "floppy_path", volumeKey: stateFloppy, suffix: "-floppy"},
		)
	}
	steps = append(steps,
		&stepHTTPServer{},
		&stepCreateMachine{},
		&stepInstallerReboot{},
		&stepBoot{},
		&stepWaitAddress{},
		&communicator.StepConnect{
			Config:    &c.Comm,
			Host:      commHost,
			SSHConfig: c.Comm.SSHConfigFunc(),
			SSHPort:   func(multistep.StateBag) (int, error) { return c.Comm.SSHPort, nil },
			WinRMConfig: func(multistep.StateBag) (*communicator.WinRMConfig, error) {
				return &communicator.WinRMConfig{Username: c.Comm.WinRMUser, Password: c.Comm.WinRMPassword}, nil
			},
			WinRMPort: func(multistep.StateBag) (int, error) { return c.Comm.WinRMPort, nil },
		},
		&commonsteps.StepProvision{},
		&stepCleanForClone{},
		&stepShutdown{},
		&stepExport{},
		&stepOutputDir{},
	)
	return steps
}
