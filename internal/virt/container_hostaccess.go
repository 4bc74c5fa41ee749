package virt

import (
	"slices"
	"strings"
)

// ContainerHostAccess is a raw LXC config key, or family of keys, that
// reaches outside the container: it runs a program on the host as root,
// lets the container at host files, devices or namespaces, or takes away
// the confinement that keeps root in the container from being root on the
// host. ContainerSpec.Config may set such keys (they have real uses, and
// whoever writes the configuration is trusted with the host anyway), but
// front ends say so: in the attribute's description and as a warning for
// each one set.
//
// Keys that a spec field renders are not here, because Validate refuses
// them in Config (see ContainerConfigKeyOwner); among them are several
// that would be here otherwise: lxc.net.N.script.up and .down (host
// scripts run as root), lxc.mount.entry (host paths), lxc.include (keys
// that bypass validation) and lxc.idmap (the container's root is the
// host's root without it; unprivileged chooses).
type ContainerHostAccess struct {
	// Key is the key, or the family with a "*" for the varying part, as
	// written in documentation: "lxc.hook.*".
	Key string
	// Values, when not empty, says in words which values reach outside,
	// to follow "set to" ("`unconfined` or `unchanged`"); empty means any
	// value does.
	Values string
	// Reason says what the key gives, in a few words.
	Reason string

	// matchKey is given the key in lower case.
	matchKey func(key string) bool
	// matchValue is given the value trimmed and in lower case; nil means
	// any value.
	matchValue func(value string) bool
}

// containerHostAccess is the one list that both the description front ends
// show and the check they warn with are built from. It follows LXC 5's
// lxc.container.conf(5).
var containerHostAccess = []ContainerHostAccess{
	{
		Key:    "lxc.hook.*",
		Reason: "runs a program as root on the host when the container starts, stops, is cloned or is destroyed (every hook but `lxc.hook.start`, which runs inside the container, and `lxc.hook.version`)",
		matchKey: func(k string) bool {
			rest, ok := strings.CutPrefix(k, "lxc.hook.")
			return ok && rest != "start" && rest != "version"
		},
	},
	{
		Key: "lxc.mount.fstab", Reason: "mounts what a host file lists, host paths included, into the container",
		matchKey: exactKey("lxc.mount.fstab"),
	},
	{
		Key: "lxc.mount.auto", Values: "`proc:rw`, `sys:rw`, `cgroup-full` or `cgroup-full:rw`",
		Reason:     "lets the container write the host's kernel settings (/proc/sys, /proc/sysrq-trigger), /sys or the host's whole cgroup tree",
		matchKey:   exactKey("lxc.mount.auto"),
		matchValue: writableAutoMount,
	},
	{
		Key: "lxc.apparmor.profile", Values: "`unconfined` or `unchanged`",
		Reason:     "runs the container without an AppArmor profile (unchanged keeps the one the provider runs under, usually none)",
		matchKey:   exactKey("lxc.apparmor.profile"),
		matchValue: oneOf("unconfined", "unchanged"),
	},
	{
		Key: "lxc.apparmor.raw", Reason: "adds raw rules, allowing anything, to the container's AppArmor profile",
		matchKey: exactKey("lxc.apparmor.raw"),
	},
	{
		Key: "lxc.apparmor.allow_incomplete", Values: "anything but `0`",
		Reason:     "starts the container even when the kernel cannot enforce AppArmor's mount rules",
		matchKey:   exactKey("lxc.apparmor.allow_incomplete"),
		matchValue: func(v string) bool { return v != "0" },
	},
	{
		Key:      "lxc.seccomp.profile",
		Reason:   "replaces the default seccomp filter, which blocks the system calls a container escapes or loads kernel modules with (open_by_handle_at, kexec_load, init_module...)",
		matchKey: exactKey("lxc.seccomp.profile"),
	},
	{
		Key: "lxc.cap.keep", Values: "anything but `none`",
		Reason:     "keeps the capabilities it names, overriding the list LXC drops (sys_module, sys_rawio, sys_time, mac_admin...)",
		matchKey:   exactKey("lxc.cap.keep"),
		matchValue: func(v string) bool { return v != "none" },
	},
	{
		Key: "lxc.cap.drop", Values: "an empty value",
		Reason:     "clears the list of capabilities LXC drops, giving back sys_module, sys_rawio...",
		matchKey:   exactKey("lxc.cap.drop"),
		matchValue: func(v string) bool { return v == "" },
	},
	{
		Key: "lxc.cgroup.devices.allow, lxc.cgroup2.devices.allow", Reason: "lets the container open host devices (disks, /dev/mem...)",
		matchKey: exactKey("lxc.cgroup.devices.allow", "lxc.cgroup2.devices.allow"),
	},
	{
		Key: "lxc.namespace.*", Reason: "shares a namespace (network, PID, user, mounts...) with the host or another process instead of the container's own",
		matchKey: func(k string) bool { return strings.HasPrefix(k, "lxc.namespace.") },
	},
	{
		Key: "lxc.sysctl.*", Reason: "sets kernel parameters; those the kernel does not namespace change the whole host",
		matchKey: func(k string) bool { return strings.HasPrefix(k, "lxc.sysctl.") },
	},
	{
		Key: "lxc.log.file, lxc.console.logfile", Reason: "has LXC write, as root, to a host path of your choice",
		matchKey: exactKey("lxc.log.file", "lxc.console.logfile"),
	},
	{
		Key: "lxc.console.path", Values: "anything but `none`",
		Reason:     "attaches a host device as the container's console",
		matchKey:   exactKey("lxc.console.path"),
		matchValue: func(v string) bool { return v != "none" },
	},
	{
		Key: "lxc.environment", Values: "a name without `=`",
		Reason:     "copies that variable of the provider's own environment, credentials included, into the container",
		matchKey:   exactKey("lxc.environment"),
		matchValue: func(v string) bool { return !strings.Contains(v, "=") },
	},
	{
		Key: "lxc.keyring.session", Values: "`0`",
		Reason:     "gives the container the provider's session keyring instead of a new one",
		matchKey:   exactKey("lxc.keyring.session"),
		matchValue: oneOf("0"),
	},
}

// ContainerHostAccessKeys lists the raw LXC config keys that reach outside
// the container, for documentation.
func ContainerHostAccessKeys() []ContainerHostAccess {
	return slices.Clone(containerHostAccess)
}

// ContainerConfigHostAccess reports whether the raw LXC config key, set to
// value, reaches outside the container, and how. A nil value stands for one
// not known yet: the key is reported when some value of it would be.
func ContainerConfigHostAccess(key string, value *string) (ContainerHostAccess, bool) {
	k := strings.ToLower(strings.TrimSpace(key))
	for _, h := range containerHostAccess {
		if !h.matchKey(k) {
			continue
		}
		if value == nil || h.matchValue == nil || h.matchValue(strings.ToLower(strings.TrimSpace(*value))) {
			return h, true
		}
	}
	return ContainerHostAccess{}, false
}

func exactKey(keys ...string) func(string) bool {
	return func(k string) bool { return slices.Contains(keys, k) }
}

func oneOf(values ...string) func(string) bool {
	return func(v string) bool { return slices.Contains(values, v) }
}

// writableAutoMount tells an lxc.mount.auto value that mounts the host's
// /proc or /sys read-write, or the host's full cgroup tree read-write
// (cgroup-full alone means read-write when the container keeps
// CAP_SYS_ADMIN, as a privileged one does). The ":force" suffix only says
// when LXC mounts, not how.
func writableAutoMount(v string) bool {
	for _, f := range strings.Fields(v) {
		switch strings.TrimSuffix(f, ":force") {
		case "proc:rw", "sys:rw", "cgroup-full", "cgroup-full:rw":
			return true
		}
	}
	return false
}
