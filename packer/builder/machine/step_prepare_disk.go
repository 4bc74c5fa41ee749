package machine

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// stepPrepareDisk makes the disk the build guest runs on: a blank volume
// for an installer, an upload of disk_image, or a copy-on-write clone of
// source_volume. When nothing has to change on the way out (no compaction,
// no format change, no backing chain to flatten), the disk is made under
// the output volume's name and simply becomes the output: no copy at the
// end.
type stepPrepareDisk struct{}

func (s *stepPrepareDisk) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)

	var (
		vol    *virt.VolumeSpec
		err    error
		direct = !c.Compact
		format string // what the disk is made as
	)
	name := func() string {
		if direct {
			return c.OutputVolume
		}
		return c.buildVolumeName()
	}
	switch {
	case c.DiskImage != "":
		img, perr := virt.ProbeImageFile(c.DiskImage)
		if perr != nil {
			return halt(state, fmt.Errorf("disk_image %s: %w", c.DiskImage, perr))
		}
		direct = direct && img.Format == c.Format
		format = img.Format
		ui.Say(fmt.Sprintf("Uploading %s (%s, %d MiB of data) to %s/%s...", c.DiskImage, img.Format, img.FileSize>>20, c.OutputPool, name()))
		vol, err = d.UploadVolume(ctx, virt.VolumeSpec{Pool: c.OutputPool, Name: name(), CapacityBytes: max(c.diskSizeBytes, img.VirtualSize)}, c.DiskImage)
	case c.SourceVolume != "":
		direct = false // the clone's backing chain is flattened into the output
		key, rerr := resolveVolume(ctx, d, c.SourceVolume)
		if rerr != nil {
			return halt(state, rerr)
		}
		ui.Say(fmt.Sprintf("Cloning %s copy-on-write to %s/%s...", c.SourceVolume, c.OutputPool, name()))
		format = virt.FormatQCOW2
		vol, err = d.CreateVolume(ctx, virt.VolumeSpec{Pool: c.OutputPool, Name: name(), Format: format, CapacityBytes: c.diskSizeBytes, BackingVolumeKey: key})
	default:
		ui.Say(fmt.Sprintf("Creating a blank %s disk of %d MiB as %s/%s...", c.Format, c.diskSizeBytes>>20, c.OutputPool, name()))
		format = c.Format
		vol, err = d.CreateVolume(ctx, virt.VolumeSpec{Pool: c.OutputPool, Name: name(), Format: format, CapacityBytes: c.diskSizeBytes})
	}
	if err != nil {
		return halt(state, fmt.Errorf("prepare the build disk %s/%s: %w", c.OutputPool, name(), err))
	}
	// The format the disk was made as, which every later step names (to
	// libvirt and qemu-img): not libvirt's record, which a pool refresh
	// re-reads from the content the guest writes.
	vol.Format = format
	state.Put(stateBuildVolume, vol)
	state.Put(stateBuildIsOut, direct)
	return multistep.ActionContinue
}

// Cleanup removes the build disk unless it became the output.
func (s *stepPrepareDisk) Cleanup(state multistep.StateBag) {
	vol, ok := state.Get(stateBuildVolume).(*virt.VolumeSpec)
	if !ok {
		return
	}
	if out, ok := state.Get(stateOutput).(*virt.VolumeSpec); ok && out.Key == vol.Key {
		return
	}
	deleteVolume(state, vol.Key)
}

// resolveVolume takes pool/name or a key (an absolute path for directory
// pools) and returns the volume's key.
func resolveVolume(ctx context.Context, d Driver, ref string) (string, error) {
	if pool, name, ok := strings.Cut(ref, "/"); ok && pool != "" {
		v, err := d.Volume(ctx, pool, name)
		if err != nil {
			return "", fmt.Errorf("source_volume %q: %w", ref, err)
		}
		return v.Key, nil
	}
	v, err := d.VolumeByKey(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("source_volume %q: %w", ref, err)
	}
	return v.Key, nil
}

// deleteVolume removes a volume the build made, reporting (not failing on)
// an error: cleanup goes on with the rest.
func deleteVolume(state multistep.StateBag, key string) {
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)
	ctx, cancel := cleanupContext()
	defer cancel()
	if err := d.DeleteVolume(ctx, key); err != nil && !isNotFound(err) {
		ui.Error(fmt.Sprintf("Error deleting volume %s: %v", key, err))
	}
}
