package container

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeLookPath makes debootstrap and dnf "installed" and zypper not.
func fakeLookPath(t *testing.T) {
	t.Helper()
	orig := lookPath
	lookPath = func(name string) (string, error) {
		if name == "zypper" {
			return "", errors.New("not found")
		}
		return "/usr/sbin/" + name, nil
	}
	t.Cleanup(func() { lookPath = orig })
}

func TestConfigPrepareDefaults(t *testing.T) {
	fakeLookPath(t)
	var c Config
	warns, err := c.Prepare(map[string]interface{}{
		"bootstrap":       map[string]interface{}{"release": "bookworm"},
		"output_template": "tmpl",
	})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	b := c.Bootstrap
	if b.Tool != "debootstrap" || b.Mirror != DefaultDebianMirror || b.Variant != "minbase" {
		t.Errorf("bootstrap defaults: %+v", b)
	}
	if c.ContainerName != "tmpl" {
		t.Errorf("container_name = %q, want the output template's name", c.ContainerName)
	}
	if c.Unprivileged == nil || !*c.Unprivileged {
		t.Errorf("unprivileged should default to true")
	}
	if c.Bridge != "lxcbr0" || c.OutputFormat != "tar.gz" || c.StopTimeout != 30*time.Second || c.AddressTimeout != 2*time.Minute {
		t.Errorf("defaults: bridge %q format %q stop %s address %s", c.Bridge, c.OutputFormat, c.StopTimeout, c.AddressTimeout)
	}
}

func TestConfigPrepareGeneratedName(t *testing.T) {
	fakeLookPath(t)
	dir := t.TempDir()
	var c Config
	_, err := c.Prepare(map[string]interface{}{
		"lxc_template":   map[string]interface{}{"name": "busybox"},
		"output_archive": filepath.Join(dir, "out.tar.gz"),
		"unprivileged":   false,
	})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if !strings.HasPrefix(c.ContainerName, "packer-") || len(c.ContainerName) != len("packer-")+8 {
		t.Errorf("container_name = %q, want packer-<8 chars>", c.ContainerName)
	}
	if *c.Unprivileged {
		t.Errorf("unprivileged = false was not kept")
	}
}

func TestConfigPrepareErrors(t *testing.T) {
	fakeLookPath(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "root.tar")
	if err := os.WriteFile(archive, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.tar.gz")
	busybox := map[string]interface{}{"name": "busybox"}

	tests := []struct {
		name string
		raw  map[string]interface{}
		want []string
	}{
		{
			name: "no source, no output",
			raw:  map[string]interface{}{},
			want: []string{
				"bootstrap, archive, lxc_template or template: a build needs exactly one source (none is set)",
				"output_template or output_archive: at least one output is required",
			},
		},
		{
			name: "two sources",
			raw:  map[string]interface{}{"archive": archive, "template": "base", "output_archive": out},
			want: []string{"archive, template: a build needs exactly one source, got archive and template"},
		},
		{
			name: "bootstrap problems",
			raw: map[string]interface{}{
				"bootstrap":       map[string]interface{}{"tool": "pacstrap", "variant": "tiny", "packages": []string{"ok", "bad name"}},
				"output_template": "t",
			},
			want: []string{
				`bootstrap.tool: "pacstrap" is not one of "debootstrap", "dnf", "zypper"`,
				"bootstrap.release: required",
				"bootstrap.packages[1]: \"bad name\" is not a package name",
			},
		},
		{
			name: "debootstrap variant",
			raw: map[string]interface{}{
				"bootstrap":       map[string]interface{}{"release": "bookworm", "variant": "tiny", "mirror": "deb.debian.org"},
				"output_template": "t",
			},
			want: []string{
				`bootstrap.variant: "tiny" is not one of "minbase", "buildd", "fakechroot", "-"`,
				`bootstrap.mirror: "deb.debian.org" is neither a URL nor an absolute path`,
			},
		},
		{
			name: "tool not on the host",
			raw: map[string]interface{}{
				"bootstrap":       map[string]interface{}{"tool": "zypper", "release": "15.6", "mirror": "http://x/", "packages": []string{"bash"}},
				"output_template": "t",
			},
			want: []string{"bootstrap.tool: zypper is not installed on this host (not found in PATH)"},
		},
		{
			name: "dnf needs mirror and packages, has no variant",
			raw: map[string]interface{}{
				"bootstrap":       map[string]interface{}{"tool": "dnf", "release": "40", "variant": "minbase"},
				"output_template": "t",
			},
			want: []string{
				"bootstrap.mirror: required for dnf",
				"bootstrap.variant: only debootstrap has variants, not dnf",
				"bootstrap.packages: dnf installs only what it is asked for",
			},
		},
		{
			name: "missing archive",
			raw:  map[string]interface{}{"archive": filepath.Join(dir, "nope.tar"), "output_template": "t"},
			want: []string{"archive: stat " + filepath.Join(dir, "nope.tar") + ": no such file or directory"},
		},
		{
			name: "archive is a directory",
			raw:  map[string]interface{}{"archive": dir, "output_template": "t"},
			want: []string{"archive: " + dir + " is not a regular file"},
		},
		{
			name: "lxc_template without name",
			raw:  map[string]interface{}{"lxc_template": map[string]interface{}{"args": []string{"-x"}}, "output_template": "t"},
			want: []string{"lxc_template.name: required"},
		},
		{
			name: "bad names",
			raw: map[string]interface{}{
				"template": "-base", "output_template": "bad/name", "hostname": "has space",
			},
			want: []string{
				`template: "-base" is not a valid container name`,
				`output_template: "bad/name" is not a valid container name`,
				`hostname: "has space" is not a valid hostname`,
			},
		},
		{
			name: "output template is the source",
			raw:  map[string]interface{}{"template": "base", "output_template": "base"},
			want: []string{`output_template: "base" is the source template`},
		},
		{
			name: "container_name differs from output_template",
			raw:  map[string]interface{}{"lxc_template": busybox, "output_template": "t", "container_name": "other"},
			want: []string{`container_name: the build container becomes output_template "t"`},
		},
		{
			name: "output archive directory",
			raw:  map[string]interface{}{"lxc_template": busybox, "output_archive": filepath.Join(dir, "no", "x.tar.gz")},
			want: []string{"output_archive: directory " + filepath.Join(dir, "no") + " does not exist"},
		},
		{
			name: "output format and metadata",
			raw: map[string]interface{}{
				"lxc_template": busybox, "output_archive": out, "output_format": "zip",
				"metadata": map[string]string{"Bad-Key": "x", "build_time": "now", "ok": "two\nlines"},
			},
			want: []string{
				`output_format: "zip" is not one of "tar.gz", "lxd"`,
				`metadata["Bad-Key"]: not a metadata key`,
				`metadata["build_time"]: set by the build; it cannot be given`,
				`metadata["ok"]: value must be a single line`,
			},
		},
		{
			name: "network and timeouts",
			raw: map[string]interface{}{
				"lxc_template": busybox, "output_template": "t",
				"bridge": "a/b", "ipv4_address": "10.0.3.5", "ipv4_gateway": "x",
				"stop_timeout": "-1s",
			},
			want: []string{
				"bridge: must not contain '/'",
				`ipv4_address: "10.0.3.5" is not an IPv4 address in CIDR form`,
				`ipv4_gateway: "x" is not an IPv4 address`,
				"stop_timeout: must not be negative, got -1s",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			_, err := c.Prepare(tt.raw)
			if err == nil {
				t.Fatalf("Prepare succeeded, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestConfigPrepareLXDWithoutArchiveWarns(t *testing.T) {
	fakeLookPath(t)
	var c Config
	warns, err := c.Prepare(map[string]interface{}{
		"lxc_template": map[string]interface{}{"name": "busybox"}, "output_template": "t", "output_format": "lxd",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 1 || !strings.Contains(warns[0], "no effect without output_archive") {
		t.Errorf("warnings = %q", warns)
	}
}
