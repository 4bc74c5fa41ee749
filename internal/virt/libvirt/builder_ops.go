package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// Operations an image builder needs beyond what the provider uses: typing
// on the guest's keyboard, waiting for a guest to power itself off, copying
// and downloading volumes, and reading the definition as libvirt holds it.

// MaxKeysPerSend is how many key codes libvirt accepts in one send-key
// call (VIR_DOMAIN_SEND_KEY_MAX_KEYS).
const MaxKeysPerSend = 16

// SendKeys presses the keys given as Linux input key codes (KEY_* of
// linux/input-event-codes.h) together, holds them for hold, and releases
// them, on the running machine's keyboard. Chords (shift+a) are one call;
// text is one call per character. libvirt translates the codes for the
// emulated keyboard, so no VNC client is needed.
func (c *Client) SendKeys(ctx context.Context, name string, codes []uint32, hold time.Duration) error {
	if len(codes) == 0 || len(codes) > MaxKeysPerSend {
		return fmt.Errorf("send keys to machine %q: %d keys at once (1 to %d)", name, len(codes), MaxKeysPerSend)
	}
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return err
	}
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		return lv.DomainSendKey(dom, uint32(golibvirt.KeycodeSetLinux), uint32(hold/time.Millisecond), codes, 0)
	})
	return wrapMachine(err, "send keys to", name)
}

// WaitMachineStopped waits, on lifecycle events, until the machine is shut
// off (the guest powered itself off, e.g. after a shutdown command), or ctx
// ends. A machine that is already stopped returns at once.
func (c *Client) WaitMachineStopped(ctx context.Context, name string) error {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return err
	}
	return c.awaitDomainState(ctx, dom, isStopped, nil, 0)
}

// WaitMachineReboot waits until the guest of the running machine resets
// itself (a reboot from inside; libvirt's REBOOT event), or ctx ends. QEMU
// handles such a reset in place, keeping the running definition: a guest
// booted straight from a kernel boots that kernel again. A builder that
// started an installer that way waits here, then stops and starts the
// machine, so that it boots as its persistent definition says.
//
// watching, when not nil, is called once the watch is in place: a reset
// before that goes unseen. So does one while the connection is down (the
// wait goes on, on the new connection).
func (c *Client) WaitMachineReboot(ctx context.Context, name string, watching func()) error {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return err
	}
	return c.awaitEvents(ctx, dom, []golibvirt.DomainEventID{golibvirt.DomainEventIDReboot}, nil, 0, func(ev any) (bool, error) {
		if ev == nil && watching != nil {
			// The first check, right after the watch began.
			watching()
			watching = nil
		}
		_, rebooted := ev.(*golibvirt.DomainEventCallbackRebootMsg)
		return rebooted, nil
	})
}

// PowerCycleMachine pulls the running machine's plug and starts it again:
// the next boot follows its persistent definition (a guest's own reboot
// keeps the running one, such as a kernel booted directly).
//
// libvirt can undo a start that follows a stop closely: on a busy host,
// libvirt 9.0 was seen to kill the instance it had just started, about a
// second after the start, its QEMU log saying "terminating on signal 15
// from libvirtd" and "shutting down, reason=crashed", as if it handled the
// end of the previous instance late; or during the start-up, which then
// fails ("qemu unexpectedly closed the monitor", reason failed). So a
// failed start is tried again, and the new instance is watched for
// powerCycleSettle, on lifecycle events; when it ends that way (stopped,
// reason crashed) it is started again: three starts at most. A guest that
// powers itself off in that time is left off.
func (c *Client) PowerCycleMachine(ctx context.Context, name string) error {
	if err := c.DestroyMachine(ctx, name); err != nil {
		return err
	}
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if err := c.StartMachine(ctx, name); err != nil {
			// The same kill during the start-up fails the start ("qemu
			// unexpectedly closed the monitor", reason failed).
			if attempt == 3 || ctx.Err() != nil {
				return err
			}
			c.log.Warn("start after the power cycle failed; starting again", "name", name, "attempt", attempt, "error", err)
			continue
		}
		if attempt == 3 {
			return nil
		}
		var (
			state   golibvirt.DomainState
			reason  int32
			stopped bool
		)
		// Ends when the instance stops or powerCycleSettle passes; an
		// unreadable state ends it too, and the start then stands.
		wctx, cancel := context.WithTimeout(ctx, powerCycleSettle)
		_ = c.awaitEvents(wctx, dom, []golibvirt.DomainEventID{golibvirt.DomainEventIDLifecycle}, nil, 0, func(any) (bool, error) {
			var err error
			if state, reason, err = c.domainStateReason(wctx, dom); err != nil {
				return false, err
			}
			stopped = isStopped(state)
			return stopped, nil
		})
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case !stopped:
			return nil // running on after powerCycleSettle
		case state == golibvirt.DomainCrashed || golibvirt.DomainShutoffReason(reason) == golibvirt.DomainShutoffCrashed:
			c.log.Warn("libvirt ended the instance it had just started; starting it again", "name", name, "attempt", attempt)
		default:
			return nil // the guest powered itself off
		}
	}
}

// powerCycleSettle is how long PowerCycleMachine watches the instance it
// started for libvirt ending it.
const powerCycleSettle = 10 * time.Second

// StreamConsole copies what the machine writes on its serial console (a
// pty console, virt.ConsolePTY) to w, through libvirt's RPC, so from a
// remote host as well as a local one, until ctx ends (it then returns ctx's
// error) or w fails. It follows the machine across restarts: when the
// machine stops, the stream ends, and a new one opens once the next
// instance has started (libvirt's STARTED event). What the guest writes
// while no stream is open (the moments between that event and the
// stream's opening) is lost: QEMU drops a pty's output that nobody reads.
//
// ready, when not nil, is called once, when the stream's connection is up
// and it watches the machine. A caller that starts the machine only then
// loses none of the first boot to the dial (a round trip or more to a
// remote host, the SSH handshake over qemu+ssh), which a start before the
// stream would: boot loader prompts that boot_wait_for looks for come
// early.
//
// The streams run on a connection of their own, one after the other (a
// stream ends by itself when its instance stops), which is closed when ctx
// ends: go-libvirt can end a console stream early only by closing the
// connection that carries it, and the shared one must stay.
func (c *Client) StreamConsole(ctx context.Context, name string, w io.Writer, ready func()) error {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return err
	}
	var (
		mu sync.Mutex
		lv *golibvirt.Libvirt // the stream connection; nil until dialled, or after it dropped
	)
	hangUp := func() {
		mu.Lock()
		defer mu.Unlock()
		if lv != nil {
			_ = lv.Disconnect()
			lv = nil
		}
	}
	defer hangUp()
	stop := context.AfterFunc(ctx, hangUp)
	defer stop()

	var (
		failures int
		failedID int32 = -1 // the instance the last open failed on
		endedID  int32 = -1 // the instance whose stream ended: it is gone
	)
	for {
		mu.Lock()
		conn := lv
		mu.Unlock()
		if conn == nil || !conn.IsConnected() {
			if conn, err = c.dial(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("stream the console of machine %q: %w", name, err)
			}
			mu.Lock()
			lv = conn
			mu.Unlock()
			if ctx.Err() != nil { // ended while dialling: AfterFunc may have run before lv was set
				return ctx.Err()
			}
		}
		// An instance that has started, and not the one whose stream
		// ended. libvirt marks a domain active (a new ID, state
		// paused/starting-up) before QEMU runs and before it knows the
		// console's pty, and an open in that window fails ("PTY device is
		// not yet assigned"); on a busy host the window lasts seconds. And
		// an instance whose QEMU died stays "running" until libvirt has
		// cleaned up after it; an open then goes to the pty path it had,
		// which the host may already have given to another process: the
		// console of another guest, streamed as this one's.
		if err := c.awaitEvents(ctx, dom, []golibvirt.DomainEventID{golibvirt.DomainEventIDLifecycle}, nil, 0, func(ev any) (bool, error) {
			if ev == nil && ready != nil {
				// The first check, right after the watch began.
				ready()
				ready = nil
			}
			now, err := c.lookupDomain(ctx, name)
			if err != nil || now.ID == endedID {
				return false, err
			}
			state, reason, err := c.domainStateReason(ctx, dom)
			return err == nil && consoleReady(state, reason), err
		}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("stream the console of machine %q: %w", name, err)
		}
		// The instance now running: its ID tells it from the next one.
		inst, err := conn.DomainLookupByName(name)
		if err == nil {
			// Force: a console another client left open is taken over.
			err = conn.DomainOpenConsole(inst, golibvirt.OptString{}, consoleWriter{w}, uint32(golibvirt.DomainConsoleForce))
		}
		c.log.Debug("console stream ended", "name", name, "id", inst.ID, "error", err)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil:
			// The stream ended cleanly: its instance stopped (the console
			// closed with QEMU). Wait for the next one, even while libvirt
			// still reports this one running: on a busy host libvirt
			// notices a QEMU's end seconds late, and an open then goes to
			// the pty path the dead QEMU had.
			failures, endedID = 0, inst.ID
		case errors.Is(err, errConsoleWrite):
			return err
		default:
			// An instance that is going fails the open ("not running": its
			// console closes before libvirt marks it stopped), and a power
			// cycle may start the next one at any moment; a dropped
			// connection is dialled again. So wait, briefly, for the
			// instance's next lifecycle event (stopped, or replaced), and
			// try again; only failures that persist on one instance are
			// the stream's own.
			if inst.ID != failedID {
				failures, failedID = 0, inst.ID
			}
			failures++
			if failures >= consoleOpenAttempts {
				return fmt.Errorf("stream the console of machine %q: %w", name, err)
			}
			c.log.Debug("console stream failed; trying again", "name", name, "error", err)
			wctx, cancel := context.WithTimeout(ctx, consoleRetryWait)
			_ = c.awaitEvents(wctx, dom, []golibvirt.DomainEventID{golibvirt.DomainEventIDLifecycle}, nil, 0, func(ev any) (bool, error) {
				if ev != nil {
					return true, nil
				}
				now, err := c.lookupDomain(wctx, name)
				return err == nil && now.ID != inst.ID, err // a stopped domain's ID is -1
			})
			cancel()
		}
	}
}

// consoleReady reports whether a domain in this state has a console to
// open: it runs (or is paused, or shutting down) and is past its start-up.
func consoleReady(state golibvirt.DomainState, reason int32) bool {
	if isStopped(state) || state == golibvirt.DomainNostate {
		return false
	}
	return state != golibvirt.DomainPaused || golibvirt.DomainPausedReason(reason) != golibvirt.DomainPausedStartingUp
}

// consoleOpenAttempts and consoleRetryWait bound StreamConsole's retries of
// a failed open of the same instance.
const (
	consoleOpenAttempts = 5
	consoleRetryWait    = 2 * time.Second
)

// errConsoleWrite marks a failure of StreamConsole's writer.
var errConsoleWrite = errors.New("write the console output")

// consoleWriter wraps StreamConsole's writer so that its failures can be
// told from the stream's.
type consoleWriter struct{ w io.Writer }

func (cw consoleWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	if err != nil {
		return n, fmt.Errorf("%w: %w", errConsoleWrite, err)
	}
	return n, nil
}

// MachineXML returns the machine's persistent definition as libvirt
// stores it (with the defaults libvirt filled in), for a builder to ship
// beside the disk it made.
func (c *Client) MachineXML(ctx context.Context, name string) (string, error) {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return "", err
	}
	var doc string
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		doc, err = lv.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
		return err
	})
	return doc, wrapMachine(err, "read", name)
}

// CopyVolume makes dst (in dst.Pool, dst.Format) a standalone copy of the
// volume with key srcKey: libvirt runs qemu-img convert on the host, which
// reads through any backing chain (a clone becomes self-contained) and
// writes only data, so the copy is sparse. dst.CapacityBytes 0 keeps the
// source's capacity. ErrExists when dst's name is taken.
//
// srcFormat is the format the caller made the source with. libvirt reads
// the source as the format it has on record for it, and a directory pool
// re-reads that record from each file's first bytes at every pool refresh
// (any upload to the pool makes one): a raw disk whose guest wrote a qcow2
// header onto it is then on record as a qcow2 image backed by a host file
// of the guest's choosing, which the copy would read into dst. So the copy
// is refused while the record says anything but srcFormat (or gives a raw
// source a backing store), and undone when a refresh changed the record
// while it ran.
func (c *Client) CopyVolume(ctx context.Context, srcKey, srcFormat string, dst virt.VolumeSpec) (*virt.VolumeSpec, error) {
	if srcFormat == "" {
		return nil, fmt.Errorf("copy volume %q: the format it was made with is not named", srcKey)
	}
	dst = dst.WithDefaults()
	dst.BackingVolumeKey = ""
	release, err := c.storageLocks.share(ctx, dst.Pool)
	if err != nil {
		return nil, err
	}
	defer release()
	var out *virt.VolumeSpec
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		pool, err := lv.StoragePoolLookupByName(dst.Pool)
		if err != nil {
			return wrap(err, "look up", "pool", dst.Pool)
		}
		src, err := lv.StorageVolLookupByKey(srcKey)
		if err != nil {
			return wrap(err, "look up", "volume", srcKey)
		}
		x, err := volumeXML(lv, src)
		if err != nil {
			return err
		}
		if err := recordedAs(x, srcKey, srcFormat); err != nil {
			return err
		}
		if dst.CapacityBytes == 0 {
			if dst.CapacityBytes, err = volumeCapacity(x); err != nil {
				return fmt.Errorf("volume %q: %w", srcKey, err)
			}
		}
		doc, err := volumeDoc(dst).Marshal()
		if err != nil {
			return fmt.Errorf("render volume %q: %w", dst.Name, err)
		}
		var vol golibvirt.StorageVol
		err = c.retryBusy(ctx, "copy volume "+srcKey, func() error {
			var err error
			vol, err = lv.StorageVolCreateXMLFrom(pool, doc, src, 0)
			return err
		})
		if err != nil {
			return wrap(err, "copy volume "+srcKey+" to", "volume", dst.Pool+"/"+dst.Name)
		}
		// The file's content does not change while it is copied, so a
		// record that still says srcFormat now said so when libvirt
		// read it.
		if x, err = volumeXML(lv, src); err == nil {
			err = recordedAs(x, srcKey, srcFormat)
		}
		if err != nil {
			if derr := lv.StorageVolDelete(vol, 0); derr != nil {
				c.log.Warn("delete the copy of a volume whose record changed failed", "key", vol.Key, "error", derr)
			}
			return err
		}
		out, err = readVolume(lv, vol)
		return err
	})
	return out, err
}

// recordedAs checks that libvirt has the volume on record in the format
// it was made with, and, for a raw one, without a backing store: a record
// that differs was probed from the volume's content (see CopyVolume).
func recordedAs(x *libvirtxml.StorageVolume, key, format string) error {
	got := recordedFormat(x)
	if got != format {
		return fmt.Errorf("volume %q was made %s, but libvirt now takes it for %s (a directory pool re-reads a file's format from its content, which a guest writes): refusing to read it as %s",
			key, format, got, got)
	}
	if b := x.BackingStore; format == virt.FormatRaw && b != nil && b.Path != "" {
		return fmt.Errorf("volume %q was made raw, but libvirt now gives it the backing file %s (read from its content): refusing to read it", key, b.Path)
	}
	return nil
}

// DownloadVolume writes the volume's bytes (its stored form: a qcow2 file
// stays qcow2) to the file at path, sparse: runs of zeros become holes.
//
// The file is its owner's only: a guest's disk holds its secrets (keys,
// password hashes, whatever the build put there).
func (c *Client) DownloadVolume(ctx context.Context, key, path string) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("download volume %q: %w", key, err)
	}
	w := &sparseWriter{f: f}
	defer func() {
		err = errors.Join(err, w.finish(), f.Close())
		if err != nil {
			_ = os.Remove(path) // a partial copy is worse than none
		}
	}()
	return c.volumeWork(ctx, key, func(lv *golibvirt.Libvirt, vol golibvirt.StorageVol) error {
		err := lv.StorageVolDownload(vol, ctxWriter{ctx, w}, 0, 0, 0)
		return wrap(err, "download", "volume", key)
	})
}

type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// sparseWriter skips whole zero blocks by seeking, so a disk image lands
// with holes where the guest never wrote.
type sparseWriter struct {
	f   *os.File
	off int64
}

const sparseBlock = 4096

func (s *sparseWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), sparseBlock)
		chunk := p[:k]
		if !allZero(chunk) {
			if _, err := s.f.WriteAt(chunk, s.off); err != nil {
				return n, err
			}
		}
		s.off += int64(k)
		n += k
		p = p[k:]
	}
	return n, nil
}

// finish sets the file's length, which trailing holes do not.
func (s *sparseWriter) finish() error { return s.f.Truncate(s.off) }

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
