package virt

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const oneMiB = 1 << 20

// specFields returns the fields a Validate error names, in order, failing the
// test when the error is not a SpecErrors.
func specFields(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es SpecErrors
	if !errors.As(err, &es) {
		t.Fatalf("error %v (%T) is not SpecErrors", err, err)
	}
	var fields []string
	for _, e := range es {
		fields = append(fields, e.Field)
	}
	return fields
}

func TestVolumeSpecWithDefaults(t *testing.T) {
	got := VolumeSpec{Name: "a", CapacityBytes: 1}.WithDefaults()
	if got.Pool != DefaultPool || got.Format != FormatQCOW2 {
		t.Fatalf("defaults = pool %q format %q, want %q %q", got.Pool, got.Format, DefaultPool, FormatQCOW2)
	}
	kept := VolumeSpec{Name: "a", Pool: "p", Format: FormatRaw, CapacityBytes: 1}.WithDefaults()
	if kept.Pool != "p" || kept.Format != FormatRaw {
		t.Fatalf("defaults overwrote given values: %+v", kept)
	}
}

func TestVolumeSpecValidate(t *testing.T) {
	ok := VolumeSpec{Pool: "default", Name: "disk.qcow2", Format: FormatQCOW2, CapacityBytes: 1 << 30}
	for _, tc := range []struct {
		name   string
		mutate func(*VolumeSpec)
		want   []string // fields in error, nil for valid
	}{
		{"valid", func(s *VolumeSpec) {}, nil},
		{"raw", func(s *VolumeSpec) { s.Format = FormatRaw }, nil},
		{"clone without capacity", func(s *VolumeSpec) { s.BackingVolumeKey = "/p/base.qcow2"; s.CapacityBytes = 0 }, nil},
		{"clone with capacity", func(s *VolumeSpec) { s.BackingVolumeKey = "/p/base.qcow2" }, nil},
		{"empty name", func(s *VolumeSpec) { s.Name = "" }, []string{"name"}},
		{"slash in name", func(s *VolumeSpec) { s.Name = "a/b" }, []string{"name"}},
		{"dot", func(s *VolumeSpec) { s.Name = "." }, []string{"name"}},
		{"dotdot", func(s *VolumeSpec) { s.Name = ".." }, []string{"name"}},
		{"control char", func(s *VolumeSpec) { s.Name = "a\nb" }, []string{"name"}},
		{"too long", func(s *VolumeSpec) { s.Name = strings.Repeat("x", 300) }, []string{"name"}},
		{"no pool", func(s *VolumeSpec) { s.Pool = "" }, []string{"pool"}},
		{"bad pool", func(s *VolumeSpec) { s.Pool = "a/b" }, []string{"pool"}},
		{"bad format", func(s *VolumeSpec) { s.Format = "vmdk" }, []string{"format"}},
		{"no format", func(s *VolumeSpec) { s.Format = "" }, []string{"format"}},
		{"raw clone", func(s *VolumeSpec) { s.Format = FormatRaw; s.BackingVolumeKey = "/p/base" }, []string{"format"}},
		{"no capacity", func(s *VolumeSpec) { s.CapacityBytes = 0 }, []string{"capacity_bytes"}},
		{"all at once", func(s *VolumeSpec) { *s = VolumeSpec{Name: "..", Format: "x"} },
			[]string{"name", "pool", "format", "capacity_bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.mutate(&s)
			if got := specFields(t, s.Validate()); !slices.Equal(got, tc.want) {
				t.Fatalf("Validate(%+v) fields = %v, want %v (%v)", s, got, tc.want, s.Validate())
			}
		})
	}
}

// Defaults make a spec that names only what matters valid.
func TestVolumeSpecDefaultsThenValidate(t *testing.T) {
	if err := (VolumeSpec{Name: "a", CapacityBytes: 1}).WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (VolumeSpec{Name: "a", BackingVolumeKey: "/k"}).WithDefaults().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPoolSpecValidate(t *testing.T) {
	ok := PoolSpec{Name: "vt", Type: PoolDir, Path: "/var/lib/vt"}
	for _, tc := range []struct {
		name   string
		mutate func(*PoolSpec)
		want   []string
	}{
		{"valid", func(s *PoolSpec) {}, nil},
		{"root", func(s *PoolSpec) { s.Path = "/" }, nil},
		{"empty name", func(s *PoolSpec) { s.Name = "" }, []string{"name"}},
		{"slash in name", func(s *PoolSpec) { s.Name = "a/b" }, []string{"name"}},
		{"logical", func(s *PoolSpec) { s.Type = "logical" }, []string{"type"}},
		{"no type", func(s *PoolSpec) { s.Type = "" }, []string{"type"}},
		{"no path", func(s *PoolSpec) { s.Path = "" }, []string{"path"}},
		{"relative", func(s *PoolSpec) { s.Path = "images" }, []string{"path"}},
		{"trailing slash", func(s *PoolSpec) { s.Path = "/var/lib/vt/" }, []string{"path"}},
		{"dotdot", func(s *PoolSpec) { s.Path = "/var/lib/../vt" }, []string{"path"}},
		{"double slash", func(s *PoolSpec) { s.Path = "/var//vt" }, []string{"path"}},
		{"all", func(s *PoolSpec) { *s = PoolSpec{Type: "rbd"} }, []string{"name", "type", "path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			tc.mutate(&s)
			if got := specFields(t, s.Validate()); !slices.Equal(got, tc.want) {
				t.Fatalf("Validate(%+v) fields = %v, want %v", s, got, tc.want)
			}
		})
	}
	if got := (PoolSpec{Name: "p", Path: "/x"}).WithDefaults(); got.Type != PoolDir {
		t.Fatalf("default type = %q, want %q", got.Type, PoolDir)
	}
}

// qcow2Header builds the first bytes of a qcow2 file as qemu writes them.
func qcow2Header(version uint32, size uint64, mutate func(h []byte)) []byte {
	h := make([]byte, 512)
	copy(h, "QFI\xfb")
	binary.BigEndian.PutUint32(h[4:], version)
	binary.BigEndian.PutUint32(h[20:], 16) // cluster bits
	binary.BigEndian.PutUint64(h[24:], size)
	if mutate != nil {
		mutate(h)
	}
	return h
}

func TestProbeImage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name     string
		content  []byte
		want     ImageInfo
		wantErr  string
		fileSize int64 // when set, the file is extended to this size
	}{
		{name: "qcow2 v3", content: qcow2Header(3, 10*oneMiB, nil), want: ImageInfo{FormatQCOW2, 10 * oneMiB, 512}},
		{name: "qcow2 v2", content: qcow2Header(2, 1<<40, nil), want: ImageInfo{FormatQCOW2, 1 << 40, 512}},
		{name: "qcow2 backing", content: qcow2Header(3, oneMiB, func(h []byte) {
			binary.BigEndian.PutUint64(h[8:], 400)
			binary.BigEndian.PutUint32(h[16:], 9)
			copy(h[400:], "/base.img")
		}), wantErr: `backing file "/base.img"`},
		{name: "qcow2 encrypted", content: qcow2Header(3, oneMiB, func(h []byte) { binary.BigEndian.PutUint32(h[32:], 1) }), wantErr: "encrypted"},
		{name: "qcow2 corrupt", content: qcow2Header(3, oneMiB, func(h []byte) { binary.BigEndian.PutUint64(h[72:], 2) }), wantErr: "corrupt"},
		{name: "qcow2 data file", content: qcow2Header(3, oneMiB, func(h []byte) { binary.BigEndian.PutUint64(h[72:], 4) }), wantErr: "external"},
		{name: "qcow2 dirty is fine", content: qcow2Header(3, oneMiB, func(h []byte) { binary.BigEndian.PutUint64(h[72:], 1) }), want: ImageInfo{FormatQCOW2, oneMiB, 512}},
		{name: "qcow2 v1", content: qcow2Header(1, oneMiB, nil), wantErr: "version 1"},
		{name: "qcow2 zero size", content: qcow2Header(3, 0, nil), wantErr: "virtual size of 0"},
		{name: "qcow2 truncated", content: []byte("QFI\xfb\x00\x00\x00\x03"), wantErr: "truncated"},
		{name: "raw", content: []byte("hello"), fileSize: 3 * oneMiB, want: ImageInfo{FormatRaw, 3 * oneMiB, 3 * oneMiB}},
		{name: "raw short", content: []byte("x"), want: ImageInfo{FormatRaw, 1, 1}},
		{name: "empty", content: nil, wantErr: "empty"},
		{name: "vmdk", content: []byte("KDMV\x01\x00\x00\x00"), wantErr: "vmdk image"},
		{name: "vhdx", content: []byte("vhdxfile"), wantErr: "vhdx image"},
		{name: "vdi", content: append(make([]byte, 64), 0x7f, 0x10, 0xda, 0xbe), wantErr: "vdi image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(p, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.fileSize > 0 {
				if err := os.Truncate(p, tc.fileSize); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			got, err := ProbeImage(f)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ProbeImage = %+v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ProbeImage = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	if _, err := ProbeImage(openForTest(t, dir)); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("ProbeImage(dir) = %v, want 'not a regular file'", err)
	}
}

func openForTest(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}
