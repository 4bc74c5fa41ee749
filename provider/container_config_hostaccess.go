package provider

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// containerConfigDescription is virt_container's config description. The
// keys that reach outside the container come from the layer's list, the
// one warnContainerHostAccess checks against, so the two cannot disagree.
func containerConfigDescription() string {
	var keys []string
	for _, h := range virt.ContainerHostAccessKeys() {
		item := backquoteKeys(h.Key)
		if h.Values != "" {
			item += " set to " + h.Values
		}
		keys = append(keys, item+": "+h.Reason)
	}
	return "Extra raw LXC configuration keys (`lxc.*`), written after everything else. Changes take effect at the " +
		"next start. Keys that an attribute of this resource manages are refused: set the attribute instead " +
		"(`lxc.net.*`, including the host scripts `lxc.net.N.script.up` and `lxc.net.N.script.down`; `lxc.idmap`, " +
		"which `unprivileged` and `idmap` set; `lxc.mount.entry`, which `mount` sets; `lxc.include`; " +
		"`lxc.rootfs.path`; `lxc.uts.name`; `lxc.cgroup2.memory.max`...). " +
		"**Some keys reach outside the container**: they run programs as root on the host, or give the container " +
		"host files, devices, namespaces or privileges, so whoever can set them has root on the host. They are " +
		"accepted, and the plan warns about each one that is set: " + strings.Join(keys, "; ") + "."
}

// backquoteKeys formats "lxc.a, lxc.b" as "`lxc.a`, `lxc.b`".
func backquoteKeys(keys string) string {
	parts := strings.Split(keys, ", ")
	for i, p := range parts {
		parts[i] = "`" + p + "`"
	}
	return strings.Join(parts, ", ")
}

// warnContainerHostAccess adds a warning for each config key that reaches
// outside the container: such keys are allowed, but nobody should set one
// by accident or pass a review without seeing it. A value not known yet is
// warned about when some value of its key would reach outside.
func warnContainerHostAccess(config types.Map, diags *diag.Diagnostics) {
	if config.IsNull() || config.IsUnknown() {
		return
	}
	elems := config.Elements()
	for _, key := range slices.Sorted(maps.Keys(elems)) { // stable order in the plan's output
		var value *string
		if s, ok := elems[key].(types.String); ok && !s.IsUnknown() {
			v := s.ValueString() // a null element is written as an empty value
			value = &v
		}
		h, reaches := virt.ContainerConfigHostAccess(key, value)
		if !reaches {
			continue
		}
		diags.AddAttributeWarning(path.Root("config").AtMapKey(key), "Container configuration reaches the host",
			hostAccessDetail(key, value, h))
	}
}

func hostAccessDetail(key string, value *string, h virt.ContainerHostAccess) string {
	set := fmt.Sprintf("config[%q]", key)
	if value != nil {
		set += fmt.Sprintf(" = %q", *value)
	} else if h.Values != "" {
		set += fmt.Sprintf(" (its value is not known yet; it reaches outside the container when set to %s)", h.Values)
	}
	return fmt.Sprintf("%s %s. Whoever can change this configuration can act as root on the host that runs "+
		"the container; keep the key only if that is intended.", set, h.Reason)
}
