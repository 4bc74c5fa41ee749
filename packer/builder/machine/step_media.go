package machine

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// stepUploadMedia puts a local image (the installer ISO, the cd_files CD)
// into the pool, to be attached as a CD-ROM.
type stepUploadMedia struct {
	pathKey   string // state key of the local file
	volumeKey string // state key to put the volume under
	suffix    string
}

func (s *stepUploadMedia) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	path, ok := state.Get(s.pathKey).(string)
	if !ok || path == "" {
		return multistep.ActionContinue
	}
	c := state.Get(stateConfig).(*Config)
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)
	name := c.VMName + s.suffix
	ui.Say(fmt.Sprintf("Uploading %s to %s/%s...", filepath.Base(path), c.OutputPool, name))
	vol, err := d.UploadVolume(ctx, virt.VolumeSpec{Pool: c.OutputPool, Name: name, Format: virt.FormatRaw}, path)
	if err != nil {
		return halt(state, fmt.Errorf("upload %s: %w", path, err))
	}
	state.Put(s.volumeKey, vol)
	return multistep.ActionContinue
}

func (s *stepUploadMedia) Cleanup(state multistep.StateBag) {
	if vol, ok := state.Get(s.volumeKey).(*virt.VolumeSpec); ok {
		deleteVolume(state, vol.Key)
	}
}

// stepKernelFromISO extracts iso_kernel and iso_initrd from the ISO so the
// installer boots straight into its kernel: no boot menu to type at. They
// go into the pool as volumes: QEMU runs on the host, as its own user,
// and reads them from there (a file here may be neither readable by that
// user nor on that machine).
type stepKernelFromISO struct {
	volumes []string // keys of the volumes made
}

func (s *stepKernelFromISO) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	if c.ISOKernel == "" {
		return multistep.ActionContinue
	}
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)
	iso := state.Get("iso_path").(string)
	dir := state.Get(stateTempDir).(string)
	boot := &virt.DirectBoot{}
	if c.Boot != nil {
		boot.Cmdline = c.Boot.Cmdline
	}
	for _, f := range []struct {
		inISO, suffix string
		dst           *string
	}{{c.ISOKernel, "-kernel", &boot.Kernel}, {c.ISOInitrd, "-initrd", &boot.Initrd}} {
		if f.inISO == "" {
			continue
		}
		out := filepath.Join(dir, filepath.Base(f.inISO))
		if err := extractFromISO(ctx, iso, f.inISO, out); err != nil {
			return halt(state, err)
		}
		name := c.VMName + f.suffix
		ui.Say(fmt.Sprintf("Uploading %s from the ISO to %s/%s...", f.inISO, c.OutputPool, name))
		vol, err := d.UploadVolume(ctx, virt.VolumeSpec{Pool: c.OutputPool, Name: name, Format: virt.FormatRaw}, out)
		if err != nil {
			return halt(state, fmt.Errorf("upload %s of the ISO: %w", f.inISO, err))
		}
		s.volumes = append(s.volumes, vol.Key)
		if vol.Path == "" {
			return halt(state, fmt.Errorf("volume %s/%s has no path on the host to boot from", c.OutputPool, name))
		}
		*f.dst = vol.Path
	}
	state.Put(stateKernel, boot)
	return multistep.ActionContinue
}

func (s *stepKernelFromISO) Cleanup(state multistep.StateBag) {
	for _, k := range s.volumes {
		deleteVolume(state, k)
	}
}

// extractFromISO copies one file out of an ISO 9660 image with isoinfo
// (Rock Ridge names first, then Joliet): nothing in the module graph reads
// ISO 9660.
func extractFromISO(ctx context.Context, iso, inISO, out string) error {
	var errs []error
	for _, ext := range []string{"-R", "-J"} {
		cmd := exec.CommandContext(ctx, "sh", "-c", `isoinfo "$1" -i "$2" -x "$3" > "$4" && test -s "$4"`, "sh", ext, iso, inISO, out)
		b, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("isoinfo %s: %w %s", ext, err, strings.TrimSpace(string(b))))
	}
	return fmt.Errorf("extract %s from %s (is isoinfo from genisoimage installed, and the path right?): %w", inISO, iso, errors.Join(errs...))
}

func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Minute)
}

func isNotFound(err error) bool { return errors.Is(err, virt.ErrNotFound) }
