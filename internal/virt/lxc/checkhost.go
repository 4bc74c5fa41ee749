//go:build linux && cgo

package lxc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	golxc "github.com/lxc/go-lxc"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// lxcTemplateDirs are where distributions install LXC's template scripts
// (lxc-busybox, lxc-download...); lxc-create looks in the one it was built
// with, which it does not say.
var lxcTemplateDirs = []string{"/usr/share/lxc/templates", "/usr/local/share/lxc/templates"}

// CheckHost reports what spec needs from this host and the host lacks, as
// virt.SpecErrors whose fields are the spec's in snake_case: a bridge that
// is not there, a mount source that is missing, the template container
// (missing, running, or of the other privilege), the archive (missing or
// unreadable), the LXC template script, root's subordinate id ranges for
// an unprivileged container, and limits this host's cgroups cannot
// enforce (a controller on neither hierarchy, swap without swap
// accounting, CPUs the host does not have). It reads the host and changes
// nothing, so a plan can call it; CreateContainer makes the same checks.
//
// The spec is taken with its defaults applied; what Validate reports is not
// repeated. The source is checked only when set: for an update, whose
// source UpdateContainer ignores, clear it.
func (c *Client) CheckHost(spec virt.ContainerSpec) error {
	tm := c.timeSteps("check host", spec.Name)
	defer tm.done()
	return c.checkHost(spec.WithDefaults(), nil)
}

// checkHost is CheckHost for a spec with defaults applied; tmpl, when not
// nil, is the template container, opened by the caller.
func (c *Client) checkHost(s virt.ContainerSpec, tmpl *golxc.Container) error {
	var errs virt.SpecErrors
	add := func(field, format string, args ...any) {
		errs = append(errs, &virt.SpecError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}

	for i, n := range s.Interfaces {
		if n.Bridge == "" || strings.ContainsRune(n.Bridge, '/') {
			continue // Validate's to report
		}
		if _, err := os.Stat(filepath.Join("/sys/class/net", n.Bridge, "bridge")); err == nil {
			continue
		}
		field := fmt.Sprintf("interfaces[%d].bridge", i)
		if _, err := os.Stat(filepath.Join("/sys/class/net", n.Bridge)); err == nil {
			add(field, "%q is a network interface on this host, but not a bridge", n.Bridge)
		} else {
			add(field, "there is no bridge %q on this host", n.Bridge)
		}
	}
	for i, m := range s.Mounts {
		if !filepath.IsAbs(m.Source) {
			continue
		}
		if _, err := os.Stat(m.Source); err != nil {
			add(fmt.Sprintf("mounts[%d].source", i), "cannot use %q on this host: %v", m.Source, pathErr(err))
		}
	}

	switch {
	case s.Template != "":
		c.checkTemplate(s, tmpl, &errs)
	case s.Archive != "":
		checkArchive(s.Archive, &errs)
	case s.LXCTemplate != nil:
		checkLXCTemplate(s.LXCTemplate.Name, &errs)
	}
	// A clone takes its template's id map; the others get root's ranges.
	if s.Template == "" && (s.Archive != "" || s.LXCTemplate != nil) && s.Unprivileged && len(s.IDMap) == 0 {
		if _, err := c.rootIDMap(); err != nil {
			add("unprivileged", "%v", err)
		}
	}

	errs = append(errs, c.cgroups.limitProblems(s)...)
	if s.CPUs != "" && c.hostCPUs != nil {
		if want, err := parseCPUSet(s.CPUs); err == nil {
			if missing := want.missing(c.hostCPUs); len(missing) > 0 {
				add("cpus", "%s not on this host, whose CPUs are %s", cpuNames(missing), c.hostCPUList)
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (c *Client) checkTemplate(s virt.ContainerSpec, tmpl *golxc.Container, errs *virt.SpecErrors) {
	add := func(field, format string, args ...any) {
		*errs = append(*errs, &virt.SpecError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if !virt.ValidContainerName(s.Template) || s.Template == s.Name {
		return // Validate's to report
	}
	if tmpl == nil {
		t, err := c.open(s.Template)
		switch {
		case errors.Is(err, virt.ErrNotFound):
			add("template", "no container %q to clone: not found under %s", s.Template, c.lxcPath)
			return
		case err != nil:
			add("template", "%v", err)
			return
		}
		defer c.release(t)
		tmpl = t
	}
	if st := tmpl.State(); st != golxc.STOPPED {
		add("template", "container %q is %s: a snapshot clone needs it stopped, since its root file system becomes the clone's lower layer",
			s.Template, strings.ToLower(st.String()))
	}
	tmplMap, err := templateIDMap(tmpl)
	if err != nil {
		add("template", "container %q: %v", s.Template, err)
		return
	}
	kind := map[bool]string{true: "unprivileged", false: "privileged"}
	switch tmplUnpriv := len(tmplMap) > 0; {
	case s.Unprivileged != tmplUnpriv:
		add("unprivileged", "template container %q is %s: a snapshot clone shares its files, so it must be %s too",
			s.Template, kind[tmplUnpriv], kind[tmplUnpriv])
	case len(s.IDMap) > 0 && !slices.Equal(s.IDMap, tmplMap):
		add("idmap", "differs from the id map of template container %q: a snapshot clone shares its files, whose owners are the template's mapped ids",
			s.Template)
	}
}

// templateIDMap reads a container's lxc.idmap lines.
func templateIDMap(ct *golxc.Container) ([]virt.IDMapEntry, error) {
	var out []virt.IDMapEntry
	for _, v := range ct.ConfigItem("lxc.idmap") {
		if strings.TrimSpace(v) == "" {
			continue
		}
		e, err := parseIDMapEntry(v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// checkArchive makes sure the archive is a regular file this process can
// open. It is stat-ed before it is opened: opening a FIFO would block.
func checkArchive(path string, errs *virt.SpecErrors) {
	add := func(format string, args ...any) {
		*errs = append(*errs, &virt.SpecError{Field: "archive", Reason: fmt.Sprintf(format, args...)})
	}
	if !filepath.IsAbs(path) {
		add("%q is not an absolute path", path)
		return
	}
	st, err := os.Stat(path)
	if err != nil {
		add("cannot use %q: %v", path, pathErr(err))
		return
	}
	if !st.Mode().IsRegular() {
		add("%q is not a regular file", path)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		add("cannot read %q: %v", path, pathErr(err))
		return
	}
	_ = f.Close() // opened read-only to prove it can be: nothing to flush
}

// checkLXCTemplate makes sure the template script lxc-create would run is
// there: by name in LXC's template directory, or at an absolute path.
func checkLXCTemplate(name string, errs *virt.SpecErrors) {
	add := func(format string, args ...any) {
		*errs = append(*errs, &virt.SpecError{Field: "lxc_template.name", Reason: fmt.Sprintf(format, args...)})
	}
	if name == "" {
		return // Validate's to report
	}
	if filepath.IsAbs(name) {
		st, err := os.Stat(name)
		switch {
		case err != nil:
			add("cannot use the template script %q: %v", name, pathErr(err))
		case !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0:
			add("%q is not an executable file", name)
		}
		return
	}
	if strings.ContainsRune(name, '/') {
		return // Validate's to report
	}
	var looked []string
	for _, d := range lxcTemplateDirs {
		p := filepath.Join(d, "lxc-"+name)
		if _, err := os.Stat(p); err == nil {
			return
		}
		looked = append(looked, p)
	}
	add("there is no LXC template script %q on this host (looked for %s; Debian's lxc and lxc-templates packages install them)",
		name, strings.Join(looked, " and "))
}

// pathErr drops the operation and path from an *fs.PathError, which the
// messages above say in their own words.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// cpuNames says "CPU 4" or "CPUs 4, 5".
func cpuNames(cpus []int) string {
	s := make([]string, len(cpus))
	for i, n := range cpus {
		s[i] = strconv.Itoa(n)
	}
	if len(s) == 1 {
		return "CPU " + s[0] + " is"
	}
	return "CPUs " + strings.Join(s, ", ") + " are"
}
