package container

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path"
	"path/filepath"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/redact"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// execer runs a command in a container: the LXC layer's Exec.
type execer interface {
	Exec(ctx context.Context, name string, cmd virt.ExecSpec) (int, error)
}

// Communicator executes provisioners' commands inside the build container
// through the LXC layer (attach into its namespaces and cgroups): the
// container needs no SSH server, no network and no agent. Files travel as
// command input and output (cat, tar), so uploads and downloads work on
// any root file system with a POSIX shell, busybox's included.
type Communicator struct {
	driver execer
	name   string
}

var _ packersdk.Communicator = (*Communicator)(nil)

// Start runs cmd.Command with /bin/sh -c in the container and returns once
// it runs; its exit status is set on cmd when it ends.
func (c *Communicator) Start(ctx context.Context, cmd *packersdk.RemoteCmd) error {
	// Provisioners pass secrets as NAME='value' in front of their script.
	log.Printf("[DEBUG] virt-container: executing in %s: %s", c.name, redact.ShellEnv(cmd.Command))
	go func() {
		status, err := c.driver.Exec(ctx, c.name, virt.ExecSpec{
			Args:   []string{"/bin/sh", "-c", cmd.Command},
			Stdin:  cmd.Stdin,
			Stdout: cmd.Stdout,
			Stderr: cmd.Stderr,
		})
		if err != nil {
			log.Printf("[ERROR] virt-container: %v", err)
			if cmd.Stderr != nil {
				_, _ = fmt.Fprintf(cmd.Stderr, "virt-container: %v\n", err) // the status says it failed
			}
		}
		cmd.SetExited(status)
	}()
	return nil
}

// run executes a script with arguments ($1...) and fails with its stderr
// when it exits non-zero.
func (c *Communicator) run(ctx context.Context, stdin io.Reader, stdout io.Writer, script string, args ...string) error {
	var stderr bytes.Buffer
	status, err := c.driver.Exec(ctx, c.name, virt.ExecSpec{
		Args:   append([]string{"/bin/sh", "-c", script, "sh"}, args...),
		Stdin:  stdin,
		Stdout: stdout,
		Stderr: &stderr,
	})
	if err != nil {
		return err
	}
	if status != 0 {
		return fmt.Errorf("exit status %d: %s", status, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Upload writes r to dst in the container; into dst/<name> when dst is a
// directory there and fi names the file. The mode is fi's when given.
func (c *Communicator) Upload(dst string, r io.Reader, fi *os.FileInfo) error {
	mode, base := "", ""
	if fi != nil {
		mode = fmt.Sprintf("%04o", (*fi).Mode().Perm())
		base = (*fi).Name()
	}
	const script = `d=$1
if [ -d "$d" ] && [ -n "$3" ]; then d="$d/$3"; fi
cat > "$d" || exit 1
if [ -n "$2" ]; then chmod "$2" "$d"; fi`
	if err := c.run(context.Background(), r, nil, script, dst, mode, base); err != nil {
		return fmt.Errorf("upload to %s in container %q: %w", dst, c.name, err)
	}
	return nil
}

// UploadDir copies the host directory src into dst in the container: its
// contents when src ends in a slash, else src itself as dst/<base of src>
// (rsync's convention, which Packer's file provisioner follows). Paths
// matching an exclude pattern (relative to src) are left out.
func (c *Communicator) UploadDir(dst string, src string, exclude []string) error {
	prefix := ""
	if !strings.HasSuffix(src, "/") {
		prefix = filepath.Base(src)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeDirTar(pw, src, prefix, exclude)) }()
	err := c.run(context.Background(), pr, nil, `mkdir -p "$1" && tar -x -f - -C "$1"`, dst)
	// tar may stop reading early (a full disk): end the writer.
	pr.CloseWithError(errors.New("upload stopped"))
	if err != nil {
		return fmt.Errorf("upload %s to %s in container %q: %w", src, dst, c.name, err)
	}
	return nil
}

// writeDirTar writes src as a tar stream, names under prefix, owned by
// root (the provisioners act as root in the container).
func writeDirTar(w io.Writer, src, prefix string, exclude []string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if rel != "." && excluded(rel, exclude) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(filepath.Join(prefix, rel))
		if name == "." || name == "" {
			return nil // the container's dst is the root
		}
		if info.IsDir() {
			name += "/"
		}
		h.Name = name
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "root", "root"
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			_ = f.Close() // read-only
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func excluded(rel string, patterns []string) bool {
	rel = filepath.ToSlash(rel)
	for _, p := range patterns {
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
		if ok, _ := path.Match(p, path.Base(rel)); ok {
			return true
		}
	}
	return false
}

// Download writes the container's file src to w.
func (c *Communicator) Download(src string, w io.Writer) error {
	if err := c.run(context.Background(), nil, w, `cat "$1"`, src); err != nil {
		return fmt.Errorf("download %s from container %q: %w", src, c.name, err)
	}
	return nil
}

// DownloadDir copies the container's directory src into the host
// directory dst (its contents), leaving out paths matching exclude.
func (c *Communicator) DownloadDir(src string, dst string, exclude []string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	extracted := make(chan error, 1)
	go func() {
		err := extractTar(tar.NewReader(pr), dst, exclude, maxDownloadBytes)
		if err == nil {
			err = drainTrailer(pr)
		}
		// Whatever the container still writes fails now, so a stream
		// that never ends cannot hold the download.
		pr.CloseWithError(errors.New("download stopped reading"))
		extracted <- err
	}()
	runErr := c.run(context.Background(), nil, pw, `cd "$1" && tar -c -f - .`, src)
	pw.CloseWithError(runErr)
	// The extraction's error names the entry it refused, and the
	// container's tar then fails only because it was cut off; the run's
	// error comes first when the extraction merely read it.
	err := <-extracted
	if runErr != nil && (err == nil || errors.Is(err, runErr)) {
		err = runErr
	}
	if err != nil {
		return fmt.Errorf("download %s from container %q: %w", src, c.name, err)
	}
	return nil
}

// maxTarTrailer is what may follow a tar's end marker: tar pads its
// stream to whole records (10 KiB by default), far less than this.
const maxTarTrailer = 1 << 20

// drainTrailer reads what follows the end of the archive, so that the
// container's tar can write its padding and exit; a stream that goes on
// past maxTarTrailer is not a tar's padding, and fails the download.
func drainTrailer(r io.Reader) error {
	n, err := io.Copy(io.Discard, io.LimitReader(r, maxTarTrailer+1))
	if err != nil {
		return fmt.Errorf("read past the archive's end: %w", err)
	}
	if n > maxTarTrailer {
		return fmt.Errorf("the container wrote more than %d bytes past the archive's end", maxTarTrailer)
	}
	return nil
}
