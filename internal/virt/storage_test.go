package virt

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

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
