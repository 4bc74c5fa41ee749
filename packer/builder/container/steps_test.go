package container

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// fakeDriver records calls; containers it knows exist.
type fakeDriver struct {
	driver
	existing  map[string]bool
	destroyed []string
	hostErr   error
	// exec answers Exec: exit status, and what to write to stdout.
	exec  func(cmd virt.ExecSpec) (int, error)
	execs [][]string
}

func (f *fakeDriver) LXCPath() string { return "/var/lib/lxc" }

func (f *fakeDriver) CheckHost(virt.ContainerSpec) error { return f.hostErr }

func (f *fakeDriver) Container(_ context.Context, name string) (*virt.ContainerSpec, error) {
	if f.existing[name] {
		return &virt.ContainerSpec{Name: name}, nil
	}
	return nil, virt.NotFoundError("container", name)
}

func (f *fakeDriver) DestroyContainer(_ context.Context, name string) error {
	f.destroyed = append(f.destroyed, name)
	delete(f.existing, name)
	return nil
}

func (f *fakeDriver) Exec(_ context.Context, _ string, cmd virt.ExecSpec) (int, error) {
	f.execs = append(f.execs, cmd.Args)
	return f.exec(cmd)
}

func withRoot(t *testing.T) {
	t.Helper()
	orig := geteuid
	geteuid = func() int { return 0 }
	t.Cleanup(func() { geteuid = orig })
}

func TestCheckHost(t *testing.T) {
	withRoot(t)
	dir := t.TempDir()
	taken := filepath.Join(dir, "taken.tar.gz")
	if err := os.WriteFile(taken, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ui := packersdk.TestUi(t)
	tests := []struct {
		name      string
		cfg       Config
		existing  []string
		hostErr   error
		want      []string
		destroyed []string
	}{
		{name: "free", cfg: Config{ContainerName: "t", OutputTemplate: "t"}},
		{
			name: "template taken", cfg: Config{ContainerName: "t", OutputTemplate: "t"}, existing: []string{"t"},
			want: []string{`output_template: a container "t" already exists in /var/lib/lxc; choose another name, remove it, or build with -force`},
		},
		{
			name: "build container taken", cfg: Config{ContainerName: "packer-1", OutputArchive: filepath.Join(dir, "new.tar.gz")}, existing: []string{"packer-1"},
			want: []string{`container_name: a container "packer-1" already exists`},
		},
		{
			name: "archive taken", cfg: Config{ContainerName: "b", OutputArchive: taken},
			want: []string{"output_archive: " + taken + " already exists; remove it or build with -force"},
		},
		{
			name: "force replaces", existing: []string{"t"}, destroyed: []string{"t"},
			cfg: func() Config {
				c := Config{ContainerName: "t", OutputTemplate: "t", OutputArchive: taken}
				c.PackerForce = true
				return c
			}(),
		},
		{
			name: "host lacks things", cfg: Config{ContainerName: "t", OutputTemplate: "t"},
			hostErr: virt.SpecErrors{{Field: "interfaces[0].bridge", Reason: `there is no bridge "br9" on this host`}, {Field: "template", Reason: "not found"}},
			want:    []string{`bridge: there is no bridge "br9" on this host`, "template: not found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeDriver{existing: map[string]bool{}, hostErr: tt.hostErr}
			for _, n := range tt.existing {
				f.existing[n] = true
			}
			err := checkHost(context.Background(), &tt.cfg, f, ui)
			if len(tt.want) == 0 && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v does not say %q", err, w)
				}
			}
			if !reflect.DeepEqual(f.destroyed, tt.destroyed) {
				t.Errorf("destroyed %v, want %v", f.destroyed, tt.destroyed)
			}
		})
	}
}

func TestCheckHostNeedsRoot(t *testing.T) {
	orig := geteuid
	geteuid = func() int { return 1000 }
	defer func() { geteuid = orig }()
	err := checkHost(context.Background(), &Config{ContainerName: "t", OutputTemplate: "t"}, &fakeDriver{}, packersdk.TestUi(t))
	if err == nil || !strings.Contains(err.Error(), "as root") {
		t.Errorf("error = %v", err)
	}
}

func TestCreateContainerCleanup(t *testing.T) {
	for _, tt := range []struct {
		name    string
		output  string
		failed  string // state key set
		destroy bool
	}{
		{name: "template kept on success", output: "c"},
		{name: "archive-only build container removed", output: "", destroy: true},
		{name: "removed on error", output: "c", failed: stateError, destroy: true},
		{name: "removed on interrupt", output: "c", failed: multistep.StateCancelled, destroy: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeDriver{existing: map[string]bool{"c": true}}
			state := new(multistep.BasicStateBag)
			state.Put(stateConfig, &Config{ContainerName: "c", OutputTemplate: tt.output})
			state.Put(stateDriver, f)
			state.Put(stateUI, packersdk.TestUi(t))
			if tt.failed != "" {
				state.Put(tt.failed, errors.New("x"))
			}
			s := &stepCreateContainer{created: "c"}
			s.Cleanup(state)
			if got := len(f.destroyed) == 1; got != tt.destroy {
				t.Errorf("destroyed %v, want destroy=%t", f.destroyed, tt.destroy)
			}
		})
	}
}

func TestOutputArchiveCleanup(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.tar.gz")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	state := new(multistep.BasicStateBag)
	state.Put(stateUI, packersdk.TestUi(t))
	s := &stepOutputArchive{written: []string{p, p + ".gone"}}
	s.Cleanup(state)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("a successful build lost its archive: %v", err)
	}
	state.Put(multistep.StateCancelled, true)
	s.Cleanup(state)
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted build kept its archive: %v", err)
	}
}

func TestBootstrapCommands(t *testing.T) {
	tests := []struct {
		b    BootstrapConfig
		want [][]string
	}{
		{
			BootstrapConfig{Tool: "debootstrap", Release: "bookworm", Mirror: "http://m/debian", Variant: "minbase", Packages: []string{"init", "curl"}},
			[][]string{{"debootstrap", "--variant=minbase", "--include=init,curl", "bookworm", "/r", "http://m/debian"}},
		},
		{
			BootstrapConfig{Tool: "debootstrap", Release: "bookworm", Mirror: "http://m/debian", Variant: "-"},
			[][]string{{"debootstrap", "bookworm", "/r", "http://m/debian"}},
		},
		{
			BootstrapConfig{Tool: "dnf", Release: "40", Mirror: "http://m/f40", Packages: []string{"bash"}},
			[][]string{{"dnf", "--assumeyes", "--installroot=/r", "--releasever=40", "--setopt=install_weak_deps=False",
				"--disablerepo=*", "--repofrompath=virt-bootstrap,http://m/f40", "--enablerepo=virt-bootstrap", "install", "bash"}},
		},
		{
			BootstrapConfig{Tool: "zypper", Release: "15.6", Mirror: "http://m/oss", Packages: []string{"bash"}},
			[][]string{
				{"zypper", "--non-interactive", "--root", "/r", "addrepo", "http://m/oss", "virt-bootstrap"},
				{"zypper", "--non-interactive", "--gpg-auto-import-keys", "--root", "/r", "--releasever", "15.6", "install", "--no-recommends", "bash"},
			},
		},
	}
	for _, tt := range tests {
		got, err := bootstrapCommands(&tt.b, "/r")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.b.Tool, got, tt.want)
		}
	}
}

func TestParseMountsUnder(t *testing.T) {
	info := `22 1 0:21 / / rw - ext4 /dev/sda1 rw
40 22 0:5 / /tmp/packer-virt-container-1/rootfs/proc rw - proc proc rw
41 22 0:6 / /tmp/packer-virt-container-1/rootfs/sys rw - sysfs sys rw
42 40 0:7 / /tmp/packer-virt-container-1/rootfs/proc/sys/fs/binfmt_misc rw - binfmt_misc b rw
43 22 0:8 / /tmp/packer-virt-container-10 rw - tmpfs t rw
44 22 0:9 / /tmp/packer-virt-container-1/with\040space rw - tmpfs t rw
`
	got := parseMountsUnder(info, "/tmp/packer-virt-container-1/")
	want := []string{
		"/tmp/packer-virt-container-1/with space",
		"/tmp/packer-virt-container-1/rootfs/sys",
		"/tmp/packer-virt-container-1/rootfs/proc/sys/fs/binfmt_misc",
		"/tmp/packer-virt-container-1/rootfs/proc",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestParseOSReleaseAndMetadata(t *testing.T) {
	osr := parseOSRelease(`PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME='Debian GNU/Linux'
VERSION_ID="12"
# comment
ID=debian
`)
	if osr["ID"] != "debian" || osr["VERSION_ID"] != "12" || osr["NAME"] != "Debian GNU/Linux" || osr["PRETTY_NAME"] != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("parsed %v", osr)
	}
	built := time.Date(2026, 11, 26, 21, 30, 0, 0, time.UTC)
	md := buildMetadata(&Config{Metadata: map[string]string{"release": "12.8", "team": "web"}}, osr, built)
	if md["os"] != "debian" || md["release"] != "12.8" || md["team"] != "web" || md["build_time"] != "2026-11-26T21:30:00Z" || md["arch"] == "" {
		t.Errorf("metadata %v", md)
	}
	// No os-release: the source names it.
	md = buildMetadata(&Config{LXCTemplate: &LXCTemplateConfig{Name: "busybox"}}, map[string]string{}, built)
	if md["os"] != "busybox" || md["release"] != "" {
		t.Errorf("busybox metadata %v", md)
	}
	md = buildMetadata(&Config{Bootstrap: &BootstrapConfig{Release: "trixie"}}, map[string]string{"ID": "debian", "VERSION_CODENAME": "trixie"}, built)
	if md["release"] != "trixie" {
		t.Errorf("testing metadata %v", md)
	}
}

func TestLXDMetadataYAML(t *testing.T) {
	y := string(lxdMetadataYAML(map[string]string{"os": "debian", "release": "12", "arch": "amd64", "build_time": "2026-11-26T21:30:00Z", "note": `a "quoted": value`}))
	want := `architecture: "x86_64"
creation_date: 1795728600
properties:
  arch: "amd64"
  architecture: "x86_64"
  build_time: "2026-11-26T21:30:00Z"
  description: "debian 12 x86_64 (2026-11-26T21:30:00Z)"
  note: "a \"quoted\": value"
  os: "debian"
  release: "12"
templates: {}
`
	if y != want {
		t.Errorf("got:\n%s\nwant:\n%s", y, want)
	}
}

func TestPrefixTar(t *testing.T) {
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "./bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: 2},
		{Name: "./bin/sh", Typeflag: tar.TypeSymlink, Linkname: "/bin/busybox"},
		{Name: "./bin/ash", Typeflag: tar.TypeLink, Linkname: "./bin/busybox"},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			_, _ = tw.Write([]byte("bb"))
		}
	}
	_ = tw.Close()
	var out bytes.Buffer
	ow := tar.NewWriter(&out)
	if err := prefixTar(tar.NewReader(&in), ow, "rootfs"); err != nil {
		t.Fatal(err)
	}
	_ = ow.Close()
	var got []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name+" -> "+h.Linkname)
	}
	want := []string{"rootfs/ -> ", "rootfs/bin/ -> ", "rootfs/bin/busybox -> ", "rootfs/bin/sh -> /bin/busybox", "rootfs/bin/ash -> rootfs/bin/busybox"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
