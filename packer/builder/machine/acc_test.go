package machine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

// packerEnv is a packer that sees only the plugin built from this tree,
// and a TMPDIR of its own, so a test can tell what a build left behind.
type packerEnv struct {
	packer, dir, tmp string
	lv               *libvirt.Client
}

func newPackerEnv(t *testing.T) *packerEnv {
	t.Helper()
	testenv.Integration(t)
	e := &packerEnv{packer: testenv.PackerBinary(t), dir: t.TempDir()}
	e.tmp = filepath.Join(e.dir, "tmp")
	if err := os.Mkdir(e.tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(e.dir, "packer-plugin-virt")
	e.run(t, exec.Command("go", "build", "-o", plugin, "github.com/virtforge/terraform-provider-virt/packer/cmd/packer-plugin-virt"))
	e.run(t, e.command("plugins", "install", "--path", plugin, "github.com/virtforge/virt"))
	lv, err := libvirt.New(context.Background(), libvirt.Options{URI: testenv.URI()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lv.Close() })
	e.lv = lv
	return e
}

func (e *packerEnv) command(args ...string) *exec.Cmd {
	cmd := exec.Command(e.packer, args...)
	cmd.Env = append(os.Environ(), "PACKER_PLUGIN_PATH="+filepath.Join(e.dir, "plugins"), "CHECKPOINT_DISABLE=1", "TMPDIR="+e.tmp)
	return cmd
}

func (e *packerEnv) run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return string(out)
}

func (e *packerEnv) template(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(e.dir, "t.pkr.hcl")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// debianSource is a virt-machine source booting the cached Debian test
// image (scripts/testenv) under TCG, reached over SSH as root.
func debianSource(t *testing.T, output, extra string) string {
	return fmt.Sprintf(`
source "virt-machine" "test" {
  disk_image = %q
  boot {
    kernel  = %q
    initrd  = %q
    cmdline = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
  }
  type                 = "qemu"
  vcpu                 = 2
  memory               = 1024
  output_volume        = %q
  ssh_username         = "root"
  ssh_private_key_file = %q
  ssh_timeout          = "5m"
%s
}
`, testenv.File(t, "debian/disk.qcow2"), testenv.File(t, "debian/vmlinuz"), testenv.File(t, "debian/initrd.img"),
		output, testenv.DebianImageKey(t), extra)
}

// assertNothingLeft fails when the build named output left a machine, a
// volume or a temporary directory behind; the volumes named in keep (the
// output, a source) are meant to stay.
func (e *packerEnv) assertNothingLeft(t *testing.T, output string, keep ...string) {
	t.Helper()
	ctx := context.Background()
	if ok, err := e.lv.MachineExists(ctx, output+"-build"); err != nil || ok {
		t.Errorf("machine %s-build: exists=%v err=%v", output, ok, err)
	}
	vols, err := e.lv.ListVolumes(ctx, virt.DefaultPool)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols {
		if strings.HasPrefix(v, output) && !slices.Contains(keep, v) {
			t.Errorf("volume %s was left in pool %s", v, virt.DefaultPool)
		}
	}
	left, _ := filepath.Glob(filepath.Join(e.tmp, "packer-virt-machine-*"))
	if len(left) > 0 {
		t.Errorf("temporary directories left: %v", left)
	}
}

// A name already taken stops the build before anything is made.
func TestAccMachineBuilder_nameTaken(t *testing.T) {
	e := newPackerEnv(t)
	output := testenv.Name(t, "pk-vm")
	taken, err := e.lv.CreateVolume(context.Background(), virt.VolumeSpec{Name: output, CapacityBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.lv.DeleteVolume(context.Background(), taken.Key) })
	tpl := e.template(t, debianSource(t, output, "")+`build { sources = ["source.virt-machine.test"] }`)
	out, err := e.command("build", tpl).CombinedOutput()
	if err == nil {
		t.Fatalf("the build succeeded over a taken name:\n%s", out)
	}
	want := fmt.Sprintf("volume %q already exists in pool \"default\"", output)
	if !strings.Contains(string(out), want) {
		t.Fatalf("want %q in:\n%s", want, out)
	}
	if strings.Contains(string(out), "Uploading") || strings.Contains(string(out), "Starting machine") {
		t.Fatalf("work started before the name check:\n%s", out)
	}
	if ok, _ := e.lv.MachineExists(context.Background(), output+"-build"); ok {
		t.Fatal("a build machine was made")
	}
}

// SIGINT while a provisioner runs: packer cancels the build, and the build
// machine, its volumes and its temporary directory are gone afterwards.
func TestAccMachineBuilder_interrupted(t *testing.T) {
	e := newPackerEnv(t)
	output := testenv.Name(t, "pk-vm")
	t.Cleanup(func() {
		// Only if the test failed half-way: leave the host clean anyway.
		ctx := context.Background()
		_ = e.lv.UndefineMachine(ctx, output+"-build")
		if v, err := e.lv.Volume(ctx, virt.DefaultPool, output); err == nil {
			_ = e.lv.DeleteVolume(ctx, v.Key)
		}
	})
	tpl := e.template(t, debianSource(t, output, "")+`
build {
  sources = ["source.virt-machine.test"]
  provisioner "shell" {
    inline = ["echo VT-PROVISIONING", "sleep 600"]
  }
}
`)
	cmd := e.command("build", tpl)
	// packer re-executes itself under a wrapper that ignores a SIGINT sent
	// to it alone; at a terminal, Ctrl-C reaches the whole process group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Read only after the reader is done.
	var log strings.Builder
	seen := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(io.TeeReader(stdout, &log))
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), "VT-PROVISIONING") {
				once = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("provisioning never started:\n%s", log.String())
	}
	start := time.Now()
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	<-done
	err = cmd.Wait()
	t.Logf("packer exited %v, %s after SIGINT", err, time.Since(start).Round(100*time.Millisecond))
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("packer should fail when interrupted, got %v:\n%s", err, log.String())
	}
	e.assertNothingLeft(t, output)
	if t.Failed() {
		t.Log(log.String())
	}
}
