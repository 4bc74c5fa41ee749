package machine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// A build from a volume already on the host (source_volume, as pool/name),
// with compact: the build runs on a copy-on-write clone of the source, and
// the output is a standalone, compressed qcow2 with the same contents (the
// test guest writes nothing to its disk), no backing file, while the source
// stays as it was and the clone goes.
func TestAccMachineBuilder_sourceVolume(t *testing.T) {
	e := newPackerEnv(t)
	ctx := context.Background()
	output := testenv.Name(t, "pk-vm")
	// The source: a 16 MiB qcow2 holding 8 MiB of text, which compresses
	// (the test guest boots from its kernel and initrd and only lists it).
	raw := filepath.Join(e.dir, "source.raw")
	if err := os.WriteFile(raw, bytes.Repeat([]byte("virt source volume\n"), 8<<20/19), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(raw, 16<<20); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(e.dir, "source.qcow2")
	e.run(t, exec.Command("qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, image))
	source := output + "-src.qcow2"
	src, err := e.lv.UploadVolume(ctx, virt.VolumeSpec{Pool: virt.DefaultPool, Name: source}, image)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.lv.UndefineMachine(ctx, output+"-build")
		for _, n := range []string{source, output} {
			if v, err := e.lv.Volume(ctx, virt.DefaultPool, n); err == nil {
				_ = e.lv.DeleteVolume(ctx, v.Key)
			}
		}
	})

	tpl := e.template(t, fmt.Sprintf(`
source "virt-machine" "clone" {
  source_volume = "default/%[1]s"
  compact       = true
  boot {
    kernel  = %[2]q
    initrd  = %[3]q
    cmdline = "console=ttyS0"
  }
  boot_wait_for    = "VIRT-TESTENV-GUEST-READY"
  communicator     = "none"
  shutdown_timeout = "2m"
  type             = "qemu"
  memory           = 256
  output_volume    = %[4]q
}

build {
  sources = ["source.virt-machine.clone"]
}
`, source, testenv.GuestKernel(t), testenv.GuestInitrd(t), output))
	out := e.run(t, e.command("build", tpl))

	got, err := e.lv.Volume(ctx, virt.DefaultPool, output)
	if err != nil {
		t.Fatalf("output volume: %v\n%s", err, out)
	}
	if got.Format != virt.FormatQCOW2 || got.BackingPath != "" || got.CapacityBytes != src.CapacityBytes {
		t.Errorf("output volume: format %s, backing %q, capacity %d; want a standalone qcow2 of %d bytes",
			got.Format, got.BackingPath, got.CapacityBytes, src.CapacityBytes)
	}
	if info := qemuImg(t, "info", virt.FormatQCOW2, got.Path); info["backing-filename"] != nil {
		t.Errorf("the output has a backing file: %v", info)
	}
	// compact wrote it compressed (on a local host).
	if check := qemuImg(t, "check", virt.FormatQCOW2, got.Path); check["compressed-clusters"] == nil || check["compressed-clusters"].(float64) == 0 {
		t.Errorf("the compact output has no compressed clusters: %v", check)
	}
	// Same guest-visible contents as the source, read through qemu-img.
	if b, err := exec.Command("qemu-img", "compare", "-q", "-f", virt.FormatQCOW2, "-F", virt.FormatQCOW2, src.Path, got.Path).CombinedOutput(); err != nil {
		t.Errorf("qemu-img compare source output: %v %s", err, b)
	}
	if got.AllocationBytes >= src.AllocationBytes {
		t.Errorf("compact output allocates %d bytes, the source %d: not compressed", got.AllocationBytes, src.AllocationBytes)
	}
	again, err := e.lv.VolumeByKey(ctx, src.Key)
	if err != nil || again.AllocationBytes != src.AllocationBytes {
		t.Errorf("source volume after the build: %+v, %v", again, err)
	}
	if !strings.Contains(out, "Cloning default/"+source+" copy-on-write") {
		t.Errorf("the build did not clone the source:\n%s", out)
	}
	e.assertNothingLeft(t, output, output, source)
}

// qemuImg is `qemu-img CMD --output=json` (info, check) of path, read as
// format (named: qemu-img would otherwise guess it from the content),
// decoded.
func qemuImg(t *testing.T, cmd, format, path string) map[string]any {
	t.Helper()
	b, err := exec.Command("qemu-img", cmd, "-U", "-f", format, "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img %s %s: %v", cmd, path, err)
	}
	var info map[string]any
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatal(err)
	}
	return info
}
