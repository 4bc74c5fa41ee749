//go:build linux && cgo

package lxc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	golxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// ExportContainer writes the root file system of the stopped container
// called name to w as an uncompressed tar stream, entries relative to the
// root ("./etc/hostname"), owners numeric and as the container sees them:
// for an unprivileged container tar runs in a user namespace with the
// container's id map, so the archive holds ids from 0 (what
// CreateContainer's archive source and LXD/Incus images expect) and not the
// host's subordinate ones. A snapshot clone's overlay is mounted read-only
// for the copy, so the stream is the clone as it runs.
func (c *Client) ExportContainer(ctx context.Context, name string, w io.Writer) error {
	c.log.Debug("export container", "container", name)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("export container %q: %w", name, err)
	}
	ct, err := c.open(name)
	if err != nil {
		return err
	}
	defer c.release(ct)
	if st := ct.State(); st != golxc.STOPPED {
		// A running container's files change under tar, and its mounts
		// (proc, sys) would be copied as well.
		return fmt.Errorf("export container %q: it is %s; stop it first", name, strings.ToLower(st.String()))
	}
	idmap, err := templateIDMap(ct)
	if err != nil {
		return fmt.Errorf("export container %q: %w", name, err)
	}
	paths := ct.ConfigItem("lxc.rootfs.path")
	if len(paths) == 0 || paths[0] == "" {
		return fmt.Errorf("export container %q: its config names no lxc.rootfs.path", name)
	}
	root, unmount, err := mountRootfs(paths[0])
	if err != nil {
		return fmt.Errorf("export container %q: %w", name, err)
	}
	defer func() {
		if err := unmount(); err != nil {
			c.log.Warn("unmount exported rootfs", "container", name, "error", err)
		}
	}()
	if err := packRootfs(ctx, root, w, idmap); err != nil {
		return fmt.Errorf("export container %q: %w", name, err)
	}
	return nil
}

// mountRootfs makes the rootfs that an lxc.rootfs.path value names readable
// at a directory: a dir rootfs as it is, an overlay one mounted read-only
// on a temporary directory (its upper directory as the top lower layer, so
// nothing is written to it).
func mountRootfs(spec string) (string, func() error, error) {
	noop := func() error { return nil }
	kind, rest, found := strings.Cut(spec, ":")
	switch {
	case !found:
		return spec, noop, nil // a bare path is a dir rootfs
	case kind != "dir" && kind != "overlay" && kind != "overlayfs":
		// liblxc hands back an overlay rootfs without its "overlay:"
		// prefix: LOWER:UPPER.
		kind, rest = "overlay", spec
	}
	switch kind {
	case "dir":
		return rest, noop, nil
	case "overlay", "overlayfs":
		// overlay:LOWER:UPPER, where LOWER may itself be a colon list.
		i := strings.LastIndex(rest, ":")
		if i < 0 {
			return "", nil, fmt.Errorf("overlay rootfs %q has no upper directory", spec)
		}
		lower, upper := rest[:i], rest[i+1:]
		mnt, err := os.MkdirTemp("", "virt-lxc-export-*")
		if err != nil {
			return "", nil, fmt.Errorf("make mount point: %w", err)
		}
		// The user namespace tar may run in must reach the mount point.
		if err := os.Chmod(mnt, 0o755); err != nil {
			_ = os.Remove(mnt)
			return "", nil, fmt.Errorf("make mount point: %w", err)
		}
		opts := "lowerdir=" + upper + ":" + lower
		if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
			_ = os.Remove(mnt)
			return "", nil, fmt.Errorf("mount overlay rootfs %s: %w", spec, err)
		}
		return mnt, func() error {
			if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", mnt, err)
			}
			return os.Remove(mnt)
		}, nil
	}
	return "", nil, fmt.Errorf("rootfs %q: only dir and overlay root file systems can be exported", spec)
}

// packRootfs runs GNU tar over root, into w. With an id map tar runs in a
// new user namespace as its root, where the container's files carry the
// container's ids.
func packRootfs(ctx context.Context, root string, w io.Writer, idmap []virt.IDMapEntry) error {
	args := []string{
		"--create", "--file=-", "--directory=" + root, "--numeric-owner",
		"--one-file-system", "--xattrs", "--xattrs-include=*", "--acls", "--sparse",
	}
	// Sockets cannot be archived; tar says so and carries on, which is
	// what a template wants (they are made again at run time).
	args = append(args, "--warning=no-file-ignored", ".")
	cmd := exec.CommandContext(ctx, "tar", args...)
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if len(idmap) > 0 {
		attr := &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER,
			GidMappingsEnableSetgroups: true,
			Credential:                 &syscall.Credential{Uid: 0, Gid: 0},
		}
		for _, e := range idmap {
			m := syscall.SysProcIDMap{ContainerID: int(e.ContainerID), HostID: int(e.HostID), Size: int(e.Count)}
			if e.Kind == "u" {
				attr.UidMappings = append(attr.UidMappings, m)
			} else {
				attr.GidMappings = append(attr.GidMappings, m)
			}
		}
		cmd.SysProcAttr = attr
	}
	err := cmd.Run()
	var exit *exec.ExitError
	// GNU tar exits 1 when a file changed while it was read; the
	// container is stopped, so that is the host touching an atime: not a
	// reason to fail.
	if errors.As(err, &exit) && exit.ExitCode() == 1 && ctx.Err() == nil {
		return nil
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if lines := strings.Split(msg, "\n"); len(lines) > 5 {
			msg = strings.Join(lines[len(lines)-5:], "\n")
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("tar %s: %w%s", filepath.Clean(root), err, withOutput(msg))
	}
	return nil
}
