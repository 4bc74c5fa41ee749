package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/go-hclog"
	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

var _ virt.MachineBackend = (*Client)(nil)

// cleanupTimeout bounds the undo of a half-done define, which runs even when
// the caller's context has ended: a define that failed must not leave a
// domain behind just because the caller gave up.
const cleanupTimeout = 30 * time.Second

// DefineMachine validates spec, resolves its volumes, defines the domain
// (not started) and returns it as read back. A failure after the define
// undefines the domain again.
func (c *Client) DefineMachine(ctx context.Context, spec virt.MachineSpec) (*virt.MachineSpec, error) {
	return c.CreateMachine(ctx, spec, false)
}

// CreateMachine is DefineMachine followed, when start is set, by a boot:
// one lookup, the define, the start on the handle the define returned and
// one read-back, with no lookups or state reads in between. Under
// Terraform's parallelism each call is a round trip that may wait for one
// of libvirtd's workers behind other machines' starts, which take seconds
// under load, so each call saved is a wait saved. A failure after the
// define, the start's included, undefines the domain again.
func (c *Client) CreateMachine(ctx context.Context, spec virt.MachineSpec, start bool) (*virt.MachineSpec, error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("define machine %q: %w", spec.Name, err)
	}
	// Defining over an existing name would replace its definition (same
	// UUID) or fail with a generic error (different UUID): neither is what
	// "create" means.
	if _, err := c.lookupDomain(ctx, spec.Name); err == nil {
		return nil, virt.ExistsError("machine", spec.Name)
	} else if !errors.Is(err, virt.ErrNotFound) {
		return nil, fmt.Errorf("define machine: %w", err)
	}

	sources, err := c.resolveDiskSources(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("define machine %q: %w", spec.Name, err)
	}
	doc, err := domainFromSpec(spec, sources).Marshal()
	if err != nil {
		return nil, fmt.Errorf("define machine %q: render XML: %w", spec.Name, err)
	}
	c.log.Debug("defining domain", "name", spec.Name, "xml", doc)

	var dom golibvirt.Domain
	err = c.mutate(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		dom, err = lv.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate)
		return err
	})
	if err != nil {
		if isDefineConflict(err) {
			return nil, fmt.Errorf("define machine %q: %w (%w)", spec.Name, virt.ErrExists, err)
		}
		return nil, wrapMachine(err, "define", spec.Name)
	}

	got, err := c.finishCreate(ctx, dom, spec, start)
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if uerr := c.undefineDomain(cctx, dom); uerr != nil {
			c.log.Error("could not undefine a half-created domain", "name", spec.Name, "error", uerr)
			return nil, fmt.Errorf("%w (and undefining it again failed: %s)", err, uerr.Error())
		}
		return nil, err
	}
	return got, nil
}

// failAfterDefine lets a test make the steps after a define fail (nothing
// else can make them fail on demand), to prove that the define is undone.
var failAfterDefine func(name string) error

// finishCreate does what follows the define proper; any error means the
// domain is to be undefined again.
func (c *Client) finishCreate(ctx context.Context, dom golibvirt.Domain, spec virt.MachineSpec, start bool) (*virt.MachineSpec, error) {
	if failAfterDefine != nil {
		if err := failAfterDefine(spec.Name); err != nil {
			return nil, err
		}
	}
	if spec.Autostart {
		err := c.mutate(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainSetAutostart(dom, 1) })
		if err != nil {
			return nil, wrapMachine(err, "set autostart of", spec.Name)
		}
	}
	if start {
		// The domain was defined a moment ago and nobody else knows its
		// UUID, so it is shut off: no state read is needed first.
		err := c.mutate(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainCreate(dom) })
		if err != nil {
			return nil, wrapMachine(err, "start", spec.Name)
		}
	}
	got, err := c.readMachine(ctx, dom, false)
	if err != nil {
		return nil, fmt.Errorf("read back created machine: %w", err)
	}
	if start && got.State != virt.StateRunning {
		return nil, fmt.Errorf("start machine %q: it is %s after starting", spec.Name, got.State)
	}
	return got, nil
}

// isDefineConflict recognises the errors libvirt gives when a define
// collides with another domain's name or UUID: it reports them as a failed
// operation rather than with its "domain exists" code.
func isDefineConflict(err error) bool {
	var lvErr golibvirt.Error
	if !errors.As(err, &lvErr) || golibvirt.ErrorNumber(lvErr.Code) != golibvirt.ErrOperationFailed {
		return false
	}
	return strings.Contains(lvErr.Message, "already exists") || strings.Contains(lvErr.Message, "already defined")
}

// resolveDiskSources finds, for each disk, the path and format QEMU opens:
// volumes through the storage API, host paths as given.
func (c *Client) resolveDiskSources(ctx context.Context, spec virt.MachineSpec) ([]diskSource, error) {
	sources := make([]diskSource, len(spec.Disks))
	var specErrs virt.SpecErrors
	for i, d := range spec.Disks {
		field := fmt.Sprintf("disks[%d]", i)
		var (
			vol     *libvirtxml.StorageVolume
			volName string
			err     error
		)
		switch {
		case d.VolumeKey != "":
			volName = d.VolumeKey
			vol, err = c.diskVolume(ctx, func(lv *golibvirt.Libvirt) (golibvirt.StorageVol, error) {
				return lv.StorageVolLookupByKey(d.VolumeKey)
			})
		case d.Volume != "":
			volName = d.Pool + "/" + d.Volume
			vol, err = c.diskVolume(ctx, func(lv *golibvirt.Libvirt) (golibvirt.StorageVol, error) {
				pool, err := lv.StoragePoolLookupByName(d.Pool)
				if err != nil {
					return golibvirt.StorageVol{}, err
				}
				return lv.StorageVolLookupByName(pool, d.Volume)
			})
		default:
			sources[i] = diskSource{Path: d.Path, Format: d.Format, Block: strings.HasPrefix(d.Path, "/dev/")}
			if d.Format != "" {
				continue
			}
			// libvirt never guesses a format (a guest could forge a qcow2
			// header in a raw image); the only safe source for it is a
			// pool that holds the file.
			vol, err = c.diskVolume(ctx, func(lv *golibvirt.Libvirt) (golibvirt.StorageVol, error) {
				return lv.StorageVolLookupByPath(d.Path)
			})
			if isNotFoundCode(err) {
				specErrs = append(specErrs, &virt.SpecError{Field: field + ".format",
					Reason: fmt.Sprintf("required: %s is in no storage pool, so its format cannot be looked up (qcow2 or raw)", d.Path)})
				continue
			}
			volName = d.Path
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, wrap(err, "look up", "volume", volName))
		}
		src, err := diskSourceFromVolume(vol)
		if err != nil {
			return nil, fmt.Errorf("%s: volume %q: %w", field, volName, err)
		}
		if d.Format != "" && d.Format != src.Format {
			specErrs = append(specErrs, &virt.SpecError{Field: field + ".format",
				Reason: fmt.Sprintf("%q, but volume %s is %s", d.Format, volName, src.Format)})
			continue
		}
		sources[i] = src
	}
	if len(specErrs) > 0 {
		return nil, specErrs
	}
	return sources, nil
}

// diskVolume looks a volume up with find and returns its description. The
// error is libvirt's own, for the caller to wrap.
func (c *Client) diskVolume(ctx context.Context, find func(*golibvirt.Libvirt) (golibvirt.StorageVol, error)) (*libvirtxml.StorageVolume, error) {
	var doc string
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		vol, err := find(lv)
		if err != nil {
			return err
		}
		doc, err = lv.StorageVolGetXMLDesc(vol, 0)
		return err
	})
	if err != nil {
		return nil, err
	}
	var vol libvirtxml.StorageVolume
	if err := vol.Unmarshal(doc); err != nil {
		return nil, fmt.Errorf("parse volume XML: %w", err)
	}
	return &vol, nil
}

func diskSourceFromVolume(vol *libvirtxml.StorageVolume) (diskSource, error) {
	if vol.Target == nil || vol.Target.Path == "" {
		return diskSource{}, errors.New("libvirt reports no path for it")
	}
	src := diskSource{Path: vol.Target.Path, Format: virt.FormatRaw}
	switch vol.Type {
	case "", "file":
	case "block":
		src.Block = true
	default:
		return diskSource{}, fmt.Errorf("a %s volume cannot be attached as a disk (only file and block volumes)", vol.Type)
	}
	if vol.Target.Format != nil {
		switch f := vol.Target.Format.Type; f {
		case "", "iso", "none":
			// Directory pools call an ISO image "iso"; to QEMU it is raw.
		default:
			src.Format = f
		}
	}
	return src, nil
}

// Machine reads a machine back in one call: the persistent definition as a
// spec, the run state, and, while it runs, what only the running machine
// knows: the NICs' tap names and IP addresses, and the fields waiting for a
// restart (PendingRestart).
func (c *Client) Machine(ctx context.Context, name string) (*virt.MachineSpec, error) {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return nil, err
	}
	return c.machine(ctx, dom)
}

// MachineByUUID reads the machine with that UUID back, as Machine does;
// virt.ErrNotFound when there is none.
func (c *Client) MachineByUUID(ctx context.Context, uuid string) (*virt.MachineSpec, error) {
	u, err := parseUUID(uuid)
	if err != nil {
		return nil, err
	}
	var dom golibvirt.Domain
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		dom, err = lv.DomainLookupByUUID(u)
		return err
	})
	if err != nil {
		return nil, wrap(err, "look up", "machine with UUID", uuid)
	}
	return c.machine(ctx, dom)
}

// domainRead is a domain as read at one moment.
type domainRead struct {
	// spec is the persistent definition with autostart and state.
	spec     virt.MachineSpec
	inactive *libvirtxml.Domain
	// live is the running domain's definition; nil when it does not run.
	live  *libvirtxml.Domain
	state golibvirt.DomainState
}

// running reports whether there is a QEMU process whose devices can be
// changed (a paused guest counts).
func (r *domainRead) running() bool { return r.live != nil }

// readDomain reads the persistent and, while the domain runs, the live
// definition, in one round of calls.
func (c *Client) readDomain(ctx context.Context, dom golibvirt.Domain) (*domainRead, error) {
	var (
		inactive, live string
		state          int32
		autostart      int32
	)
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		if inactive, err = lv.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive); err != nil {
			return err
		}
		if state, _, err = lv.DomainGetState(dom, 0); err != nil {
			return err
		}
		if autostart, err = lv.DomainGetAutostart(dom); err != nil {
			return err
		}
		if !isStopped(golibvirt.DomainState(state)) {
			live, err = lv.DomainGetXMLDesc(dom, 0)
			if golibvirt.ErrorNumber(libvirtCode(err)) == golibvirt.ErrOperationInvalid {
				// It stopped between the two reads.
				live, err = "", nil
			}
		}
		return err
	})
	if err != nil {
		return nil, wrapMachine(err, "read", dom.Name)
	}

	r := &domainRead{inactive: &libvirtxml.Domain{}, state: golibvirt.DomainState(state)}
	if err := r.inactive.Unmarshal(inactive); err != nil {
		return nil, fmt.Errorf("read machine %q: parse XML: %w", dom.Name, err)
	}
	r.spec, err = specFromDomain(r.inactive)
	if err != nil {
		return nil, fmt.Errorf("read machine: %w", err)
	}
	r.spec.Autostart = autostart == 1
	r.spec.State = machineState(r.state)
	if live != "" {
		r.live = &libvirtxml.Domain{}
		if err := r.live.Unmarshal(live); err != nil {
			return nil, fmt.Errorf("read machine %q: parse live XML: %w", dom.Name, err)
		}
	}
	return r, nil
}

func (c *Client) machine(ctx context.Context, dom golibvirt.Domain) (*virt.MachineSpec, error) {
	return c.readMachine(ctx, dom, true)
}

// readMachine reads the machine back; withAddresses asks the lease table,
// the guest agent and the ARP table for its NICs' addresses. A machine
// started a moment ago has none anywhere yet, so its create skips those
// calls: under parallel creates each call is a round trip that may queue in
// libvirtd.
func (c *Client) readMachine(ctx context.Context, dom golibvirt.Domain, withAddresses bool) (*virt.MachineSpec, error) {
	r, err := c.readDomain(ctx, dom)
	if err != nil {
		return nil, err
	}
	spec := r.spec
	if !r.running() {
		return &spec, nil
	}
	liveSpec, err := specFromDomain(r.live)
	if err != nil {
		return nil, fmt.Errorf("read running machine: %w", err)
	}
	fillLiveInterfaces(spec.Interfaces, liveSpec.Interfaces)
	spec.PendingRestart = pendingRestart(r)
	if !withAddresses {
		return &spec, nil
	}
	addrs := c.interfaceAddresses(ctx, dom, r)
	for i, n := range spec.Interfaces {
		spec.Interfaces[i].Addresses = addrs[n.MAC]
	}
	return &spec, nil
}

// pendingRestart lists what the persistent definition has that the running
// machine does not and only a restart gives it: the next-boot (and replace)
// changes from the live definition to the persistent one. Live differences
// are not pending: an update applies them to both.
func pendingRestart(r *domainRead) []string {
	live, err := specFromDomainPaths(r.live)
	if err != nil {
		return nil
	}
	persistent, err := specFromDomainPaths(r.inactive)
	if err != nil {
		return nil
	}
	// Autostart lives outside both definitions.
	live.Autostart = r.spec.Autostart
	persistent.Autostart = r.spec.Autostart
	u, err := virt.PlanMachineUpdate(live, persistent)
	if err != nil {
		// A definition this layer would not write (made by hand): it
		// cannot say which changes are pending, and a read must not fail
		// over it.
		return nil
	}
	return u.Fields(virt.UpdateNextBoot, virt.UpdateReplace)
}

// fillLiveInterfaces copies the tap names of the running NICs onto the
// configured ones, matched by MAC, which libvirt keeps from one to the other.
func fillLiveInterfaces(config, live []virt.InterfaceSpec) {
	for i := range config {
		for _, l := range live {
			if l.MAC != "" && l.MAC == config[i].MAC {
				config[i].Device = l.Device
			}
		}
	}
}

func machineState(s golibvirt.DomainState) virt.MachineState {
	switch s {
	case golibvirt.DomainRunning:
		return virt.StateRunning
	case golibvirt.DomainBlocked:
		return virt.StateBlocked
	case golibvirt.DomainPaused:
		return virt.StatePaused
	case golibvirt.DomainShutdown:
		return virt.StateShutdown
	case golibvirt.DomainShutoff:
		return virt.StateShutoff
	case golibvirt.DomainCrashed:
		return virt.StateCrashed
	case golibvirt.DomainPmsuspended:
		return virt.StateSuspend
	}
	return virt.StateUnknown
}

// ListMachines returns the names of all domains, sorted.
func (c *Client) ListMachines(ctx context.Context) ([]string, error) {
	var names []string
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		doms, _, err := lv.ConnectListAllDomains(1, 0)
		if err != nil {
			return err
		}
		for _, d := range doms {
			names = append(names, d.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list machines: %w", err)
	}
	slices.Sort(names)
	return names, nil
}

// StartMachine boots the machine and returns once it runs. libvirt's create
// returns only after QEMU has started the vCPUs, so no waiting is needed; the
// state is still checked, because "started" must mean running, not paused.
func (c *Client) StartMachine(ctx context.Context, name string) error {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return err
	}
	state, err := c.domainState(ctx, dom)
	if err != nil {
		return err
	}
	if state == golibvirt.DomainRunning {
		return nil
	}
	startErr := c.mutate(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainCreate(dom) })
	// "Requested operation is not valid: domain is already running" means
	// another caller started it since the state read: the state read below
	// decides whether that is the running machine asked for.
	if startErr != nil && golibvirt.ErrorNumber(libvirtCode(startErr)) != golibvirt.ErrOperationInvalid {
		return wrapMachine(startErr, "start", name)
	}
	if state, err = c.domainState(ctx, dom); err != nil {
		return err
	}
	if state != golibvirt.DomainRunning {
		if startErr != nil {
			return wrapMachine(startErr, "start", name)
		}
		return fmt.Errorf("start machine %q: it is %s after starting", name, machineState(state))
	}
	return nil
}

// shutdownRepeat is how often ShutdownMachine presses the power button
// again. A guest ignores the button until its ACPI handler runs (the
// kernel's button driver and acpid, or systemd-logind), so a press during
// boot is lost; pressing again lets a booting guest still shut down
// cleanly within the grace, a few seconds after its handler is up.
const shutdownRepeat = 2500 * time.Millisecond

// ShutdownMachine presses the ACPI power button, again every
// shutdownRepeat, and waits for the guest to power off; when grace passes
// first, it pulls the plug. The stop is awaited through libvirt's lifecycle
// events, subscribed to before the button is first pressed so that a fast
// guest cannot stop unseen.
func (c *Client) ShutdownMachine(ctx context.Context, name string, grace time.Duration) error {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return err
	}
	return c.shutdownDomain(ctx, dom, grace)
}

func (c *Client) shutdownDomain(ctx context.Context, dom golibvirt.Domain, grace time.Duration) error {
	name := dom.Name
	graceCtx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	err := c.awaitDomainState(graceCtx, dom, isStopped, func(lv *golibvirt.Libvirt) error {
		err := lv.DomainShutdown(dom)
		if golibvirt.ErrorNumber(libvirtCode(err)) == golibvirt.ErrOperationInvalid {
			// Not running (any more), or already shutting down: the wait
			// sees the stop.
			return nil
		}
		return err
	}, shutdownRepeat)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		c.log.Info("machine ignored the shutdown request; destroying it", "name", name, "grace", grace)
		return c.destroyDomain(ctx, dom)
	}
	return wrapMachine(err, "shut down", name)
}

// DestroyMachine stops the machine at once, like pulling the plug. A machine
// that is not running is left as it is.
func (c *Client) DestroyMachine(ctx context.Context, name string) error {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return err
	}
	return c.destroyDomain(ctx, dom)
}

func (c *Client) destroyDomain(ctx context.Context, dom golibvirt.Domain) error {
	var err error
	// libvirt asks callers to retry when QEMU did not die in time (it can
	// be stuck in uninterruptible I/O for a moment).
	for attempt := 0; attempt < 3; attempt++ {
		err = c.mutate(ctx, func(lv *golibvirt.Libvirt) error {
			return lv.DomainDestroyFlags(dom, golibvirt.DomainDestroyDefault)
		})
		if golibvirt.ErrorNumber(libvirtCode(err)) != golibvirt.ErrSystemError {
			break
		}
		c.log.Warn("destroy did not finish; retrying", "name", dom.Name, "error", err)
	}
	if golibvirt.ErrorNumber(libvirtCode(err)) == golibvirt.ErrOperationInvalid {
		// "domain is not running": the plug was already out.
		state, serr := c.domainState(ctx, dom)
		if serr == nil && isStopped(state) {
			return nil
		}
	}
	return wrapMachine(err, "destroy", dom.Name)
}

// UndefineMachine destroys the machine if it runs, then removes its
// definition with its NVRAM, managed save image and snapshot and checkpoint
// metadata.
func (c *Client) UndefineMachine(ctx context.Context, name string) error {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return err
	}
	state, err := c.domainState(ctx, dom)
	if err != nil {
		return err
	}
	if !isStopped(state) {
		if err := c.destroyDomain(ctx, dom); err != nil {
			return fmt.Errorf("undefine machine %q: %w", name, err)
		}
	}
	return c.undefineDomain(ctx, dom)
}

// undefineFlagSets are tried in turn: drivers and older daemons reject flags
// they do not know (checkpoints came in libvirt 5.6, and not every driver
// has NVRAM), and a flag is only dropped when the driver says so.
var undefineFlagSets = []golibvirt.DomainUndefineFlagsValues{
	golibvirt.DomainUndefineNvram | golibvirt.DomainUndefineManagedSave |
		golibvirt.DomainUndefineSnapshotsMetadata | golibvirt.DomainUndefineCheckpointsMetadata,
	golibvirt.DomainUndefineNvram | golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata,
	golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata,
	0,
}

func (c *Client) undefineDomain(ctx context.Context, dom golibvirt.Domain) error {
	var reasons []string
	for _, flags := range undefineFlagSets {
		err := c.mutate(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainUndefineFlags(dom, flags) })
		if err == nil {
			return nil
		}
		switch golibvirt.ErrorNumber(libvirtCode(err)) {
		case golibvirt.ErrNoSupport, golibvirt.ErrArgumentUnsupported, golibvirt.ErrInvalidArg:
			c.log.Warn("libvirt rejected undefine flags; retrying with fewer", "name", dom.Name, "flags", flags, "error", err)
			reasons = append(reasons, fmt.Sprintf("flags %#x: %v", uint32(flags), err))
			continue
		}
		if len(reasons) > 0 {
			return fmt.Errorf("%w (after the driver rejected %s)", wrapMachine(err, "undefine", dom.Name), strings.Join(reasons, "; "))
		}
		return wrapMachine(err, "undefine", dom.Name)
	}
	return fmt.Errorf("undefine machine %q: the driver rejected every set of flags: %s", dom.Name, strings.Join(reasons, "; "))
}

// lookupDomain finds a domain by name; virt.ErrNotFound when there is none.
func (c *Client) lookupDomain(ctx context.Context, name string) (golibvirt.Domain, error) {
	var dom golibvirt.Domain
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		dom, err = lv.DomainLookupByName(name)
		return err
	})
	return dom, wrapMachine(err, "look up", name)
}

func (c *Client) domainState(ctx context.Context, dom golibvirt.Domain) (golibvirt.DomainState, error) {
	var state int32
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		state, _, err = lv.DomainGetState(dom, 0)
		return err
	})
	if err != nil {
		return 0, wrapMachine(err, "read state of", dom.Name)
	}
	return golibvirt.DomainState(state), nil
}

// domainStateReason is domainState with libvirt's reason for the state
// (a DomainPausedReason for a paused domain, and so on).
func (c *Client) domainStateReason(ctx context.Context, dom golibvirt.Domain) (golibvirt.DomainState, int32, error) {
	var state, reason int32
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		state, reason, err = lv.DomainGetState(dom, 0)
		return err
	})
	if err != nil {
		return 0, 0, wrapMachine(err, "read state of", dom.Name)
	}
	return golibvirt.DomainState(state), reason, nil
}

// isStopped reports states in which no QEMU process runs.
func isStopped(s golibvirt.DomainState) bool {
	return s == golibvirt.DomainShutoff || s == golibvirt.DomainCrashed
}

// wrapMachine is wrap for operations on a machine. Only libvirt's "no such
// domain" becomes virt.ErrNotFound: callers read ErrNotFound from these
// operations as "the machine is gone", and a start that fails because its
// network is missing must not look like that.
func wrapMachine(err error, op, name string) error {
	if err == nil {
		return nil
	}
	switch golibvirt.ErrorNumber(libvirtCode(err)) {
	case golibvirt.ErrNoDomain, golibvirt.ErrDomExist:
		return wrap(err, op, "machine", name)
	}
	return fmt.Errorf("%s machine %q: %w", op, name, err)
}

// interfaceAddresses finds the guest's IP addresses, by NIC MAC, from what
// the host knows: the DHCP leases of libvirt networks (for NICs on one),
// the qemu guest agent (when its channel is connected: it knows static
// addresses and NICs on bridges too), and, for NICs that still have none,
// the host's ARP table. Each source is one call for all NICs. A source
// that fails adds nothing: addresses are a courtesy of the read, and a
// guest without an agent or a lease is no error.
func (c *Client) interfaceAddresses(ctx context.Context, dom golibvirt.Domain, r *domainRead) map[string][]string {
	found := map[string][]netip.Addr{}
	ask := func(src golibvirt.DomainInterfaceAddressesSource) {
		var ifaces []golibvirt.DomainInterface
		err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
			var err error
			ifaces, err = lv.DomainInterfaceAddresses(dom, uint32(src), 0)
			return err
		})
		if err != nil {
			c.log.Debug("no interface addresses from this source", "name", dom.Name, "source", src, "error", err)
			return
		}
		collectAddresses(found, ifaces)
	}

	var onNetwork, needARP bool
	for _, n := range r.spec.Interfaces {
		onNetwork = onNetwork || n.Type == virt.InterfaceNetwork
	}
	if onNetwork {
		ask(golibvirt.DomainInterfaceAddressesSrcLease)
	}
	if r.spec.QemuAgent && agentConnected(r.live) {
		ask(golibvirt.DomainInterfaceAddressesSrcAgent)
	}
	for _, n := range r.spec.Interfaces {
		// A user-mode NIC has no host side, so the host has no ARP entry
		// for it.
		needARP = needARP || (n.Type != virt.InterfaceUser && len(found[n.MAC]) == 0)
	}
	if needARP {
		ask(golibvirt.DomainInterfaceAddressesSrcArp)
	}

	out := make(map[string][]string, len(found))
	for mac, addrs := range found {
		out[mac] = sortedAddresses(addrs)
	}
	return out
}

// collectAddresses adds the usable addresses of ifaces to found, by MAC.
func collectAddresses(found map[string][]netip.Addr, ifaces []golibvirt.DomainInterface) {
	for _, iface := range ifaces {
		mac := strings.ToLower(optString(iface.Hwaddr))
		if mac == "" {
			continue
		}
		for _, a := range iface.Addrs {
			ip, err := netip.ParseAddr(a.Addr)
			if err != nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
				continue
			}
			if !slices.Contains(found[mac], ip.Unmap()) {
				found[mac] = append(found[mac], ip.Unmap())
			}
		}
	}
}

// sortedAddresses orders addresses IPv4 first, then by value, so that the
// same addresses always read back the same.
func sortedAddresses(addrs []netip.Addr) []string {
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// addressPollInterval is how often WaitForAddress looks again.
const addressPollInterval = 500 * time.Millisecond

// WaitForAddress waits until the NIC with the given MAC of the running
// machine has an IP address, and returns its addresses. It polls:
// libvirt has no event for a new DHCP lease (network events are only about
// the network's own life cycle), nor for an address the guest agent or the
// ARP table learns. It fails at once when the machine does not run or has
// no such NIC, and when ctx ends first.
func (c *Client) WaitForAddress(ctx context.Context, name, mac string) ([]string, error) {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return nil, err
	}
	mac = strings.ToLower(mac)
	tick := time.NewTicker(addressPollInterval)
	defer tick.Stop()
	for {
		r, err := c.readDomain(ctx, dom)
		if err != nil {
			return nil, fmt.Errorf("wait for an address of machine %q: %w", name, err)
		}
		if !r.running() {
			return nil, fmt.Errorf("wait for an address of machine %q: it is %s", name, machineState(r.state))
		}
		if !slices.ContainsFunc(r.spec.Interfaces, func(n virt.InterfaceSpec) bool { return n.MAC == mac }) {
			return nil, fmt.Errorf("wait for an address of machine %q: it has no NIC with MAC %s", name, mac)
		}
		if addrs := c.interfaceAddresses(ctx, dom, r)[mac]; len(addrs) > 0 {
			return addrs, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for an address on NIC %s of machine %q: none yet (no DHCP lease, agent or ARP entry): %w", mac, name, ctx.Err())
		}
	}
}

// UpdateMachine turns the machine into want, changing as little as it can:
// see virt.PlanMachineUpdate for which change is applied how. On a stopped
// machine every change is a new persistent definition. On a running one,
// the new persistent definition is written first, so that whatever happens
// after, the next boot gets the whole of want; then the live changes are
// made to the running guest (balloon, vCPU hot-plug, device hot-plug,
// description), or, with opts.Reboot and changes that only a restart
// applies, the machine is shut down and started instead.
//
// Changes that need a new machine are refused with virt.ErrNeedsReplace
// before anything is touched. When a live change fails (a guest that does
// not release a disk), the other changes are still made, and the machine is
// returned as read back together with the error.
func (c *Client) UpdateMachine(ctx context.Context, name string, want virt.MachineSpec, opts virt.UpdateOptions) (*virt.MachineSpec, error) {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return nil, err
	}
	cur, err := c.readDomain(ctx, dom)
	if err != nil {
		return nil, fmt.Errorf("update machine %q: %w", name, err)
	}
	if want.Name == "" {
		want.Name = name
	}
	plan, err := virt.PlanMachineUpdate(cur.spec, want)
	if err != nil {
		return nil, fmt.Errorf("update machine %q: %w", name, err)
	}
	if fields := plan.Fields(virt.UpdateReplace); len(fields) > 0 {
		return nil, fmt.Errorf("update machine %q: %w: %s cannot change in place", name, virt.ErrNeedsReplace, strings.Join(fields, ", "))
	}
	target := plan.Spec
	sources, err := c.resolveDiskSources(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("update machine %q: %w", name, err)
	}
	for i := range target.Disks {
		if target.Disks[i].Format == "" {
			target.Disks[i].Format = sources[i].Format
		}
	}

	running := cur.running()
	if opts.Running != nil && !*opts.Running && running {
		// Nothing is done live to a guest that is about to go.
		if err := c.ShutdownMachine(ctx, name, opts.Grace()); err != nil {
			return nil, fmt.Errorf("update machine %q: %w", name, err)
		}
		running = false
	}

	if definitionDiffers(cur.spec, target) {
		dst := domainFromSpec(target, sources)
		keepDeviceAddresses(dst, cur.inactive)
		doc, err := dst.Marshal()
		if err != nil {
			return nil, fmt.Errorf("update machine %q: render XML: %w", name, err)
		}
		c.log.Debug("redefining domain", "name", name, "xml", doc)
		err = c.mutate(ctx, func(lv *golibvirt.Libvirt) error {
			_, err := lv.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate)
			return err
		})
		if err != nil {
			return nil, wrapMachine(err, "redefine", name)
		}
	}
	if cur.spec.Autostart != target.Autostart {
		on := int32(0)
		if target.Autostart {
			on = 1
		}
		if err := c.mutate(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainSetAutostart(dom, on) }); err != nil {
			return nil, wrapMachine(err, "set autostart of", name)
		}
	}

	var liveErr error
	if running {
		liveErr = c.applyLive(ctx, dom, cur, opts)
	}
	if opts.Running != nil && *opts.Running && !running {
		if err := c.StartMachine(ctx, name); err != nil {
			liveErr = errors.Join(liveErr, err)
		}
	}

	// The read-back must happen even when a live change used up ctx: the
	// caller needs to know what the machine is now.
	readCtx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		readCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
	}
	got, err := c.machine(readCtx, dom)
	if err != nil {
		return nil, errors.Join(liveErr, fmt.Errorf("read back updated machine: %w", err))
	}
	if liveErr != nil {
		return got, fmt.Errorf("update machine %q: %w", name, liveErr)
	}
	return got, nil
}

// definitionDiffers reports whether target needs a new persistent
// definition: it differs from cur in anything but what lives outside the
// XML or is read back only.
func definitionDiffers(cur, target virt.MachineSpec) bool {
	norm := func(s virt.MachineSpec) virt.MachineSpec {
		s.Autostart, s.State, s.PendingRestart = false, "", nil
		s.Interfaces = slices.Clone(s.Interfaces)
		for i := range s.Interfaces {
			s.Interfaces[i].Device, s.Interfaces[i].Addresses = "", nil
		}
		if len(s.Disks) == 0 {
			s.Disks = nil
		}
		if len(s.Interfaces) == 0 {
			s.Interfaces = nil
		}
		return s
	}
	return !reflect.DeepEqual(norm(cur), norm(target))
}

// applyLive brings the running domain in line with its new persistent
// definition: it plans from the live definition (which may lag behind the
// persistent one by earlier updates too) to the persistent one, and either
// restarts the machine or makes the live changes one by one. Every live
// change is attempted; the errors are joined.
func (c *Client) applyLive(ctx context.Context, dom golibvirt.Domain, cur *domainRead, opts virt.UpdateOptions) error {
	var doc string
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		doc, err = lv.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
		return err
	})
	if err != nil {
		return wrapMachine(err, "read", dom.Name)
	}
	var persisted libvirtxml.Domain
	if err := persisted.Unmarshal(doc); err != nil {
		return fmt.Errorf("parse XML: %w", err)
	}
	live, err := specFromDomainPaths(cur.live)
	if err != nil {
		return err
	}
	next, err := specFromDomainPaths(&persisted)
	if err != nil {
		return err
	}
	live.Autostart, next.Autostart = false, false
	plan, err := virt.PlanMachineUpdate(live, next)
	if err != nil {
		return fmt.Errorf("plan live changes: %w", err)
	}

	if restart := plan.Fields(virt.UpdateNextBoot, virt.UpdateReplace); opts.Reboot && len(restart) > 0 {
		c.log.Info("restarting machine to apply changes", "name", dom.Name, "fields", restart)
		if err := c.ShutdownMachine(ctx, dom.Name, opts.Grace()); err != nil {
			return fmt.Errorf("restart for %s: %w", strings.Join(restart, ", "), err)
		}
		if err := c.StartMachine(ctx, dom.Name); err != nil {
			return fmt.Errorf("restart for %s: %w", strings.Join(restart, ", "), err)
		}
		return nil
	}

	var errs []error
	for _, ch := range plan.Of(virt.UpdateLive) {
		if err := c.applyLiveChange(ctx, dom, ch, cur.live, &persisted, next); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ch.Field, err))
		}
	}
	return errors.Join(errs...)
}

// applyLiveChange makes one live change to the running domain only: the
// persistent definition is already what it must be, and writing it again
// through each call's AFFECT_CONFIG would fail where it already has the
// change (a disk detached from it earlier whose guest never let go).
func (c *Client) applyLiveChange(ctx context.Context, dom golibvirt.Domain, ch virt.Change, live, persisted *libvirtxml.Domain, next virt.MachineSpec) error {
	switch {
	case ch.Field == "description":
		var desc golibvirt.OptString
		if next.Description != "" {
			desc = golibvirt.OptString{next.Description}
		}
		return c.mutate(ctx, func(lv *golibvirt.Libvirt) error {
			return lv.DomainSetMetadata(dom, int32(golibvirt.DomainMetadataDescription), desc, nil, nil, golibvirt.DomainAffectLive)
		})
	case ch.Field == "memory":
		// The balloon's target; the guest's driver gives memory back or
		// takes it in its own time, and libvirt reports what it reached.
		return c.mutate(ctx, func(lv *golibvirt.Libvirt) error {
			return lv.DomainSetMemoryFlags(dom, next.MemoryMiB<<10, uint32(golibvirt.DomainMemLive))
		})
	case ch.Field == "vcpu":
		return c.mutate(ctx, func(lv *golibvirt.Libvirt) error {
			return lv.DomainSetVcpusFlags(dom, uint32(next.VCPU), uint32(golibvirt.DomainVCPULive))
		})
	case strings.HasPrefix(ch.Field, "disks["):
		if ch.Action == virt.ChangeDetach {
			return c.detachLive(ctx, dom, diskAlias(live, ch.Old), "disk "+diskTargetOf(live, ch.Old))
		}
		return c.attachLive(ctx, dom, func(withAddress bool) (string, error) { return hotplugDiskXML(persisted, ch.New, withAddress) })
	case strings.HasPrefix(ch.Field, "interfaces["):
		if ch.Action == virt.ChangeDetach {
			return c.detachLive(ctx, dom, interfaceAlias(live, ch.Old), "NIC "+interfaceMACOf(live, ch.Old))
		}
		return c.attachLive(ctx, dom, func(withAddress bool) (string, error) { return hotplugInterfaceXML(persisted, ch.New, withAddress) })
	}
	return fmt.Errorf("no live change known for %s", ch.Field)
}

func diskTargetOf(live *libvirtxml.Domain, i int) string {
	if d := live.Devices.Disks[i]; d.Target != nil {
		return d.Target.Dev
	}
	return fmt.Sprint(i)
}

func interfaceMACOf(live *libvirtxml.Domain, i int) string {
	if n := live.Devices.Interfaces[i]; n.MAC != nil {
		return n.MAC.Address
	}
	return fmt.Sprint(i)
}

// attachLive plugs a device into the running domain, at the slot the
// persistent definition gave it when that slot is free in the running
// domain too, elsewhere otherwise.
func (c *Client) attachLive(ctx context.Context, dom golibvirt.Domain, render func(withAddress bool) (string, error)) error {
	doc, err := render(true)
	if err != nil {
		return err
	}
	attach := func(doc string) error {
		return c.mutate(ctx, func(lv *golibvirt.Libvirt) error {
			return lv.DomainAttachDeviceFlags(dom, doc, uint32(golibvirt.DomainDeviceModifyLive))
		})
	}
	c.log.Debug("attaching device", "name", dom.Name, "xml", doc)
	err = attach(doc)
	if err == nil || ctx.Err() != nil {
		return err
	}
	bare, rerr := render(false)
	if rerr != nil || bare == doc {
		return err
	}
	c.log.Debug("attach at the persistent slot failed; letting the running domain choose", "name", dom.Name, "error", err)
	return attach(bare)
}

// detachLive asks the guest to release a device and waits until it has.
func (c *Client) detachLive(ctx context.Context, dom golibvirt.Domain, alias, what string) error {
	if alias == "" {
		return fmt.Errorf("%s has no alias in the running domain to detach it by", what)
	}
	start := time.Now()
	err := c.awaitDeviceRemoval(ctx, dom, alias, func(lv *golibvirt.Libvirt) error {
		return lv.DomainDetachDeviceAlias(dom, alias, uint32(golibvirt.DomainDeviceModifyLive))
	})
	switch {
	case err == nil:
		c.log.Debug("device detached", "name", dom.Name, "alias", alias, "elapsed", time.Since(start))
		return nil
	case errors.Is(err, errDeviceRemovalFailed), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("detach %s (%s): the guest did not release it within %s (%w); the request stays pending with the guest, "+
			"and the persistent definition no longer has the device, so it is gone at the next boot at the latest",
			what, alias, time.Since(start).Round(time.Millisecond), err)
	}
	return fmt.Errorf("detach %s (%s): %w", what, alias, err)
}

// Transient errors: libvirt serialises the jobs on one domain, and a call
// that finds another job running waits 30 s for it and then gives up with
// VIR_ERR_OPERATION_TIMEOUT "cannot acquire state change lock". The call
// never started, so it is safe to make again. The same code also means
// "vcpu unplug request timed out", which is not transient, hence the
// message check.
const stateChangeLockMessage = "cannot acquire state change lock"

// isTransient reports libvirt refusals that a later identical call may
// not meet.
func isTransient(err error) bool {
	var lvErr golibvirt.Error
	if !errors.As(err, &lvErr) {
		return false
	}
	return golibvirt.ErrorNumber(lvErr.Code) == golibvirt.ErrOperationTimeout &&
		strings.Contains(lvErr.Message, stateChangeLockMessage)
}

// Backoff between retries of a transient error.
const (
	retryFirstDelay = 250 * time.Millisecond
	retryMaxDelay   = 5 * time.Second
)

// retryTransient runs fn until it succeeds, fails for a reason that is not
// transient, or ctx ends; then it returns fn's last error.
func retryTransient(ctx context.Context, log hclog.Logger, fn func() error) error {
	delay := retryFirstDelay
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !isTransient(err) {
			return err
		}
		log.Info("libvirt is busy with the domain; retrying", "attempt", attempt, "delay", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (still busy when the deadline came after %d attempts)", err, attempt)
		case <-t.C:
		}
		delay = min(2*delay, retryMaxDelay)
	}
}

// mutate is call for calls that change a domain: it retries them while
// libvirt reports a transient refusal.
func (c *Client) mutate(ctx context.Context, fn func(*golibvirt.Libvirt) error) error {
	return retryTransient(ctx, c.log, func() error { return c.call(ctx, fn) })
}

// liveHasAlias reports whether the running domain has a device with alias;
// a domain that no longer runs has none.
func (c *Client) liveHasAlias(ctx context.Context, dom golibvirt.Domain, alias string) (bool, error) {
	var doc string
	err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		doc, err = lv.DomainGetXMLDesc(dom, 0)
		return err
	})
	if err != nil {
		return false, wrapMachine(err, "read", dom.Name)
	}
	var live libvirtxml.Domain
	if err := live.Unmarshal(doc); err != nil {
		return false, fmt.Errorf("parse live XML of machine %q: %w", dom.Name, err)
	}
	if live.ID == nil {
		return false, nil // not running: the inactive definition came back
	}
	return hasAlias(&live, alias), nil
}

// MachineExists reports whether a machine of that name is defined: one
// lookup, for callers that need no more than that.
func (c *Client) MachineExists(ctx context.Context, name string) (bool, error) {
	_, err := c.lookupDomain(ctx, name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, virt.ErrNotFound):
		return false, nil
	}
	return false, err
}

// DeleteMachine removes a machine the way a destroy should: the guest gets
// grace to power off on an ACPI request (then the plug is pulled), and the
// definition goes with its NVRAM and managed save. It returns the
// persistent definition as it was, for the caller to find what it attached
// (seed volumes), and virt.ErrNotFound when there is no such machine. It is
// ShutdownMachine and UndefineMachine on one lookup and one read.
func (c *Client) DeleteMachine(ctx context.Context, name string, grace time.Duration) (*virt.MachineSpec, error) {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return nil, err
	}
	var inactive string
	var state int32
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
		var err error
		if inactive, err = lv.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive); err != nil {
			return err
		}
		state, _, err = lv.DomainGetState(dom, 0)
		return err
	})
	if err != nil {
		return nil, wrapMachine(err, "read", name)
	}
	doc := &libvirtxml.Domain{}
	if err := doc.Unmarshal(inactive); err != nil {
		return nil, fmt.Errorf("read machine %q: parse XML: %w", name, err)
	}
	spec, err := specFromDomain(doc)
	if err != nil {
		return nil, fmt.Errorf("read machine %q: %w", name, err)
	}
	if !isStopped(golibvirt.DomainState(state)) {
		if err := c.shutdownDomain(ctx, dom, grace); err != nil {
			return nil, err
		}
	}
	if err := c.undefineDomain(ctx, dom); err != nil {
		return nil, err
	}
	return &spec, nil
}
