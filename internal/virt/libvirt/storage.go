package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"golang.org/x/sync/semaphore"
	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var _ virt.StorageBackend = (*Client)(nil)

// Concurrency. libvirt builds volumes with the pool's own lock dropped and
// counts each build as an "asynchronous job"; while any runs, it refuses to
// refresh, stop, delete or undefine the pool ("pool 'x' has asynchronous jobs
// running"). Builds themselves may overlap: twenty clones of one template
// go side by side. So the client keeps one reader/writer lock per pool name:
// volume work (create, upload, resize, delete) shares it, and what libvirt
// refuses during builds (refresh, pool delete) takes it whole. A refresh for
// a read does not wait for it: the figures of libvirt's last scan, which it
// keeps up to date through its own creates and deletes, do. Other clients of
// the same daemon are not under the lock, so the refusals they cause, and a
// volume busy with another client's upload or download, are retried with
// backoff (retryBusy).

// poolLockWeight is what an exclusive holder takes; a shared holder takes 1.
const poolLockWeight = 1 << 30

// poolLocks hands out the per-pool locks. Its zero value is ready to use. A
// semaphore.Weighted serves waiters in order, so a pool delete waiting for
// running builds is not starved by new ones.
type poolLocks struct {
	mu    sync.Mutex
	pools map[string]*semaphore.Weighted
}

func (l *poolLocks) get(pool string) *semaphore.Weighted {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pools == nil {
		l.pools = map[string]*semaphore.Weighted{}
	}
	s, ok := l.pools[pool]
	if !ok {
		s = semaphore.NewWeighted(poolLockWeight)
		l.pools[pool] = s
	}
	return s
}

// share takes the pool's lock for volume work, which may run side by side.
func (l *poolLocks) share(ctx context.Context, pool string) (release func(), err error) {
	s := l.get(pool)
	if err := s.Acquire(ctx, 1); err != nil {
		return nil, fmt.Errorf("wait for pool %q: %w", pool, err)
	}
	return func() { s.Release(1) }, nil
}

// exclusive takes the pool's lock whole, once running volume work is done.
func (l *poolLocks) exclusive(ctx context.Context, pool string) (release func(), err error) {
	s := l.get(pool)
	if err := s.Acquire(ctx, poolLockWeight); err != nil {
		return nil, fmt.Errorf("wait for volume work in pool %q to finish: %w", pool, err)
	}
	return func() { s.Release(poolLockWeight) }, nil
}

// tryExclusive takes the pool's lock whole if nothing holds or waits for it.
func (l *poolLocks) tryExclusive(pool string) (release func(), ok bool) {
	s := l.get(pool)
	if !s.TryAcquire(poolLockWeight) {
		return nil, false
	}
	return func() { s.Release(poolLockWeight) }, true
}

// isStorageBusy reports libvirt's refusals that last only while another job
// runs. A busy pool comes as VIR_ERR_INTERNAL_ERROR, the code of every
// unexpected failure, so only its message tells it apart; a busy volume as
// VIR_ERR_OPERATION_INVALID, which also covers lasting refusals (an inactive
// pool), so there too the message decides. libvirt does not translate these
// messages unless libvirtd runs under a non-English locale.
func isStorageBusy(err error) bool {
	var lvErr golibvirt.Error
	if !errors.As(err, &lvErr) {
		return false
	}
	switch golibvirt.ErrorNumber(lvErr.Code) {
	case golibvirt.ErrInternalError:
		return strings.Contains(lvErr.Message, "has asynchronous jobs running")
	case golibvirt.ErrOperationInvalid:
		return strings.Contains(lvErr.Message, "is still in use") ||
			strings.Contains(lvErr.Message, "is still being allocated")
	}
	return false
}

// busyRetryWindow bounds the retries of a call whose ctx has no deadline:
// another client's job that keeps a pool busy longer than this is not
// transient any more, and the caller should hear about it.
const busyRetryWindow = 2 * time.Minute

// retryBusy calls fn until it returns anything but a busy refusal (see
// isStorageBusy), with backoff, for as long as ctx (or busyRetryWindow)
// allows. fn must be safe to repeat after a refusal, which libvirt gives
// before it changes anything.
func (c *Client) retryBusy(ctx context.Context, what string, fn func() error) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(busyRetryWindow)
	}
	delay := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !isStorageBusy(err) {
			return err
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("%w (still refused after %d attempts)", err, attempt)
		}
		c.log.Debug("storage busy; retrying", "op", what, "attempt", attempt, "delay", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, time.Second)
	}
}

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

// Pool reads a pool back, with its sizes as of a refresh made now, or as of
// libvirt's last scan when volumes are being built in it right now.
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

// PoolByUUID reads the pool with that UUID (in its usual 36-character form).
func (c *Client) PoolByUUID(ctx context.Context, uuid string) (*virt.PoolSpec, error) {
	u, err := parseUUID(uuid)
	if err != nil {
		return nil, err
	}
	var out *virt.PoolSpec
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByUUID(u)
		if err != nil {
			return wrap(err, "look up", "pool with UUID", uuid)
		}
		out, err = c.readPool(lv, pool)
		return err
	})
	return out, err
}

// ListPools names every pool of the host, active or not, sorted.
func (c *Client) ListPools(ctx context.Context) ([]string, error) {
	var names []string
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pools, _, err := lv.ConnectListAllStoragePools(1, 0)
		if err != nil {
			return fmt.Errorf("list pools: %w", err)
		}
		for _, p := range pools {
			names = append(names, p.Name)
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

// ListVolumes names the volumes of an active pool, sorted, as libvirt last
// saw them (it tracks its own creates and deletes; files added behind its
// back show after the pool's next refresh).
func (c *Client) ListVolumes(ctx context.Context, pool string) ([]string, error) {
	var names []string
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		p, err := lv.StoragePoolLookupByName(pool)
		if err != nil {
			return wrap(err, "look up", "pool", pool)
		}
		vols, _, err := lv.StoragePoolListAllVolumes(p, 1, 0)
		if err != nil {
			return wrap(err, "list volumes of", "pool", pool)
		}
		for _, v := range vols {
			names = append(names, v.Name)
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

// StartPool starts a stopped pool; a running one is left as it is.
func (c *Client) StartPool(ctx context.Context, name string) error {
	return c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByName(name)
		if err != nil {
			return wrap(err, "look up", "pool", name)
		}
		active, err := lv.StoragePoolIsActive(pool)
		if err != nil {
			return wrap(err, "get state of", "pool", name)
		}
		if active == 1 {
			return nil
		}
		return wrap(lv.StoragePoolCreate(pool, 0), "start", "pool", name)
	})
}

// SetPoolAutostart sets whether libvirtd starts the pool when it starts.
func (c *Client) SetPoolAutostart(ctx context.Context, name string, autostart bool) error {
	return c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByName(name)
		if err != nil {
			return wrap(err, "look up", "pool", name)
		}
		flag := int32(0)
		if autostart {
			flag = 1
		}
		return wrap(lv.StoragePoolSetAutostart(pool, flag), "set autostart of", "pool", name)
	})
}

func (c *Client) readPool(lv *golibvirt.Libvirt, pool golibvirt.StoragePool) (*virt.PoolSpec, error) {
	active, err := lv.StoragePoolIsActive(pool)
	if err != nil {
		return nil, wrap(err, "get state of", "pool", pool.Name)
	}
	if active == 1 {
		if err := c.refreshIfIdle(lv, pool); err != nil {
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

// refreshIfIdle rescans an active pool for a read, unless volume work runs
// in it: libvirt would refuse, and a read must not wait for a long upload.
// The figures are then those of libvirt's last scan, which is better than
// failing or stalling a read.
func (c *Client) refreshIfIdle(lv *golibvirt.Libvirt, pool golibvirt.StoragePool) error {
	release, ok := c.storageLocks.tryExclusive(pool.Name)
	if !ok {
		c.log.Debug("pool busy with volume work; reading without a refresh", "pool", pool.Name)
		return nil
	}
	defer release()
	err := lv.StoragePoolRefresh(pool, 0)
	if isStorageBusy(err) {
		c.log.Debug("pool busy with another client's job; reading without a refresh", "pool", pool.Name)
		return nil
	}
	return wrap(err, "refresh", "pool", pool.Name)
}

// DeletePool stops the pool, removes its directory and undefines it. A pool
// that still holds volumes is left as it is, with an error that names them:
// deleting them is the caller's decision, not a side effect. It waits for
// this client's volume work in the pool to finish, so that a volume being
// created right now is seen, not raced.
func (c *Client) DeletePool(ctx context.Context, name string) error {
	release, err := c.storageLocks.exclusive(ctx, name)
	if err != nil {
		return err
	}
	defer release()
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
		// Another client's build would make libvirt refuse each step below.
		busy := func(what string, fn func() error) error {
			return wrap(c.retryBusy(ctx, what+" pool "+name, fn), what, "pool", name)
		}
		if err := busy("refresh", func() error { return lv.StoragePoolRefresh(pool, 0) }); err != nil {
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
		if err := busy("stop", func() error { return lv.StoragePoolDestroy(pool) }); err != nil {
			return err
		}
		if err := busy("remove the directory of", func() error {
			return lv.StoragePoolDelete(pool, golibvirt.StoragePoolDeleteNormal)
		}); err != nil {
			return err
		}
		return busy("undefine", func() error { return lv.StoragePoolUndefine(pool) })
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
	release, err := c.storageLocks.share(ctx, spec.Pool)
	if err != nil {
		return nil, err
	}
	defer release()
	var out *virt.VolumeSpec
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
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
			// Without an explicit backing format qemu would probe it, and
			// a raw template could then pass for any format.
			doc.BackingStore = &libvirtxml.StorageVolumeBackingStore{
				Path:   b.Target.Path,
				Format: &libvirtxml.StorageVolumeTargetFormat{Type: recordedFormat(b)},
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
	if isExistsCode(err) && forgetStaleVolume(lv, pool, doc.Name) {
		vol, err = lv.StorageVolCreateXML(pool, x, 0)
	}
	if err != nil {
		return golibvirt.StorageVol{}, wrap(err, "create", "volume", name)
	}
	return vol, nil
}

// forgetStaleVolume drops libvirt's record of a volume whose file was
// removed behind its back (rm instead of vol-delete): libvirt keeps listing
// it until the pool's next refresh, reads of it say "not found", and its
// name stays taken. Deleting the record frees the name (libvirt ignores the
// missing file). It reports whether a stale record was dropped.
func forgetStaleVolume(lv *golibvirt.Libvirt, pool golibvirt.StoragePool, name string) bool {
	vol, err := lv.StorageVolLookupByName(pool, name)
	if err != nil {
		return false
	}
	if _, err := lv.StorageVolGetXMLDesc(vol, 0); !isNotFoundCode(err) {
		return false
	}
	return lv.StorageVolDelete(vol, 0) == nil
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
	img, err := virt.ProbeImage(f)
	if err != nil {
		return nil, fmt.Errorf("upload volume %q: image %s: %w", spec.Name, source, err)
	}

	var es virt.SpecErrors
	if spec.BackingVolumeKey != "" {
		es = append(es, &virt.SpecError{Field: "backing_volume_key", Reason: "an uploaded volume cannot be a clone"})
	}
	if spec.Format != "" && spec.Format != img.Format {
		es = append(es, &virt.SpecError{Field: "format", Reason: fmt.Sprintf("%s is a %s image, not %s", source, img.Format, spec.Format)})
	}
	if spec.CapacityBytes != 0 && spec.CapacityBytes < img.VirtualSize {
		es = append(es, &virt.SpecError{Field: "capacity_bytes", Reason: fmt.Sprintf(
			"%d bytes is smaller than the image's virtual size of %d", spec.CapacityBytes, img.VirtualSize)})
	}
	if len(es) > 0 {
		return nil, es
	}
	grow := spec.CapacityBytes
	spec.Format, spec.CapacityBytes = img.Format, img.VirtualSize
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}

	release, err := c.storageLocks.share(ctx, spec.Pool)
	if err != nil {
		return nil, err
	}
	defer release()
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
func (c *Client) fillVolume(ctx context.Context, lv *golibvirt.Libvirt, vol golibvirt.StorageVol, f *os.File, img virt.ImageInfo, grow uint64) error {
	name := vol.Pool + "/" + vol.Name
	// Each attempt gets a fresh reader: a refused upload has read nothing,
	// but the next attempt must start from the beginning all the same.
	upload := func(src func() io.Reader, off, length uint64) error {
		err := c.retryBusy(ctx, "upload volume "+name, func() error {
			return lv.StorageVolUpload(vol, ctxReader{ctx, src()}, off, length, 0)
		})
		if err != nil {
			return uploadError(ctx, name, err)
		}
		return nil
	}
	if img.Format == virt.FormatRaw {
		// The new raw volume is a sparse file of the right size, all zeros:
		// only the image's data needs to travel.
		extents, err := dataExtents(f, int64(img.FileSize))
		if err != nil {
			return fmt.Errorf("upload volume %q: find data in %s: %w", name, f.Name(), err)
		}
		for _, e := range extents {
			src := func() io.Reader { return io.NewSectionReader(f, e.off, e.len) }
			if err := upload(src, uint64(e.off), uint64(e.len)); err != nil {
				return err
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
		length := max(physical, img.FileSize)
		src := func() io.Reader {
			return io.MultiReader(io.NewSectionReader(f, 0, int64(img.FileSize)),
				io.LimitReader(zeroReader{}, int64(length-img.FileSize)))
		}
		if err := upload(src, 0, length); err != nil {
			return err
		}
		c.log.Debug("qcow2 volume uploaded", "volume", name, "bytes", length)
	}
	if grow > img.VirtualSize {
		err := c.retryBusy(ctx, "grow volume "+name, func() error { return lv.StorageVolResize(vol, grow, 0) })
		if err != nil {
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
	return c.volumeWork(ctx, key, func(lv *golibvirt.Libvirt, vol golibvirt.StorageVol) error {
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
		err = c.retryBusy(ctx, "resize volume "+key, func() error { return lv.StorageVolResize(vol, capacityBytes, 0) })
		return wrap(err, "resize", "volume", key)
	})
}

// DeleteVolume removes a volume. libvirt does not track clones, so deleting
// a template that clones still use breaks them; callers keep that order.
func (c *Client) DeleteVolume(ctx context.Context, key string) error {
	return c.volumeWork(ctx, key, func(lv *golibvirt.Libvirt, vol golibvirt.StorageVol) error {
		err := c.retryBusy(ctx, "delete volume "+key, func() error { return lv.StorageVolDelete(vol, 0) })
		return wrap(err, "delete", "volume", key)
	})
}

// volumeWork runs fn on the volume with that key while holding its pool's
// lock shared (see poolLocks).
func (c *Client) volumeWork(ctx context.Context, key string, fn func(*golibvirt.Libvirt, golibvirt.StorageVol) error) error {
	return c.call(ctx, func(lv *golibvirt.Libvirt) error {
		vol, err := lv.StorageVolLookupByKey(key)
		if err != nil {
			return wrap(err, "look up", "volume", key)
		}
		release, err := c.storageLocks.share(ctx, vol.Pool)
		if err != nil {
			return err
		}
		defer release()
		return fn(lv, vol)
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
		if spec.Format == "iso" {
			// A dir pool names the format it probes from a file's content:
			// an ISO 9660 image uploaded as raw reads back as "iso". It is
			// a raw image all the same (QEMU reads it as raw, and so does
			// libvirt when it hands it over).
			spec.Format = virt.FormatRaw
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

// recordedFormat is the format libvirt has on record for a volume, as
// qemu-img is to read it: a directory pool calls an ISO 9660 image "iso",
// and a volume without a format is raw (naming raw never lets qemu-img
// follow a backing file named in the content).
func recordedFormat(x *libvirtxml.StorageVolume) string {
	if x.Target == nil || x.Target.Format == nil {
		return virt.FormatRaw
	}
	switch f := x.Target.Format.Type; f {
	case "", "iso", "none":
		return virt.FormatRaw
	default:
		return f
	}
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
