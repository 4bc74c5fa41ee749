//go:build linux && cgo

package lxc

import (
	"fmt"
	"slices"

	golxc "github.com/lxc/go-lxc"
)

// netSubkeys are the lxc.net.N.* keys the managed config writes, which a
// start reads.
var netSubkeys = []string{"type", "link", "name", "flags", "hwaddr", "ipv4.address", "ipv4.gateway", "mtu"}

// pendingRestart names the fields (as in virt.ContainerSpec.PendingRestart)
// whose saved config differs from the config the running container was
// started with: hostname, interfaces, mounts, nesting and config. Limits
// change live and start_on_boot only matters to the next host boot, so
// neither is ever pending. ct must hold the saved config as it is on disk
// (a handle opened after the last write); extraKeys are the raw keys to
// compare for config (see comparedKeysPrefix).
//
// The running side comes from the container's monitor (RunningConfigItem:
// the config LXC holds for the running container), not from a copy this
// package would keep of the config at its own starts. Containers are
// started by other tools too: lxc-autostart at host boot for start_on_boot,
// lxc-start by hand, a Packer build. A copy taken at our starts would be
// stale or missing after those, while the monitor always knows what the
// container runs with. Both sides go through LXC's own getters (ConfigItem
// on the saved config, RunningConfigItem on the running one), so values
// compare in LXC's rendering, whatever the files' spelling. One lookup is a
// round trip on the monitor's command socket, about 50 µs here.
func pendingRestart(ct *golxc.Container, extraKeys []string) []string {
	saved := func(k string) []string { return configValues(ct.ConfigItem(k)) }
	running := func(k string) []string { return configValues(ct.RunningConfigItem(k)) }
	// A running container always has a rootfs; no answer means the monitor
	// cannot be asked (it is going away), and then nothing can be said:
	// every field would look changed.
	if len(running("lxc.rootfs.path")) == 0 {
		return nil
	}
	differs := func(k string) bool { return !slices.Equal(saved(k), running(k)) }

	var out []string
	if differs("lxc.uts.name") {
		out = append(out, "hostname")
	}
	if interfacesDiffer(saved, running) {
		out = append(out, "interfaces")
	}
	savedMounts, savedNesting := splitNestingEntries(saved("lxc.mount.entry"))
	runMounts, runNesting := splitNestingEntries(running("lxc.mount.entry"))
	if !slices.Equal(savedMounts, runMounts) {
		out = append(out, "mounts")
	}
	if savedNesting != runNesting || differs("lxc.apparmor.allow_nesting") {
		out = append(out, "nesting")
	}
	for _, k := range extraKeys {
		if differs(k) {
			out = append(out, "config")
			break
		}
	}
	return out
}

func interfacesDiffer(saved, running func(string) []string) bool {
	// lxc.net lists the interfaces' types, one each.
	n := len(saved("lxc.net"))
	if n != len(running("lxc.net")) {
		return true
	}
	for i := range n {
		for _, sub := range netSubkeys {
			k := fmt.Sprintf("lxc.net.%d.%s", i, sub)
			if !slices.Equal(saved(k), running(k)) {
				return true
			}
		}
	}
	return false
}

// splitNestingEntries takes nesting's mount entries out of a list of
// lxc.mount.entry values, and says how many there were: they belong to the
// nesting field, not to mounts.
func splitNestingEntries(entries []string) (rest []string, nesting int) {
	for _, e := range entries {
		if slices.ContainsFunc(nestingItems, func(it configItem) bool { return it.Key == "lxc.mount.entry" && it.Value == e }) {
			nesting++
			continue
		}
		rest = append(rest, e)
	}
	return rest, nesting
}

// configValues cleans what go-lxc's ConfigItem and RunningConfigItem
// return: the lines of LXC's answer, where no value at all comes back as
// one empty string.
func configValues(v []string) []string {
	if len(v) == 1 && v[0] == "" {
		return nil
	}
	return v
}
