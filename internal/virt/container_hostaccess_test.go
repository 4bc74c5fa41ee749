package virt

import (
	"strings"
	"testing"
)

// Each key that reaches outside the container is reported with the entry
// that documents it; its harmless values and the ordinary keys are not.
func TestContainerConfigHostAccess(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		// want is the Key of the entry reported; empty means none.
		want string
	}{
		{"lxc.hook.pre-start", "/usr/local/bin/setup", "lxc.hook.*"},
		{"lxc.hook.start-host", "/bin/true", "lxc.hook.*"},
		{"lxc.hook.post-stop", "/bin/true", "lxc.hook.*"},
		{"lxc.hook.mount", "/bin/true", "lxc.hook.*"},
		{"lxc.hook.destroy", "/bin/true", "lxc.hook.*"},
		{"LXC.Hook.Pre-Start", "/bin/true", "lxc.hook.*"},
		{"lxc.hook.start", "/sbin/setup-in-container", ""},
		{"lxc.hook.version", "1", ""},
		{"lxc.mount.fstab", "/etc/fstab", "lxc.mount.fstab"},
		{"lxc.mount.auto", "proc:rw sys:mixed", "lxc.mount.auto"},
		{"lxc.mount.auto", "proc:mixed sys:rw:force", "lxc.mount.auto"},
		{"lxc.mount.auto", "cgroup-full", "lxc.mount.auto"},
		{"lxc.mount.auto", "cgroup-full:rw", "lxc.mount.auto"},
		{"lxc.mount.auto", "proc:mixed sys:mixed cgroup:mixed", ""},
		{"lxc.mount.auto", "cgroup:rw cgroup-full:ro", ""},
		{"lxc.apparmor.profile", "unconfined", "lxc.apparmor.profile"},
		{"lxc.apparmor.profile", " Unchanged ", "lxc.apparmor.profile"},
		{"lxc.apparmor.profile", "generated", ""},
		{"lxc.apparmor.profile", "lxc-container-default-cgns", ""},
		{"lxc.apparmor.raw", "mount,", "lxc.apparmor.raw"},
		{"lxc.apparmor.allow_incomplete", "1", "lxc.apparmor.allow_incomplete"},
		{"lxc.apparmor.allow_incomplete", "0", ""},
		{"lxc.seccomp.profile", "/srv/allow-all.seccomp", "lxc.seccomp.profile"},
		{"lxc.cap.keep", "sys_admin sys_module", "lxc.cap.keep"},
		{"lxc.cap.keep", "none", ""},
		{"lxc.cap.drop", "", "lxc.cap.drop"},
		{"lxc.cap.drop", "sys_admin", ""},
		{"lxc.cgroup2.devices.allow", "b 8:* rwm", "lxc.cgroup.devices.allow, lxc.cgroup2.devices.allow"},
		{"lxc.cgroup.devices.allow", "a", "lxc.cgroup.devices.allow, lxc.cgroup2.devices.allow"},
		{"lxc.cgroup2.devices.deny", "a", ""},
		{"lxc.namespace.keep", "net", "lxc.namespace.*"},
		{"lxc.namespace.share.pid", "1", "lxc.namespace.*"},
		{"lxc.namespace.clone", "mount pid", "lxc.namespace.*"},
		{"lxc.sysctl.kernel.panic", "1", "lxc.sysctl.*"},
		{"lxc.log.file", "/etc/cron.d/x", "lxc.log.file, lxc.console.logfile"},
		{"lxc.console.logfile", "/root/.bashrc", "lxc.log.file, lxc.console.logfile"},
		{"lxc.console.path", "/dev/tty1", "lxc.console.path"},
		{"lxc.console.path", "none", ""},
		{"lxc.environment", "AWS_SECRET_ACCESS_KEY", "lxc.environment"},
		{"lxc.environment", "APP_ENV=production", ""},
		{"lxc.keyring.session", "0", "lxc.keyring.session"},
		{"lxc.keyring.session", "1", ""},
		// Ordinary keys.
		{"lxc.signal.halt", "SIGRTMIN+3", ""},
		{"lxc.cgroup2.cpu.max", "50000 100000", ""},
		{"lxc.log.level", "1", ""},
		{"lxc.console.size", "auto", ""},
		{"lxc.tty.max", "4", ""},
		{"lxc.init.cmd", "/sbin/init", ""},
		{"lxc.start.delay", "5", ""},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			v := tc.value
			got, ok := ContainerConfigHostAccess(tc.key, &v)
			if ok != (tc.want != "") || got.Key != tc.want {
				t.Fatalf("ContainerConfigHostAccess(%q, %q) = %q, %v; want %q", tc.key, tc.value, got.Key, ok, tc.want)
			}
			if ok && got.Reason == "" {
				t.Errorf("%s has no reason", got.Key)
			}
		})
	}
}

// A value not known yet is reported when some value of the key would be.
func TestContainerConfigHostAccessUnknownValue(t *testing.T) {
	for key, want := range map[string]bool{
		"lxc.apparmor.profile": true,
		"lxc.environment":      true,
		"lxc.hook.pre-start":   true,
		"lxc.hook.start":       false,
		"lxc.signal.halt":      false,
	} {
		if _, got := ContainerConfigHostAccess(key, nil); got != want {
			t.Errorf("ContainerConfigHostAccess(%q, unknown) = %v, want %v", key, got, want)
		}
	}
}

// Keys that would reach outside but that a spec field owns are refused by
// Validate, not merely reported: the host scripts of interfaces, host bind
// mounts, includes and ID maps.
func TestContainerConfigRefusesOwnedHostAccess(t *testing.T) {
	for _, key := range []string{"lxc.net.0.script.up", "lxc.net.1.script.down", "lxc.mount.entry", "lxc.include", "lxc.idmap", "lxc.rootfs.path"} {
		s := ContainerSpec{Name: "c", Template: "t", Config: map[string]string{key: "/bin/true"}}
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), `config["`+key+`"]`) {
			t.Errorf("Validate with config %q: %v; want it refused", key, err)
		}
		if h, ok := ContainerConfigHostAccess(key, nil); ok {
			t.Errorf("%q is refused yet listed as %q: the description would offer what validation refuses", key, h.Key)
		}
	}
}

// Every entry can be described: a key, a reason, and it matches the key it
// names.
func TestContainerHostAccessKeys(t *testing.T) {
	keys := ContainerHostAccessKeys()
	if len(keys) == 0 {
		t.Fatal("no entries")
	}
	for _, h := range keys {
		if h.Key == "" || h.Reason == "" {
			t.Errorf("entry %+v lacks a key or a reason", h)
		}
		for _, k := range strings.Split(h.Key, ", ") {
			probe := strings.ReplaceAll(k, "*", "x")
			if got, ok := ContainerConfigHostAccess(probe, nil); !ok || got.Key != h.Key {
				t.Errorf("%q (from %q) is not reported as that entry: %q, %v", probe, h.Key, got.Key, ok)
			}
		}
	}
}
