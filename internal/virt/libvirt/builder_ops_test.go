package libvirt

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

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

// StreamConsole follows a machine across restarts: stopped and started at
// once (as a builder power-cycles an installer), twice, the console of
// every boot arrives, and the stream ends with its context. A restart
// quicker than the stream's end is the case to get right: the stream must
// not take the new instance for the old one.
func TestStreamConsoleFollowsRestarts(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	name := testenv.Name(t, "lv-dom")
	spec := testGuestSpec(t, name, qemuWorkDir(t))
	spec.Console = virt.ConsoleSpec{Type: virt.ConsolePTY}
	removeMachineAtEnd(t, c, name)
	if _, err := c.CreateMachine(ctx, spec, true); err != nil {
		t.Fatalf("CreateMachine: %v", err)
	}

	var console syncBuffer
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.StreamConsole(sctx, name, &console) }()

	// Three boots back to back while the rest of the suite boots guests on
	// the same two cores: each gets the provider tests' allowance.
	const bootDeadline = 3 * time.Minute
	waitBoots := func(n int) {
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
	waitBoots(1)
	for boot := 2; boot <= 3; boot++ {
		if err := c.DestroyMachine(ctx, name); err != nil {
			t.Fatal(err)
		}
		if err := c.StartMachine(ctx, name); err != nil {
			t.Fatal(err)
		}
		waitBoots(boot)
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
