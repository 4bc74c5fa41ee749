package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// syncBuffer is a console sink a test can read while the stream writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ptyTestMachine defines the test guest with a pty console (the kind
// StreamConsole streams), started or not, removed when the test ends; it
// returns the machine's name and the directory QEMU reads it from.
func ptyTestMachine(t *testing.T, c *Client, start bool) (name, dir string) {
	t.Helper()
	name = testenv.Name(t, "lv-dom")
	dir = qemuWorkDir(t)
	spec := testGuestSpec(t, name, dir)
	spec.Console = virt.ConsoleSpec{Type: virt.ConsolePTY}
	removeMachineAtEnd(t, c, name)
	if _, err := c.CreateMachine(t.Context(), spec, start); err != nil {
		t.Fatalf("CreateMachine: %v", err)
	}
	return name, dir
}

// bootDeadline is what each boot of the test guest gets to reach the
// streamed console: the provider tests' allowance, for a CI host that
// boots other guests on the same two cores.
const bootDeadline = 3 * time.Minute

// waitBoots waits until the streamed console holds n boots of the test
// guest (its ready marker n times); it fails the test when the stream
// ends (done) or a boot takes longer than bootDeadline.
func waitBoots(t *testing.T, console *syncBuffer, done <-chan error, n int) {
	t.Helper()
	deadline := time.Now().Add(bootDeadline)
	for strings.Count(console.String(), testenv.Marker) < n {
		select {
		case err := <-done:
			t.Fatalf("the stream ended after %d boots: %v\n%s", strings.Count(console.String(), testenv.Marker), err, console.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d boots on the streamed console within %s, want %d:\n%s", strings.Count(console.String(), testenv.Marker), bootDeadline, n, console.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// StreamConsole follows a machine across restarts: stopped and started at
// once (as a builder power-cycles an installer), twice, the console of
// every boot arrives, and the stream ends with its context. A restart
// quicker than the stream's end is the case to get right: the stream must
// not take the new instance for the old one.
func TestStreamConsoleFollowsRestarts(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name, _ := ptyTestMachine(t, c, true)

	var console syncBuffer
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.StreamConsole(sctx, name, &console, nil) }()

	waitBoots(t, &console, done, 1)
	for boot := 2; boot <= 3; boot++ {
		if err := c.PowerCycleMachine(ctx, name); err != nil {
			t.Fatal(err)
		}
		waitBoots(t, &console, done, boot)
	}
	stop()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("StreamConsole after its context ended: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("StreamConsole did not return after its context ended")
	}
}

// A machine that takes seconds to start (QEMU on a host busy with other
// guests) is active, with a new ID, long before its console exists: opens
// in that window fail ("PTY device is not yet assigned"). The stream,
// started before the machine, must wait for the start to finish, not give
// up on the failures. The emulator here is QEMU behind a 12 s delay: a
// slow start on demand, which the real daemon then goes through as usual.
func TestStreamConsoleWaitsForSlowStart(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name, dir := ptyTestMachine(t, c, false)

	// The same definition with the slow emulator. libvirt also runs the
	// emulator to probe what it can do ("-machine none"): that run is not
	// delayed, only the machine's own start ("-name guest=...").
	doc, err := c.MachineXML(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	const delay = 12
	slow := filepath.Join(dir, "slow-qemu")
	script := fmt.Sprintf("#!/bin/sh\ncase \"$*\" in *guest=*) sleep %d ;; esac\nexec %s \"$@\"\n", delay, dom.Devices.Emulator)
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	dom.Devices.Emulator = slow
	if doc, err = dom.Marshal(); err != nil {
		t.Fatal(err)
	}
	if err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		_, err := lv.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate)
		return err
	}); err != nil {
		t.Fatalf("redefine with the slow emulator: %v", err)
	}

	// The stream begins while the start is under way, as it does when a
	// power cycle's start overtakes the end of the old instance's stream.
	started := make(chan error, 1)
	begin := time.Now()
	go func() { started <- c.StartMachine(ctx, name) }()
	for {
		d, err := c.lookupDomain(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if d.ID > 0 {
			break // active: the emulator is in its delay
		}
		select {
		case err := <-started:
			t.Fatalf("the start ended (%v) before the test saw it under way", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	var console syncBuffer
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- c.StreamConsole(sctx, name, &console, nil) }()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < delay*time.Second {
		t.Fatalf("the start took %s: the emulator's delay (%d s) did not apply", took, delay)
	}
	waitBoots(t, &console, done, 1)
}

// A stream to a remote host takes a while to come up (the dial, an SSH or
// TLS handshake). StreamConsole says when it is ready; a machine started
// only then has its whole boot on the console, from the kernel's first
// line. Here the host is reached through a proxy that holds every new
// connection for linkDelay before passing it on: a slow link on demand.
func TestStreamConsoleReadyBeforeStart(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()

	const linkDelay = 5 * time.Second
	addr := testenv.ForwardToLibvirt(t, func(net.Conn) { time.Sleep(linkDelay) })
	remote, err := New(ctx, Options{URI: "qemu+tcp://" + addr + "/system"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = remote.Close() })

	name, _ := ptyTestMachine(t, c, false)

	var console syncBuffer
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan struct{})
	done := make(chan error, 1)
	begin := time.Now()
	go func() { done <- remote.StreamConsole(sctx, name, &console, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("the stream ended before it was ready: %v", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("the stream was not ready within 2 minutes")
	}
	if took := time.Since(begin); took < linkDelay {
		t.Fatalf("ready after %s, before its connection (held %s) could be up", took, linkDelay)
	}
	if err := c.StartMachine(ctx, name); err != nil {
		t.Fatal(err)
	}
	waitBoots(t, &console, done, 1)
	// The kernel prints its version first of all (replayed from its log
	// buffer when the serial console comes up).
	if !strings.Contains(console.String(), "Linux version") {
		t.Errorf("the start of the boot is missing from the console:\n%s", console.String())
	}
}

// A stream can end while its instance runs on: another client forcing the
// console open ends it (with an error). The stream then takes the console
// back, and what the guest prints later (a reset: the same instance boots
// again) still arrives.
func TestStreamConsoleReopensOnRunningMachine(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name, _ := ptyTestMachine(t, c, true)
	var console syncBuffer
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- c.StreamConsole(sctx, name, &console, nil) }()
	waitBoots(t, &console, done, 1)

	// Another client takes the console over; its stream ends when the
	// first one takes it back.
	other, err := New(ctx, Options{URI: testenv.URI()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	dom, err := other.lookupDomain(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	intruder := make(chan error, 1)
	go func() {
		intruder <- other.call(ctx, func(lv *golibvirt.Libvirt) error {
			return lv.DomainOpenConsole(dom, golibvirt.OptString{}, io.Discard, uint32(golibvirt.DomainConsoleForce))
		})
	}()
	select {
	case err := <-intruder: // taken back
		t.Logf("the other client's stream ended: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the other client kept the console for a minute: the stream did not take it back")
	}

	if err := c.call(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainReset(dom, 0) }); err != nil {
		t.Fatalf("reset: %v", err)
	}
	waitBoots(t, &console, done, 2)
}

// PowerCycleMachine starts the machine again when its new instance ends
// right after the start without the guest asking (as libvirt itself was
// seen to end one, reason "crashed"). The fault here: the new instance's
// QEMU is killed as soon as it runs.
func TestPowerCycleMachineRestartsAnInstanceThatDies(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := testGuestSpec(t, name, qemuWorkDir(t))
	removeMachineAtEnd(t, c, name)
	if _, err := c.CreateMachine(ctx, spec, true); err != nil {
		t.Fatalf("CreateMachine: %v", err)
	}
	first, err := c.lookupDomain(ctx, name)
	if err != nil {
		t.Fatal(err)
	}

	cycled := make(chan error, 1)
	go func() { cycled <- c.PowerCycleMachine(ctx, name) }()
	// The second instance: killed as soon as its QEMU runs.
	var killed int32
	deadline := time.Now().Add(time.Minute)
	for killed == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no new instance within a minute")
		}
		d, err := c.lookupDomain(ctx, name)
		if err == nil && d.ID > 0 && d.ID != first.ID {
			if state, _, err := c.domainStateReason(ctx, d); err == nil && state == golibvirt.DomainRunning {
				if out, err := exec.Command("pkill", "-KILL", "-f", "guest="+name+",").CombinedOutput(); err != nil {
					t.Fatalf("kill the new instance's QEMU: %v %s", err, out)
				}
				killed = d.ID
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-cycled:
		if err != nil {
			t.Fatalf("PowerCycleMachine: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("PowerCycleMachine did not return within 2 minutes")
	}
	now, err := c.lookupDomain(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	state, _, err := c.domainStateReason(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if state != golibvirt.DomainRunning || now.ID == killed || now.ID == first.ID {
		t.Errorf("after the power cycle: state %d, instance %d (the first was %d, the killed one %d); want a third instance running", state, now.ID, first.ID, killed)
	}
}
