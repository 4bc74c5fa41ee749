package libvirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/go-hclog"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

const oneMiB = 1 << 20

// --- pure logic ---

func TestSizeBytes(t *testing.T) {
	for _, tc := range []struct {
		v       uint64
		unit    string
		want    uint64
		wantErr bool
	}{
		{5, "bytes", 5, false},
		{5, "", 5, false},
		{5, "B", 5, false},
		{2, "KiB", 2048, false},
		{2, "k", 2048, false},
		{2, "KB", 2000, false},
		{3, "MiB", 3 << 20, false},
		{1, "G", 1 << 30, false},
		{1, "GB", 1e9, false},
		{1, "TiB", 1 << 40, false},
		{1, "PiB", 0, true},
		{1 << 60, "TiB", 0, true},
	} {
		got, err := sizeBytes(tc.v, tc.unit)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("sizeBytes(%d, %q) = %d, %v; want %d, error %v", tc.v, tc.unit, got, err, tc.want, tc.wantErr)
		}
	}
}

// Data in a sparse file is found by extent; small holes are sent as zeros.
func TestDataExtents(t *testing.T) {
	for _, tc := range []struct {
		name   string
		size   int64
		writes []int64 // offsets of 64 KiB writes
		want   []extent
	}{
		{"all hole", 64 * oneMiB, nil, nil},
		{"start", 64 * oneMiB, []int64{0}, []extent{{0, 64 << 10}}},
		{"two far apart", 64 * oneMiB, []int64{oneMiB, 40 * oneMiB}, []extent{{oneMiB, 64 << 10}, {40 * oneMiB, 64 << 10}}},
		{"small gap merged", 64 * oneMiB, []int64{oneMiB, 2 * oneMiB}, []extent{{oneMiB, oneMiB + 64<<10}}},
		{"data at the very end", 8 * oneMiB, []int64{8*oneMiB - 64<<10}, []extent{{8*oneMiB - 64<<10, 64 << 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "img"))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			if err := f.Truncate(tc.size); err != nil {
				t.Fatal(err)
			}
			block := []byte(strings.Repeat("x", 64<<10))
			for _, off := range tc.writes {
				if _, err := f.WriteAt(block, off); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			got, err := dataExtents(f, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			// A file system may report data in larger units than written;
			// what matters is that every write is covered and far holes stay.
			for _, off := range tc.writes {
				if !slices.ContainsFunc(got, func(e extent) bool { return e.off <= off && off+64<<10 <= e.off+e.len }) {
					t.Errorf("extents %v miss the write at %d", got, off)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("extents = %v, want %v", got, tc.want)
			}
		})
	}
}

// More pieces than are worth a stream each are sent as one.
func TestDataExtentsManyPieces(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	n := maxExtents + 5
	for i := 0; i < n; i++ {
		if _, err := f.WriteAt([]byte("x"), int64(i)*2*extentGap); err != nil {
			t.Fatal(err)
		}
	}
	size := int64(n) * 2 * extentGap
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	got, err := dataExtents(f, size)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].off != 0 || got[0].off+got[0].len < int64(n-1)*2*extentGap+1 {
		t.Fatalf("extents = %v, want one covering all data", got)
	}
}

func TestCtxReaderStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := ctxReader{ctx, zeroReader{}}
	buf := make([]byte, 8)
	if n, err := r.Read(buf); n != 8 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	cancel()
	if _, err := r.Read(buf); !errors.Is(err, context.Canceled) {
		t.Fatalf("Read after cancel = %v, want context.Canceled", err)
	}
}

// --- against libvirtd ---

// newStorageTestPool makes a dir pool in a temporary directory and removes it, with
// every volume in it, when the test ends, however it ends.
func newStorageTestPool(t *testing.T, c *Client) *virt.PoolSpec {
	t.Helper()
	name := testenv.Name(t, "lv-pool")
	path := filepath.Join(t.TempDir(), "pool")
	t.Cleanup(func() { removeStorageTestPool(t, c, name) })
	p, err := c.CreatePool(context.Background(), virt.PoolSpec{Name: name, Path: path})
	if err != nil {
		t.Fatalf("create pool: %v", err)
	}
	return p
}

// removeStorageTestPool deletes a test pool by hand, so that cleanup does not depend on
// the code under test.
func removeStorageTestPool(t *testing.T, c *Client, name string) {
	t.Helper()
	err := c.call(context.Background(), func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByName(name)
		if isNotFoundCode(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if active, _ := lv.StoragePoolIsActive(pool); active == 0 {
			_ = lv.StoragePoolCreate(pool, 0)
		}
		_ = lv.StoragePoolRefresh(pool, 0)
		vols, _, _ := lv.StoragePoolListAllVolumes(pool, 1, 0)
		for _, v := range vols {
			if err := lv.StorageVolDelete(v, 0); err != nil {
				t.Errorf("cleanup: delete volume %s: %v", v.Name, err)
			}
		}
		_ = lv.StoragePoolDestroy(pool)
		_ = lv.StoragePoolDelete(pool, 0)
		return lv.StoragePoolUndefine(pool)
	})
	if err != nil {
		t.Errorf("cleanup: remove pool %s: %v", name, err)
	}
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

type qemuImgInfo struct {
	Format                string `json:"format"`
	VirtualSize           uint64 `json:"virtual-size"`
	ActualSize            uint64 `json:"actual-size"`
	BackingFilename       string `json:"backing-filename"`
	BackingFilenameFormat string `json:"backing-filename-format"`
}

func qemuImgInfoOf(t *testing.T, path string) qemuImgInfo {
	t.Helper()
	var info qemuImgInfo
	out := runTool(t, "qemu-img", "info", "-U", "--output=json", path)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("qemu-img info %s: %v\n%s", path, err, out)
	}
	return info
}

func checkNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("%s: error %v, want virt.ErrNotFound", what, err)
	}
}

func checkSpecField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var es virt.SpecErrors
	if !errors.As(err, &es) || !slices.ContainsFunc(es, func(e *virt.SpecError) bool { return e.Field == field }) {
		t.Errorf("%s: error %v, want a SpecError on %q", what, err, field)
	}
}

func TestPoolLifecycle(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	name := testenv.Name(t, "lv-pool")
	path := filepath.Join(t.TempDir(), "parent", "pool")
	t.Cleanup(func() { removeStorageTestPool(t, c, name) })

	got, err := c.CreatePool(ctx, virt.PoolSpec{Name: name, Path: path, Autostart: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != name || got.Type != virt.PoolDir || got.Path != path || !got.Autostart || !got.Active ||
		got.UUID == "" || got.CapacityBytes == 0 || got.AvailableBytes == 0 || got.AvailableBytes > got.CapacityBytes {
		t.Errorf("created pool = %+v", *got)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("pool directory: %v", err)
	}
	if mode := st.Mode().Perm(); mode != 0o711 {
		t.Errorf("pool directory mode = %o, want 711 (others may traverse, not list)", mode)
	}

	again, err := c.Pool(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if again.UUID != got.UUID || again.Path != got.Path || again.Autostart != got.Autostart {
		t.Errorf("read back %+v, created %+v", *again, *got)
	}
	byUUID, err := c.PoolByUUID(ctx, got.UUID)
	if err != nil || byUUID.Name != name {
		t.Errorf("PoolByUUID(%s) = %+v, %v", got.UUID, byUUID, err)
	}
	_, err = c.PoolByUUID(ctx, "00000000-0000-4000-8000-000000000000")
	checkNotFound(t, "pool by unknown UUID", err)
	if _, err := c.PoolByUUID(ctx, name); err == nil || !strings.Contains(err.Error(), "not a UUID") {
		t.Errorf("PoolByUUID(name) = %v, want a refusal", err)
	}
	if names, err := c.ListPools(ctx); err != nil || !slices.Contains(names, name) || !slices.IsSorted(names) {
		t.Errorf("ListPools = %v, %v; want it sorted and holding %s", names, err, name)
	}

	if err := c.SetPoolAutostart(ctx, name, false); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Pool(ctx, name); err != nil || p.Autostart || !p.Active {
		t.Errorf("after autostart off: %+v, %v", p, err)
	}
	if err := c.SetPoolAutostart(ctx, name, true); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Pool(ctx, name); err != nil || !p.Autostart {
		t.Errorf("after autostart on: %+v, %v", p, err)
	}

	if _, err := c.CreatePool(ctx, virt.PoolSpec{Name: name, Path: path + "2"}); !errors.Is(err, virt.ErrExists) {
		t.Errorf("create a pool whose name is taken: %v, want virt.ErrExists", err)
	}
	if _, err := c.CreatePool(ctx, virt.PoolSpec{Name: name, Path: "relative"}); err == nil {
		t.Error("create with a relative path succeeded")
	} else {
		checkSpecField(t, "relative path", err, "path")
	}

	// A stopped pool is deleted all the same, directory included.
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByName(name)
		if err != nil {
			return err
		}
		return lv.StoragePoolDestroy(pool)
	})
	if err != nil {
		t.Fatalf("stop pool: %v", err)
	}
	if stopped, err := c.Pool(ctx, name); err != nil || stopped.Active {
		t.Fatalf("stopped pool reads back as %+v, %v", stopped, err)
	}
	if err := c.StartPool(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := c.StartPool(ctx, name); err != nil {
		t.Fatalf("start a running pool: %v", err)
	}
	if started, err := c.Pool(ctx, name); err != nil || !started.Active || started.CapacityBytes == 0 {
		t.Fatalf("started pool reads back as %+v, %v", started, err)
	}
	if err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByName(name)
		if err != nil {
			return err
		}
		return lv.StoragePoolDestroy(pool)
	}); err != nil {
		t.Fatalf("stop pool again: %v", err)
	}
	if err := c.DeletePool(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pool directory after delete: %v, want it gone", err)
	}
	_, err = c.Pool(ctx, name)
	checkNotFound(t, "read deleted pool", err)
	checkNotFound(t, "delete deleted pool", c.DeletePool(ctx, name))
	checkNotFound(t, "start deleted pool", c.StartPool(ctx, name))
	checkNotFound(t, "autostart deleted pool", c.SetPoolAutostart(ctx, name, true))
	_, err = c.ListVolumes(ctx, name)
	checkNotFound(t, "list volumes of deleted pool", err)
}

// A pool whose directory cannot be made is not left defined.
func TestCreatePoolFailureUndefines(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	name := testenv.Name(t, "lv-pool")
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeStorageTestPool(t, c, name) })
	_, err := c.CreatePool(ctx, virt.PoolSpec{Name: name, Path: filepath.Join(file, "pool")})
	if err == nil {
		t.Fatal("create a pool under a regular file succeeded")
	}
	if !strings.Contains(err.Error(), name) {
		t.Errorf("error %q does not name the pool", err)
	}
	_, err = c.Pool(ctx, name)
	checkNotFound(t, "pool after failed create", err)
}

func TestDeletePoolWithVolumes(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)
	for _, n := range []string{"b.qcow2", "a.raw"} {
		f := virt.FormatQCOW2
		if strings.HasSuffix(n, ".raw") {
			f = virt.FormatRaw
		}
		if _, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: n, Format: f, CapacityBytes: oneMiB}); err != nil {
			t.Fatal(err)
		}
	}
	err := c.DeletePool(ctx, pool.Name)
	if err == nil {
		t.Fatal("deleting a pool with volumes succeeded")
	}
	if !strings.Contains(err.Error(), "2 volume(s): a.raw, b.qcow2") {
		t.Errorf("error %q does not name the volumes", err)
	}
	after, err := c.Pool(ctx, pool.Name)
	if err != nil {
		t.Fatalf("pool after refused delete: %v", err)
	}
	if !after.Active {
		t.Error("refused delete left the pool stopped")
	}
}

func TestVolumeLifecycle(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)

	for _, format := range []string{virt.FormatQCOW2, virt.FormatRaw} {
		t.Run(format, func(t *testing.T) {
			name := "disk-" + format
			got, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: name, Format: format, CapacityBytes: 64 * oneMiB})
			if err != nil {
				t.Fatal(err)
			}
			wantPath := filepath.Join(pool.Path, name)
			if got.Pool != pool.Name || got.Name != name || got.Format != format || got.CapacityBytes != 64*oneMiB ||
				got.Path != wantPath || got.Key != wantPath || got.BackingPath != "" || got.BackingVolumeKey != "" {
				t.Errorf("created volume = %+v", *got)
			}
			// Thin: nothing of the 64 MiB is written out.
			if got.AllocationBytes > oneMiB {
				t.Errorf("allocation = %d, want a thin volume", got.AllocationBytes)
			}
			if info := qemuImgInfoOf(t, got.Path); info.Format != format || info.VirtualSize != 64*oneMiB {
				t.Errorf("qemu-img sees %+v", info)
			}

			byName, err := c.Volume(ctx, pool.Name, name)
			if err != nil {
				t.Fatal(err)
			}
			byKey, err := c.VolumeByKey(ctx, got.Key)
			if err != nil {
				t.Fatal(err)
			}
			if *byName != *got || *byKey != *got {
				t.Errorf("read back differs:\n created %+v\n by name %+v\n by key  %+v", *got, *byName, *byKey)
			}

			_, err = c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: name, Format: format, CapacityBytes: oneMiB})
			if !errors.Is(err, virt.ErrExists) {
				t.Errorf("create existing volume: %v, want virt.ErrExists", err)
			}

			if err := c.DeleteVolume(ctx, got.Key); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(got.Path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("file after delete: %v", err)
			}
			_, err = c.VolumeByKey(ctx, got.Key)
			checkNotFound(t, "read deleted volume by key", err)
			_, err = c.Volume(ctx, pool.Name, name)
			checkNotFound(t, "read deleted volume by name", err)
			checkNotFound(t, "delete deleted volume", c.DeleteVolume(ctx, got.Key))
			checkNotFound(t, "resize deleted volume", c.ResizeVolume(ctx, got.Key, 128*oneMiB))
		})
	}

	missingPool := testenv.Name(t, "lv-pool")
	_, err := c.Volume(ctx, missingPool, "x")
	checkNotFound(t, "volume in missing pool", err)
	_, err = c.CreateVolume(ctx, virt.VolumeSpec{Pool: missingPool, Name: "x", CapacityBytes: oneMiB})
	checkNotFound(t, "create in missing pool", err)
	_, err = c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "x"})
	checkSpecField(t, "create without capacity", err, "capacity_bytes")
}

// fillQCOW2 writes size bytes of a pattern into a qcow2 image from offset 0.
func fillQCOW2(t *testing.T, path string, size int) {
	t.Helper()
	runTool(t, "qemu-io", "-f", "qcow2", "-c", fmt.Sprintf("write -P 0x5a 0 %d", size), path)
}

func TestCloneVolume(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)

	tmpl, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "template.qcow2", CapacityBytes: 64 * oneMiB})
	if err != nil {
		t.Fatal(err)
	}
	fillQCOW2(t, tmpl.Path, 32*oneMiB)
	if tmpl, err = c.VolumeByKey(ctx, tmpl.Key); err != nil {
		t.Fatal(err)
	}
	if tmpl.AllocationBytes < 32*oneMiB {
		t.Fatalf("template allocation %d after writing 32 MiB", tmpl.AllocationBytes)
	}

	start := time.Now()
	clone, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "clone.qcow2", BackingVolumeKey: tmpl.Key})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("clone of a template holding %d bytes took %s; clone allocation %d", tmpl.AllocationBytes, took, clone.AllocationBytes)
	if clone.BackingPath != tmpl.Path || clone.BackingFormat != virt.FormatQCOW2 || clone.BackingVolumeKey != tmpl.Key ||
		clone.Format != virt.FormatQCOW2 || clone.CapacityBytes != tmpl.CapacityBytes {
		t.Errorf("clone = %+v\ntemplate = %+v", *clone, *tmpl)
	}
	if clone.AllocationBytes > oneMiB || clone.AllocationBytes*16 > tmpl.AllocationBytes {
		t.Errorf("clone allocation %d vs template %d: data was copied", clone.AllocationBytes, tmpl.AllocationBytes)
	}
	info := qemuImgInfoOf(t, clone.Path)
	if info.BackingFilename != tmpl.Path || info.BackingFilenameFormat != virt.FormatQCOW2 {
		t.Errorf("qemu-img info of the clone: %+v, want backing %s (qcow2)", info, tmpl.Path)
	}
	// The clone reads the template's data through its backing file.
	runTool(t, "qemu-io", "-r", "-f", "qcow2", "-c", fmt.Sprintf("read -P 0x5a 0 %d", 32*oneMiB), clone.Path)

	bigger, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "bigger.qcow2", BackingVolumeKey: tmpl.Key, CapacityBytes: 128 * oneMiB})
	if err != nil {
		t.Fatal(err)
	}
	if bigger.CapacityBytes != 128*oneMiB || qemuImgInfoOf(t, bigger.Path).VirtualSize != 128*oneMiB {
		t.Errorf("grown clone capacity = %d, want %d", bigger.CapacityBytes, 128*oneMiB)
	}

	_, err = c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "smaller.qcow2", BackingVolumeKey: tmpl.Key, CapacityBytes: 16 * oneMiB})
	checkSpecField(t, "clone smaller than its template", err, "capacity_bytes")
	_, err = c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "raw-clone", Format: virt.FormatRaw, BackingVolumeKey: tmpl.Key})
	checkSpecField(t, "raw clone", err, "format")
	_, err = c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "orphan.qcow2", BackingVolumeKey: filepath.Join(pool.Path, "missing")})
	checkNotFound(t, "clone of a missing volume", err)
	if _, err := c.Volume(ctx, pool.Name, "smaller.qcow2"); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("a refused clone left a volume behind: %v", err)
	}

	// A raw template works as well; the clone records its format.
	rawTmpl, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "template.raw", Format: virt.FormatRaw, CapacityBytes: 8 * oneMiB})
	if err != nil {
		t.Fatal(err)
	}
	rawClone, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "raw-backed.qcow2", BackingVolumeKey: rawTmpl.Key})
	if err != nil {
		t.Fatal(err)
	}
	if rawClone.BackingFormat != virt.FormatRaw || rawClone.BackingPath != rawTmpl.Path || qemuImgInfoOf(t, rawClone.Path).BackingFilenameFormat != "raw" {
		t.Errorf("clone of a raw template = %+v", *rawClone)
	}
}

func TestResizeVolume(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)
	for _, format := range []string{virt.FormatQCOW2, virt.FormatRaw} {
		t.Run(format, func(t *testing.T) {
			v, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "r-" + format, Format: format, CapacityBytes: 16 * oneMiB})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.ResizeVolume(ctx, v.Key, 48*oneMiB); err != nil {
				t.Fatal(err)
			}
			if err := c.ResizeVolume(ctx, v.Key, 48*oneMiB); err != nil {
				t.Fatalf("resize to the same size: %v", err)
			}
			err = c.ResizeVolume(ctx, v.Key, 8*oneMiB)
			if err == nil || !strings.Contains(err.Error(), "shrinking") {
				t.Errorf("shrink: %v, want a refusal", err)
			}
			got, err := c.VolumeByKey(ctx, v.Key)
			if err != nil {
				t.Fatal(err)
			}
			if got.CapacityBytes != 48*oneMiB || qemuImgInfoOf(t, got.Path).VirtualSize != 48*oneMiB {
				t.Errorf("capacity after grow and refused shrink = %d, want %d", got.CapacityBytes, 48*oneMiB)
			}
		})
	}
}

func TestUploadVolume(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)
	dir := t.TempDir()

	qcow := filepath.Join(dir, "src.qcow2")
	runTool(t, "qemu-img", "create", "-q", "-f", "qcow2", qcow, "48M")
	runTool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x11 1M 2M", "-c", "write -P 0x22 40M 1M", qcow)
	raw := filepath.Join(dir, "src.raw")
	runTool(t, "qemu-img", "create", "-q", "-f", "raw", raw, "40M")
	runTool(t, "qemu-io", "-f", "raw", "-c", "write -P 0x33 0 64k", "-c", "write -P 0x44 30M 1M", raw)

	t.Run("qcow2", func(t *testing.T) {
		got, err := c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "up.qcow2"}, qcow)
		if err != nil {
			t.Fatal(err)
		}
		if got.Format != virt.FormatQCOW2 || got.CapacityBytes != 48*oneMiB || got.Path != filepath.Join(pool.Path, "up.qcow2") {
			t.Errorf("uploaded = %+v", *got)
		}
		runTool(t, "qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2", qcow, got.Path)
		runTool(t, "qemu-img", "check", "-q", got.Path)
	})
	t.Run("raw", func(t *testing.T) {
		got, err := c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "up.raw"}, raw)
		if err != nil {
			t.Fatal(err)
		}
		if got.Format != virt.FormatRaw || got.CapacityBytes != 40*oneMiB {
			t.Errorf("uploaded = %+v", *got)
		}
		// Only the data travelled: the holes stay holes.
		t.Logf("raw upload: %d of %d bytes allocated", got.AllocationBytes, got.CapacityBytes)
		if got.AllocationBytes > 8*oneMiB {
			t.Errorf("allocation %d: the upload filled in the holes", got.AllocationBytes)
		}
		runTool(t, "qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", raw, got.Path)
	})
	t.Run("grow", func(t *testing.T) {
		got, err := c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "grown.qcow2", CapacityBytes: 96 * oneMiB}, qcow)
		if err != nil {
			t.Fatal(err)
		}
		if got.CapacityBytes != 96*oneMiB || qemuImgInfoOf(t, got.Path).VirtualSize != 96*oneMiB {
			t.Errorf("grown upload capacity = %d, want %d", got.CapacityBytes, 96*oneMiB)
		}
		runTool(t, "qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x22 40M 1M", got.Path)
	})
	t.Run("refused", func(t *testing.T) {
		_, err := c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "x", Format: virt.FormatRaw}, qcow)
		checkSpecField(t, "format other than the file's", err, "format")
		_, err = c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "x", CapacityBytes: oneMiB}, qcow)
		checkSpecField(t, "capacity below the image's", err, "capacity_bytes")
		_, err = c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "x", BackingVolumeKey: "/k"}, qcow)
		checkSpecField(t, "uploaded clone", err, "backing_volume_key")

		overlay := filepath.Join(dir, "overlay.qcow2")
		runTool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", qcow, "-F", "qcow2", overlay)
		_, err = c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "x"}, overlay)
		if err == nil || !strings.Contains(err.Error(), "backing file") {
			t.Errorf("upload of an overlay: %v, want a refusal naming the backing file", err)
		}
		_, err = c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "x"}, filepath.Join(dir, "missing"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("upload of a missing file: %v", err)
		}
		if _, err := c.Volume(ctx, pool.Name, "x"); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("a refused upload left a volume: %v", err)
		}
	})
	t.Run("existing name", func(t *testing.T) {
		before, err := c.Volume(ctx, pool.Name, "up.qcow2")
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "up.qcow2"}, raw)
		if !errors.Is(err, virt.ErrExists) {
			t.Errorf("upload over an existing volume: %v, want virt.ErrExists", err)
		}
		after, err := c.Volume(ctx, pool.Name, "up.qcow2")
		if err != nil || after.Format != before.Format || after.CapacityBytes != before.CapacityBytes {
			t.Errorf("the existing volume changed: %+v, %v", after, err)
		}
	})
	// A step that fails after the volume was made removes it: growing to a
	// size no file can have fails in the kernel, after the data went up.
	t.Run("failure removes the volume", func(t *testing.T) {
		_, err := c.UploadVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "doomed.raw", CapacityBytes: 1 << 63}, raw)
		if err == nil {
			t.Fatal("growing to 8 EiB succeeded")
		}
		t.Logf("failed as planned: %v", err)
		_, err = c.Volume(ctx, pool.Name, "doomed.raw")
		checkNotFound(t, "volume after failed upload", err)
		if _, err := os.Stat(filepath.Join(pool.Path, "doomed.raw")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("file after failed upload: %v", err)
		}
	})
}

// BenchmarkCloneVolume compares a clone through CreateVolume with the same
// clone made by virsh, each timed one at a time, and reports the medians.
// Run with: go test ./internal/virt/libvirt -run '^$' -bench CloneVolume -benchtime 10x
func BenchmarkCloneVolume(b *testing.B) {
	testenv.Integration(b)
	c, err := New(context.Background(), Options{URI: testenv.URI()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	ctx := context.Background()
	name := testenv.Name(b, "lv-pool")
	path := filepath.Join(b.TempDir(), "pool")
	defer func() {
		_ = c.call(ctx, func(lv *golibvirt.Libvirt) error {
			pool, err := lv.StoragePoolLookupByName(name)
			if err != nil {
				return err
			}
			vols, _, _ := lv.StoragePoolListAllVolumes(pool, 1, 0)
			for _, v := range vols {
				_ = lv.StorageVolDelete(v, 0)
			}
			_ = lv.StoragePoolDestroy(pool)
			_ = lv.StoragePoolDelete(pool, 0)
			return lv.StoragePoolUndefine(pool)
		})
	}()
	pool, err := c.CreatePool(ctx, virt.PoolSpec{Name: name, Path: path})
	if err != nil {
		b.Fatal(err)
	}
	tmpl, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "template.qcow2", CapacityBytes: 64 * oneMiB})
	if err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 32M", tmpl.Path).CombinedOutput(); err != nil {
		b.Fatalf("fill template: %v\n%s", err, out)
	}

	median := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	b.Run("virt", func(b *testing.B) {
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			start := time.Now()
			v, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: fmt.Sprintf("virt-%d-%d.qcow2", b.N, i), BackingVolumeKey: tmpl.Key})
			ds = append(ds, time.Since(start))
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := c.DeleteVolume(ctx, v.Key); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(median(ds).Microseconds())/1000, "median-ms")
	})
	b.Run("virsh", func(b *testing.B) {
		var ds []time.Duration
		for i := 0; i < b.N; i++ {
			vol := fmt.Sprintf("virsh-%d-%d.qcow2", b.N, i)
			start := time.Now()
			out, err := exec.Command("virsh", "-c", testenv.URI(), "-q", "vol-create-as", pool.Name, vol, "64M",
				"--format", "qcow2", "--backing-vol", tmpl.Path, "--backing-vol-format", "qcow2").CombinedOutput()
			ds = append(ds, time.Since(start))
			if err != nil {
				b.Fatalf("virsh vol-create-as: %v\n%s", err, out)
			}
			b.StopTimer()
			if err := c.DeleteVolume(ctx, filepath.Join(pool.Path, vol)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(median(ds).Microseconds())/1000, "median-ms")
	})
}

// --- concurrency ---

func TestIsStorageBusy(t *testing.T) {
	lvErr := func(code golibvirt.ErrorNumber, msg string) error {
		return golibvirt.Error{Code: uint32(code), Message: msg}
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"pool busy", lvErr(golibvirt.ErrInternalError, "internal error: pool 'default' has asynchronous jobs running."), true},
		{"pool busy, wrapped", fmt.Errorf("refresh pool: %w", lvErr(golibvirt.ErrInternalError, "internal error: pool 'p' has asynchronous jobs running.")), true},
		{"volume in use", lvErr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: volume 'a.qcow2' is still in use."), true},
		{"volume being built", lvErr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: volume 'a.qcow2' is still being allocated."), true},
		{"other internal error", lvErr(golibvirt.ErrInternalError, "internal error: cannot parse volume"), false},
		{"pool not active", lvErr(golibvirt.ErrOperationInvalid, "Requested operation is not valid: storage pool 'p' is not active"), false},
		{"message under another code", lvErr(golibvirt.ErrNoStorageVol, "has asynchronous jobs running"), false},
		{"not from libvirt", errors.New("pool 'p' has asynchronous jobs running."), false},
		{"nil", nil, false},
	} {
		if got := isStorageBusy(tc.err); got != tc.want {
			t.Errorf("%s: isStorageBusy(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestRetryBusy(t *testing.T) {
	c := &Client{log: hclog.NewNullLogger()}
	busy := golibvirt.Error{Code: uint32(golibvirt.ErrInternalError), Message: "internal error: pool 'p' has asynchronous jobs running."}

	calls := 0
	err := c.retryBusy(context.Background(), "op", func() error {
		calls++
		if calls < 3 {
			return busy
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Errorf("busy twice, then done: %v after %d calls", err, calls)
	}

	calls = 0
	other := golibvirt.Error{Code: uint32(golibvirt.ErrNoStoragePool), Message: "no pool"}
	if err := c.retryBusy(context.Background(), "op", func() error { calls++; return other }); !errors.Is(err, other) || calls != 1 {
		t.Errorf("other error: %v after %d calls, want it at once", err, calls)
	}

	// Busy for ever: the ctx deadline ends the retries, and the error says
	// what libvirt said.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	calls = 0
	err = c.retryBusy(ctx, "op", func() error { calls++; return busy })
	if !errors.Is(err, busy) || !strings.Contains(err.Error(), "asynchronous jobs") || calls < 3 {
		t.Errorf("busy for ever: %v after %d calls", err, calls)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("retries outlived the deadline of 300ms: %s", took)
	}
}

func TestPoolLocks(t *testing.T) {
	var l poolLocks
	ctx := context.Background()

	r1, err := l.share(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.share(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.tryExclusive("p"); ok {
		t.Fatal("tryExclusive succeeded while volume work runs")
	}
	other, ok := l.tryExclusive("q")
	if !ok {
		t.Fatal("another pool's lock is taken too")
	}
	other()

	// A waiting exclusive holder gets the lock once the shared ones are
	// done, and new shared holders queue behind it.
	got := make(chan struct{})
	go func() {
		release, err := l.exclusive(ctx, "p")
		if err != nil {
			t.Error(err)
			return
		}
		close(got)
		time.Sleep(50 * time.Millisecond) // hold it while the share below waits
		release()
	}()
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	waitFor := func(cond func() bool) {
		deadline := time.Now().Add(5 * time.Second)
		for !cond() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	// Once the exclusive holder waits, even a share that would fit is
	// refused to TryAcquire.
	waitFor(func() bool {
		s := l.get("p")
		if s.TryAcquire(1) {
			s.Release(1)
			return false
		}
		return true
	})
	if _, err := l.share(short, "p"); err == nil {
		t.Fatal("a new share jumped ahead of a waiting exclusive holder")
	}
	r1()
	select {
	case <-got:
		t.Fatal("exclusive taken while a share is held")
	case <-time.After(20 * time.Millisecond):
	}
	r2()
	<-got
	r3, err := l.share(ctx, "p") // waits for the exclusive holder's release
	if err != nil {
		t.Fatal(err)
	}
	r3()
}

// The refusal the lock avoids is real: libvirt refuses to refresh a pool
// while volumes are built in it, with the error isStorageBusy knows.
func TestLibvirtRefusesRefreshDuringBuilds(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)
	tmpl, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "template.qcow2", CapacityBytes: 64 * oneMiB})
	if err != nil {
		t.Fatal(err)
	}

	// Raw calls, past the client's lock: another program on the same host.
	other := newTestClient(t)
	lv, err := other.conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := lv.StoragePoolLookupByName(pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: fmt.Sprintf("b%d-%d", w, i), BackingVolumeKey: tmpl.Key})
				if err != nil {
					t.Error(err)
					return
				}
				if err := c.DeleteVolume(ctx, v.Key); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var refused error
	refreshes := 0
	for deadline := time.Now().Add(20 * time.Second); refused == nil && time.Now().Before(deadline); refreshes++ {
		err := lv.StoragePoolRefresh(p, 0)
		if err != nil && !isStorageBusy(err) {
			t.Fatalf("refresh failed otherwise than as busy: code %d: %v", libvirtCode(err), err)
		}
		refused = err
	}
	close(stop)
	wg.Wait()
	if refused == nil {
		t.Fatalf("%d refreshes during volume builds all went through; the lock would be for nothing", refreshes)
	}
	t.Logf("refresh %d during builds: code %d, %q", refreshes, libvirtCode(refused), refused)
}

// Twenty clones of one template at once through one client, while the pool
// is read (refreshed) over and over and another program refreshes it too:
// every create, grow and delete succeeds, and so does every read.
func TestConcurrentClones(t *testing.T) {
	const n = 20
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)
	tmpl, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "template.qcow2", CapacityBytes: 64 * oneMiB})
	if err != nil {
		t.Fatal(err)
	}
	fillQCOW2(t, tmpl.Path, 8*oneMiB)

	// Background readers: this client's pool reads, and another program's
	// raw refreshes, which libvirt refuses while builds run.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	var reads, otherRefused, otherRefreshes int
	bg.Add(2)
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Pool(ctx, pool.Name); err != nil {
				t.Errorf("pool read during volume work: %v", err)
				return
			}
			reads++
		}
	}()
	other := newTestClient(t)
	olv, err := other.conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	op, err := olv.StoragePoolLookupByName(pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			otherRefreshes++
			if err := olv.StoragePoolRefresh(op, 0); isStorageBusy(err) {
				otherRefused++
			}
			time.Sleep(time.Millisecond)
		}
	}()

	run := func(what string, fn func(i int) error) time.Duration {
		t.Helper()
		start := time.Now()
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = fn(i)
			}()
		}
		wg.Wait()
		took := time.Since(start)
		for i, err := range errs {
			if err != nil {
				t.Errorf("%s %d: %v", what, i, err)
			}
		}
		return took
	}

	keys := make([]string, n)
	tookCreate := run("clone", func(i int) error {
		v, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: fmt.Sprintf("clone-%02d.qcow2", i),
			BackingVolumeKey: tmpl.Key, CapacityBytes: uint64(64+i) * oneMiB})
		if err != nil {
			return err
		}
		keys[i] = v.Key
		if v.BackingVolumeKey != tmpl.Key || v.CapacityBytes != uint64(64+i)*oneMiB {
			return fmt.Errorf("clone = %+v", *v)
		}
		return nil
	})
	if t.Failed() {
		t.FailNow()
	}
	tookGrow := run("grow", func(i int) error {
		if err := c.ResizeVolume(ctx, keys[i], 256*oneMiB); err != nil {
			return err
		}
		v, err := c.VolumeByKey(ctx, keys[i])
		if err == nil && v.CapacityBytes != 256*oneMiB {
			err = fmt.Errorf("capacity after grow = %d", v.CapacityBytes)
		}
		return err
	})
	names, err := c.ListVolumes(ctx, pool.Name)
	if err != nil || len(names) != n+1 {
		t.Errorf("ListVolumes = %v, %v; want %d volumes", names, err, n+1)
	}
	for _, k := range keys {
		info := qemuImgInfoOf(t, k)
		if info.BackingFilename != tmpl.Path || info.VirtualSize != 256*oneMiB {
			t.Errorf("qemu-img info %s: %+v", k, info)
		}
	}
	tookDelete := run("delete", func(i int) error { return c.DeleteVolume(ctx, keys[i]) })
	close(stop)
	bg.Wait()
	t.Logf("%d clones: create %s, grow %s, delete %s; %d pool reads meanwhile; the other program's refreshes: %d of %d refused",
		n, tookCreate, tookGrow, tookDelete, reads, otherRefused, otherRefreshes)

	if err := c.DeleteVolume(ctx, tmpl.Key); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePool(ctx, pool.Name); err != nil {
		t.Fatalf("delete the emptied pool: %v", err)
	}
}

// A pool delete waits for volume work running in the pool, then sees what
// it made: it never races a create.
func TestDeletePoolWaitsForVolumeWork(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)
	release, err := c.storageLocks.share(ctx, pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.DeletePool(ctx, pool.Name) }()
	select {
	case err := <-done:
		t.Fatalf("pool delete did not wait for volume work: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	// The "volume work" lands a volume, then lets go.
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		p, err := lv.StoragePoolLookupByName(pool.Name)
		if err != nil {
			return err
		}
		_, err = createVolume(lv, p, volumeDoc(virt.VolumeSpec{Name: "late.qcow2", Format: virt.FormatQCOW2, CapacityBytes: oneMiB}))
		return err
	})
	release()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "late.qcow2") {
		t.Fatalf("pool delete after volume work: %v, want a refusal naming late.qcow2", err)
	}

	ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	release, err = c.storageLocks.share(ctx, pool.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := c.DeletePool(ctx2, pool.Name); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("pool delete past its deadline: %v, want context.DeadlineExceeded", err)
	}
}

// A volume whose file was removed behind libvirt's back reads as not found,
// and its name can be used again.
func TestVolumeFileRemovedOutOfBand(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	pool := newStorageTestPool(t, c)
	v, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "gone.qcow2", CapacityBytes: oneMiB})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(v.Path); err != nil {
		t.Fatal(err)
	}
	_, err = c.VolumeByKey(ctx, v.Key)
	checkNotFound(t, "read a volume whose file is gone", err)
	again, err := c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "gone.qcow2", CapacityBytes: 2 * oneMiB})
	if err != nil {
		t.Fatalf("create again under the same name: %v", err)
	}
	if again.CapacityBytes != 2*oneMiB {
		t.Errorf("re-created volume = %+v", *again)
	}
	// A volume that is really there is not mistaken for a stale one.
	_, err = c.CreateVolume(ctx, virt.VolumeSpec{Pool: pool.Name, Name: "gone.qcow2", CapacityBytes: oneMiB})
	if !errors.Is(err, virt.ErrExists) {
		t.Errorf("create over a live volume: %v, want virt.ErrExists", err)
	}
}
