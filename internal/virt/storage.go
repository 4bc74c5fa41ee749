package virt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// DefaultPool is the pool a volume goes to when none is named: the pool
// virt-install and virt-manager use, so that volumes land where users of
// those tools look for them.
const DefaultPool = "default"

// WithDefaults returns the spec with empty fields set to their defaults. Call
// it before Validate: Validate checks the spec as it will be sent.
func (s VolumeSpec) WithDefaults() VolumeSpec {
	if s.Pool == "" {
		s.Pool = DefaultPool
	}
	if s.Format == "" {
		s.Format = FormatQCOW2
	}
	return s
}

// Validate reports every problem of the spec at once as SpecErrors.
func (s VolumeSpec) Validate() error {
	var es SpecErrors
	checkObjectName(&es, "name", s.Name)
	if s.Pool == "" {
		es.add("pool", "must not be empty")
	} else {
		checkObjectName(&es, "pool", s.Pool)
	}
	if !slices.Contains(VolumeFormats, s.Format) {
		es.add("format", "must be one of %s, got %q", strings.Join(VolumeFormats, ", "), s.Format)
	}
	if s.BackingVolumeKey != "" {
		// Only qcow2 records a backing file; a raw "clone" would have to copy
		// the whole template.
		if s.Format != FormatQCOW2 && slices.Contains(VolumeFormats, s.Format) {
			es.add("format", "a clone (backing_volume_key set) must be %s, got %q", FormatQCOW2, s.Format)
		}
	} else if s.CapacityBytes == 0 {
		es.add("capacity_bytes", "must be greater than 0 for a volume that is not a clone")
	}
	return es.err()
}

// PoolTypes lists the pool types the layer manages: directory pools, whose
// volumes are files that qemu-img can clone copy-on-write.
var PoolTypes = []string{PoolDir}

// WithDefaults returns the spec with empty fields set to their defaults.
func (s PoolSpec) WithDefaults() PoolSpec {
	if s.Type == "" {
		s.Type = PoolDir
	}
	return s
}

// Validate reports every problem of the spec at once as SpecErrors.
func (s PoolSpec) Validate() error {
	var es SpecErrors
	checkObjectName(&es, "name", s.Name)
	if !slices.Contains(PoolTypes, s.Type) {
		es.add("type", "must be one of %s, got %q", strings.Join(PoolTypes, ", "), s.Type)
	}
	switch {
	case s.Path == "":
		es.add("path", "must not be empty")
	case !filepath.IsAbs(s.Path):
		es.add("path", "must be absolute, got %q", s.Path)
	case filepath.Clean(s.Path) != s.Path:
		// libvirt stores the path sanitized; an unclean path would read back
		// different from what was asked and show as a change for ever.
		es.add("path", "must be in clean form: %q, not %q", filepath.Clean(s.Path), s.Path)
	}
	return es.err()
}

// checkObjectName applies the rules libvirt has for names of pools, volumes
// and networks: each becomes a file name on the host (a volume's file, a
// definition's XML), so it must be one path element.
func checkObjectName(es *SpecErrors, field, name string) {
	switch {
	case name == "":
		es.add(field, "must not be empty")
	case name == "." || name == "..":
		es.add(field, "must not be %q", name)
	case strings.ContainsRune(name, '/'):
		es.add(field, "must not contain '/', got %q", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		es.add(field, "must not contain control characters, got %q", name)
	case len(name) > maxObjectName:
		es.add(field, "must be at most %d bytes long, got %d", maxObjectName, len(name))
	}
}

// maxObjectName leaves room for the ".xml" libvirt appends to a definition's
// file name within the 255 bytes a file name may have.
const maxObjectName = 255 - len(".xml")

// ImageInfo is what a local disk image says about itself.
type ImageInfo struct {
	Format      string // qcow2 or raw
	VirtualSize uint64 // the disk size the guest sees
	FileSize    uint64 // the bytes the file holds (what an upload sends)
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

// ProbeImageFile opens the image at path and probes it (see ProbeImage). It
// lets a front end check an image at plan time, before anything is sent.
func ProbeImageFile(path string) (ImageInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImageInfo{}, err
	}
	defer func() { _ = f.Close() }() // opened read-only: nothing to flush
	return ProbeImage(f)
}

// ProbeImage reads the image's format and sizes from its header, as qemu
// would: a qcow2 by its magic and header, everything else as raw. It refuses
// what cannot be uploaded as a standalone disk: other container formats, and
// qcow2 images with a backing file, encryption or an external data file.
func ProbeImage(f *os.File) (ImageInfo, error) {
	st, err := f.Stat()
	if err != nil {
		return ImageInfo{}, err
	}
	if !st.Mode().IsRegular() {
		return ImageInfo{}, fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	if st.Size() == 0 {
		return ImageInfo{}, errors.New("the file is empty")
	}
	hdr := make([]byte, 512)
	n, err := f.ReadAt(hdr, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return ImageInfo{}, err
	}
	hdr = hdr[:n]
	if bytes.HasPrefix(hdr, []byte("QFI\xfb")) {
		return probeQCOW2(f, hdr, uint64(st.Size()))
	}
	for _, m := range foreignMagics {
		if len(hdr) >= m.offset+len(m.magic) && string(hdr[m.offset:m.offset+len(m.magic)]) == m.magic {
			return ImageInfo{}, fmt.Errorf("is a %s image; convert it to qcow2 or raw first (qemu-img convert -O qcow2)", m.format)
		}
	}
	return ImageInfo{Format: FormatRaw, VirtualSize: uint64(st.Size()), FileSize: uint64(st.Size())}, nil
}

// probeQCOW2 checks a qcow2 header (see qemu's docs/interop/qcow2.txt).
func probeQCOW2(f *os.File, hdr []byte, fileSize uint64) (ImageInfo, error) {
	be := binary.BigEndian
	if len(hdr) < 72 {
		return ImageInfo{}, errors.New("qcow2 header is truncated")
	}
	version := be.Uint32(hdr[4:])
	if version != 2 && version != 3 {
		return ImageInfo{}, fmt.Errorf("qcow2 version %d is not supported", version)
	}
	if off, size := be.Uint64(hdr[8:]), be.Uint32(hdr[16:]); off != 0 {
		backing := make([]byte, min(size, 1024))
		if _, err := f.ReadAt(backing, int64(off)); err != nil {
			backing = []byte("?")
		}
		// The backing file is a path on this machine, which means nothing
		// on the host the image goes to.
		return ImageInfo{}, fmt.Errorf("qcow2 image has a backing file %q; upload a standalone image (qemu-img convert -O qcow2)", backing)
	}
	if crypt := be.Uint32(hdr[32:]); crypt != 0 {
		return ImageInfo{}, errors.New("qcow2 image is encrypted; upload an unencrypted image")
	}
	if version == 3 && len(hdr) >= 80 {
		const corrupt, externalData = 1 << 1, 1 << 2
		incompat := be.Uint64(hdr[72:])
		if incompat&corrupt != 0 {
			return ImageInfo{}, errors.New("qcow2 image is marked corrupt (qemu-img check -r all)")
		}
		if incompat&externalData != 0 {
			return ImageInfo{}, errors.New("qcow2 image keeps its data in an external file; upload a standalone image")
		}
	}
	size := be.Uint64(hdr[24:])
	if size == 0 {
		return ImageInfo{}, errors.New("qcow2 image has a virtual size of 0")
	}
	return ImageInfo{Format: FormatQCOW2, VirtualSize: size, FileSize: fileSize}, nil
}
