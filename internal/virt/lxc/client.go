//go:build linux && cgo

package lxc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	golxc "github.com/lxc/go-lxc"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var _ virt.ContainerBackend = (*Client)(nil)

// DefaultLXCPath is where system containers live unless the host's lxc.conf
// says otherwise.
const DefaultLXCPath = "/var/lib/lxc"

// Timeouts for LXC waits when the context has no deadline.
const (
	defaultStartTimeout = time.Minute
	defaultStopTimeout  = time.Minute
)

// lxcLogName is the file in a container's directory that LXC's errors of its
// latest start go to; errors quote it.
const lxcLogName = "lxc.log"

// Client manages the LXC containers under one LXC path. It holds no
// connection: every call goes to liblxc, which serializes access to a
// container with its own locks, so a Client may be used concurrently.
type Client struct {
	lxcPath string
	log     hclog.Logger
	cgroups cgroupLayout
}

// New returns a client for the containers under lxcPath (the host's
// lxc.lxcpath, normally /var/lib/lxc, when empty). It reads the host's cgroup
// layout once, so that limits are written for the hierarchy that holds their
// controller.
func New(lxcPath string, log hclog.Logger) (*Client, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if lxcPath == "" {
		lxcPath = golxc.DefaultConfigPath()
		if lxcPath == "" {
			lxcPath = DefaultLXCPath
		}
	}
	abs, err := filepath.Abs(lxcPath)
	if err != nil {
		return nil, fmt.Errorf("lxc path %q: %w", lxcPath, err)
	}
	cg, err := detectCgroupLayout()
	if err != nil {
		return nil, err
	}
	log.Debug("lxc backend", "lxc_path", abs, "liblxc", golxc.Version(), "cgroups", cg.String())
	return &Client{lxcPath: abs, log: log, cgroups: cg}, nil
}

// Version is the liblxc version.
func (c *Client) Version() string { return golxc.Version() }

// LXCPath is the directory the client's containers live in.
func (c *Client) LXCPath() string { return c.lxcPath }

func (c *Client) dir(name string) string { return filepath.Join(c.lxcPath, name) }

// checkName refuses names that could not be a container's, before they are
// used in a path.
func checkName(name string) error {
	if !virt.ValidContainerName(name) {
		return virt.SpecErrors{{Field: "name", Reason: fmt.Sprintf("%q is not a valid container name", name)}}
	}
	return nil
}

// open returns the container called name; an error wrapping virt.ErrNotFound
// when LXC has no such container. The caller releases it.
func (c *Client) open(name string) (*golxc.Container, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	ct, err := golxc.NewContainer(name, c.lxcPath)
	if err != nil {
		// liblxc returns no container when its config does not load: the
		// container is there but broken, which is not "not found".
		return nil, fmt.Errorf("load container %q (config %s): %w", name, filepath.Join(c.dir(name), "config"), err)
	}
	if !ct.Defined() {
		_ = ct.Release()
		return nil, virt.NotFoundError("container", name)
	}
	return ct, nil
}

// release drops a handle from open. liblxc only refuses a handle that was
// released already, which is a bug here, not a failure of the caller's
// operation: it is logged, not returned.
func (c *Client) release(ct *golxc.Container) {
	if err := ct.Release(); err != nil {
		c.log.Warn("release container handle", "container", ct.Name(), "error", err)
	}
}

// Container reads the container's configuration and run state back into a
// spec. The source is not read back except for snapshot clones (Template),
// and neither is Unprivileged beyond what the id map says.
func (c *Client) Container(ctx context.Context, name string) (*virt.ContainerSpec, error) {
	c.log.Debug("read container", "container", name)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read container %q: %w", name, err)
	}
	ct, err := c.open(name)
	if err != nil {
		return nil, err
	}
	defer c.release(ct)
	s, err := c.readSpec(ct, name)
	if err != nil {
		return nil, fmt.Errorf("read container %q: %w", name, err)
	}
	return s, nil
}

func (c *Client) readSpec(ct *golxc.Container, name string) (*virt.ContainerSpec, error) {
	dir := c.dir(name)
	var s virt.ContainerSpec
	managed, err := os.ReadFile(filepath.Join(dir, ManagedConfigName))
	switch {
	case err == nil:
		s, err = specFromConfig(parseConfig(string(managed)), true)
	case errors.Is(err, fs.ErrNotExist):
		// Made by other tools (a template container from lxc-create, say).
		var main []byte
		main, err = os.ReadFile(ct.ConfigFileName())
		if err == nil {
			s, err = specFromConfig(parseConfig(string(main)), false)
		}
	}
	if err != nil {
		return nil, err
	}
	s.Name = name
	if tmpl, ok := c.snapshotOrigin(name); ok {
		s.Template = tmpl
	}

	state := ct.State()
	s.State = containerState(state)
	if state != golxc.STOPPED {
		if pid := ct.InitPid(); pid > 0 {
			s.PID = pid
		}
	}
	if state == golxc.RUNNING {
		// An error here only means no addresses (yet): LXC reports "none"
		// as a failure.
		if ips, err := ct.IPv4Addresses(); err == nil {
			slices.Sort(ips)
			s.IPv4Addresses = ips
		}
	}
	return &s, nil
}

func containerState(s golxc.State) virt.ContainerState {
	switch s {
	case golxc.ABORTING:
		return virt.ContainerStopping
	case golxc.FREEZING:
		return virt.ContainerFrozen
	case golxc.THAWED:
		return virt.ContainerRunning
	}
	return virt.ContainerState(s.String())
}

// snapshotOrigin names the container whose rootfs a snapshot clone lies on,
// from the lxc_rdepends file LXC keeps in the clone's directory.
func (c *Client) snapshotOrigin(name string) (string, bool) {
	pairs, err := readLXCPairs(filepath.Join(c.dir(name), "lxc_rdepends"))
	if err != nil || len(pairs) == 0 || filepath.Clean(pairs[0][0]) != c.lxcPath {
		return "", false
	}
	return pairs[0][1], true
}

// snapshotClones names the snapshot clones that use the container's rootfs,
// from the lxc_snapshots file LXC keeps in its directory.
func (c *Client) snapshotClones(name string) ([]string, error) {
	pairs, err := readLXCPairs(filepath.Join(c.dir(name), "lxc_snapshots"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pairs {
		if filepath.Clean(p[0]) == c.lxcPath {
			out = append(out, p[1])
		} else {
			out = append(out, filepath.Join(p[0], p[1]))
		}
	}
	return out, nil
}

// readLXCPairs reads LXC's lxc_snapshots and lxc_rdepends files: lines
// alternating an LXC path and a container name. A missing file has none.
func readLXCPairs(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // opened read-only: nothing to flush
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var out [][2]string
	for i := 0; i+1 < len(lines); i += 2 {
		out = append(out, [2]string{lines[i], lines[i+1]})
	}
	return out, nil
}

// ListContainers names the containers under the LXC path, sorted.
func (c *Client) ListContainers(ctx context.Context) ([]string, error) {
	c.log.Debug("list containers", "lxc_path", c.lxcPath)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	names := golxc.ContainerNames(c.lxcPath)
	slices.Sort(names)
	return names, nil
}

// StartContainer starts the container and waits until LXC reports it
// running. A running container is left as it is.
func (c *Client) StartContainer(ctx context.Context, name string) error {
	c.log.Debug("start container", "container", name)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start container %q: %w", name, err)
	}
	ct, err := c.open(name)
	if err != nil {
		return err
	}
	defer c.release(ct)
	if ct.Running() {
		return nil
	}

	// The log holds LXC's errors of this start, so a failure can say why;
	// only the in-memory config names it, the saved one stays as it is.
	logPath := filepath.Join(c.dir(name), lxcLogName)
	if err := os.WriteFile(logPath, nil, 0o600); err != nil {
		return fmt.Errorf("start container %q: prepare log: %w", name, err)
	}
	if err := os.Chmod(logPath, 0o600); err != nil {
		return fmt.Errorf("start container %q: prepare log: %w", name, err)
	}
	if err := ct.SetLogFile(logPath); err != nil {
		return fmt.Errorf("start container %q: set log file: %w", name, err)
	}
	if err := ct.Start(); err != nil {
		return fmt.Errorf("start container %q: %w%s", name, err, lxcErrors(logPath))
	}
	timeout := waitTimeout(ctx, defaultStartTimeout)
	if !ct.Wait(golxc.RUNNING, timeout) {
		return fmt.Errorf("start container %q: not running after %s (state %s)%s", name, timeout, ct.State(), lxcErrors(logPath))
	}
	return nil
}

// StopContainer asks the container's init to halt (lxc.signal.halt) and
// waits up to grace (bounded by ctx) for it to stop, then kills it. A
// container that is not running is left as it is.
func (c *Client) StopContainer(ctx context.Context, name string, grace time.Duration) error {
	c.log.Debug("stop container", "container", name, "grace", grace)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stop container %q: %w", name, err)
	}
	ct, err := c.open(name)
	if err != nil {
		return err
	}
	defer c.release(ct)
	if err := c.stop(ctx, ct, grace); err != nil {
		return fmt.Errorf("stop container %q: %w", name, err)
	}
	return nil
}

func (c *Client) stop(ctx context.Context, ct *golxc.Container, grace time.Duration) error {
	if ct.State() == golxc.STOPPED {
		return nil
	}
	if grace > 0 {
		if dl, ok := ctx.Deadline(); ok {
			grace = min(grace, time.Until(dl))
		}
		// LXC counts whole seconds, and 0 would mean "do not wait".
		grace = max(grace.Round(time.Second), time.Second)
		if err := ct.Shutdown(grace); err == nil {
			return nil
		}
		c.log.Debug("clean shutdown did not finish, killing", "container", ct.Name(), "grace", grace)
	}
	if err := ct.Stop(); err != nil && ct.State() != golxc.STOPPED {
		return err
	}
	timeout := waitTimeout(ctx, defaultStopTimeout)
	if !ct.Wait(golxc.STOPPED, timeout) {
		return fmt.Errorf("still %s %s after the kill", ct.State(), timeout)
	}
	return nil
}

// DestroyContainer kills the container if it runs and removes it with its
// storage (a snapshot clone's overlay included; the template it lies on
// stays). A template that snapshot clones still use is refused with a
// *virt.HasClonesError naming them.
func (c *Client) DestroyContainer(ctx context.Context, name string) error {
	c.log.Debug("destroy container", "container", name)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("destroy container %q: %w", name, err)
	}
	ct, err := c.open(name)
	if err != nil {
		return err
	}
	defer c.release(ct)

	clones, err := c.snapshotClones(name)
	if err != nil {
		return fmt.Errorf("destroy container %q: read its snapshot clones: %w", name, err)
	}
	if len(clones) > 0 {
		return fmt.Errorf("destroy container %q: %w", name, &virt.HasClonesError{Name: name, Clones: clones})
	}
	if err := c.stop(ctx, ct, 0); err != nil {
		return fmt.Errorf("destroy container %q: stop it: %w", name, err)
	}
	// go-lxc reports having no snapshots as an error: then, as when they
	// cannot be listed, a plain destroy.
	if snaps, serr := ct.Snapshots(); serr == nil && len(snaps) > 0 {
		err = ct.DestroyWithAllSnapshots()
	} else {
		err = ct.Destroy()
	}
	if err != nil {
		return fmt.Errorf("destroy container %q: %w", name, err)
	}
	return nil
}

// waitTimeout is how long an LXC wait may take: until ctx's deadline, or def.
// LXC counts whole seconds; rounding up keeps a short deadline from becoming
// "do not wait".
func waitTimeout(ctx context.Context, def time.Duration) time.Duration {
	d := def
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	if d < time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

// lxcErrors quotes the last errors liblxc logged to path, for an error
// message; "" when there are none.
func lxcErrors(path string) string {
	msg := lxcLogErrors(path)
	if msg == "" {
		return ""
	}
	return fmt.Sprintf(" (liblxc: %s; full log in %s)", msg, path)
}

// lxcLogErrors joins the last ERROR messages of an LXC log file.
func lxcLogErrors(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var msgs []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, " ERROR ") {
			continue
		}
		// "lxc-start NAME STAMP ERROR module - file:func:line - message"
		if parts := strings.SplitN(line, " - ", 3); len(parts) == 3 {
			line = parts[2]
		}
		msgs = append(msgs, strings.TrimSpace(line))
	}
	if len(msgs) > 5 {
		msgs = msgs[len(msgs)-5:]
	}
	return strings.Join(msgs, "; ")
}
