package libvirt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// Domain events reach the callers that wait for something (a machine to
// stop, a device to go) through one hub per connection. libvirtd takes one
// registration per kind of event per connection and refuses a second with
// "event callback already tracked"; go-libvirt registers without a domain
// filter and, unlike libvirt's own C client, does not share a registration
// among its callers. So every watch goes to the client's first connection
// (libvirtd sends an event to each connection registered for it, so one
// registration per kind is enough, and the client's other connections
// carry calls only), each kind is subscribed there once, when first
// needed, and stays subscribed while the connection lives; the hub hands
// each event to the watches of its domain. When the first connection
// drops, the oldest of the others becomes the first, and the watches, told
// that their stream ended, subscribe on it anew. Unsubscribing when the
// last watch ends would race with the next subscription (go-libvirt
// deregisters in the background), for events nobody reads: the hub drops
// those.

// hubs maps each live connection to its hub. An entry goes when its
// connection does (see eventHub.streamEnded).
var hubs sync.Map // *golibvirt.Libvirt → *eventHub

// eventHub fans one connection's domain events out to watches.
type eventHub struct {
	lv *golibvirt.Libvirt

	mu         sync.Mutex
	subscribed map[golibvirt.DomainEventID]bool
	watches    map[*domainWatch]struct{}
}

func hubFor(lv *golibvirt.Libvirt) *eventHub {
	h, _ := hubs.LoadOrStore(lv, &eventHub{
		lv:         lv,
		subscribed: map[golibvirt.DomainEventID]bool{},
		watches:    map[*domainWatch]struct{}{},
	})
	return h.(*eventHub)
}

// watchBuffer is how many events a watch holds for its reader. The events
// only say when to look at the domain again, so when the reader lags, the
// hub drops what does not fit: the reader has that many looks ahead of it.
const watchBuffer = 16

// domainWatch receives the events of some kinds for one domain.
type domainWatch struct {
	hub    *eventHub
	uuid   golibvirt.UUID
	ids    []golibvirt.DomainEventID
	events chan any
	// ended is closed when the stream of one of the watched kinds ended
	// (the connection dropped): the watch sees nothing from then on.
	ended   chan struct{}
	endOnce sync.Once
}

// add registers w with the hub, subscribing to the kinds not yet
// subscribed on this connection.
func (h *eventHub) add(w *domainWatch) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range w.ids {
		if h.subscribed[id] {
			continue
		}
		// The subscription is the connection's, not the caller's: it ends
		// when the connection does.
		ch, err := h.lv.SubscribeEvents(context.Background(), id, nil)
		if err != nil {
			if len(h.subscribed) == 0 && len(h.watches) == 0 {
				// No pump will ever remove a hub without streams.
				hubs.CompareAndDelete(h.lv, h)
			}
			return fmt.Errorf("subscribe to %s events: %w", id, err)
		}
		h.subscribed[id] = true
		go h.pump(id, ch)
	}
	h.watches[w] = struct{}{}
	return nil
}

func (h *eventHub) remove(w *domainWatch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.watches, w)
}

// pump hands the events of one kind to the watches, until the stream ends.
func (h *eventHub) pump(id golibvirt.DomainEventID, ch <-chan any) {
	for ev := range ch {
		h.deliver(id, ev)
	}
	h.streamEnded(id)
}

func (h *eventHub) deliver(id golibvirt.DomainEventID, ev any) {
	dom, ok := eventDomain(ev)
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watches {
		if w.uuid != dom.UUID || !slices.Contains(w.ids, id) {
			continue
		}
		select {
		case w.events <- ev:
		default: // see watchBuffer
		}
	}
}

// streamEnded tells the watches of a kind whose stream ended, and forgets
// the subscription so that the next watch subscribes anew. go-libvirt ends
// the streams when the connection drops; then the hub goes with it.
func (h *eventHub) streamEnded(id golibvirt.DomainEventID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subscribed, id)
	for w := range h.watches {
		if slices.Contains(w.ids, id) {
			w.end()
		}
	}
	if h.lv != nil && !h.lv.IsConnected() {
		hubs.CompareAndDelete(h.lv, h)
	}
}

func (w *domainWatch) end() { w.endOnce.Do(func() { close(w.ended) }) }

// watchDomain subscribes to the given kinds of events of dom.
func (c *Client) watchDomain(ctx context.Context, dom golibvirt.Domain, ids ...golibvirt.DomainEventID) (*domainWatch, error) {
	w := &domainWatch{uuid: dom.UUID, ids: ids, events: make(chan any, watchBuffer), ended: make(chan struct{})}
	err := c.callOn(ctx, true, func(lv *golibvirt.Libvirt) error {
		w.hub = hubFor(lv)
		return w.hub.add(w)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Close ends the watch. Nothing is sent to it afterwards.
func (w *domainWatch) Close() {
	if w.hub != nil {
		w.hub.remove(w)
	}
}

// next waits for the next event of the watched domain. ok is false when the
// stream ended, which happens when the connection to libvirtd drops.
func (w *domainWatch) next(ctx context.Context) (ev any, ok bool, err error) {
	ev, _, ok, err = w.nextOrTick(ctx, nil)
	return ev, ok, err
}

// nextOrTick is next that also returns, with ticked set, when tick fires
// first (a nil tick never fires).
func (w *domainWatch) nextOrTick(ctx context.Context, tick <-chan time.Time) (ev any, ticked, ok bool, err error) {
	select {
	case ev := <-w.events:
		return ev, false, true, nil
	case <-tick:
		return nil, true, true, nil
	case <-w.ended:
		return nil, false, false, nil
	case <-ctx.Done():
		return nil, false, false, ctx.Err()
	}
}

// endedWatch stands in for a watch whose connection is gone.
func endedWatch() *domainWatch {
	w := &domainWatch{ended: make(chan struct{})}
	w.end()
	return w
}

// eventDomain returns the domain an event from SubscribeEvents is about.
func eventDomain(ev any) (golibvirt.Domain, bool) {
	switch ev := ev.(type) {
	case *golibvirt.DomainEventCallbackLifecycleMsg:
		return ev.Msg.Dom, true
	case *golibvirt.DomainEventCallbackDeviceRemovedMsg:
		return ev.Msg.Dom, true
	case *golibvirt.DomainEventCallbackDeviceRemovalFailedMsg:
		return ev.Dom, true
	case *golibvirt.DomainEventCallbackBalloonChangeMsg:
		return ev.Msg.Dom, true
	case *golibvirt.DomainEventCallbackRebootMsg:
		return ev.Msg.Dom, true
	}
	return golibvirt.Domain{}, false
}

// awaitEvents is the waiting loop shared by awaitDomainState and
// awaitDeviceRemoval: it watches dom's events of the given kinds, runs
// trigger (the call that asks libvirt for a change; nil for none), and
// calls check after the trigger and after every event of the domain until
// check reports done or an error, or ctx ends. With repeat above zero,
// trigger runs again every repeat while the wait goes on, for requests a
// guest can miss (a power button pressed before its ACPI handler runs);
// check follows each repeat too.
//
// The watch comes before the trigger, so that a change that happens at once
// is not missed; the events say when to look, check says what is true.
// When the connection drops, the stream ends; the loop watches again (on
// the new connection) and checks anew, as a change during the gap would
// have produced no event for it.
func (c *Client) awaitEvents(ctx context.Context, dom golibvirt.Domain, ids []golibvirt.DomainEventID,
	trigger func(*golibvirt.Libvirt) error, repeat time.Duration, check func(ev any) (bool, error)) error {
	w, err := c.watchDomain(ctx, dom, ids...)
	if err != nil {
		return err
	}
	defer func() { w.Close() }()

	var tick <-chan time.Time
	if trigger != nil {
		if err := c.mutate(ctx, trigger); err != nil {
			return err
		}
		if repeat > 0 {
			t := time.NewTicker(repeat)
			defer t.Stop()
			tick = t.C
		}
	}
	var ev any
	for {
		done, err := check(ev)
		if err != nil || done {
			return err
		}
		var ticked, ok bool
		ev, ticked, ok, err = w.nextOrTick(ctx, tick)
		if err != nil {
			return err
		}
		switch {
		case ticked:
			// The first request is what the wait is for; a repeat that
			// fails (the guest stopping meanwhile, a busy domain, a
			// dropped connection) leaves the decision to check and the
			// events, and is not retried: the next tick repeats it.
			if err := c.call(ctx, trigger); err != nil {
				c.log.Debug("repeated request failed", "name", dom.Name, "error", err)
			}
		case !ok:
			c.log.Info("domain event stream ended; watching again", "name", dom.Name)
			w.Close()
			again, err := c.watchDomain(ctx, dom, ids...)
			if err != nil {
				w = endedWatch()
				return err
			}
			w = again
		}
	}
}

// awaitDomainState runs trigger (which asks libvirt to change the domain's
// state), again every repeat when that is above zero, and waits until done
// holds for the domain's state or ctx ends.
func (c *Client) awaitDomainState(ctx context.Context, dom golibvirt.Domain, done func(golibvirt.DomainState) bool,
	trigger func(*golibvirt.Libvirt) error, repeat time.Duration) error {
	var state golibvirt.DomainState
	err := c.awaitEvents(ctx, dom, []golibvirt.DomainEventID{golibvirt.DomainEventIDLifecycle}, trigger, repeat, func(ev any) (bool, error) {
		if ev, ok := ev.(*golibvirt.DomainEventCallbackLifecycleMsg); ok {
			c.log.Debug("lifecycle event", "name", dom.Name,
				"event", golibvirt.DomainEventType(ev.Msg.Event), "detail", ev.Msg.Detail)
		}
		var err error
		state, err = c.domainState(ctx, dom)
		return err == nil && done(state), err
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("waiting for machine %q (%s): %w", dom.Name, machineState(state), err)
	}
	return err
}

// errDeviceRemovalFailed reports that QEMU told libvirt the guest refused
// to let a device go.
var errDeviceRemovalFailed = errors.New("the guest refused to release it")

// awaitDeviceRemoval runs trigger (a detach of the device whose live alias
// is alias; nil to wait for one asked for earlier) and waits until the
// running domain no longer has that device, or ctx ends.
//
// A live detach is a request to the guest (ACPI PCI hot-unplug): libvirt
// waits 5 s for the guest to let go and then returns with the request still
// pending, and reports the removal later with a DEVICE_REMOVED event. The
// live definition says whether the device is still there; a domain that
// stopped has no devices left to wait for.
func (c *Client) awaitDeviceRemoval(ctx context.Context, dom golibvirt.Domain, alias string, trigger func(*golibvirt.Libvirt) error) error {
	ids := []golibvirt.DomainEventID{golibvirt.DomainEventIDDeviceRemoved, golibvirt.DomainEventIDDeviceRemovalFailed, golibvirt.DomainEventIDLifecycle}
	return c.awaitEvents(ctx, dom, ids, trigger, 0, func(ev any) (bool, error) {
		if f, ok := ev.(*golibvirt.DomainEventCallbackDeviceRemovalFailedMsg); ok && f.DevAlias == alias {
			return false, errDeviceRemovalFailed
		}
		present, err := c.liveHasAlias(ctx, dom, alias)
		return !present, err
	})
}
