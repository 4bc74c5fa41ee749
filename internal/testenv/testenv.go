// Package testenv is what integration and acceptance tests share: where the
// test guest built by scripts/testenv lives, which libvirt URI to use, and the
// prefix every test object carries so that `make sweep` can find leftovers.
//
// Integration tests skip only in -short mode. Otherwise a missing daemon,
// binary or file is a failure: CI must never go green by skipping.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Prefix starts the name of everything a test makes on the host. The sweeper
// removes whatever carries it.
const Prefix = "vt-"

// Marker is what the test guest's init prints on its serial console once
// it is up.
const Marker = "VIRT-TESTENV-GUEST-READY"

// CacheDir is where scripts/testenv leaves the test guest and other
// artefacts: $VIRT_TESTENV_CACHE, or /var/cache/virt-testenv.
func CacheDir() string {
	if d := os.Getenv("VIRT_TESTENV_CACHE"); d != "" {
		return d
	}
	return "/var/cache/virt-testenv"
}

// URI is the libvirt URI tests use: $VIRT_TEST_URI, or qemu:///system.
func URI() string {
	if u := os.Getenv("VIRT_TEST_URI"); u != "" {
		return u
	}
	return "qemu:///system"
}

// Integration marks a test as one that needs the real daemons and the
// files of scripts/testenv; it skips only under -short.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs libvirtd/LXC (run without -short)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("integration tests run as root (libvirt qemu:///system, LXC); run `make testenv` and the tests as root")
	}
}

// File returns the path of a file that scripts/testenv made under the cache
// directory, failing the test when it is missing.
func File(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(CacheDir(), rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test environment incomplete: %v (run `make testenv`)", err)
	}
	return p
}

// GuestKernel, GuestInitrd and GuestDisk are the tiny bootable test guest.
func GuestKernel(t testing.TB) string { return File(t, "guest/vmlinuz") }
func GuestInitrd(t testing.TB) string { return File(t, "guest/initrd.gz") }
func GuestDisk(t testing.TB) string   { return File(t, "guest/disk.qcow2") }

// Name returns a name for a host object unique to this test run:
// vt-<kind>-<random>. Kind says which test family made it (for example
// "lv-dom"), so a leftover can be traced to its test.
func Name(t testing.TB, kind string) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return Prefix + strings.ToLower(kind) + "-" + hex.EncodeToString(b[:])
}

// CI reports whether the tests run under CI, where nothing may skip.
func CI() bool { return os.Getenv("CI") == "true" }
