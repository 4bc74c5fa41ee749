package libvirt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// CopyVolume reads its source as the format the caller made it with. A raw
// disk whose guest wrote a qcow2 header onto it (naming a host file as its
// backing file) copies as the guest's bytes while libvirt has it on record
// as raw; once a pool refresh has made libvirt take it for that qcow2
// image, the copy is refused, and nothing of the host file reaches a copy.
func TestCopyVolumeReadsTheSourceAsMade(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)

	src, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "build.raw", Format: virt.FormatRaw, CapacityBytes: 16 * oneMiB})
	if err != nil {
		t.Fatal(err)
	}
	testenv.ForgeQCOW2Header(t, src.Path, testenv.SecretFile(t))
	checkCopy := func(out *virt.VolumeSpec) {
		t.Helper()
		backing, secret := testenv.ImageLeak(t, out.Path, virt.FormatQCOW2)
		if backing != "" || secret {
			t.Errorf("copy %s: backing file %q, holds the host file's bytes: %v", out.Name, backing, secret)
		}
		runTool(t, "qemu-img", "compare", "-q", "-U", "-f", "raw", "-F", "qcow2", src.Path, out.Path)
	}

	if _, err := c.CopyVolume(ctx, src.Key, "", virt.VolumeSpec{Pool: pool.Name, Name: "unnamed.qcow2"}); err == nil {
		t.Error("a copy without the source's format: no error")
	}
	out, err := c.CopyVolume(ctx, src.Key, virt.FormatRaw, virt.VolumeSpec{Pool: pool.Name, Name: "before-refresh.qcow2", Format: virt.FormatQCOW2})
	if err != nil {
		t.Fatalf("copy while libvirt has the source as raw: %v", err)
	}
	checkCopy(out)

	// A refresh re-reads each file's format from its content.
	if _, err := c.Pool(ctx, pool.Name); err != nil {
		t.Fatal(err)
	}
	if probed, err := c.VolumeByKey(ctx, src.Key); err != nil || probed.Format != virt.FormatQCOW2 || probed.BackingPath == "" {
		t.Fatalf("after a refresh libvirt should take the forged disk for a qcow2 image with a backing file (the case this test is for): %+v, %v", probed, err)
	}
	for _, f := range []string{virt.FormatQCOW2, virt.FormatRaw} {
		out, err := c.CopyVolume(ctx, src.Key, virt.FormatRaw, virt.VolumeSpec{Pool: pool.Name, Name: "after-refresh." + f, Format: f})
		if err == nil {
			if f == virt.FormatQCOW2 {
				checkCopy(out)
			}
			t.Errorf("copy to %s of a raw volume that libvirt takes for qcow2: no error", f)
			continue
		}
		if !strings.Contains(err.Error(), "was made raw") {
			t.Errorf("copy to %s: error %v, want one saying the volume was made raw", f, err)
		}
		if _, err := c.Volume(ctx, pool.Name, "after-refresh."+f); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("the refused copy to %s left a volume behind: %v", f, err)
		}
	}
}

// A downloaded volume is its owner's only: a guest's disk holds its
// secrets.
func TestDownloadVolumeOwnerOnly(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)
	vol, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "disk.raw", Format: virt.FormatRaw, CapacityBytes: oneMiB})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "disk.raw")
	if err := c.DownloadVolume(ctx, vol.Key, path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("downloaded volume: mode %v, want 0600", fi.Mode().Perm())
	}
}
