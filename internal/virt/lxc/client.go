//go:build linux && cgo

package lxc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
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

// defaultStopTimeout bounds the wait for a killed container to stop when
// the context has no deadline.
const defaultStopTimeout = time.Minute

// onlineCPUsPath is where the kernel lists the CPUs that are online: the
// cpuset a container without a cpus limit gets, and the CPUs one may pin.
const onlineCPUsPath = "/sys/devices/system/cpu/online"

// lxcLogName is the file in a container's directory that LXC's errors of its
// latest start go to; errors quote it.
const lxcLogName = "lxc.log"

// Client manages the LXC containers under one LXC path. It holds no
// connection: every call goes to liblxc (starts to lxc-start, see
// StartContainer), which serializes access to a container with its own
// locks, so a Client may be used concurrently, and nothing is serialized
// here (TestParallelContainers shows ten at a time).
type Client struct {
	lxcPath string
	log     hclog.Logger
	cgroups cgroupLayout
	// hostCPUs are the host's online CPUs (nil when unknown), hostCPUList
	// the same in the kernel's list format.
	hostCPUs    cpuSet
	hostCPUList string
	// subUIDFile and subGIDFile hold root's subordinate ids, which
	// unprivileged containers are mapped to (virt.SubUIDFile and
	// virt.SubGIDFile; tests point them elsewhere).
	subUIDFile, subGIDFile string
	idMaps                 *idMapCache
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
	c := &Client{lxcPath: abs, log: log, cgroups: cg, subUIDFile: virt.SubUIDFile, subGIDFile: virt.SubGIDFile,
		idMaps: &idMapCache{}}
	// Only checks and a v1 cpuset reset use them: a host that does not say
	// (no sysfs) loses those, not the client.
	if b, err := os.ReadFile(onlineCPUsPath); err == nil {
		if set, err := parseCPUSet(string(b)); err == nil && len(set) > 0 {
			c.hostCPUs, c.hostCPUList = set, strings.TrimSpace(string(b))
		}
	}
	log.Debug("lxc backend", "lxc_path", abs, "liblxc", golxc.Version(), "cgroups", cg.String(), "cpus", c.hostCPUList)
	return c, nil
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
	tm := c.timeSteps("read container", name)
	defer tm.done()
	ct, err := c.open(name)
	if err != nil {
		return nil, err
	}
	defer c.release(ct)
	tm.step("open")
	s, err := c.readSpec(ct, name)
	tm.step("read")
	if err != nil {
		return nil, fmt.Errorf("read container %q: %w", name, err)
	}
	return s, nil
}

func (c *Client) readSpec(ct *golxc.Container, name string) (*virt.ContainerSpec, error) {
	s, compared, err := c.savedSpec(name)
	if err != nil {
		return nil, err
	}
	if c.readRunState(ct, &s, ct.State()) == golxc.RUNNING {
		s.PendingRestart = pendingRestart(ct, mergeKeys(compared, configKeys(s)))
	}
	return &s, nil
}

// readRunState fills in s's run state from state, just read from ct, and
// returns it: init's pid unless the container is stopped, and the
// addresses of a running one.
func (c *Client) readRunState(ct *golxc.Container, s *virt.ContainerSpec, state golxc.State) golxc.State {
	s.State = containerState(state)
	if state != golxc.STOPPED {
		if pid := ct.InitPid(); pid > 0 {
			s.PID = pid
		}
	}
	if state == golxc.RUNNING {
		s.IPv4Addresses = c.ipv4Addresses(ct, s.PID)
	}
	return state
}

// ipv4Addresses lists the IPv4 addresses of the running container whose
// init is pid, sorted, without loopback's: from the kernel's routing trie
// of the container's network namespace (its local /32 entries are the
// addresses of its interfaces), which a read of /proc/PID/net/fib_trie
// gives without entering the namespace. go-lxc's IPv4Addresses forks this
// whole process into the namespace for every call: about 2 ms of CPU for
// each read of each container, which a refresh of many pays many times. It
// serves when /proc cannot be read.
func (c *Client) ipv4Addresses(ct *golxc.Container, pid int) []string {
	if pid > 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/fib_trie", pid)); err == nil {
			return localAddresses(string(b))
		}
	}
	// An error here only means no addresses (yet): LXC reports "none" as
	// a failure.
	ips, err := ct.IPv4Addresses()
	if err != nil {
		return nil
	}
	slices.Sort(ips)
	return ips
}

// localAddresses reads the addresses of the interfaces from the kernel's
// /proc/net/fib_trie: a leaf line ("|-- 10.0.3.5") followed by a
// "/32 host LOCAL" line is one of them. Loopback's (127.0.0.0/8) are left
// out, as LXC leaves out those of lo.
func localAddresses(fibTrie string) []string {
	var out []string
	leaf := ""
	for _, line := range strings.Split(fibTrie, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "|-- "):
			leaf = strings.TrimPrefix(line, "|-- ")
		case strings.HasPrefix(line, "+-- "):
			leaf = ""
		case strings.HasPrefix(line, "/32 host LOCAL") && leaf != "":
			if a, err := netip.ParseAddr(leaf); err == nil && a.Is4() && !a.IsLoopback() {
				out = append(out, a.String())
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// savedSpec reads the spec the container's saved config describes (what
// its next start will use), with the managed file's compared keys (see
// comparedKeysPrefix).
func (c *Client) savedSpec(name string) (virt.ContainerSpec, []string, error) {
	dir := c.dir(name)
	var s virt.ContainerSpec
	var compared []string
	managed, err := os.ReadFile(filepath.Join(dir, ManagedConfigName))
	switch {
	case err == nil:
		s, err = specFromConfig(parseConfig(string(managed)), true)
		compared = parseComparedKeys(string(managed))
	case errors.Is(err, fs.ErrNotExist):
		// Made by other tools (a template container from lxc-create, say).
		var main []byte
		main, err = os.ReadFile(filepath.Join(dir, "config"))
		if err == nil {
			s, err = specFromConfig(parseConfig(string(main)), false)
		}
	}
	if err != nil {
		return s, nil, err
	}
	s.Name = name
	if tmpl, ok := c.snapshotOrigin(name); ok {
		s.Template = tmpl
	}
	return s, compared, nil
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

// StartContainer starts the container and returns once LXC reports it
// running. A running container is left as it is.
func (c *Client) StartContainer(ctx context.Context, name string) error {
	c.log.Debug("start container", "container", name)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start container %q: %w", name, err)
	}
	tm := c.timeSteps("start container", name)
	defer tm.done()
	ct, err := c.open(name)
	if err != nil {
		return err
	}
	defer c.release(ct)
	if ct.Running() {
		return nil
	}
	tm.step("open")
	_, err = c.start(ctx, ct, name, tm)
	return err
}

// StartCreated starts a container that CreateContainer has just made and
// returns created (what CreateContainer returned, unchanged) with the run
// state filled in: state, init's pid and addresses. It does the work of
// StartContainer and then Container with one handle and less reading: the
// container was started from the saved config that created describes, so
// neither the config files nor the running config are read again, and
// nothing of it can be pending a restart. With 50 clones ten at a time on
// a busy 2-core host, the Container after the start took 55 ms a container
// (median), most of it asking the new container's monitor for its running
// config, key by key; this takes under 1 ms.
func (c *Client) StartCreated(ctx context.Context, created *virt.ContainerSpec) (*virt.ContainerSpec, error) {
	name := created.Name
	c.log.Debug("start new container", "container", name)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start container %q: %w", name, err)
	}
	tm := c.timeSteps("start new container", name)
	defer tm.done()
	ct, err := c.open(name)
	if err != nil {
		return nil, err
	}
	defer c.release(ct)
	tm.step("open")
	state, err := c.start(ctx, ct, name, tm)
	if err != nil {
		return nil, err
	}
	out := *created
	out.PendingRestart = nil
	c.readRunState(ct, &out, state)
	tm.step("read run state")
	return &out, nil
}

// start runs lxc-start for the stopped container ct and returns the state
// LXC reports once it is done.
func (c *Client) start(ctx context.Context, ct *golxc.Container, name string, tm *stepTimer) (golxc.State, error) {
	bin, err := exec.LookPath("lxc-start")
	if err != nil {
		return 0, fmt.Errorf("start container %q: lxc-start is not installed (Debian package lxc): %w", name, err)
	}
	args := []string{"--name", name, "--lxcpath", c.lxcPath}
	// The log holds LXC's errors of this start, so a failure can say why;
	// it is given to this start only, the saved config stays as it is. A
	// log file the config names itself (through config) is left alone: it
	// is the user's, and overriding it would also make the running config
	// differ from the saved one, a restart that never clears.
	logPath := ct.LogFile()
	if logPath == "" {
		logPath = filepath.Join(c.dir(name), lxcLogName)
		if err := os.WriteFile(logPath, nil, 0o600); err != nil {
			return 0, fmt.Errorf("start container %q: prepare log: %w", name, err)
		}
		if err := os.Chmod(logPath, 0o600); err != nil {
			return 0, fmt.Errorf("start container %q: prepare log: %w", name, err)
		}
		args = append(args, "--logfile", logPath)
	}
	tm.step("prepare log")
	// lxc-start, not liblxc's start in this process: the start forks the
	// container's monitor, which lives as long as the container, from the
	// process that asks for it. Forked from this one (a Go program of tens
	// of MiB whose garbage collector keeps rewriting its heap), every
	// monitor would end up with a private copy of that heap: about 7 MiB
	// each, measured with 50 containers, against 0.4 MiB for a monitor
	// forked from lxc-start. The child gets no environment but PATH:
	// nothing of this process's (credentials, say) reaches the monitor or
	// LXC's hooks. lxc-start daemonizes and returns once the container runs
	// or has failed.
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{defaultPath}
	out := &tailBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	tm.step("lxc-start")
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		msg := lxcErrors(logPath)
		if msg == "" {
			msg = withOutput(out.lastLines(4))
		}
		return 0, fmt.Errorf("start container %q: lxc-start: %w%s", name, err, msg)
	}
	// lxc-start has had the monitor report RUNNING before it exits 0
	// (liblxc's daemonized start fails on any other state), so there is
	// nothing to wait for: one look at the state, which StartCreated
	// returns, tells whether init is still there. (A wait for RUNNING cost
	// the same round trip to the monitor, and then the state was asked for
	// again.)
	state := ct.State()
	tm.step("state")
	if state != golxc.RUNNING {
		return state, fmt.Errorf("start container %q: it is %s right after its start (its init exited at once, or something stopped it)%s",
			name, strings.ToLower(string(containerState(state))), lxcErrors(logPath))
	}
	return state, nil
}

// StopContainer asks the container's init to halt (lxc.signal.halt) and
// waits up to grace (bounded by ctx) for it to stop, then kills it. A
// container that is not running is left as it is.
func (c *Client) StopContainer(ctx context.Context, name string, grace time.Duration) error {
	c.log.Debug("stop container", "container", name, "grace", grace)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stop container %q: %w", name, err)
	}
	tm := c.timeSteps("stop container", name)
	defer tm.done()
	ct, err := c.open(name)
	if err != nil {
		return err
	}
	defer c.release(ct)
	tm.step("open")
	if err := c.stop(ctx, ct, grace); err != nil {
		return fmt.Errorf("stop container %q: %w", name, err)
	}
	tm.step("stop")
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
	return c.destroy(ctx, name, 0)
}

// RemoveContainer stops the container as StopContainer does (its init gets
// grace to shut down cleanly, then it is killed) and destroys it as
// DestroyContainer does, with one handle of it: StopContainer followed by
// DestroyContainer loads the container's config twice and asks its monitor
// for its state once more. And a template that snapshot clones still use
// is refused before it is stopped, not after: a destroy that cannot happen
// leaves the container running.
func (c *Client) RemoveContainer(ctx context.Context, name string, grace time.Duration) error {
	return c.destroy(ctx, name, grace)
}

func (c *Client) destroy(ctx context.Context, name string, grace time.Duration) error {
	c.log.Debug("destroy container", "container", name, "grace", grace)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("destroy container %q: %w", name, err)
	}
	tm := c.timeSteps("destroy container", name)
	defer tm.done()
	ct, err := c.open(name)
	if err != nil {
		return err
	}
	defer c.release(ct)
	tm.step("open")

	clones, err := c.snapshotClones(name)
	if err != nil {
		return fmt.Errorf("destroy container %q: read its snapshot clones: %w", name, err)
	}
	if len(clones) > 0 {
		return fmt.Errorf("destroy container %q: %w", name, &virt.HasClonesError{Name: name, Clones: clones})
	}
	if err := c.stop(ctx, ct, grace); err != nil {
		return fmt.Errorf("destroy container %q: stop it: %w", name, err)
	}
	tm.step("stop")
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
	tm.step("destroy")
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
		// The lxc-* tools' own lines repeat that the start failed and
		// give advice for the command line; the cause is in the others.
		if strings.Contains(line, "/tools/lxc_") || strings.Contains(line, ":wait_on_daemonized_start:") {
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
