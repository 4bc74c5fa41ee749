package libvirt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var _ virt.StorageBackend = (*Client)(nil)

// CreatePool defines a directory pool, builds it (libvirt creates the
// directory, mode 0711, and leaves an existing one's mode alone), starts it
// and sets its autostart. When a step fails, the pool is undefined again; the
// directory stays, since it may have been there before.
func (c *Client) CreatePool(ctx context.Context, spec virt.PoolSpec) (*virt.PoolSpec, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	doc, err := (&libvirtxml.StoragePool{
		Type:   spec.Type,
		Name:   spec.Name,
		Target: &libvirtxml.StoragePoolTarget{Path: spec.Path},
	}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("render pool %q: %w", spec.Name, err)
	}

	var out *virt.PoolSpec
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		// Define with a name that is taken fails with a generic code, and one
		// with the same UUID would silently redefine: ask first.
		if _, err := lv.StoragePoolLookupByName(spec.Name); err == nil {
			return virt.ExistsError("pool", spec.Name)
		} else if !isNotFoundCode(err) {
			return wrap(err, "look up", "pool", spec.Name)
		}
		pool, err := lv.StoragePoolDefineXML(doc, 0)
		if err != nil {
			return wrap(err, "define", "pool", spec.Name)
		}
		c.log.Debug("pool defined", "pool", spec.Name, "path", spec.Path)
		if err := startPool(lv, pool, spec.Autostart); err != nil {
			c.undefinePool(lv, pool)
			return err
		}
		out, err = c.readPool(lv, pool)
		return err
	})
	return out, err
}

func startPool(lv *golibvirt.Libvirt, pool golibvirt.StoragePool, autostart bool) error {
	if err := lv.StoragePoolBuild(pool, 0); err != nil {
		return wrap(err, "build", "pool", pool.Name)
	}
	if err := lv.StoragePoolCreate(pool, 0); err != nil {
		return wrap(err, "start", "pool", pool.Name)
	}
	if autostart {
		if err := lv.StoragePoolSetAutostart(pool, 1); err != nil {
			return wrap(err, "set autostart of", "pool", pool.Name)
		}
	}
	return nil
}

// undefinePool undoes a half-made pool. Its own failures are only logged:
// the caller reports the error that made the undo necessary.
func (c *Client) undefinePool(lv *golibvirt.Libvirt, pool golibvirt.StoragePool) {
	if active, err := lv.StoragePoolIsActive(pool); err == nil && active == 1 {
		if err := lv.StoragePoolDestroy(pool); err != nil {
			c.log.Warn("undo pool create: destroy failed", "pool", pool.Name, "error", err)
		}
	}
	if err := lv.StoragePoolUndefine(pool); err != nil {
		c.log.Warn("undo pool create: undefine failed", "pool", pool.Name, "error", err)
	}
}

// Pool reads a pool back, with its sizes as of a refresh made now.
func (c *Client) Pool(ctx context.Context, name string) (*virt.PoolSpec, error) {
	var out *virt.PoolSpec
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByName(name)
		if err != nil {
			return wrap(err, "look up", "pool", name)
		}
		out, err = c.readPool(lv, pool)
		return err
	})
	return out, err
}

func (c *Client) readPool(lv *golibvirt.Libvirt, pool golibvirt.StoragePool) (*virt.PoolSpec, error) {
	active, err := lv.StoragePoolIsActive(pool)
	if err != nil {
		return nil, wrap(err, "get state of", "pool", pool.Name)
	}
	if active == 1 {
		if err := refreshPool(lv, pool); err != nil {
			return nil, err
		}
	}
	doc, err := lv.StoragePoolGetXMLDesc(pool, 0)
	if err != nil {
		return nil, wrap(err, "read", "pool", pool.Name)
	}
	autostart, err := lv.StoragePoolGetAutostart(pool)
	if err != nil {
		return nil, wrap(err, "get autostart of", "pool", pool.Name)
	}
	var x libvirtxml.StoragePool
	if err := x.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("parse pool %q: %w", pool.Name, err)
	}
	spec := &virt.PoolSpec{
		Name:      x.Name,
		Type:      x.Type,
		Autostart: autostart == 1,
		UUID:      x.UUID,
		Active:    active == 1,
	}
	if x.Target != nil {
		spec.Path = x.Target.Path
	}
	for _, s := range []struct {
		dst  *uint64
		size *libvirtxml.StoragePoolSize
	}{{&spec.CapacityBytes, x.Capacity}, {&spec.AllocationBytes, x.Allocation}, {&spec.AvailableBytes, x.Available}} {
		if s.size == nil {
			continue
		}
		if *s.dst, err = sizeBytes(s.size.Value, s.size.Unit); err != nil {
			return nil, fmt.Errorf("parse pool %q: %w", pool.Name, err)
		}
	}
	return spec, nil
}

// refreshPool rescans an active pool. libvirt refuses while a volume in the
// pool is being built or uploaded (another caller's long upload, say); the
// figures are then the last scan's, which is better than failing a read.
func refreshPool(lv *golibvirt.Libvirt, pool golibvirt.StoragePool) error {
	err := lv.StoragePoolRefresh(pool, 0)
	if golibvirt.ErrorNumber(libvirtCode(err)) == golibvirt.ErrOperationInvalid {
		return nil
	}
	return wrap(err, "refresh", "pool", pool.Name)
}

// DeletePool stops the pool, removes its directory and undefines it. A pool
// that still holds volumes is left as it is, with an error that names them:
// deleting them is the caller's decision, not a side effect.
func (c *Client) DeletePool(ctx context.Context, name string) error {
	return c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByName(name)
		if err != nil {
			return wrap(err, "look up", "pool", name)
		}
		active, err := lv.StoragePoolIsActive(pool)
		if err != nil {
			return wrap(err, "get state of", "pool", name)
		}
		startedHere := false
		if active == 0 {
			// Only a running pool can list its volumes. A pool that cannot
			// start (its directory is gone) has nothing left to delete.
			if err := lv.StoragePoolCreate(pool, 0); err != nil {
				c.log.Debug("inactive pool does not start; undefining only", "pool", name, "error", err)
				return wrap(lv.StoragePoolUndefine(pool), "undefine", "pool", name)
			}
			startedHere = true
		}
		if err := refreshPool(lv, pool); err != nil {
			return err
		}
		vols, _, err := lv.StoragePoolListAllVolumes(pool, 1, 0)
		if err != nil {
			return wrap(err, "list volumes of", "pool", name)
		}
		if len(vols) > 0 {
			if startedHere {
				_ = lv.StoragePoolDestroy(pool)
			}
			names := make([]string, len(vols))
			for i, v := range vols {
				names[i] = v.Name
			}
			slices.Sort(names)
			return fmt.Errorf("delete pool %q: it still holds %d volume(s): %s; delete them first",
				name, len(names), strings.Join(names, ", "))
		}
		if err := lv.StoragePoolDestroy(pool); err != nil {
			return wrap(err, "stop", "pool", name)
		}
		if err := lv.StoragePoolDelete(pool, golibvirt.StoragePoolDeleteNormal); err != nil {
			return wrap(err, "remove the directory of", "pool", name)
		}
		return wrap(lv.StoragePoolUndefine(pool), "undefine", "pool", name)
	})
}

// CreateVolume makes an empty, thin volume, or a qcow2 clone whose backing
// store is the volume spec.BackingVolumeKey names: qemu-img writes only the
// new file's header, so the cost does not grow with the template's size.
func (c *Client) CreateVolume(ctx context.Context, spec virt.VolumeSpec) (*virt.VolumeSpec, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	var out *virt.VolumeSpec
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByName(spec.Pool)
		if err != nil {
			return wrap(err, "look up", "pool", spec.Pool)
		}
		doc := volumeDoc(spec)
		if spec.BackingVolumeKey != "" {
			backing, err := lv.StorageVolLookupByKey(spec.BackingVolumeKey)
			if err != nil {
				return wrap(err, "look up backing", "volume", spec.BackingVolumeKey)
			}
			b, err := volumeXML(lv, backing)
			if err != nil {
				return err
			}
			bcap, err := volumeCapacity(b)
			if err != nil {
				return fmt.Errorf("backing volume %q: %w", spec.BackingVolumeKey, err)
			}
			switch {
			case spec.CapacityBytes == 0:
				doc.Capacity.Value = bcap
			case spec.CapacityBytes < bcap:
				return virt.SpecErrors{{Field: "capacity_bytes", Reason: fmt.Sprintf(
					"%d bytes is smaller than the backing volume's %d; a clone can only be as large or larger",
					spec.CapacityBytes, bcap)}}
			}
			if b.Target == nil || b.Target.Path == "" {
				return fmt.Errorf("backing volume %q has no path", spec.BackingVolumeKey)
			}
			doc.BackingStore = &libvirtxml.StorageVolumeBackingStore{Path: b.Target.Path}
			if b.Target.Format != nil {
				// Without an explicit backing format qemu would probe it,
				// and a raw template could then pass for any format.
				doc.BackingStore.Format = &libvirtxml.StorageVolumeTargetFormat{Type: b.Target.Format.Type}
			}
		}
		vol, err := createVolume(lv, pool, doc)
		if err != nil {
			return err
		}
		c.log.Debug("volume created", "pool", spec.Pool, "volume", spec.Name, "backing", spec.BackingVolumeKey)
		out, err = readVolume(lv, vol)
		return err
	})
	return out, err
}

// volumeDoc renders a volume with no space allocated up front: libvirt
// otherwise sets allocation to capacity and writes out the whole file.
func volumeDoc(spec virt.VolumeSpec) *libvirtxml.StorageVolume {
	return &libvirtxml.StorageVolume{
		Name:       spec.Name,
		Capacity:   &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: spec.CapacityBytes},
		Allocation: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0},
		Target:     &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: spec.Format}},
	}
}

func createVolume(lv *golibvirt.Libvirt, pool golibvirt.StoragePool, doc *libvirtxml.StorageVolume) (golibvirt.StorageVol, error) {
	name := pool.Name + "/" + doc.Name
	x, err := doc.Marshal()
	if err != nil {
		return golibvirt.StorageVol{}, fmt.Errorf("render volume %q: %w", name, err)
	}
	vol, err := lv.StorageVolCreateXML(pool, x, 0)
	if err != nil {
		return golibvirt.StorageVol{}, wrap(err, "create", "volume", name)
	}
	return vol, nil
}

// UploadVolume creates a volume shaped like the local image at source and
// streams the image into it. A capacity larger than the image's grows the
// volume afterwards; a volume whose upload fails is deleted.
func (c *Client) UploadVolume(ctx context.Context, spec virt.VolumeSpec, source string) (*virt.VolumeSpec, error) {
	f, err := os.Open(source)
	if err != nil {
		return nil, fmt.Errorf("upload volume %q: %w", spec.Name, err)
	}
	defer func() { _ = f.Close() }() // opened read-only: nothing to flush
	img, err := probeImage(f)
	if err != nil {
		return nil, fmt.Errorf("upload volume %q: image %s: %w", spec.Name, source, err)
	}

	var es virt.SpecErrors
	if spec.BackingVolumeKey != "" {
		es = append(es, &virt.SpecError{Field: "backing_volume_key", Reason: "an uploaded volume cannot be a clone"})
	}
	if spec.Format != "" && spec.Format != img.format {
		es = append(es, &virt.SpecError{Field: "format", Reason: fmt.Sprintf("%s is a %s image, not %s", source, img.format, spec.Format)})
	}
	if spec.CapacityBytes != 0 && spec.CapacityBytes < img.virtualSize {
		es = append(es, &virt.SpecError{Field: "capacity_bytes", Reason: fmt.Sprintf(
			"%d bytes is smaller than the image's virtual size of %d", spec.CapacityBytes, img.virtualSize)})
	}
	if len(es) > 0 {
		return nil, es
	}
	grow := spec.CapacityBytes
	spec.Format, spec.CapacityBytes = img.format, img.virtualSize
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}

	var out *virt.VolumeSpec
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByName(spec.Pool)
		if err != nil {
			return wrap(err, "look up", "pool", spec.Pool)
		}
		vol, err := createVolume(lv, pool, volumeDoc(spec))
		if err != nil {
			return err
		}
		if err := c.fillVolume(ctx, lv, vol, f, img, grow); err != nil {
			if derr := lv.StorageVolDelete(vol, 0); derr != nil {
				c.log.Warn("delete half-uploaded volume failed", "key", vol.Key, "error", derr)
			}
			return err
		}
		out, err = readVolume(lv, vol)
		return err
	})
	return out, err
}

// fillVolume streams the image into a fresh volume and grows it to grow
// bytes when that is larger than the image.
func (c *Client) fillVolume(ctx context.Context, lv *golibvirt.Libvirt, vol golibvirt.StorageVol, f *os.File, img imageInfo, grow uint64) error {
	name := vol.Pool + "/" + vol.Name
	if img.format == virt.FormatRaw {
		// The new raw volume is a sparse file of the right size, all zeros:
		// only the image's data needs to travel.
		extents, err := dataExtents(f, int64(img.fileSize))
		if err != nil {
			return fmt.Errorf("upload volume %q: find data in %s: %w", name, f.Name(), err)
		}
		for _, e := range extents {
			r := ctxReader{ctx, io.NewSectionReader(f, e.off, e.len)}
			if err := lv.StorageVolUpload(vol, r, uint64(e.off), uint64(e.len), 0); err != nil {
				return uploadError(ctx, name, err)
			}
		}
		c.log.Debug("raw volume uploaded", "volume", name, "extents", len(extents))
	} else {
		// The upload overwrites the qcow2 file libvirt just made but does
		// not truncate it; zeros over the rest of the old file keep stale
		// metadata out of the image's tail.
		_, _, physical, err := lv.StorageVolGetInfoFlags(vol, 1) // VIR_STORAGE_VOL_GET_PHYSICAL
		if err != nil {
			return wrap(err, "get size of", "volume", name)
		}
		length := max(physical, img.fileSize)
		src := io.MultiReader(io.NewSectionReader(f, 0, int64(img.fileSize)),
			io.LimitReader(zeroReader{}, int64(length-img.fileSize)))
		if err := lv.StorageVolUpload(vol, ctxReader{ctx, src}, 0, length, 0); err != nil {
			return uploadError(ctx, name, err)
		}
		c.log.Debug("qcow2 volume uploaded", "volume", name, "bytes", length)
	}
	if grow > img.virtualSize {
		if err := lv.StorageVolResize(vol, grow, 0); err != nil {
			return wrap(err, "grow", "volume", name)
		}
	}
	return nil
}

func uploadError(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("upload volume %q: %w: %w", name, ctx.Err(), err)
	}
	return wrap(err, "upload", "volume", name)
}

// Volume reads a volume back by pool and name.
func (c *Client) Volume(ctx context.Context, pool, name string) (*virt.VolumeSpec, error) {
	var out *virt.VolumeSpec
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		p, err := lv.StoragePoolLookupByName(pool)
		if err != nil {
			return wrap(err, "look up", "pool", pool)
		}
		vol, err := lv.StorageVolLookupByName(p, name)
		if err != nil {
			return wrap(err, "look up", "volume", pool+"/"+name)
		}
		out, err = readVolume(lv, vol)
		return err
	})
	return out, err
}

// VolumeByKey reads a volume back by its key (its path, in a dir pool).
func (c *Client) VolumeByKey(ctx context.Context, key string) (*virt.VolumeSpec, error) {
	var out *virt.VolumeSpec
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		vol, err := lv.StorageVolLookupByKey(key)
		if err != nil {
			return wrap(err, "look up", "volume", key)
		}
		out, err = readVolume(lv, vol)
		return err
	})
	return out, err
}

// ResizeVolume grows a volume to capacityBytes. Shrinking is refused: it
// cuts off whatever the guest keeps at the end of its disk.
func (c *Client) ResizeVolume(ctx context.Context, key string, capacityBytes uint64) error {
	return c.call(ctx, func(lv *golibvirt.Libvirt) error {
		vol, err := lv.StorageVolLookupByKey(key)
		if err != nil {
			return wrap(err, "look up", "volume", key)
		}
		_, capacity, _, err := lv.StorageVolGetInfo(vol)
		if err != nil {
			return wrap(err, "get size of", "volume", key)
		}
		switch {
		case capacityBytes == capacity:
			return nil
		case capacityBytes < capacity:
			return fmt.Errorf("resize volume %q: shrinking from %d to %d bytes is not supported (it would cut off data)",
				key, capacity, capacityBytes)
		}
		return wrap(lv.StorageVolResize(vol, capacityBytes, 0), "resize", "volume", key)
	})
}

// DeleteVolume removes a volume. libvirt does not track clones, so deleting
// a template that clones still use breaks them; callers keep that order.
func (c *Client) DeleteVolume(ctx context.Context, key string) error {
	return c.call(ctx, func(lv *golibvirt.Libvirt) error {
		vol, err := lv.StorageVolLookupByKey(key)
		if err != nil {
			return wrap(err, "look up", "volume", key)
		}
		return wrap(lv.StorageVolDelete(vol, 0), "delete", "volume", key)
	})
}

func volumeXML(lv *golibvirt.Libvirt, vol golibvirt.StorageVol) (*libvirtxml.StorageVolume, error) {
	doc, err := lv.StorageVolGetXMLDesc(vol, 0)
	if err != nil {
		return nil, wrap(err, "read", "volume", vol.Key)
	}
	var x libvirtxml.StorageVolume
	if err := x.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("parse volume %q: %w", vol.Key, err)
	}
	return &x, nil
}

func volumeCapacity(x *libvirtxml.StorageVolume) (uint64, error) {
	if x.Capacity == nil {
		return 0, errors.New("libvirt reports no capacity")
	}
	return sizeBytes(x.Capacity.Value, x.Capacity.Unit)
}

// readVolume reads a volume into a spec. BackingVolumeKey is the key of the
// volume at the backing path, or empty when that file is in no pool.
func readVolume(lv *golibvirt.Libvirt, vol golibvirt.StorageVol) (*virt.VolumeSpec, error) {
	x, err := volumeXML(lv, vol)
	if err != nil {
		return nil, err
	}
	spec := &virt.VolumeSpec{Pool: vol.Pool, Name: x.Name, Key: vol.Key}
	if x.Key != "" {
		spec.Key = x.Key
	}
	if spec.CapacityBytes, err = volumeCapacity(x); err != nil {
		return nil, fmt.Errorf("volume %q: %w", vol.Key, err)
	}
	if x.Allocation != nil {
		if spec.AllocationBytes, err = sizeBytes(x.Allocation.Value, x.Allocation.Unit); err != nil {
			return nil, fmt.Errorf("volume %q: %w", vol.Key, err)
		}
	}
	if x.Target != nil {
		spec.Path = x.Target.Path
		if x.Target.Format != nil {
			spec.Format = x.Target.Format.Type
		}
	}
	if b := x.BackingStore; b != nil && b.Path != "" {
		spec.BackingPath = b.Path
		if b.Format != nil {
			spec.BackingFormat = b.Format.Type
		}
		bvol, err := lv.StorageVolLookupByPath(b.Path)
		switch {
		case err == nil:
			spec.BackingVolumeKey = bvol.Key
		case !isNotFoundCode(err):
			return nil, wrap(err, "look up backing", "volume", b.Path)
		}
	}
	return spec, nil
}

// sizeBytes converts a libvirt size with unit to bytes. libvirt reports
// bytes; the other units are accepted because the schema allows them.
func sizeBytes(v uint64, unit string) (uint64, error) {
	var mult uint64
	switch strings.ToLower(unit) {
	case "", "b", "bytes":
		mult = 1
	case "k", "kib":
		mult = 1 << 10
	case "kb":
		mult = 1000
	case "m", "mib":
		mult = 1 << 20
	case "mb":
		mult = 1000 * 1000
	case "g", "gib":
		mult = 1 << 30
	case "gb":
		mult = 1000 * 1000 * 1000
	case "t", "tib":
		mult = 1 << 40
	case "tb":
		mult = 1000 * 1000 * 1000 * 1000
	default:
		return 0, fmt.Errorf("unknown size unit %q", unit)
	}
	if v != 0 && v*mult/mult != v {
		return 0, fmt.Errorf("size %d %s overflows", v, unit)
	}
	return v * mult, nil
}

// imageInfo is what the upload needs to know about a local image.
type imageInfo struct {
	format      string
	virtualSize uint64 // the disk size the guest sees
	fileSize    uint64 // the bytes to send
}

// Magic numbers of formats that must not pass for raw: uploaded as raw, the
// guest would see the container's bytes instead of its disk.
var foreignMagics = []struct {
	offset int
	magic  string
	format string
}{
	{0, "QED\x00", "qed"},
	{0, "KDMV", "vmdk"},
	{0, "vhdxfile", "vhdx"},
	{0, "conectix", "vpc"},
	{0, "LUKS\xba\xbe", "luks"},
	{64, "\x7f\x10\xda\xbe", "vdi"},
}

// probeImage reads the image's format and sizes from its header, as qemu
// would: a qcow2 by its magic and header, everything else as raw.
func probeImage(f *os.File) (imageInfo, error) {
	st, err := f.Stat()
	if err != nil {
		return imageInfo{}, err
	}
	if !st.Mode().IsRegular() {
		return imageInfo{}, fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	if st.Size() == 0 {
		return imageInfo{}, errors.New("the file is empty")
	}
	hdr := make([]byte, 512)
	n, err := f.ReadAt(hdr, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return imageInfo{}, err
	}
	hdr = hdr[:n]
	if bytes.HasPrefix(hdr, []byte("QFI\xfb")) {
		return probeQCOW2(f, hdr, uint64(st.Size()))
	}
	for _, m := range foreignMagics {
		if len(hdr) >= m.offset+len(m.magic) && string(hdr[m.offset:m.offset+len(m.magic)]) == m.magic {
			return imageInfo{}, fmt.Errorf("is a %s image; convert it to qcow2 or raw first (qemu-img convert -O qcow2)", m.format)
		}
	}
	return imageInfo{format: virt.FormatRaw, virtualSize: uint64(st.Size()), fileSize: uint64(st.Size())}, nil
}

// probeQCOW2 checks a qcow2 header (see qemu's docs/interop/qcow2.txt).
func probeQCOW2(f *os.File, hdr []byte, fileSize uint64) (imageInfo, error) {
	be := binary.BigEndian
	if len(hdr) < 72 {
		return imageInfo{}, errors.New("qcow2 header is truncated")
	}
	version := be.Uint32(hdr[4:])
	if version != 2 && version != 3 {
		return imageInfo{}, fmt.Errorf("qcow2 version %d is not supported", version)
	}
	if off, size := be.Uint64(hdr[8:]), be.Uint32(hdr[16:]); off != 0 {
		backing := make([]byte, min(size, 1024))
		if _, err := f.ReadAt(backing, int64(off)); err != nil {
			backing = []byte("?")
		}
		// The backing file is a path on this machine, which means nothing
		// on the host the image goes to.
		return imageInfo{}, fmt.Errorf("qcow2 image has a backing file %q; upload a standalone image (qemu-img convert -O qcow2)", backing)
	}
	if crypt := be.Uint32(hdr[32:]); crypt != 0 {
		return imageInfo{}, errors.New("qcow2 image is encrypted; upload an unencrypted image")
	}
	if version == 3 && len(hdr) >= 80 {
		const corrupt, externalData = 1 << 1, 1 << 2
		incompat := be.Uint64(hdr[72:])
		if incompat&corrupt != 0 {
			return imageInfo{}, errors.New("qcow2 image is marked corrupt (qemu-img check -r all)")
		}
		if incompat&externalData != 0 {
			return imageInfo{}, errors.New("qcow2 image keeps its data in an external file; upload a standalone image")
		}
	}
	size := be.Uint64(hdr[24:])
	if size == 0 {
		return imageInfo{}, errors.New("qcow2 image has a virtual size of 0")
	}
	return imageInfo{format: virt.FormatQCOW2, virtualSize: size, fileSize: fileSize}, nil
}

type extent struct{ off, len int64 }

// Holes shorter than extentGap are sent as zeros, and more than maxExtents
// pieces are sent as one: each upload is a stream of its own and makes
// libvirt rescan the pool, which costs more than a few zeros.
const (
	extentGap  = 4 << 20
	maxExtents = 64
)

// dataExtents finds the parts of a sparse file that hold data, so that holes
// need not travel. Where holes cannot be asked for, the whole file is data.
func dataExtents(f *os.File, size int64) ([]extent, error) {
	whole := []extent{{0, size}}
	if runtime.GOOS != "linux" {
		return whole, nil
	}
	const seekData, seekHole = 3, 4 // Linux's SEEK_DATA, SEEK_HOLE
	var out []extent
	for off := int64(0); off < size; {
		start, err := f.Seek(off, seekData)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole from off to the end
		}
		if errors.Is(err, syscall.EINVAL) {
			return whole, nil
		}
		if err != nil {
			return nil, err
		}
		end, err := f.Seek(start, seekHole)
		if err != nil {
			return nil, err
		}
		end = min(end, size)
		if n := len(out); n > 0 && start-(out[n-1].off+out[n-1].len) < extentGap {
			out[n-1].len = end - out[n-1].off
		} else {
			out = append(out, extent{start, end - start})
		}
		off = end
	}
	if len(out) > maxExtents {
		last := out[len(out)-1]
		out = []extent{{out[0].off, last.off + last.len - out[0].off}}
	}
	return out, nil
}

// ctxReader ends a stream when ctx ends: go-libvirt's upload takes no
// context, but it stops and aborts the stream at the first read error.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
