package machine

import (
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// waitFor returns once a write makes the log match, without polling: the
// write's signal wakes it. It fails when its context ends first.
func TestConsoleLogWaitFor(t *testing.T) {
	l, err := newConsoleLog(filepath.Join(t.TempDir(), "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	if _, err := l.Write([]byte("booting\r\n")); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- l.waitFor(context.Background(), regexp.MustCompile(`(?m)^READY$`)) }()
	select {
	case err := <-done:
		t.Fatalf("returned before the line came: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := l.Write([]byte("REA")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Write([]byte("DY\r\nmore\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no return after the matching write")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.waitFor(ctx, regexp.MustCompile("never")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: got %v, want context.Canceled", err)
	}
}
