package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/cloudinit"
)

// CreateSeedVolume uploads a NoCloud seed ISO as a raw volume named name in
// pool and returns it; it replaces nothing: ErrExists if the name is taken.
// An empty pool means virt.DefaultPool. A cfg that cloud-init would ignore is
// refused with virt.SpecErrors (fields user_data, meta_data, network_config)
// before anything is made. Attach the volume read-only, as a cdrom
// (DiskSpec{VolumeKey: seed.Key, Device: virt.DeviceCDROM}); remove it with
// DeleteVolume.
//
// The image is rendered here, in memory, so that a seed for a remote host
// needs no ISO tool on either machine; it goes to the host through
// UploadVolume, and so under the same per-pool serialization as every other
// volume.
func (c *Client) CreateSeedVolume(ctx context.Context, pool, name string, cfg cloudinit.Config) (*virt.VolumeSpec, error) {
	if pool == "" {
		pool = virt.DefaultPool
	}
	img, err := cloudinit.ISO(cfg)
	if err != nil {
		return nil, fmt.Errorf("create seed volume %q in pool %q: %w", name, pool, err)
	}
	// UploadVolume streams from a file (it probes the image and sends only
	// its data extents); a seed is a few hundred KiB, so a temporary copy
	// costs nothing worth a second upload path.
	path, err := writeTemp(img)
	if err != nil {
		return nil, fmt.Errorf("create seed volume %q in pool %q: %w", name, pool, err)
	}
	defer func() {
		if err := os.Remove(path); err != nil {
			c.log.Warn("remove temporary seed image", "path", path, "error", err)
		}
	}()
	vol, err := c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool, Name: name, Format: virt.FormatRaw}, path)
	if err != nil {
		return nil, fmt.Errorf("create seed volume: %w", err)
	}
	c.log.Debug("seed volume created", "pool", pool, "volume", name, "bytes", len(img), "checksum", cfg.Checksum())
	return vol, nil
}

func writeTemp(b []byte) (string, error) {
	f, err := os.CreateTemp("", "virt-seed-*.iso")
	if err != nil {
		return "", err
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(f.Name()) // the write error is what matters
		return "", err
	}
	return f.Name(), nil
}
