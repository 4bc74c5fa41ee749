//go:build linux && cgo

package lxc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	golxc "github.com/lxc/go-lxc"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// lxcConfigDirs are where distributions install LXC's shared configs
// (common.conf, userns.conf). liblxc knows its own but does not say, so the
// candidates are checked for the file rather than assumed.
var lxcConfigDirs = []string{"/usr/share/lxc/config", "/usr/local/share/lxc/config"}

// createFromArchive makes a container from a tarball of a root file
// system: the container directory, the rootfs unpacked into it, and a config
// from the host's LXC defaults plus LXC's common.conf (and userns.conf for
// an unprivileged container), as the templates include them.
//
// For an unprivileged container tar runs inside a user namespace with the
// container's id map, as root there: the kernel maps every owner it sets to
// the host ids, and setuid bits and file capabilities survive (chown-ing
// afterwards would clear them). Device nodes cannot be made there and are
// left out of /dev, which LXC fills at start (lxc.autodev), as LXC's own
// download template does.
func (c *Client) createFromArchive(ctx context.Context, s *virt.ContainerSpec) error {
	if err := c.hostIDMap(s); err != nil {
		return err
	}
	confDir, err := lxcSharedConfigDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.lxcPath, 0o755); err != nil {
		return fmt.Errorf("make LXC path: %w", err)
	}
	dir := c.dir(s.Name)
	if err := os.Mkdir(dir, 0o770); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return errDirTaken
		}
		return fmt.Errorf("make container directory: %w", err)
	}
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return fmt.Errorf("make rootfs directory: %w", err)
	}
	if len(s.IDMap) > 0 {
		// Like lxc-create: the container's root must reach and own its
		// rootfs.
		uid, uok := mappedRoot(s.IDMap, "u")
		gid, gok := mappedRoot(s.IDMap, "g")
		if !uok || !gok {
			return fmt.Errorf("id map does not map container root")
		}
		for _, p := range []string{dir, rootfs} {
			if err := os.Chown(p, int(uid), int(gid)); err != nil {
				return fmt.Errorf("hand %s to the container's root: %w", p, err)
			}
		}
	}
	c.log.Debug("unpack archive", "container", s.Name, "archive", s.Archive)
	if err := unpackArchive(ctx, s.Archive, rootfs, s.IDMap); err != nil {
		return err
	}

	var base strings.Builder
	fmt.Fprintf(&base, "# Made by terraform-provider-virt from the archive %s\n", s.Archive)
	if def := golxc.GlobalConfigItem("lxc.default_config"); def != "" {
		// lxc-create copies the host's defaults into every new config; so
		// does this.
		b, err := os.ReadFile(def)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read LXC's default config: %w", err)
		}
		base.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			base.WriteByte('\n')
		}
	}
	fmt.Fprintf(&base, "lxc.include = %s\n", filepath.Join(confDir, "common.conf"))
	if len(s.IDMap) > 0 {
		fmt.Fprintf(&base, "lxc.include = %s\n", filepath.Join(confDir, "userns.conf"))
	}
	fmt.Fprintf(&base, "lxc.rootfs.path = dir:%s\n", rootfs)
	// The archive's /dev may be empty (see above); LXC makes a minimal one.
	base.WriteString("lxc.autodev = 1\n")
	if err := writeFileAtomic(filepath.Join(dir, "config"), []byte(base.String()), 0o640); err != nil {
		return fmt.Errorf("write LXC config: %w", err)
	}
	return c.writeConfigs(s, configKeys(*s), nil)
}

func lxcSharedConfigDir() (string, error) {
	for _, d := range lxcConfigDirs {
		if _, err := os.Stat(filepath.Join(d, "common.conf")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("LXC's common.conf is in none of %s (is the lxc package installed?)", strings.Join(lxcConfigDirs, ", "))
}

// mappedRoot is the host id that container id 0 of kind maps to.
func mappedRoot(m []virt.IDMapEntry, kind string) (uint32, bool) {
	for _, e := range m {
		if e.Kind == kind && e.ContainerID == 0 && e.Count > 0 {
			return e.HostID, true
		}
	}
	return 0, false
}

// unpackArchive extracts a tar archive (plain, gzip, bzip2, xz or zstd)
// into rootfs with GNU tar, numeric owners and modes as recorded. With an id
// map, tar runs in a new user namespace as its root.
func unpackArchive(ctx context.Context, archive, rootfs string, idmap []virt.IDMapEntry) error {
	// Opened here, as host root, and handed to tar as stdin: in the user
	// namespace tar may not be allowed to open it itself.
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	defer func() { _ = f.Close() }() // opened read-only (tar's stdin): nothing to flush
	var magic [6]byte
	n, err := f.ReadAt(magic[:], 0)
	if n == 0 && err != nil {
		return fmt.Errorf("read archive %s: %w", archive, err)
	}

	args := []string{"--extract", "--file=-", "--directory=" + rootfs, "--numeric-owner", "--preserve-permissions"}
	if flag := compressionFlag(magic[:n]); flag != "" {
		args = append(args, flag)
	}
	if len(idmap) > 0 {
		args = append(args, "--anchored", "--exclude=./dev/*", "--exclude=dev/*")
	}
	cmd := exec.CommandContext(ctx, "tar", args...)
	cmd.Stdin = f
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if len(idmap) > 0 {
		attr := &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER,
			GidMappingsEnableSetgroups: true,
			// Root inside: the owner of everything it creates maps to the
			// container's root on the host.
			Credential: &syscall.Credential{Uid: 0, Gid: 0},
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
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if lines := strings.Split(msg, "\n"); len(lines) > 5 {
			msg = strings.Join(lines[len(lines)-5:], "\n")
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("unpack archive %s: tar: %w%s", archive, err, withOutput(msg))
	}
	return nil
}

// compressionFlag picks GNU tar's decompression option from the archive's
// first bytes: tar does not detect compression on a pipe by itself.
func compressionFlag(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return "--gzip"
	case bytes.HasPrefix(magic, []byte("BZh")):
		return "--bzip2"
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "--xz"
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "--zstd"
	}
	return ""
}
