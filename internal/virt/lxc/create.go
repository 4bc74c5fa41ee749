//go:build linux && cgo

package lxc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	golxc "github.com/lxc/go-lxc"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// errDirTaken reports that the container's directory appeared after the
// existence check: someone else's, so a failed create must not remove it.
var errDirTaken = errors.New("container directory already exists")

// idMapOwner is the user whose subordinate ranges unprivileged containers
// get: LXC runs as root here, and lxc-create does the same.
const idMapOwner = "root"

// CreateContainer validates spec and creates the container, stopped, from
// its one source: an LXC template script, a rootfs archive, or a
// copy-on-write snapshot clone (overlayfs) of a stopped template container.
// A name that is taken gives an error wrapping virt.ErrExists; a create that
// fails halfway removes what it made.
func (c *Client) CreateContainer(ctx context.Context, spec virt.ContainerSpec) (*virt.ContainerSpec, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	name := spec.Name
	c.log.Debug("create container", "container", name, "source", sourceOf(spec), "unprivileged", spec.Unprivileged)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create container %q: %w", name, err)
	}
	tm := c.timeSteps("create container", name)
	defer tm.done()
	// A clone's template is opened once, for the host check and the clone.
	var tmpl *golxc.Container
	if spec.Template != "" {
		t, err := c.open(spec.Template)
		switch {
		case err == nil:
			tmpl = t
			defer c.release(t)
		case !errors.Is(err, virt.ErrNotFound): // checkHost says "not found" in the user's terms
			return nil, fmt.Errorf("create container %q: template: %w", name, err)
		}
	}
	tm.step("open template")
	if err := c.checkHost(spec, tmpl); err != nil {
		return nil, err
	}
	tm.step("check host")
	if _, err := os.Lstat(c.dir(name)); err == nil {
		return nil, fmt.Errorf("create: %w", virt.ExistsError("container", name))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("create container %q: %w", name, err)
	}
	if err := fillHWAddrs(spec.Interfaces); err != nil {
		return nil, fmt.Errorf("create container %q: %w", name, err)
	}

	var err error
	switch {
	case spec.Template != "":
		err = c.createClone(ctx, &spec, tmpl)
	case spec.Archive != "":
		err = c.createFromArchive(ctx, &spec)
	default:
		err = c.createFromTemplate(ctx, &spec)
	}
	if errors.Is(err, errDirTaken) {
		return nil, fmt.Errorf("create: %w", virt.ExistsError("container", name))
	}
	if err != nil {
		c.removeHalfMade(name)
		return nil, fmt.Errorf("create container %q: %w", name, err)
	}
	tm.step("make")

	// Read back from the files just written; a new container is stopped,
	// so there is no run state to ask LXC for.
	out, _, err := c.savedSpec(name)
	if err != nil {
		return nil, fmt.Errorf("create container %q: read it back: %w", name, err)
	}
	out.State = virt.ContainerStopped
	tm.step("read back")
	// The backend knows the source it was given; the config only records
	// a clone's.
	out.Archive, out.LXCTemplate = spec.Archive, spec.LXCTemplate
	return &out, nil
}

func sourceOf(s virt.ContainerSpec) string {
	switch {
	case s.Template != "":
		return "clone of " + s.Template
	case s.Archive != "":
		return "archive " + s.Archive
	case s.LXCTemplate != nil:
		return "lxc template " + s.LXCTemplate.Name
	}
	return ""
}

// fillHWAddrs gives every interface without a MAC a random one in the
// 00:16:3e range LXC itself uses, so that the address is in the config and
// stays the same across restarts (and DHCP leases with it).
func fillHWAddrs(ifs []virt.ContainerInterfaceSpec) error {
	for i := range ifs {
		if ifs[i].HWAddr != "" {
			continue
		}
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("generate a MAC address: %w", err)
		}
		ifs[i].HWAddr = fmt.Sprintf("00:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
	}
	return nil
}

// hostIDMap fills in the host's subordinate ranges for an unprivileged
// container that names no id map of its own.
func (c *Client) hostIDMap(s *virt.ContainerSpec) error {
	if !s.Unprivileged || len(s.IDMap) > 0 {
		return nil
	}
	m, err := c.rootIDMap()
	if err != nil {
		return err
	}
	s.IDMap = m
	return nil
}

// rootIDMap is root's subordinate ranges from the client's subid files;
// the files may name root by name or by uid. What was found is kept for the
// client's life (see idMapCache).
func (c *Client) rootIDMap() ([]virt.IDMapEntry, error) {
	read := func() ([]virt.IDMapEntry, error) {
		return virt.HostIDMapFrom(c.subUIDFile, c.subGIDFile, idMapOwner, idMapOwner, "0")
	}
	if c.idMaps == nil {
		return read()
	}
	return c.idMaps.get([2]string{c.subUIDFile, c.subGIDFile}, read)
}

// idMapCache keeps root's id map as read from a pair of subid files. Every
// container that is not a clone needs it, at plan time (CheckHost, in the
// plan and again in the apply) and twice in its create (the check, then
// its config): four reads of both files a container, of an answer that
// only an administrator's usermod changes, not a run (a run is one
// provider process; Terraform starts new ones for each command). Only a
// map found is kept: a failure is read again, so that it says what the
// files say now. Keyed by the files, because tests give a copy of a client
// other ones.
type idMapCache struct {
	mu sync.Mutex
	m  map[[2]string][]virt.IDMapEntry
}

func (k *idMapCache) get(files [2]string, read func() ([]virt.IDMapEntry, error)) ([]virt.IDMapEntry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if m, ok := k.m[files]; ok {
		return slices.Clone(m), nil
	}
	m, err := read()
	if err != nil {
		return nil, err
	}
	if k.m == nil {
		k.m = map[[2]string][]virt.IDMapEntry{}
	}
	k.m[files] = m
	return slices.Clone(m), nil
}

func idMapValue(e virt.IDMapEntry) string {
	return fmt.Sprintf("%s %d %d %d", e.Kind, e.ContainerID, e.HostID, e.Count)
}

// createFromTemplate runs an LXC template script through lxc-create, with
// an initial config of the host's defaults plus the id map, so that LXC
// runs the template inside the user namespace and the rootfs comes out
// owned by the mapped ids.
//
// lxc-create rather than liblxc's create in this process: liblxc can only
// send a template's output to this process's stdout and stderr (a plugin's
// protocol channel) or to /dev/null, and cannot be interrupted. As a child
// process the output becomes the error message when the template fails
// (a mirror that is unreachable, say), and ctx can kill it.
func (c *Client) createFromTemplate(ctx context.Context, s *virt.ContainerSpec) error {
	if err := c.hostIDMap(s); err != nil {
		return err
	}
	bin, err := exec.LookPath("lxc-create")
	if err != nil {
		return fmt.Errorf("lxc-create, which runs LXC templates, is not installed (Debian package lxc): %w", err)
	}

	// lxc-create reads the host's defaults only without --config; copied in
	// (not included) so that the keys the spec manages can be dropped.
	var initial strings.Builder
	if def := golxc.GlobalConfigItem("lxc.default_config"); def != "" {
		b, err := os.ReadFile(def)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read LXC's default config: %w", err)
		}
		initial.Write(b)
		initial.WriteByte('\n')
	}
	for _, e := range s.IDMap {
		fmt.Fprintf(&initial, "lxc.idmap = %s\n", idMapValue(e))
	}
	confPath, err := tempFile("virt-lxc-*.conf", initial.String())
	if err != nil {
		return err
	}
	defer c.removeTemp(confPath)

	args := []string{
		"--name", s.Name, "--lxcpath", c.lxcPath, "--template", s.LXCTemplate.Name,
		"--bdev", "dir", "--config", confPath, "--",
	}
	args = append(args, s.LXCTemplate.Args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	// Its own process group, so that a cancel reaches the template's
	// children (debootstrap, wget...) too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	c.log.Debug("run lxc template", "container", s.Name, "template", s.LXCTemplate.Name)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("lxc template %q: lxc-create: %w%s", s.LXCTemplate.Name, err, withOutput(out.lastLines(8)))
	}
	return c.writeConfigs(s, configKeys(*s), nil)
}

// tailBuffer keeps the last max bytes written to it: enough of a
// template's output to say why it failed.
type tailBuffer struct {
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) lastLines(n int) string {
	lines := strings.Split(strings.TrimSpace(string(b.buf)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// withOutput appends a command's output to an error message, if it had any.
func withOutput(out string) string {
	if out == "" {
		return ""
	}
	return ": " + out
}

// createClone makes a copy-on-write snapshot clone of a stopped template
// container with `lxc-copy -s -B overlayfs`: the clone's rootfs is an
// overlay whose lower layer is the template's, so it costs the same whatever
// the template's size. The clone shares the template's files, so it must
// share its id map too.
//
// lxc-copy rather than liblxc's clone in this process: that clone forks a
// child that mounts the new rootfs, and a fork of this process (tens of MiB,
// with ten creates and the garbage collector at work, as in a Terraform
// apply) costs more than running lxc-copy, which Go starts without copying
// this process (vfork). Measured with a busy heap: about 10 ms in process
// against 7 ms for lxc-copy; the provider's apply of 50 clones went from
// 2.3-2.9 s to 1.8-2.6 s.
func (c *Client) createClone(ctx context.Context, s *virt.ContainerSpec, tmpl *golxc.Container) error {
	// checkHost has made sure the template is stopped and its id map
	// agrees with the spec.
	tmplMap, err := templateIDMap(tmpl)
	if err != nil {
		return fmt.Errorf("template container %q: %w", s.Template, err)
	}
	s.IDMap = tmplMap

	bin, err := exec.LookPath("lxc-copy")
	if err != nil {
		return fmt.Errorf("lxc-copy, which makes snapshot clones, is not installed (Debian package lxc): %w", err)
	}
	logPath, err := tempLog()
	if err != nil {
		return err
	}
	defer c.removeTemp(logPath)
	cmd := exec.CommandContext(ctx, bin, "--snapshot", "--backingstorage", "overlayfs", "--name", s.Template, "--newname", s.Name,
		"--lxcpath", c.lxcPath, "--logfile", logPath, "--logpriority", "ERROR")
	cmd.Env = []string{defaultPath}
	out := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		msg := lxcLogErrors(logPath)
		if msg != "" {
			msg = " (liblxc: " + msg + ")"
		} else {
			msg = withOutput(out.lastLines(4))
		}
		return fmt.Errorf("snapshot clone of %q: lxc-copy: %w%s", s.Template, err, msg)
	}
	return c.writeConfigs(s, configKeys(*s), nil)
}

// writeConfigs writes the managed config (comparedKeys in its
// comparedKeysPrefix line) and rebases LXC's own config onto it. Each file
// is replaced atomically, and the managed one first: LXC's config includes
// it from the start (then the new file is the whole change) or only once
// rebased (then, until that rename, the old config stands as it was). So
// the container's config always loads and always is one whole version, and
// a failed create can be destroyed through LXC (which for a clone also
// drops it from its template's list of clones).
func (c *Client) writeConfigs(s *virt.ContainerSpec, comparedKeys []string, drop func(configItem) bool) error {
	items, err := renderManagedConfig(*s, c.cgroups)
	if err != nil {
		return err
	}
	dir := c.dir(s.Name)
	managedPath := filepath.Join(dir, ManagedConfigName)
	if err := writeFileAtomic(managedPath, []byte(formatManagedConfig(items, comparedKeys)), 0o640); err != nil {
		return fmt.Errorf("write managed config: %w", err)
	}
	mainPath := filepath.Join(dir, "config")
	text, err := os.ReadFile(mainPath)
	if err != nil {
		return fmt.Errorf("read LXC config: %w", err)
	}
	rebased := rebaseConfig(string(text), c.lxcPath, managedPath, drop)
	if rebased == string(text) {
		return nil // an update of a container this package made
	}
	if err := writeFileAtomic(mainPath, []byte(rebased), 0o640); err != nil {
		return fmt.Errorf("write LXC config: %w", err)
	}
	return nil
}

// writeFileAtomic replaces path with data through a rename, with mode
// whatever the umask. When it fails it removes its temporary file, and says
// so if that fails too: the file would be left in the container's directory.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err == nil {
			return // renamed: nothing left to remove
		}
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close() // the write's error is the one to report; the file is removed
		return err
	}
	if err := f.Chmod(mode); err != nil {
		_ = f.Close() // the chmod's error is the one to report; the file is removed
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func tempLog() (string, error) { return tempFile("virt-lxc-*.log", "") }

// tempFile makes a private temporary file holding content.
func tempFile(pattern, content string) (string, error) {
	f, err := os.CreateTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if rerr := os.Remove(f.Name()); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return "", fmt.Errorf("write temporary file: %w", err)
	}
	return f.Name(), nil
}

// removeTemp removes a temporary file of tempFile's once it has served. It
// no longer matters to the operation, so a failure is logged: the file
// would stay behind in the temporary directory.
func (c *Client) removeTemp(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("remove temporary file", "path", path, "error", err)
	}
}

// removeHalfMade removes what a failed create left: through LXC when it
// knows the container, so that storage (and a clone's entry in its
// template's clone list) goes too, else the directory.
func (c *Client) removeHalfMade(name string) {
	c.log.Debug("remove half-made container", "container", name)
	if ct, err := golxc.NewContainer(name, c.lxcPath); err == nil {
		if ct.Defined() {
			if ct.Running() {
				_ = ct.Stop()
			}
			if err := ct.Destroy(); err != nil {
				c.log.Warn("destroy half-made container", "container", name, "error", err)
			}
		}
		_ = ct.Release()
	}
	dir := c.dir(name)
	if _, err := os.Lstat(dir); err == nil {
		if err := os.RemoveAll(dir); err != nil {
			c.log.Warn("remove half-made container directory", "container", name, "dir", dir, "error", err)
		}
	}
}
