package machine

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
)

// consoleLog is the build machine's serial console as libvirt streams it
// (StreamConsole): appended to a file on this machine, whichever host the
// guest runs on, for output_directory and for provisioners (build.ConsoleLog),
// with a signal on every write, so that boot_wait_for looks again only when
// there is something new to look at.
type consoleLog struct {
	path string

	mu      sync.Mutex
	f       *os.File
	changed chan struct{} // closed, and replaced, on each write
}

// newConsoleLog creates the log file, readable by this user only: an
// installer's console may show what it was told, passwords included.
func newConsoleLog(path string) (*consoleLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create the console log: %w", err)
	}
	return &consoleLog{path: path, f: f, changed: make(chan struct{})}, nil
}

func (l *consoleLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.f.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return n, err
}

// next is closed at the next write.
func (l *consoleLog) next() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

func (l *consoleLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// waitFor waits until what the console printed so far matches re (carriage
// returns removed), or ctx ends.
func (l *consoleLog) waitFor(ctx context.Context, re *regexp.Regexp) error {
	for {
		// The signal is taken before the read: a write in between is then
		// not missed.
		next := l.next()
		b, err := os.ReadFile(l.path)
		if err != nil {
			return fmt.Errorf("read the console log %s: %w", l.path, err)
		}
		if re.Match([]byte(strings.ReplaceAll(string(b), "\r", ""))) {
			return nil
		}
		select {
		case <-next:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q on the serial console: %w", re, ctx.Err())
		}
	}
}
