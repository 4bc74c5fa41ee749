package libvirt

import (
	"context"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// lifecycleWatch is a subscription to libvirt's domain lifecycle events
// (defined, started, stopped, ...) for one domain.
type lifecycleWatch struct {
	events <-chan golibvirt.DomainEventLifecycleMsg
	stop   context.CancelFunc
	uuid   golibvirt.UUID
}

// watchLifecycle subscribes to dom's lifecycle events. libvirt sends events
// for every domain on the connection; next filters them.
func (c *Client) watchLifecycle(ctx context.Context, dom golibvirt.Domain) (*lifecycleWatch, error) {
	// The subscription ends when Close says so, not when ctx does, so
	// that Close can always drain it (see there).
	subCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var events <-chan golibvirt.DomainEventLifecycleMsg
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		events, err = lv.LifecycleEvents(subCtx)
		return err
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("subscribe to lifecycle events: %w", err)
	}
	return &lifecycleWatch{events: events, stop: stop, uuid: dom.UUID}, nil
}

// Close ends the subscription. go-libvirt forwards each event with a
// blocking send on an unbuffered channel and only notices the cancel between
// sends, so the channel is drained until go-libvirt closes it; otherwise an
// event arriving after the wait would block its goroutine for ever and the
// callback would never be deregistered.
func (w *lifecycleWatch) Close() {
	w.stop()
	go func() {
		for range w.events {
		}
	}()
}

// closedLifecycleEvents stands in for a subscription that is already over.
var closedLifecycleEvents = func() <-chan golibvirt.DomainEventLifecycleMsg {
	ch := make(chan golibvirt.DomainEventLifecycleMsg)
	close(ch)
	return ch
}()

// next waits for the next event of the watched domain. ok is false when the
// stream ended, which happens when the connection to libvirtd drops.
func (w *lifecycleWatch) next(ctx context.Context) (ev golibvirt.DomainEventLifecycleMsg, ok bool, err error) {
	for {
		select {
		case ev, ok := <-w.events:
			if !ok {
				return ev, false, nil
			}
			if ev.Dom.UUID == w.uuid {
				return ev, true, nil
			}
		case <-ctx.Done():
			return ev, false, ctx.Err()
		}
	}
}

// awaitDomainState runs trigger (which asks libvirt to change the domain's
// state) and waits until done holds for the domain's state or ctx ends.
//
// It subscribes to lifecycle events before trigger runs, so that a change
// that happens at once is not missed, and reads the state after subscribing
// and after every event of the domain: the events say when to look, the
// state read says what is true. When the connection drops, the stream ends;
// it subscribes again (on the new connection) and reads the state anew, as a
// stop during the gap would have produced no event for it.
func (c *Client) awaitDomainState(ctx context.Context, dom golibvirt.Domain, done func(golibvirt.DomainState) bool, trigger func(*golibvirt.Libvirt) error) error {
	w, err := c.watchLifecycle(ctx, dom)
	if err != nil {
		return err
	}
	defer func() { w.Close() }()

	if trigger != nil {
		if err := c.call(ctx, trigger); err != nil {
			return err
		}
	}
	for {
		state, err := c.domainState(ctx, dom)
		if err != nil {
			return err
		}
		if done(state) {
			return nil
		}
		ev, ok, err := w.next(ctx)
		if err != nil {
			return fmt.Errorf("waiting for machine %q (%s): %w", dom.Name, machineState(state), err)
		}
		if !ok {
			c.log.Info("lifecycle event stream ended; subscribing again", "name", dom.Name)
			w.Close()
			again, err := c.watchLifecycle(ctx, dom)
			if err != nil {
				w = &lifecycleWatch{events: closedLifecycleEvents, stop: func() {}}
				return err
			}
			w = again
			continue
		}
		c.log.Debug("lifecycle event", "name", dom.Name,
			"event", golibvirt.DomainEventType(ev.Event), "detail", ev.Detail)
	}
}
