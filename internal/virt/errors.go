package virt

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound reports that the object asked for does not exist on the host.
// Backends map their daemon's own not-found codes to it, so that callers can
// tell "deleted out of band" apart from every other failure with errors.Is.
var ErrNotFound = errors.New("not found")

// ErrExists reports that an object of that name already exists on the host.
var ErrExists = errors.New("already exists")

// ErrUnsupported reports that the host (or this build) cannot do what was
// asked, for example containers on a build without liblxc.
var ErrUnsupported = errors.New("not supported")

// SpecError names the field of a spec that is wrong and why. Field uses the
// spec's own names in dotted form ("disks[0].bus"), so that front ends can map
// it to their attribute paths.
type SpecError struct {
	Field  string
	Reason string
}

func (e *SpecError) Error() string {
	return fmt.Sprintf("%s: %s", e.Field, e.Reason)
}

// SpecErrors collects every problem of one spec, so that a user sees them all
// at once instead of fixing one per run.
type SpecErrors []*SpecError

func (es SpecErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return "invalid spec: " + strings.Join(parts, "; ")
}

// Unwrap lets errors.As find each *SpecError.
func (es SpecErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// add records a problem; it keeps call sites short in Validate methods.
func (es *SpecErrors) add(field, format string, args ...any) {
	*es = append(*es, &SpecError{Field: field, Reason: fmt.Sprintf(format, args...)})
}

// err returns nil when nothing was recorded, so Validate can end with it.
func (es SpecErrors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// NotFoundError wraps ErrNotFound with the kind and name of what is missing.
func NotFoundError(kind, name string) error {
	return fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
}

// ExistsError wraps ErrExists with the kind and name of what is in the way.
func ExistsError(kind, name string) error {
	return fmt.Errorf("%s %q: %w", kind, name, ErrExists)
}
