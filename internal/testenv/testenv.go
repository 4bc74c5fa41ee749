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
	"fmt"
	"net"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
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

// PackerBinary is the packer that scripts/testenv built from the module proxy
// (Packer is neither in Debian's archive nor downloadable here).
func PackerBinary(t testing.TB) string { return File(t, "packer/packer") }

// Loopback listeners that scripts/testenv puts in front of the local libvirtd,
// so that tests reach it the way the provider reaches a remote host.
const (
	// RemoteHost is the only address they listen on.
	RemoteHost = "127.0.0.1"
	// SSHPort is the test sshd (root, key only; SSHKey).
	SSHPort = 2222
	// LibvirtTLSPort is libvirtd's TLS listener (certificates of PKIDir).
	LibvirtTLSPort = 16514
)

// DebianImageKey is the private key root accepts in the Debian image
// (debian/disk.qcow2) that scripts/setup builds.
func DebianImageKey(t testing.TB) string { return File(t, "debian/id_ed25519") }

// SSHKey is the private key the test sshd accepts for root.
func SSHKey(t testing.TB) string { return File(t, "ssh/id_ed25519") }

// SSHKnownHosts is a known_hosts file holding the test sshd's host key for
// [127.0.0.1]:2222.
func SSHKnownHosts(t testing.TB) string { return File(t, "ssh/known_hosts") }

// PKIDir is a client pkipath for the TLS listener: the test CA's
// cacert.pem, clientcert.pem and clientkey.pem.
func PKIDir(t testing.TB) string {
	t.Helper()
	for _, f := range []string{"cacert.pem", "clientcert.pem", "clientkey.pem"} {
		File(t, filepath.Join("pki/client", f))
	}
	return filepath.Join(CacheDir(), "pki/client")
}

// SSHURI is qemu+ssh to the test sshd with SSHKey. go-libvirt's ssh
// transport checks the host key against ~/.ssh/known_hosts of the user
// running the test (a known_hosts parameter is for qemu+libssh only), where
// scripts/testenv puts it; a missing entry fails here, not as a host-key
// error later.
func SSHURI(t testing.TB) string {
	t.Helper()
	key := SSHKey(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(u.HomeDir, ".ssh", "known_hosts")
	b, err := os.ReadFile(kh)
	if err != nil || !strings.Contains(string(b), fmt.Sprintf("[%s]:%d ", RemoteHost, SSHPort)) {
		t.Fatalf("test environment incomplete: %s has no host key for [%s]:%d (run `make testenv`)", kh, RemoteHost, SSHPort)
	}
	return remoteURI("ssh", SSHPort, "root", url.Values{"keyfile": {key}})
}

// LibSSHURI is qemu+libssh to the test sshd with SSHKey and SSHKnownHosts.
func LibSSHURI(t testing.TB) string {
	t.Helper()
	return remoteURI("libssh", SSHPort, "root", url.Values{"keyfile": {SSHKey(t)}, "known_hosts": {SSHKnownHosts(t)}})
}

// TCPURI is qemu+tcp to a forwarder that this test starts in front of the
// local libvirtd's socket and that lives as long as the test. libvirtd's
// own TCP listener has no authentication but SASL; the forwarder admits
// only connections whose socket root owns (the same rule as libvirtd's
// read-write socket), so no user of the host gains libvirt through it.
func TCPURI(t testing.TB) string {
	t.Helper()
	addr := ForwardToLibvirt(t, nil)
	return "qemu+tcp://" + addr + "/system"
}

// TLSURI is qemu+tls to libvirtd's TLS listener with PKIDir.
func TLSURI(t testing.TB) string {
	t.Helper()
	return remoteURI("tls", LibvirtTLSPort, "", url.Values{"pkipath": {PKIDir(t)}})
}

// remoteURI builds qemu+TRANSPORT://[user@]127.0.0.1:PORT/system?QUERY, with
// the slashes of paths in the query left as they are, for readable errors.
func remoteURI(transport string, port int, userName string, q url.Values) string {
	u := url.URL{
		Scheme:   "qemu+" + transport,
		Host:     net.JoinHostPort(RemoteHost, strconv.Itoa(port)),
		Path:     "/system",
		RawQuery: strings.ReplaceAll(q.Encode(), "%2F", "/"),
	}
	if userName != "" {
		u.User = url.User(userName)
	}
	return u.String()
}

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
