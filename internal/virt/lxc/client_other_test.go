//go:build !(linux && cgo)

package lxc

import (
	"errors"
	"strings"
	"testing"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// Builds without liblxc must say so in a way callers can test for.
func TestNewWithoutLXC(t *testing.T) {
	_, err := New("", nil)
	if !errors.Is(err, virt.ErrUnsupported) || !strings.Contains(err.Error(), "containers need a Linux host with liblxc") {
		t.Fatalf("New: %v; want ErrUnsupported saying what is missing", err)
	}
}
