package testenv

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// HostSecret is the marker that SecretFile fills its file with.
const HostSecret = "VT-HOST-SECRET-MARKER"

// SecretFile makes a 1 MiB file on this machine full of HostSecret: a
// stand-in for a host file that a guest must never get to read.
func SecretFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "host-secret")
	b := bytes.Repeat([]byte(HostSecret+"\n"), (1<<20)/(len(HostSecret)+1))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ForgeQCOW2Header writes what a hostile guest can write onto its raw
// disk: at the start of the raw image at disk, a qcow2 image (header and
// tables) of the disk's size whose backing file is backing (read as raw).
// A tool that guesses the disk's format from its content takes it for that
// qcow2 image and reads backing's bytes as the guest's.
func ForgeQCOW2Header(t testing.TB, disk, backing string) {
	t.Helper()
	fi, err := os.Stat(disk)
	if err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(t.TempDir(), "forged.qcow2")
	cmd := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", backing, forged, strconv.FormatInt(fi.Size(), 10))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	header, err := os.ReadFile(forged)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.WriteAt(header, 0); err != nil {
		t.Fatal(err)
	}
}

// ImageLeak reads the image at path as format, as QEMU would (naming the
// format, never guessing it), and returns its backing file as qemu-img
// info reports it (empty: none) and whether the disk a guest would see
// holds HostSecret anywhere.
func ImageLeak(t testing.TB, path, format string) (backing string, secret bool) {
	t.Helper()
	out, err := exec.Command("qemu-img", "info", "-U", "-f", format, "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img info -f %s %s: %v", format, path, err)
	}
	var info struct {
		Backing string `json:"backing-filename"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("qemu-img info %s: %v\n%s", path, err, out)
	}
	raw := filepath.Join(t.TempDir(), "guest-view.raw")
	if b, err := exec.Command("qemu-img", "convert", "-U", "-f", format, "-O", "raw", path, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert -f %s %s: %v: %s", format, path, err, b)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	return info.Backing, bytes.Contains(b, []byte(HostSecret))
}
