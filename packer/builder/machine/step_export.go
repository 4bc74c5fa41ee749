package machine

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

// stepExport turns the stopped build disk into the output volume: it
// already is one when it was made under that name, otherwise it is copied
// (flattened, sparse; compressed for compact qcow2 on a local host).
type stepExport struct{}

func (s *stepExport) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)
	build := state.Get(stateBuildVolume).(*virt.VolumeSpec)

	if x, err := d.MachineXML(ctx, c.VMName); err == nil {
		state.Put(stateDomainXML, x)
	} else {
		ui.Say(fmt.Sprintf("Cannot read the domain XML of %s: %v", c.VMName, err))
	}
	if state.Get(stateBuildIsOut).(bool) {
		out, err := d.VolumeByKey(ctx, build.Key)
		if err != nil {
			return halt(state, err)
		}
		// Clones of the template take its format from libvirt's record.
		if err := recordedAsMade(out, build.Format); err != nil {
			return halt(state, err)
		}
		state.Put(stateOutput, out)
		ui.Say(fmt.Sprintf("Output volume: %s/%s (%s)", out.Pool, out.Name, out.Key))
		return multistep.ActionContinue
	}
	ui.Say(fmt.Sprintf("Copying the build disk to %s/%s (%s)...", c.OutputPool, c.OutputVolume, c.Format))
	out, err := d.CopyVolume(ctx, build.Key, build.Format, virt.VolumeSpec{Pool: c.OutputPool, Name: c.OutputVolume, Format: c.Format})
	if err != nil {
		return halt(state, fmt.Errorf("copy the build disk to %s/%s: %w", c.OutputPool, c.OutputVolume, err))
	}
	state.Put(stateOutput, out)
	if c.Compact && c.Format == virt.FormatQCOW2 && isLocalURI(c.URI) {
		if err := compressInPlace(ctx, build.Path, build.Format, out.Path); err != nil {
			ui.Say(fmt.Sprintf("Compression skipped (the sparse copy stays): %v", err))
		}
		if re, err := d.VolumeByKey(ctx, out.Key); err == nil {
			state.Put(stateOutput, re)
			out = re
		}
	}
	ui.Say(fmt.Sprintf("Output volume: %s/%s (%s, %d MiB allocated)", out.Pool, out.Name, out.Key, out.AllocationBytes>>20))
	return multistep.ActionContinue
}

// Cleanup removes the output volume of a build that failed after it was
// made: a half-made template must not be cloned.
func (s *stepExport) Cleanup(state multistep.StateBag) {
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	if !cancelled && !halted {
		return
	}
	if out, ok := state.Get(stateOutput).(*virt.VolumeSpec); ok {
		deleteVolume(state, out.Key)
		state.Remove(stateOutput)
	}
}

// compressInPlace rewrites the qcow2 at dst (a volume libvirt made, so its
// name, ownership and pool entry stay) as a compressed copy of src. libvirt's
// own copy cannot compress; qemu-img on the host can, when the host is here.
//
// srcFormat is the format the build made src with, and qemu-img is told
// it: left to guess, qemu-img reads a raw disk whose guest wrote a qcow2
// header onto it as that qcow2 image, backed by whatever host file the
// header names, and copies that file into the template.
func compressInPlace(ctx context.Context, src, srcFormat, dst string) error {
	if src == "" || dst == "" {
		return fmt.Errorf("volume paths unknown")
	}
	if srcFormat == "" {
		return fmt.Errorf("the format of %s is unknown", src)
	}
	tmp := dst + ".compress"
	// Made here, owner-only, so that qemu-img writes into it (an existing
	// file keeps its mode) instead of creating it readable by all while
	// the guest's data goes in.
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	_ = f.Close()
	cmd := exec.CommandContext(ctx, "qemu-img", "convert", "-c", "-f", srcFormat, "-O", "qcow2", src, tmp)
	if b, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("qemu-img convert -c: %w: %s", err, strings.TrimSpace(string(b)))
	}
	if st, err := os.Stat(dst); err == nil {
		_ = os.Chmod(tmp, st.Mode())
	}
	return os.Rename(tmp, dst)
}

// recordedAsMade checks that libvirt still has the volume on record in the
// format the build made it with. A directory pool re-reads a file's format
// from its content at every pool refresh: a raw disk whose guest wrote a
// qcow2 header onto it is then on record as a qcow2 image backed by a host
// file of the guest's choosing, and every clone of the template would read
// that file.
func recordedAsMade(vol *virt.VolumeSpec, format string) error {
	switch {
	case vol.Format != format:
		return fmt.Errorf("volume %s was made %s, but libvirt now takes it for %s (read from the content the guest wrote): not keeping it as the template", vol.Key, format, vol.Format)
	case format == virt.FormatRaw && vol.BackingPath != "":
		return fmt.Errorf("volume %s was made raw, but libvirt now gives it the backing file %s (read from the content the guest wrote): not keeping it as the template", vol.Key, vol.BackingPath)
	}
	return nil
}

// isLocalURI reports whether the libvirt host is this machine, so that its
// volume paths are paths here.
func isLocalURI(uri string) bool {
	u, err := libvirt.ParseURI(libvirt.ResolveURI(uri))
	if err != nil {
		return false
	}
	_, transport, _ := strings.Cut(u.Scheme, "+")
	return u.Host == "" && (transport == "" || transport == "unix")
}
