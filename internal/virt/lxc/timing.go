//go:build linux && cgo

package lxc

import "time"

// stepTimer logs, at DEBUG, how long each step of one operation on a
// container took, in one line when the operation ends: with ten operations
// at a time in a Terraform apply, one line each keeps the steps of one
// container together. It is how a slow create or destroy is traced to its
// step (a process spawn, a config read, a wait) on a real host, where a
// CPU profile does not show time spent waiting for LXC.
type stepTimer struct {
	c           *Client
	op, name    string
	start, last time.Time
	steps       []any
}

func (c *Client) timeSteps(op, name string) *stepTimer {
	now := time.Now()
	return &stepTimer{c: c, op: op, name: name, start: now, last: now}
}

// step ends the step called what, begun when the last one ended.
func (t *stepTimer) step(what string) {
	now := time.Now()
	t.steps = append(t.steps, what, now.Sub(t.last).Round(time.Microsecond).String())
	t.last = now
}

// done logs the steps; deferred, so that a failed operation's are logged
// too, up to the step that failed.
func (t *stepTimer) done() {
	if !t.c.log.IsDebug() {
		return
	}
	args := append([]any{"container", t.name, "total", time.Since(t.start).Round(time.Microsecond).String()}, t.steps...)
	t.c.log.Debug(t.op+" timing", args...)
}
