//go:build linux && cgo

package lxc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	golxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// defaultPath is the PATH a command gets when ExecSpec.Env sets none: the
// environment starts empty, because this process's (a provider's, with its
// credentials) must not leak into the container.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Exec runs a command in the running container (all its namespaces and
// cgroups, with its capabilities) and returns its exit status; 128+N when a
// signal N killed it. When ctx ends first the command is killed.
func (c *Client) Exec(ctx context.Context, name string, cmd virt.ExecSpec) (int, error) {
	if len(cmd.Args) == 0 {
		return -1, fmt.Errorf("exec in container %q: no command", name)
	}
	// Only the program: arguments and environment may hold secrets.
	c.log.Debug("exec in container", "container", name, "program", cmd.Args[0])
	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", name, err)
	}
	ct, err := c.open(name)
	if err != nil {
		return -1, err
	}
	defer c.release(ct)
	if st := ct.State(); st != golxc.RUNNING {
		return -1, fmt.Errorf("exec in container %q: it is %s, not running", name, strings.ToLower(st.String()))
	}

	var stdio execIO
	defer stdio.closeAll()
	stdin, err := stdio.input(cmd.Stdin)
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: stdin: %w", name, err)
	}
	stdout, err := stdio.output(cmd.Stdout, nil, nil)
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: stdout: %w", name, err)
	}
	stderr, err := stdio.output(cmd.Stderr, cmd.Stdout, stdout)
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: stderr: %w", name, err)
	}

	opts := golxc.DefaultAttachOptions
	opts.ClearEnv = true
	opts.Env = execEnv(cmd.Env)
	opts.StdinFd, opts.StdoutFd, opts.StderrFd = stdin.Fd(), stdout.Fd(), stderr.Fd()

	// NoWait hands back the pid: LXC creates the command as this process's
	// child (CLONE_PARENT), so it can be waited for here, and killed when
	// ctx ends, which the blocking call would not allow.
	pid, err := ct.RunCommandNoWait(cmd.Args, opts)
	stdio.closeChildEnds()
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", name, err)
	}
	stdio.start()

	done := make(chan unix.WaitStatus, 1)
	waitErr := make(chan error, 1)
	go func() {
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				waitErr <- err
				return
			}
			done <- ws
			return
		}
	}()

	var ws unix.WaitStatus
	select {
	case ws = <-done:
	case err := <-waitErr:
		return -1, fmt.Errorf("exec in container %q: wait for the command: %w", name, err)
	case <-ctx.Done():
		_ = unix.Kill(pid, unix.SIGKILL)
		// Reaped, so that no zombie is left; the command is killed either
		// way, so a failed wait only goes to the log.
		select {
		case <-done:
		case err := <-waitErr:
			c.log.Debug("wait for the killed command", "container", name, "pid", pid, "error", err)
		}
		stdio.closeAll()
		return -1, fmt.Errorf("exec in container %q: %w", name, ctx.Err())
	}
	// Output still in the pipes belongs to the result; a process the
	// command left behind may keep them open, so ctx bounds the wait.
	if err := stdio.wait(ctx); err != nil {
		return -1, fmt.Errorf("exec in container %q: copy output: %w", name, err)
	}
	switch {
	case ws.Exited():
		return ws.ExitStatus(), nil
	case ws.Signaled():
		return 128 + int(ws.Signal()), nil
	}
	return -1, fmt.Errorf("exec in container %q: command ended with wait status %#x", name, uint32(ws))
}

func execEnv(env []string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return env
		}
	}
	return append([]string{defaultPath}, env...)
}

// execIO wires an ExecSpec's readers and writers to file descriptors for
// the attached command, as os/exec does: files pass straight through,
// anything else goes through a pipe and a copying goroutine.
type execIO struct {
	childEnds []*os.File // given to the command; closed here once it runs
	ours      []*os.File // this process's ends and /dev/null opens
	inCopies  []func()
	outCopies []func() error
	outDone   chan error
	nOut      int
}

func (x *execIO) input(r io.Reader) (*os.File, error) {
	if f, ok := r.(*os.File); ok {
		return f, nil
	}
	if r == nil {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		x.ours = append(x.ours, f)
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	x.childEnds = append(x.childEnds, pr)
	x.ours = append(x.ours, pw)
	x.inCopies = append(x.inCopies, func() {
		// Not waited for: the command may exit without reading its input,
		// and the reader may block for ever (a terminal). The write fails
		// once the command's end is closed.
		_, _ = io.Copy(pw, r)
		// Closing a pipe loses nothing, and closeAll may have closed it
		// already.
		_ = pw.Close()
	})
	return pr, nil
}

// output wires w; when w is the same writer as prev (Stderr = Stdout), the
// command gets the same descriptor, so one goroutine writes to w.
func (x *execIO) output(w io.Writer, prev io.Writer, prevFile *os.File) (*os.File, error) {
	if prevFile != nil && w != nil && sameWriter(w, prev) {
		return prevFile, nil
	}
	if f, ok := w.(*os.File); ok {
		return f, nil
	}
	if w == nil {
		f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		x.ours = append(x.ours, f)
		return f, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	x.childEnds = append(x.childEnds, pw)
	x.ours = append(x.ours, pr)
	x.outCopies = append(x.outCopies, func() error {
		_, err := io.Copy(w, pr)
		return err
	})
	return pw, nil
}

// sameWriter compares two writers as os/exec does; writers of types that
// cannot be compared are different.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// closeChildEnds closes this process's copies of the command's ends, so a
// pipe reports EOF when the command (not this process) closes it.
func (x *execIO) closeChildEnds() {
	for _, f := range x.childEnds {
		_ = f.Close() // the command has its own copy: nothing is lost here
	}
	x.childEnds = nil
}

func (x *execIO) start() {
	for _, f := range x.inCopies {
		go f()
	}
	x.outDone = make(chan error, len(x.outCopies))
	x.nOut = len(x.outCopies)
	for _, f := range x.outCopies {
		go func() { x.outDone <- f() }()
	}
}

func (x *execIO) wait(ctx context.Context) error {
	var first error
	for i := 0; i < x.nOut; i++ {
		select {
		case err := <-x.outDone:
			if err != nil && first == nil {
				first = err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	x.nOut = 0
	return first
}

func (x *execIO) closeAll() {
	x.closeChildEnds()
	for _, f := range x.ours {
		// Pipe ends and /dev/null: closing them loses nothing, and the
		// input copier may have closed its end already.
		_ = f.Close()
	}
	x.ours = nil
}
