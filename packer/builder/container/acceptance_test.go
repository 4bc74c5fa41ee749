package container

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// accPrecheck runs acceptance tests when PACKER_ACC or TF_ACC is set (and
// always under CI, where a missing tool fails the test instead).
func accPrecheck(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
	if os.Getenv("PACKER_ACC") == "" && os.Getenv("TF_ACC") == "" && !testenv.CI() {
		t.Skip("acceptance test: set PACKER_ACC=1 (real packer, real LXC)")
	}
	for _, tool := range []string{"lxc-info", "lxc-destroy", "debootstrap", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (run `make testenv`): %v", tool, err)
		}
	}
}

// packerEnv builds the plugin from this checkout and installs it into a
// plugin directory of the test's own, so the test never runs a plugin a
// developer installed.
func packerEnv(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "packer-plugin-virt")
	build := exec.Command("go", "build", "-o", bin, "github.com/virtforge/terraform-provider-virt/packer/cmd/packer-plugin-virt")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build plugin: %v\n%s", err, out)
	}
	env := append(os.Environ(),
		"PACKER_PLUGIN_PATH="+filepath.Join(dir, "plugins"),
		"CHECKPOINT_DISABLE=1",
		"PACKER_CONFIG_DIR="+dir,
	)
	install := exec.Command(testenv.PackerBinary(t), "plugins", "install", "--path", bin, "github.com/virtforge/virt")
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("packer plugins install: %v\n%s", err, out)
	}
	return env
}

func packerBuild(t *testing.T, env []string, template string, vars map[string]string, extra ...string) *exec.Cmd {
	t.Helper()
	args := []string{"build", "-color=false"}
	args = append(args, extra...)
	for k, v := range vars {
		args = append(args, "-var", k+"="+v)
	}
	abs, err := filepath.Abs(filepath.Join("testdata", template))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.PackerBinary(t), append(args, abs)...)
	cmd.Env = env
	return cmd
}

// destroyContainer removes a container the test may have left, whatever
// state it is in.
func destroyContainer(t *testing.T, name string) {
	t.Helper()
	if !containerExists(name) {
		return
	}
	if out, err := exec.Command("lxc-destroy", "-f", "-n", name).CombinedOutput(); err != nil {
		t.Errorf("lxc-destroy %s: %v\n%s", name, err, out)
	}
}

func containerExists(name string) bool {
	return exec.Command("lxc-info", "-n", name).Run() == nil
}

func tarListing(t *testing.T, archive string) string {
	t.Helper()
	out, err := exec.Command("tar", "--list", "--verbose", "--numeric-owner", "--file", archive).Output()
	if err != nil {
		t.Fatalf("list %s: %v", archive, err)
	}
	return string(out)
}

// TestAccContainerDebootstrap builds a Debian bookworm template from
// debootstrap with a shell provisioner, and measures a plain debootstrap
// of the same release in the same run for comparison.
func TestAccContainerDebootstrap(t *testing.T) {
	accPrecheck(t)
	env := packerEnv(t)
	name := testenv.Name(t, "pk-ct")
	out := t.TempDir()
	archive := filepath.Join(out, "debian.tar.gz")
	t.Cleanup(func() { destroyContainer(t, name) })

	plainDir := t.TempDir()
	start := time.Now()
	plain := exec.Command("debootstrap", "--variant=minbase", "bookworm", filepath.Join(plainDir, "rootfs"), "http://deb.debian.org/debian")
	if b, err := plain.CombinedOutput(); err != nil {
		t.Fatalf("plain debootstrap: %v\n%s", err, lastLines(string(b), 10))
	}
	plainTime := time.Since(start)
	t.Logf("TIMING plain `debootstrap --variant=minbase bookworm`: %s", plainTime.Round(100*time.Millisecond))
	if err := removeTree(plainDir); err != nil {
		t.Errorf("remove plain debootstrap: %v", err)
	}

	start = time.Now()
	cmd := packerBuild(t, env, "debian.pkr.hcl", map[string]string{"name": name, "archive": archive})
	b, err := cmd.CombinedOutput()
	buildTime := time.Since(start)
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, b)
	}
	t.Logf("TIMING packer build of the debootstrap template (minbase + sysvinit-core, provision, template + archive): %s", buildTime.Round(100*time.Millisecond))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, " in ") && (strings.Contains(l, "Bootstrapped") || strings.Contains(l, "Created") || strings.Contains(l, "Wrote")) {
			t.Logf("TIMING %s", strings.TrimSpace(l))
		}
	}
	output := string(b)
	if !strings.Contains(output, `LXC template container "`+name+`"`) || !strings.Contains(output, archive) {
		t.Errorf("artifact does not name the template and the archive:\n%s", output)
	}

	// The template: stopped, with the provisioned file and the metadata.
	info, err := exec.Command("lxc-info", "-s", "-n", name).Output()
	if err != nil || !strings.Contains(string(info), "STOPPED") {
		t.Fatalf("template %s: lxc-info %v: %s", name, err, info)
	}
	dir := filepath.Join("/var/lib/lxc", name)
	if b, err := os.ReadFile(filepath.Join(dir, "rootfs", "etc", "virt-packer-marker")); err != nil || string(b) != "provisioned by packer\n" {
		t.Errorf("marker in the template: %q, %v", b, err)
	}
	md, err := virt.ReadContainerMetadata(dir)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"os": "debian", "release": "12", "arch": "amd64", "built_by": "virt-container acceptance test"} {
		if md[k] != want {
			t.Errorf("template metadata %s = %q, want %q (all: %v)", k, md[k], want, md)
		}
	}
	if _, err := time.Parse(time.RFC3339, md["build_time"]); err != nil {
		t.Errorf("build_time: %v", err)
	}
	cfg, _ := os.ReadFile(filepath.Join(dir, "config"))
	managed, _ := os.ReadFile(filepath.Join(dir, "virt.conf"))
	if strings.Contains(string(cfg)+string(managed), "lxc.init.cmd") {
		t.Errorf("the template keeps a stand-in init in its config")
	}

	// The archive: ids from 0, the marker, setuid bits, and its metadata.
	list := tarListing(t, archive)
	for _, want := range []string{"-rw-r--r-- 0/0", "./etc/virt-packer-marker", "-rwsr-xr-x 0/0", "./usr/bin/passwd", "./usr/sbin/init"} {
		if !strings.Contains(list, want) {
			t.Errorf("archive listing lacks %q", want)
		}
	}
	if strings.Contains(list, " 100000/") {
		t.Errorf("archive holds the host's subordinate ids, not the container's")
	}
	amd, err := os.ReadFile(metadataPath(archive))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"os": "debian"`, `"release": "12"`, `"arch": "amd64"`, `"build_time": "`} {
		if !strings.Contains(string(amd), want) {
			t.Errorf("archive metadata lacks %s:\n%s", want, amd)
		}
	}
	if t.Failed() {
		t.Logf("packer output:\n%s", output)
	}
}

// TestAccContainerFailures: a provisioner that fails leaves nothing, a
// taken name is refused before any work, and -force replaces.
func TestAccContainerFailures(t *testing.T) {
	accPrecheck(t)
	env := packerEnv(t)
	name := testenv.Name(t, "pk-ct")
	out := t.TempDir()
	archive := filepath.Join(out, "busybox.tar.gz")
	t.Cleanup(func() { destroyContainer(t, name) })
	vars := map[string]string{"name": name, "archive": archive}

	b, err := packerBuild(t, env, "busybox-fail.pkr.hcl", vars).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "non-zero exit status: 3") {
		t.Fatalf("failing provisioner: err %v, output:\n%s", err, b)
	}
	if containerExists(name) {
		t.Errorf("failed build left container %s", name)
	}
	assertEmptyDir(t, out)

	vars["exit_code"] = "0"
	b, err = packerBuild(t, env, "busybox-fail.pkr.hcl", vars).CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	list := tarListing(t, archive)
	for _, want := range []string{"metadata.yaml", "rootfs/etc/virt-packer-marker", "rootfs/bin/busybox"} {
		if !strings.Contains(list, want) {
			t.Errorf("LXD image lacks %s:\n%s", want, list)
		}
	}
	meta, err := exec.Command("tar", "-xzOf", archive, "metadata.yaml").Output()
	if err != nil || !strings.Contains(string(meta), `architecture: "x86_64"`) || !strings.Contains(string(meta), "creation_date: ") {
		t.Errorf("metadata.yaml: %v\n%s", err, meta)
	}

	// Now the name is taken: refused at once, nothing touched.
	start := time.Now()
	b, err = packerBuild(t, env, "busybox-fail.pkr.hcl", vars).CombinedOutput()
	if err == nil || !strings.Contains(string(b), `output_template: a container "`+name+`" already exists`) ||
		!strings.Contains(string(b), "output_archive: "+archive+" already exists") {
		t.Fatalf("taken names: err %v, output:\n%s", err, b)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("the name check took %s: it should come before any work", d)
	}
	if !containerExists(name) {
		t.Errorf("a refused build removed the existing template")
	}

	b, err = packerBuild(t, env, "busybox-fail.pkr.hcl", vars, "-force").CombinedOutput()
	if err != nil {
		t.Fatalf("build -force: %v\n%s", err, b)
	}
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in %s: %s", dir, e.Name())
	}
}

// bootstrapDirs lists the builder's temporary directories.
func bootstrapDirs(t *testing.T) map[string]bool {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "packer-virt-container-*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, d := range m {
		out[d] = true
	}
	return out
}

// TestAccContainerInterrupt sends SIGINT to packer while a provisioner
// sleeps, and while debootstrap runs: no container, no temporary directory
// (nor a mount left in one) and no partial output may remain.
func TestAccContainerInterrupt(t *testing.T) {
	accPrecheck(t)
	env := packerEnv(t)
	for _, tc := range []struct {
		name, template, waitFor string
		after                   time.Duration
	}{
		{"provisioning", "busybox-sleep.pkr.hcl", "VIRT-PACKER-SLEEPING", 0},
		{"bootstrap", "debian.pkr.hcl", "Bootstrapping", 15 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := testenv.Name(t, "pk-ct")
			out := t.TempDir()
			t.Cleanup(func() { destroyContainer(t, name) })
			before := bootstrapDirs(t)

			cmd := packerBuild(t, env, tc.template, map[string]string{"name": name, "archive": filepath.Join(out, "x.tar.gz")})
			// Its own process group, signalled as a terminal's Ctrl-C
			// signals the foreground group: packer's wrapper process leaves
			// SIGINT to its child, which expects it from the terminal too.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			pr, pw := io.Pipe()
			cmd.Stdout, cmd.Stderr = pw, pw
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			var mu sync.Mutex
			seen := make(chan struct{})
			go func() {
				sc := bufio.NewScanner(pr)
				once := sync.Once{}
				for sc.Scan() {
					mu.Lock()
					log.WriteString(sc.Text() + "\n")
					mu.Unlock()
					if strings.Contains(sc.Text(), tc.waitFor) {
						once.Do(func() { close(seen) })
					}
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			select {
			case <-seen:
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				t.Fatalf("packer never printed %q", tc.waitFor)
			}
			if tc.after > 0 {
				time.Sleep(tc.after) // into the tool's run, whatever it prints
			}
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			_ = pw.Close()
			mu.Lock()
			output := log.String()
			mu.Unlock()
			if err == nil {
				t.Errorf("interrupted build succeeded:\n%s", output)
			}
			if containerExists(name) {
				t.Errorf("interrupted build left container %s:\n%s", name, output)
			}
			assertEmptyDir(t, out)
			for d := range bootstrapDirs(t) {
				if !before[d] {
					t.Errorf("interrupted build left %s", d)
				}
			}
			if mps, err := mountsUnder(os.TempDir()); err != nil || len(mps) > 0 {
				for _, mp := range mps {
					if strings.Contains(mp, "packer-virt-container-") {
						t.Errorf("interrupted build left mount %s", mp)
					}
				}
			}
			if t.Failed() {
				t.Logf("packer output:\n%s", output)
			}
		})
	}
}

// TestAccContainerSystemd builds a template whose init is systemd, as the
// templates of most supported distributions are: the build container is
// unprivileged, systemd must boot in it, and provisioning must wait for
// the boot's end (the template's provisioner fails otherwise).
func TestAccContainerSystemd(t *testing.T) {
	accPrecheck(t)
	env := packerEnv(t)
	name := testenv.Name(t, "pk-ct")
	t.Cleanup(func() { destroyContainer(t, name) })

	b, err := packerBuild(t, env, "debian-systemd.pkr.hcl", map[string]string{"name": name}).CombinedOutput()
	output := string(b)
	if err != nil {
		t.Fatalf("packer build: %v\n%s", err, output)
	}
	if !strings.Contains(output, "systemd: running") && !strings.Contains(output, "systemd: degraded") {
		t.Errorf("the provisioner did not report systemd's state:\n%s", output)
	}
	waited := ""
	for _, l := range strings.Split(output, "\n") {
		if strings.Contains(l, "Init finished booting") {
			waited = strings.TrimSpace(l)
		}
	}
	if waited == "" {
		t.Errorf("the boot wait did not see systemd's boot end:\n%s", output)
	}
	t.Logf("boot wait: %s", waited)
	dir := filepath.Join("/var/lib/lxc", name)
	if b, err := os.ReadFile(filepath.Join(dir, "rootfs", "etc", "virt-packer-marker")); err != nil || string(b) != "provisioned by packer\n" {
		t.Errorf("marker in the template: %q, %v", b, err)
	}
	if init, err := os.Readlink(filepath.Join(dir, "rootfs", "sbin", "init")); err != nil || !strings.Contains(init, "systemd") {
		t.Errorf("the template's /sbin/init: %q, %v; want systemd", init, err)
	}
	if t.Failed() {
		t.Logf("packer output:\n%s", output)
	}
}
