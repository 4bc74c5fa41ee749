package libvirt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
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
	err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
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

	got, err := c.finishDefine(ctx, dom, spec)
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if uerr := c.undefineDomain(cctx, dom); uerr != nil {
			c.log.Error("could not undefine a half-defined domain", "name", spec.Name, "error", uerr)
			return nil, fmt.Errorf("%w (and undefining it again failed: %s)", err, uerr.Error())
		}
		return nil, err
	}
	return got, nil
}

// failAfterDefine lets a test make the steps after a define fail (nothing
// else can make them fail on demand), to prove that the define is undone.
var failAfterDefine func(name string) error

// finishDefine does what follows the define proper; any error means the
// domain is to be undefined again.
func (c *Client) finishDefine(ctx context.Context, dom golibvirt.Domain, spec virt.MachineSpec) (*virt.MachineSpec, error) {
	if failAfterDefine != nil {
		if err := failAfterDefine(spec.Name); err != nil {
			return nil, err
		}
	}
	if spec.Autostart {
		err := c.call(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainSetAutostart(dom, 1) })
		if err != nil {
			return nil, wrapMachine(err, "set autostart of", spec.Name)
		}
	}
	got, err := c.machine(ctx, dom)
	if err != nil {
		return nil, fmt.Errorf("read back defined machine: %w", err)
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

// Machine reads the persistent definition and the run state back into a
// spec. While the machine runs, the interfaces' tap names come from the live
// definition, which is the only place they exist.
func (c *Client) Machine(ctx context.Context, name string) (*virt.MachineSpec, error) {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return nil, err
	}
	return c.machine(ctx, dom)
}

func (c *Client) machine(ctx context.Context, dom golibvirt.Domain) (*virt.MachineSpec, error) {
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
		if golibvirt.DomainState(state) == golibvirt.DomainRunning || golibvirt.DomainState(state) == golibvirt.DomainPaused {
			live, err = lv.DomainGetXMLDesc(dom, 0)
		}
		return err
	})
	if err != nil {
		return nil, wrapMachine(err, "read", dom.Name)
	}

	var def libvirtxml.Domain
	if err := def.Unmarshal(inactive); err != nil {
		return nil, fmt.Errorf("read machine %q: parse XML: %w", dom.Name, err)
	}
	spec, err := specFromDomain(&def)
	if err != nil {
		return nil, fmt.Errorf("read machine: %w", err)
	}
	spec.Autostart = autostart == 1
	spec.State = machineState(golibvirt.DomainState(state))

	if live != "" {
		var running libvirtxml.Domain
		if err := running.Unmarshal(live); err != nil {
			return nil, fmt.Errorf("read machine %q: parse live XML: %w", dom.Name, err)
		}
		liveSpec, err := specFromDomain(&running)
		if err != nil {
			return nil, fmt.Errorf("read running machine: %w", err)
		}
		fillLiveInterfaces(spec.Interfaces, liveSpec.Interfaces)
	}
	return &spec, nil
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
	if err := c.call(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainCreate(dom) }); err != nil {
		return wrapMachine(err, "start", name)
	}
	if state, err = c.domainState(ctx, dom); err != nil {
		return err
	}
	if state != golibvirt.DomainRunning {
		return fmt.Errorf("start machine %q: it is %s after starting", name, machineState(state))
	}
	return nil
}

// ShutdownMachine sends an ACPI power-button press and waits for the guest
// to power off; when grace passes first, it pulls the plug. The stop is
// awaited through libvirt's lifecycle events, subscribed to before the
// button is pressed so that a fast guest cannot stop unseen.
func (c *Client) ShutdownMachine(ctx context.Context, name string, grace time.Duration) error {
	dom, err := c.lookupDomain(ctx, name)
	if err != nil {
		return err
	}
	graceCtx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	err = c.awaitDomainState(graceCtx, dom, isStopped, func(lv *golibvirt.Libvirt) error {
		err := lv.DomainShutdown(dom)
		if golibvirt.ErrorNumber(libvirtCode(err)) == golibvirt.ErrOperationInvalid {
			// Not running (any more): the wait sees that at once.
			return nil
		}
		return err
	})
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
		err = c.call(ctx, func(lv *golibvirt.Libvirt) error {
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
		err := c.call(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainUndefineFlags(dom, flags) })
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
