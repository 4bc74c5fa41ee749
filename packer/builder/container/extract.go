package container

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// maxDownloadBytes caps the file content one DownloadDir writes on the
// host. The container decides how much its tar holds, and the build runs as
// root: a guest must not be able to fill the host's disk. 4 GiB is far more
// than what provisioners fetch (logs, reports, build results).
const maxDownloadBytes int64 = 4 << 30

// errOutside is why an entry whose name or hard link target leaves the
// destination is refused.
var errOutside = errors.New("points outside the destination")

// extractTar unpacks a tar stream from a container under dst: directories,
// regular files, symlinks and hard links; devices and FIFOs have no use in a
// download and are left out. The stream is hostile, and this runs as root:
// every file operation goes through an os.Root opened on dst, so no name,
// ".." or symlink (planted by an earlier entry or already in dst) reaches
// outside it. Symlinks are made as the container had them, but nothing is
// written through one that leads out. File content beyond limit bytes in
// all is refused. An error names the entry it stopped at.
func extractTar(tr *tar.Reader, dst string, exclude []string, limit int64) error {
	root, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("open the destination: %w", err)
	}
	defer func() { _ = root.Close() }() // a directory handle: nothing to flush
	x := &extractor{root: root, dst: dst, exclude: exclude, limit: limit}
	last := ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if last == "" {
				return fmt.Errorf("read the archive: %w", err)
			}
			return fmt.Errorf("read the archive after entry %q: %w", last, err)
		}
		if err := x.entry(h, tr); err != nil {
			return fmt.Errorf("archive entry %q: %w", h.Name, err)
		}
		last = h.Name
	}
}

// extractor is one extraction's destination and running total.
type extractor struct {
	root    *os.Root
	dst     string
	exclude []string
	limit   int64
	written int64
}

func (x *extractor) entry(h *tar.Header, content io.Reader) error {
	rel, err := archivePath(h.Name)
	if err != nil {
		return err
	}
	// "." is dst itself, whose mode is the host's to choose.
	if rel == "." || excluded(rel, x.exclude) {
		return nil
	}
	switch h.Typeflag {
	case tar.TypeDir:
		// Owner-writable, or the directory's own entries could not be
		// made in it.
		return x.root.MkdirAll(rel, fs.FileMode(h.Mode).Perm()|0o700)
	case tar.TypeReg, tar.TypeGNUSparse:
		return x.file(rel, h.Size, fs.FileMode(h.Mode), content)
	case tar.TypeSymlink:
		return x.symlink(rel, h.Linkname)
	case tar.TypeLink:
		return x.hardlink(rel, h.Linkname)
	}
	return nil
}

// archivePath is an entry's name as a path relative to the destination;
// absolute names and names that climb out of it with ".." are refused
// (GNU tar strips or skips them; a download says so instead).
func archivePath(name string) (string, error) {
	if path.IsAbs(name) {
		return "", errOutside
	}
	rel := path.Clean(name)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errOutside
	}
	return rel, nil
}

// file writes a regular file with the entry's permission bits; set-id and
// sticky bits are dropped, so that no guest's setuid program becomes a
// setuid-root one on the host.
func (x *extractor) file(rel string, size int64, mode fs.FileMode, content io.Reader) error {
	if size > x.limit-x.written {
		return fmt.Errorf("its %d bytes would take the download into %s past its cap of %d bytes",
			size, x.dst, x.limit)
	}
	if err := x.prepare(rel); err != nil {
		return err
	}
	// O_EXCL: the file is made anew, never opened through a symlink or a
	// hard link that stood under its name.
	f, err := x.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode.Perm())
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(content, size))
	x.written += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (x *extractor) symlink(rel, target string) error {
	if err := x.prepare(rel); err != nil {
		return err
	}
	// The target is stored as it is: the root only keeps anything from
	// being written through it to outside dst.
	return x.root.Symlink(target, rel)
}

// hardlink links rel to an earlier entry, which must be inside the
// destination: a link to a host file would let whoever writes to the
// download write to that file.
func (x *extractor) hardlink(rel, target string) error {
	old, err := archivePath(target)
	if err != nil || old == "." {
		return fmt.Errorf("its link target %q %w", target, errOutside)
	}
	if excluded(old, x.exclude) {
		return nil // the file it shares was left out, and so is it
	}
	if err := x.prepare(rel); err != nil {
		return err
	}
	return x.root.Link(old, rel)
}

// prepare makes rel's parent directories and removes what already has its
// name (not a non-empty directory), as tar replaces files.
func (x *extractor) prepare(rel string) error {
	if dir := path.Dir(rel); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := x.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace what is there: %w", err)
	}
	return nil
}
