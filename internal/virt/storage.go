package virt

import (
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
	if s.Type != PoolDir {
		es.add("type", "must be %q (the only pool type managed), got %q", PoolDir, s.Type)
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
