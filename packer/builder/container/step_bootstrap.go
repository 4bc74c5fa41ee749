package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"golang.org/x/sys/unix"
)

// standInInit keeps a build container without an init of its own running,
// so that provisioners can execute in it. Only the build uses it; the
// output template's config does not keep it.
const standInInit = "/bin/sleep infinity"

// stepBootstrap builds the root file system on the host with the bootstrap
// tool in a temporary directory, and packs it as the archive the build
// container is made from (the LXC layer makes containers from archives,
// which also maps the files to an unprivileged container's ids).
type stepBootstrap struct {
	dir string
}

func (s *stepBootstrap) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get(stateConfig).(*Config)
	if cfg.Bootstrap == nil {
		return multistep.ActionContinue
	}
	ui := state.Get(stateUI).(packersdk.Ui)

	dir, err := os.MkdirTemp("", "packer-virt-container-")
	if err != nil {
		return halt(state, fmt.Errorf("bootstrap: make a temporary directory: %w", err))
	}
	s.dir = dir
	rootfs := filepath.Join(dir, "rootfs")

	cmds, err := bootstrapCommands(cfg.Bootstrap, rootfs)
	if err != nil {
		return halt(state, err)
	}
	start := time.Now()
	ui.Say(fmt.Sprintf("Bootstrapping %s %s with %s into %s...", cfg.Bootstrap.Mirror, cfg.Bootstrap.Release, cfg.Bootstrap.Tool, rootfs))
	for _, args := range cmds {
		if err := runStreaming(ctx, ui, args); err != nil {
			return halt(state, fmt.Errorf("bootstrap: %w", err))
		}
	}
	ui.Say(fmt.Sprintf("Bootstrapped in %s", time.Since(start).Round(100*time.Millisecond)))

	if !hasInit(rootfs) {
		state.Put(stateStandInInit, true)
		ui.Say("The root file system has no /sbin/init: the build container runs a stand-in init. " +
			"Clones of the template need an init of their own: add one (init, systemd-sysv, sysvinit-core) to bootstrap.packages.")
	}

	// Unmount what the tool may have left mounted (debootstrap mounts proc
	// and sys into the target) before the tree is packed and removed.
	if err := unmountUnder(rootfs); err != nil {
		return halt(state, fmt.Errorf("bootstrap: %w", err))
	}
	archive := filepath.Join(dir, "rootfs.tar")
	cmd := exec.CommandContext(ctx, "tar", "--create", "--file="+archive, "--directory="+rootfs,
		"--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "--one-file-system", ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return halt(state, fmt.Errorf("bootstrap: pack the root file system: %w: %s", err, lastLines(string(out), 5)))
	}
	// The tree is in the archive now; freeing its space early matters on
	// small disks, which hold a second copy once the container is made.
	if err := os.RemoveAll(rootfs); err != nil {
		return halt(state, fmt.Errorf("bootstrap: remove %s: %w", rootfs, err))
	}
	state.Put(stateSourceArchive, archive)
	return multistep.ActionContinue
}

// Cleanup removes the temporary directory, whatever happened: the archive
// in it has served once the container exists.
func (s *stepBootstrap) Cleanup(state multistep.StateBag) {
	if s.dir == "" {
		return
	}
	ui := state.Get(stateUI).(packersdk.Ui)
	if err := removeTree(s.dir); err != nil {
		ui.Error(fmt.Sprintf("Could not remove the bootstrap directory: %v", err))
	}
}

// bootstrapCommands are the command lines that build the root file system
// at rootfs.
func bootstrapCommands(b *BootstrapConfig, rootfs string) ([][]string, error) {
	switch b.Tool {
	case ToolDebootstrap:
		args := []string{"debootstrap"}
		if b.Variant != "" && b.Variant != "-" {
			args = append(args, "--variant="+b.Variant)
		}
		if len(b.Packages) > 0 {
			args = append(args, "--include="+strings.Join(b.Packages, ","))
		}
		return [][]string{append(args, b.Release, rootfs, b.Mirror)}, nil
	case ToolDNF:
		return [][]string{append([]string{
			"dnf", "--assumeyes", "--installroot=" + rootfs, "--releasever=" + b.Release,
			"--setopt=install_weak_deps=False", "--disablerepo=*",
			"--repofrompath=virt-bootstrap," + b.Mirror, "--enablerepo=virt-bootstrap", "install",
		}, b.Packages...)}, nil
	case ToolZypper:
		return [][]string{
			{"zypper", "--non-interactive", "--root", rootfs, "addrepo", b.Mirror, "virt-bootstrap"},
			append([]string{"zypper", "--non-interactive", "--gpg-auto-import-keys", "--root", rootfs,
				"--releasever", b.Release, "install", "--no-recommends"}, b.Packages...),
		}, nil
	}
	return nil, fmt.Errorf("bootstrap.tool: %q is not supported", b.Tool)
}

// runStreaming runs args in its own process group (so that an interrupt
// kills the tool's children too), each output line a UI message.
func runStreaming(ctx context.Context, ui packersdk.Ui, args []string) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	tail := &lineTail{max: 8}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			tail.add(sc.Text())
			ui.Say(sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr) // a line too long for the scanner
	}()
	err := cmd.Run()
	_ = pw.Close() // the reader ends at EOF; nothing is lost
	wg.Wait()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", args[0], ctx.Err())
		}
		return fmt.Errorf("%s: %w: %s", args[0], err, strings.Join(tail.lines, "\n"))
	}
	return nil
}

type lineTail struct {
	max   int
	lines []string
}

func (t *lineTail) add(l string) {
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[1:]
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// hasInit reports whether the root file system has an /sbin/init (a file
// or a link: its target is the rootfs's, so it is not followed here).
func hasInit(rootfs string) bool {
	_, err := os.Lstat(filepath.Join(rootfs, "sbin", "init"))
	return err == nil
}

// mountsUnder lists the mount points at or below dir, each before the mount it sits on.
func mountsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountsUnder(string(b), dir), nil
}

func parseMountsUnder(mountinfo, dir string) []string {
	dir = filepath.Clean(dir)
	var out []string
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// Reverse lexical order puts every mount before the one it sits on.
	sort.Sort(sort.Reverse(sort.StringSlice(out)))
	return out
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unmountUnder(dir string) error {
	mps, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("list mounts under %s: %w", dir, err)
	}
	for _, mp := range mps {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
	}
	return nil
}

// removeTree removes dir once nothing is mounted below it: removing
// through a leftover mount (the host's /proc or /sys, bound into a
// bootstrap target) would reach the host's files.
func removeTree(dir string) error {
	if err := unmountUnder(dir); err != nil {
		return err
	}
	if mps, err := mountsUnder(dir); err != nil || len(mps) > 0 {
		return fmt.Errorf("%s still has mounts below it (%v); not removed", dir, mps)
	}
	return os.RemoveAll(dir)
}
