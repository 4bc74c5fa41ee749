//go:build linux && cgo

package lxc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	golxc "github.com/lxc/go-lxc"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// UpdateContainer brings an existing container to want and returns it as
// read back. The source fields of want are ignored (a new source means a
// new container); unprivileged and idmap must agree with the container's
// (an empty idmap always does), or it is a spec error: the container's
// files belong to its mapped ids.
//
// Limits (memory, swap, cpus, cpu_weight) are written to the running
// container's cgroup, for the hierarchy that holds each controller, and
// saved; everything else (hostname, interfaces, mounts, nesting,
// start_on_boot, config) is saved for the next start, and the read-back
// lists in PendingRestart what the running container does not use yet.
//
// An update that fails leaves the container as it was: the live limits are
// written first and put back if a later one or the save fails, and the
// saved config is replaced atomically (see writeConfigs).
func (c *Client) UpdateContainer(ctx context.Context, name string, want virt.ContainerSpec) (*virt.ContainerSpec, error) {
	c.log.Debug("update container", "container", name)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("update container %q: %w", name, err)
	}
	ct, err := c.open(name)
	if err != nil {
		return nil, err
	}
	defer c.release(ct)

	cur, compared, err := c.savedSpec(name)
	if err != nil {
		return nil, fmt.Errorf("update container %q: read its config: %w", name, err)
	}
	next, err := c.updatedSpec(name, cur, want)
	if err != nil {
		return nil, fmt.Errorf("update container %q: %w", name, err)
	}

	var live bool
	switch st := ct.State(); st {
	case golxc.STOPPED:
	case golxc.RUNNING, golxc.FROZEN:
		live = true
	default:
		return nil, fmt.Errorf("update container %q: it is %s; update it once it has started or stopped", name, strings.ToLower(st.String()))
	}
	var undo []cgroupWrite
	if live {
		if undo, err = c.applyLimits(ct, cur, next); err != nil {
			return nil, fmt.Errorf("update container %q: %w", name, err)
		}
	}
	// A stopped container starts with the file as it will be written, so
	// only its own keys need comparing later; a running one may still use
	// any key the file has held since it started.
	keys := configKeys(next)
	if live {
		keys = mergeKeys(compared, configKeys(cur), keys)
	}
	if err := c.writeConfigs(&next, keys, nil); err != nil {
		c.undoLimits(ct, undo)
		return nil, fmt.Errorf("update container %q: save its config: %w", name, err)
	}

	// ct holds the config as it was loaded before the write; the
	// read-back compares the saved config with the running one.
	fresh, err := c.open(name)
	if err != nil {
		return nil, fmt.Errorf("update container %q: read it back: %w", name, err)
	}
	defer c.release(fresh)
	out, err := c.readSpec(fresh, name)
	if err != nil {
		return nil, fmt.Errorf("update container %q: read it back: %w", name, err)
	}
	return out, nil
}

// updatedSpec is want made into the container's next spec, from cur (its
// saved one): defaults applied, the source and id map kept, MACs kept for
// interfaces that name none, then validated and checked against the host.
func (c *Client) updatedSpec(name string, cur, want virt.ContainerSpec) (virt.ContainerSpec, error) {
	want.Name = name
	next := want.WithDefaults()
	var errs virt.SpecErrors
	switch {
	case want.Unprivileged != cur.Unprivileged:
		errs = append(errs, &virt.SpecError{Field: "unprivileged", Reason: fmt.Sprintf(
			"cannot change on an existing container (it is %s): its files belong to the ids of its id map; make a new container instead",
			map[bool]string{true: "unprivileged", false: "privileged"}[cur.Unprivileged])})
	case len(want.IDMap) > 0 && !slices.Equal(want.IDMap, cur.IDMap):
		errs = append(errs, &virt.SpecError{Field: "idmap", Reason: "cannot change on an existing container: its files belong to the ids of its id map; make a new container instead"})
	}
	next.Template, next.Archive, next.LXCTemplate = cur.Template, "", nil
	next.Unprivileged, next.IDMap = cur.Unprivileged, slices.Clone(cur.IDMap)
	for i := range next.Interfaces {
		// A MAC the caller leaves out is the one the interface has: it
		// keeps DHCP leases and ARP caches valid.
		if next.Interfaces[i].HWAddr == "" && i < len(cur.Interfaces) {
			next.Interfaces[i].HWAddr = cur.Interfaces[i].HWAddr
		}
	}

	// Validate and checkHost judge a spec for a create, which needs a
	// source; an existing container's source is not a choice any more, so
	// any valid one stands in for it, and none is checked on the host.
	probe := next
	probe.Template, probe.Archive, probe.LXCTemplate = "", "", &virt.LXCTemplate{Name: "busybox"}
	var verrs virt.SpecErrors
	if err := probe.Validate(); errors.As(err, &verrs) {
		errs = append(errs, verrs...)
	} else if err != nil {
		return next, err
	}
	if len(errs) > 0 {
		return next, errs
	}
	probe.LXCTemplate = nil
	if err := c.checkHost(probe, nil); err != nil {
		return next, err
	}
	if err := fillHWAddrs(next.Interfaces); err != nil {
		return next, err
	}
	return next, nil
}

// applyLimits writes the limits of next that differ from old to the
// running container's cgroup and returns what to write to undo it. When a
// write fails, the ones before it are undone.
func (c *Client) applyLimits(ct *golxc.Container, old, next virt.ContainerSpec) ([]cgroupWrite, error) {
	writes := c.cgroups.limitWrites(old, next, c.hostCPUList)
	if len(writes) == 0 {
		return nil, nil
	}
	// On v1, memory plus swap may never be below memory: raising memory
	// takes memsw first (see limitWrites).
	if len(writes) >= 2 && writes[0].key == "memory.limit_in_bytes" && writes[1].key == "memory.memsw.limit_in_bytes" &&
		v1LimitBytes(writes[0].value) > v1LimitBytes(firstValue(ct.CgroupItem(writes[0].key))) {
		writes[0], writes[1] = writes[1], writes[0]
	}

	var undo []cgroupWrite
	for _, w := range writes {
		prev := firstValue(ct.CgroupItem(w.key))
		c.log.Debug("set cgroup limit", "container", ct.Name(), "key", w.key, "value", w.value, "was", prev)
		if err := ct.SetCgroupItem(w.key, w.value); err != nil {
			hint := limitFailureHint(ct, w.key)
			c.undoLimits(ct, undo)
			return nil, fmt.Errorf("set %s to %s in the running container's cgroup: %w%s", w.key, w.value, err, hint)
		}
		if prev != "" {
			undo = append(undo, cgroupWrite{w.key, prev})
		}
	}
	return undo, nil
}

// limitFailureHint says what a refused cgroup write most likely means:
// liblxc passes on none of the kernel's reasons, nor logs them.
func limitFailureHint(ct *golxc.Container, key string) string {
	usage := ""
	switch key {
	case "memory.limit_in_bytes", "memory.memsw.limit_in_bytes":
		usage = "memory.usage_in_bytes"
	case "memory.max", "memory.swap.max":
		usage = "memory.current"
	case "cpuset.cpus":
		return " (the CPUs must be online and in the parent cgroup's cpuset)"
	default:
		return ""
	}
	n, err := strconv.ParseUint(firstValue(ct.CgroupItem(usage)), 10, 64)
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (the container uses %.1f MiB now, and the kernel refuses a limit below what it cannot reclaim; "+
		"free memory in the container, or restart it with the new limit)", float64(n)/mib)
}

// undoLimits writes back what applyLimits replaced, last first. It runs
// on a path that already fails, so what cannot be put back is logged.
func (c *Client) undoLimits(ct *golxc.Container, undo []cgroupWrite) {
	for i := len(undo) - 1; i >= 0; i-- {
		if err := ct.SetCgroupItem(undo[i].key, undo[i].value); err != nil {
			c.log.Warn("put back a cgroup limit after a failed update", "container", ct.Name(), "key", undo[i].key, "value", undo[i].value, "error", err)
		}
	}
}

func firstValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return strings.TrimSpace(v[0])
}

// v1LimitBytes reads a v1 memory limit: -1 (or anything not a number) is
// no limit.
func v1LimitBytes(v string) uint64 {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return math.MaxUint64
	}
	return n
}

// ContainerTemplates lists the stopped containers under the LXC path, by
// name, with the snapshot clones that lie on each and the metadata file a
// template build left (virt.ContainerMetadataName; no metadata without
// one). Any stopped container can be cloned, so every one is listed.
func (c *Client) ContainerTemplates(ctx context.Context) ([]virt.ContainerTemplate, error) {
	c.log.Debug("list container templates", "lxc_path", c.lxcPath)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list container templates: %w", err)
	}
	active := map[string]bool{}
	for _, n := range golxc.ActiveContainerNames(c.lxcPath) {
		active[n] = true
	}
	names := golxc.DefinedContainerNames(c.lxcPath)
	slices.Sort(names)
	out := []virt.ContainerTemplate{}
	for _, name := range names {
		if active[name] || !virt.ValidContainerName(name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list container templates: %w", err)
		}
		clones, err := c.snapshotClones(name)
		if err != nil {
			return nil, fmt.Errorf("list container templates: container %q: read its snapshot clones: %w", name, err)
		}
		slices.Sort(clones)
		md, err := virt.ReadContainerMetadata(c.dir(name))
		if err != nil {
			return nil, fmt.Errorf("list container templates: container %q: %w", name, err)
		}
		out = append(out, virt.ContainerTemplate{Name: name, Clones: clones, Metadata: md})
	}
	return out, nil
}
