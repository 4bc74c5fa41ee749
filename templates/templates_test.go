package templates_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
)

// root is the module root, one level above this package.
func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return r
}

// templateDirs are the folders under templates/<kind>/ that hold a
// .pkr.hcl file, as kind/name.
func templateDirs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root(t), "templates", "*", "*", "*.pkr.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join(root(t), "templates"), filepath.Dir(f))
		rel = filepath.ToSlash(rel)
		if !strings.HasPrefix(rel, "shared/") && !slices.Contains(dirs, rel) {
			dirs = append(dirs, rel)
		}
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		t.Fatal("no templates under templates/")
	}
	return dirs
}

// The naming: templates/<kind>/<os>-<version>, with <os> from its list.
var templateNameRE = regexp.MustCompile(`^(container|machine)/(centos|debian|fedora|scientific|suse|ubuntu|freebsd|windows-2000|windows-xp|windows-2003|windows-2008|windows-7|windows-8)(-[a-z0-9][a-z0-9.-]*)?$`)

func TestTemplateNames(t *testing.T) {
	for _, d := range templateDirs(t) {
		if !templateNameRE.MatchString(d) {
			t.Errorf("templates/%s: not <kind>/<os>-<version> with an OS from the supported list", d)
		}
		if _, err := os.Stat(filepath.Join(root(t), "templates", d, "README.md")); err != nil && strings.HasPrefix(d, "machine/") {
			t.Errorf("templates/%s: no README.md", d)
		}
	}
}

// sharedLinks are the files a template folder takes from templates/shared:
// they must be links to the one shared file, never copies that drift.
var sharedLinks = map[string]string{
	"shared.pkr.hcl":       "../../shared/machine.pkr.hcl",
	"unix.pkr.hcl":         "../../shared/unix.pkr.hcl",
	"windows.pkr.hcl":      "../../shared/windows.pkr.hcl",
	"container.pkr.hcl":    "../../shared/container.pkr.hcl",
	"unattended.pkr.hcl":   "../../shared/windows-unattended.pkr.hcl",
	"textmode.pkr.hcl":     "../../shared/windows-textmode.pkr.hcl",
	"ubuntu.pkr.hcl":       "../../shared/container-ubuntu.pkr.hcl",
	"rpm.pkr.hcl":          "../../shared/container-rpm.pkr.hcl",
	"http-install.pkr.hcl": "../../shared/machine-http-install.pkr.hcl",
}

func TestSharedFilesAreLinks(t *testing.T) {
	for _, d := range templateDirs(t) {
		for name, want := range sharedLinks {
			p := filepath.Join(root(t), "templates", d, name)
			fi, err := os.Lstat(p)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("templates/%s/%s is a copy: make it a symlink to %s", d, name, want)
				continue
			}
			if got, _ := os.Readlink(p); got != want {
				t.Errorf("templates/%s/%s links to %q, want %q", d, name, got, want)
			}
		}
	}
}

var variableRE = regexp.MustCompile(`(?m)^variable\s+"([A-Za-z0-9_-]+)"\s*\{`)

// variables are a template folder's declared variables (its own files and
// the shared ones it links), and whether each has a default.
func variables(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.pkr.hcl"))
	vars := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		locs := variableRE.FindAllSubmatchIndex(b, -1)
		for i, m := range locs {
			end := len(b)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			block := b[m[1]:end]
			// A block ends at the first line that is a lone "}".
			if j := regexp.MustCompile(`(?m)^\}`).FindIndex(block); j != nil {
				block = block[:j[0]]
			}
			vars[string(b[m[2]:m[3]])] = regexp.MustCompile(`(?m)^\s*default\s*=`).Match(block)
		}
	}
	return vars
}

// fixture is what the templates' required variables point at in tests: a
// small "ISO" with its checksum, a virtio-win tree made from the shared map,
// the Debian test image. Nothing is downloaded.
type fixture struct {
	values map[string]string
	// stubs is a directory of stand-ins for host tools (PATH, validate only).
	stubs string
}

func newFixture(t *testing.T, dir string) *fixture {
	t.Helper()
	iso := filepath.Join(dir, "installer.iso")
	if err := os.WriteFile(iso, []byte("not an installer, only a file with a checksum\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("not an installer, only a file with a checksum\n"))
	virtio := filepath.Join(dir, "virtio-win")
	for _, p := range virtioMap(t).paths() {
		full := filepath.Join(virtio, filepath.FromSlash(p))
		if strings.HasSuffix(p, ".msi") {
			mustWrite(t, full, "msi")
			continue
		}
		base := strings.ToLower(strings.Split(p, "/")[0])
		for _, ext := range []string{"sys", "inf", "cat"} {
			mustWrite(t, filepath.Join(full, base+"."+ext), base)
		}
	}
	msi := filepath.Join(dir, "CloudbaseInitSetup_x64.msi")
	mustWrite(t, msi, "msi")
	key := filepath.Join(dir, "id_ed25519")
	run(t, dir, os.Environ(), "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "templates-test", "-f", key)
	// The container builder's Prepare checks that the RPM distributions'
	// bootstrap tools are on the host; Debian packages none of them.
	// validate never runs them, so stand-ins that only exist are enough.
	stubs := filepath.Join(dir, "bin")
	for _, tool := range []string{"dnf", "yum", "zypper"} {
		mustWrite(t, filepath.Join(stubs, tool), "#!/bin/sh\necho 'templates_test stand-in: not for building' >&2\nexit 1\n")
		if err := os.Chmod(filepath.Join(stubs, tool), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cache := testenv.CacheDir()
	return &fixture{stubs: stubs, values: map[string]string{
		"iso_url":        iso,
		"iso_checksum":   "sha256:" + hex.EncodeToString(sum[:]),
		"ssh_password":   testPassword,
		"admin_password": testPassword,
		"product_key":    "AAAAA-BBBBB-CCCCC-DDDDD-EEEEE",
		"virtio_win_dir": virtio,
		// The image source of debian-12: paths need only exist for validate.
		"image": fmt.Sprintf(`{disk=%q,kernel=%q,initrd=%q,ssh_key=%q}`,
			filepath.Join(cache, "debian", "disk.qcow2"), iso, iso, key),
		"ssh_private_key_file": key,
		"ssh_public_key_file":  key,
		"output_archive":       filepath.Join(dir, "out.tar.gz"),
	}}
}

// testPassword is the credentials' test value: no character that an
// answer file would need escaped.
const testPassword = "Test-Passw0rd"

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// args gives -var for each declared variable the fixture has a value for;
// required ones only when requiredOnly (the defaults render the rest).
func (f *fixture) args(t *testing.T, vars map[string]bool, requiredOnly bool) []string {
	t.Helper()
	var args []string
	names := make([]string, 0, len(vars))
	for v := range vars {
		names = append(names, v)
	}
	sort.Strings(names)
	for _, v := range names {
		val, ok := f.values[v]
		switch {
		case ok && (!requiredOnly || !vars[v]):
			args = append(args, "-var", v+"="+val)
		case !ok && !vars[v]:
			t.Errorf("variable %q has no default and the test has no value for it: add one to newFixture", v)
		}
	}
	return args
}

// packerEnv builds the plugin from this tree and installs it where only
// this test's packer looks.
func packerEnv(t *testing.T) (string, []string) {
	t.Helper()
	packer := testenv.PackerBinary(t)
	dir := t.TempDir()
	env := append(os.Environ(),
		"PACKER_PLUGIN_PATH="+filepath.Join(dir, "plugins"),
		"PACKER_CONFIG_DIR="+dir,
		"CHECKPOINT_DISABLE=1",
	)
	bin := filepath.Join(dir, "packer-plugin-virt")
	run(t, root(t), os.Environ(), "go", "build", "-o", bin, "./packer/cmd/packer-plugin-virt")
	run(t, dir, env, packer, "plugins", "install", "--path", bin, "github.com/virtforge/virt")
	return packer, env
}

func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	out, err := runErr(dir, env, "", name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runErr(dir string, env []string, stdin, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out, nil
}

// TestTemplates validates every template under templates/ (machine and
// container) with the real packer and the plugin built from this tree:
// syntax, the full validation (the builders' Prepare) with test values for
// the required variables, every variable and local rendered with the
// defaults, and every answer file the template renders, checked by kind.
func TestTemplates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin and runs packer (run without -short)")
	}
	packer, env := packerEnv(t)
	fx := newFixture(t, t.TempDir())
	for _, d := range templateDirs(t) {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(root(t), "templates", filepath.FromSlash(d))
			vars := variables(t, dir)
			run(t, dir, env, packer, "validate", "-syntax-only", ".")
			validateEnv := append(slices.Clone(env), "PATH="+fx.stubs+string(os.PathListSeparator)+os.Getenv("PATH"))
			run(t, dir, validateEnv, packer, append(append([]string{"validate"}, fx.args(t, vars, false)...), ".")...)

			// Every variable and local evaluated with the defaults (only
			// the required variables given): a typo in a default or a
			// local fails here, not in a user's build.
			exprs := []string{}
			for v := range vars {
				exprs = append(exprs, fmt.Sprintf("%q = var.%s", v, v))
			}
			sort.Strings(exprs)
			expr := "jsonencode({" + strings.Join(exprs, ", ") + "})"
			out, err := runErr(dir, env, expr+"\n", packer, append(append([]string{"console"}, fx.args(t, vars, true)...), ".")...)
			if err != nil || !json.Valid(bytes.TrimSpace(out)) {
				t.Fatalf("render the variables with their defaults: %v\n%s", err, out)
			}
			answers := renderAnswerFiles(t, dir, env, packer, fx.args(t, vars, true))
			for name, content := range answers {
				t.Run(name, func(t *testing.T) { checkAnswerFile(t, d, name, content) })
			}
		})
	}
}

// renderAnswerFiles evaluates a template's local.answer_files (the
// convention of templates/machine: file name to rendered content) with
// packer console, so the files checked are the ones packer would serve.
func renderAnswerFiles(t *testing.T, dir string, env []string, packer string, args []string) map[string]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.pkr.hcl"))
	declares := false
	for _, f := range files {
		b, _ := os.ReadFile(f)
		declares = declares || regexp.MustCompile(`(?m)^\s*answer_files\s*=`).Match(b)
	}
	if !declares {
		if strings.Contains(dir, string(filepath.Separator)+"machine"+string(filepath.Separator)) {
			t.Errorf("a machine template declares its rendered answer files as local.answer_files")
		}
		return nil
	}
	out, err := runErr(dir, env, "jsonencode(local.answer_files)\n", packer, append(append([]string{"console"}, args...), ".")...)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(bytes.TrimSpace(out), &m); err != nil {
		t.Fatalf("local.answer_files: %v\n%s", err, out)
	}
	// Packer masks the values of sensitive variables in everything it
	// prints; put the test password back so the files parse as packer
	// serves them.
	for name, content := range m {
		m[name] = strings.ReplaceAll(content, "<sensitive>", testPassword)
	}
	return m
}

func checkAnswerFile(t *testing.T, template, name, content string) {
	switch {
	case strings.HasSuffix(name, ".xml"):
		checkXML(t, name, content)
		if name == "autounattend.xml" {
			checkAutounattend(t, template, content)
		}
	case name == "ks.cfg":
		checkKickstart(t, content)
	case name == "preseed.cfg":
		checkPreseed(t, content)
	case name == "user-data":
		checkAutoinstall(t, content)
	case name == "installerconfig":
		checkInstallerconfig(t, content)
	case name == "winnt.sif":
		checkWinntSif(t, content)
	default:
		t.Errorf("%s: no check knows this kind of answer file: add one", name)
	}
}

// checkXML runs xmllint (libxml2-utils, in scripts/testenv's packages): no
// schema for autounattend.xml or AutoYaST profiles is packaged for Debian,
// so well-formedness is what can be checked.
func checkXML(t *testing.T, name, content string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	mustWrite(t, p, content)
	if _, err := runErr("", os.Environ(), "", "xmllint", "--noout", p); err != nil {
		t.Error(err)
	}
}

// checkAutounattend checks that the windowsPE pass loads exactly the
// storage and network drivers the shared map names for the template's OS.
func checkAutounattend(t *testing.T, template, content string) {
	t.Helper()
	var u struct {
		Settings []struct {
			Pass       string `xml:"pass,attr"`
			Components []struct {
				Name  string   `xml:"name,attr"`
				Arch  string   `xml:"processorArchitecture,attr"`
				Paths []string `xml:"DriverPaths>PathAndCredentials>Path"`
			} `xml:"component"`
		} `xml:"settings"`
	}
	if err := xml.Unmarshal([]byte(content), &u); err != nil {
		t.Fatal(err)
	}
	var paths []string
	arch := ""
	for _, s := range u.Settings {
		for _, c := range s.Components {
			if s.Pass == "windowsPE" && c.Name == "Microsoft-Windows-PnpCustomizationsWinPE" {
				paths, arch = c.Paths, c.Arch
			}
		}
	}
	osName := filepath.Base(template)
	drivers, ok := virtioMap(t).OS[osName][arch]
	if !ok {
		t.Fatalf("the shared map has no %s/%s (the windowsPE pass is for %q)", osName, arch, arch)
	}
	for _, kind := range []string{"viostor", "NetKVM"} {
		want := strings.ReplaceAll(*drivers[kind], "/", `\`)
		found := false
		for _, p := range paths {
			found = found || strings.HasSuffix(p, `:\`+want)
		}
		if !found {
			t.Errorf("windowsPE DriverPaths %q do not load %s from %s", paths, kind, want)
		}
	}
}

// Kickstart: pykickstart (ksvalidator) is not packaged for Debian 12, so
// this checks what it would catch first: known commands, sections closed
// with %end, and the commands an unattended install needs.
var kickstartCommands = []string{
	"auth", "authconfig", "authselect", "autopart", "bootloader", "cdrom", "clearpart", "cmdline", "eula",
	"firewall", "firstboot", "graphical", "harddrive", "ignoredisk", "install", "keyboard", "lang", "logvol",
	"network", "nfs", "part", "partition", "poweroff", "raid", "reboot", "repo", "rootpw", "selinux",
	"services", "shutdown", "skipx", "sshkey", "text", "timezone", "url", "user", "volgroup", "zerombr",
}

func checkKickstart(t *testing.T, content string) {
	t.Helper()
	seen := map[string]bool{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(content))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "%"):
			word := strings.Fields(line)[0]
			switch {
			case word == "%end" && section == "":
				t.Errorf("ks.cfg:%d: %%end outside a section", n)
			case word == "%end":
				section = ""
			case section != "":
				t.Errorf("ks.cfg:%d: %s inside %s (missing %%end)", n, word, section)
			case slices.Contains([]string{"%packages", "%post", "%pre", "%pre-install", "%onerror", "%addon", "%anaconda"}, word):
				section = word
			default:
				t.Errorf("ks.cfg:%d: unknown section %s", n, word)
			}
		case section != "":
		default:
			cmd := strings.Fields(line)[0]
			if !slices.Contains(kickstartCommands, cmd) {
				t.Errorf("ks.cfg:%d: unknown kickstart command %q", n, cmd)
			}
			seen[cmd] = true
		}
	}
	if section != "" {
		t.Errorf("ks.cfg: %s is not closed with %%end", section)
	}
	for _, need := range []string{"rootpw", "bootloader", "timezone", "lang", "keyboard"} {
		if !seen[need] {
			t.Errorf("ks.cfg: no %s command: anaconda would stop and ask", need)
		}
	}
	if !seen["cdrom"] && !seen["url"] && !seen["nfs"] && !seen["harddrive"] {
		t.Error("ks.cfg: no installation source (cdrom, url, nfs or harddrive)")
	}
	if !seen["reboot"] && !seen["poweroff"] && !seen["shutdown"] {
		t.Error("ks.cfg: no reboot: the install would wait at its last screen")
	}
}

// Preseed lines are "owner question type value"; debconf-set-selections
// would reject other shapes, and a wrong type is silently ignored.
var preseedTypes = []string{"string", "boolean", "select", "multiselect", "password", "note", "text", "title", "error", "seen"}

func checkPreseed(t *testing.T, content string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(content))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		for strings.HasSuffix(line, `\`) && sc.Scan() {
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(sc.Text())
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		switch {
		case len(f) < 3:
			t.Errorf("preseed.cfg:%d: want \"owner question type [value]\": %q", n, line)
		case !strings.Contains(f[1], "/"):
			t.Errorf("preseed.cfg:%d: question %q has no owner/ prefix", n, f[1])
		case !slices.Contains(preseedTypes, f[2]):
			t.Errorf("preseed.cfg:%d: unknown type %q", n, f[2])
		case f[2] == "boolean" && (len(f) != 4 || (f[3] != "true" && f[3] != "false")):
			t.Errorf("preseed.cfg:%d: boolean must be true or false: %q", n, line)
		}
	}
}

func checkAutoinstall(t *testing.T, content string) {
	t.Helper()
	if !strings.HasPrefix(content, "#cloud-config\n") {
		t.Error("user-data: must start with #cloud-config")
	}
	out, err := runErr("", os.Environ(), content, "python3", "-c",
		"import sys, yaml, json; print(json.dumps(yaml.safe_load(sys.stdin)))")
	if err != nil {
		t.Fatalf("user-data is not YAML: %v", err)
	}
	var doc struct {
		Autoinstall struct {
			Version  int `json:"version"`
			Identity struct {
				Username string `json:"username"`
				Password string `json:"password"`
			} `json:"identity"`
		} `json:"autoinstall"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Autoinstall.Version != 1 || doc.Autoinstall.Identity.Username == "" {
		t.Errorf("user-data: autoinstall version 1 with an identity wanted, got %+v", doc.Autoinstall)
	}
	if !strings.HasPrefix(doc.Autoinstall.Identity.Password, "$") {
		t.Error("user-data: identity.password must be a crypt(3) hash, not the password")
	}
}

// installerconfig is a preamble of variables, then a shell script from the
// first #! line: both halves must parse as sh.
func checkInstallerconfig(t *testing.T, content string) {
	t.Helper()
	for _, need := range []string{"PARTITIONS=", "DISTRIBUTIONS=", "\n#!/bin/sh\n"} {
		if !strings.Contains(content, need) {
			t.Errorf("installerconfig: no %q", need)
		}
	}
	if _, err := runErr("", os.Environ(), content, "sh", "-n"); err != nil {
		t.Errorf("installerconfig: %v", err)
	}
}

var (
	iniSectionRE = regexp.MustCompile(`^\[[A-Za-z0-9_.]+\]$`)
	iniKeyRE     = regexp.MustCompile(`^[A-Za-z0-9_.]+\s*=\s*\S`)
)

// ini checks the INI dialect of winnt.sif and txtsetup.oem and returns the
// keys per section.
func ini(t *testing.T, name, content string) map[string][]string {
	t.Helper()
	sections := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(content))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, ";"):
		case iniSectionRE.MatchString(line):
			section = strings.Trim(line, "[]")
			if _, dup := sections[section]; dup {
				t.Errorf("%s:%d: section [%s] twice", name, n, section)
			}
			sections[section] = nil
		case section == "":
			t.Errorf("%s:%d: %q before any section", name, n, line)
		case !iniKeyRE.MatchString(line):
			t.Errorf("%s:%d: not key = value: %q", name, n, line)
		case strings.Count(line, `"`)%2 != 0:
			t.Errorf("%s:%d: unbalanced quotes: %q", name, n, line)
		default:
			sections[section] = append(sections[section], strings.TrimSpace(strings.SplitN(line, "=", 2)[0]))
		}
	}
	return sections
}

func checkWinntSif(t *testing.T, content string) {
	t.Helper()
	s := ini(t, "winnt.sif", content)
	for sec, keys := range map[string][]string{
		"Unattended":    {"UnattendMode", "OemSkipEula", "TargetPath"},
		"GuiUnattended": {"AdminPassword", "TimeZone"},
		"UserData":      {"ProductKey", "ComputerName"},
		"GuiRunOnce":    {"Command0"},
	} {
		for _, k := range keys {
			if !slices.Contains(s[sec], k) {
				t.Errorf("winnt.sif: [%s] has no %s", sec, k)
			}
		}
	}
}

// TestTxtsetupOEM checks the F6 floppy's driver description: its INI
// shape, and that the files it names are the ones the XP and 2003
// templates copy onto the floppy from the shared map's viostor folder.
func TestTxtsetupOEM(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root(t), "templates", "shared", "windows", "txtsetup.oem"))
	if err != nil {
		t.Fatal(err)
	}
	s := ini(t, "txtsetup.oem", string(b))
	for _, sec := range []string{"Disks", "Defaults", "SCSI", "Files.SCSI.viostor", "HardwareIds.SCSI.viostor"} {
		if _, ok := s[sec]; !ok {
			t.Errorf("txtsetup.oem: no [%s]", sec)
		}
	}
	for _, f := range []string{"viostor.sys", "viostor.inf", "viostor.cat"} {
		if !bytes.Contains(b, []byte(f)) {
			t.Errorf("txtsetup.oem does not name %s", f)
		}
		for _, tpl := range []string{"windows-xp", "windows-2003"} {
			// The folder's own file and the shared ones it links.
			var hcl []byte
			files, _ := filepath.Glob(filepath.Join(root(t), "templates", "machine", tpl, "*.pkr.hcl"))
			for _, file := range files {
				b, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				hcl = append(hcl, b...)
			}
			if !bytes.Contains(hcl, []byte(`"`+f+`"`)) {
				t.Errorf("%s does not copy %s onto its F6 floppy", tpl, f)
			}
		}
	}
}

// virtioWin is templates/shared/virtio-win.json: OS folder, architecture,
// driver kind, path on the virtio-win ISO (nil: none exists).
type virtioWin struct {
	Release string                                   `json:"release"`
	OS      map[string]map[string]map[string]*string `json:"os"`
}

func (v virtioWin) paths() []string {
	var ps []string
	for _, archs := range v.OS {
		for _, kinds := range archs {
			for _, p := range kinds {
				if p != nil && !slices.Contains(ps, *p) {
					ps = append(ps, *p)
				}
			}
		}
	}
	sort.Strings(ps)
	return ps
}

func virtioMap(t *testing.T) virtioWin {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "templates", "shared", "virtio-win.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v virtioWin
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("virtio-win.json: %v", err)
	}
	return v
}

// TestVirtioWinMap keeps the one driver map and the Windows templates
// together: every Windows template has an entry, every entry has the five
// kinds, and every path sits in the folder of its kind.
func TestVirtioWinMap(t *testing.T) {
	m := virtioMap(t)
	if m.Release != "0.1.173" {
		t.Errorf("release %q: the XP and 2003 drivers need 0.1.173", m.Release)
	}
	folders := map[string]string{"viostor": "viostor/", "vioscsi": "vioscsi/", "NetKVM": "NetKVM/", "Balloon": "Balloon/", "qemu-ga": "guest-agent/"}
	for osName, archs := range m.OS {
		if _, err := os.Stat(filepath.Join(root(t), "templates", "machine", osName)); err != nil {
			t.Errorf("the map has %s, but templates/machine/%s does not exist", osName, osName)
		}
		for arch, kinds := range archs {
			for kind, folder := range folders {
				p, ok := kinds[kind]
				switch {
				case !ok:
					t.Errorf("%s/%s: no %s (null when none exists)", osName, arch, kind)
				case p != nil && !strings.HasPrefix(*p, folder):
					t.Errorf("%s/%s: %s path %q is not under %s", osName, arch, kind, *p, folder)
				case p != nil && kind != "qemu-ga" && !strings.HasSuffix(*p, "/"+arch):
					t.Errorf("%s/%s: %s path %q is not for %s", osName, arch, kind, *p, arch)
				}
			}
		}
	}
	for _, d := range templateDirs(t) {
		if name := filepath.Base(d); strings.HasPrefix(name, "windows-") && m.OS[name] == nil {
			t.Errorf("templates/%s has no entry in virtio-win.json", d)
		}
	}
}

// TestSharedScripts parses every shared shell script.
func TestSharedScripts(t *testing.T) {
	scripts, _ := filepath.Glob(filepath.Join(root(t), "templates", "shared", "scripts", "*.sh"))
	if len(scripts) == 0 {
		t.Fatal("no scripts under templates/shared/scripts")
	}
	for _, s := range scripts {
		if _, err := runErr("", os.Environ(), "", "sh", "-n", s); err != nil {
			t.Error(err)
		}
	}
}

// TestExtractVirtioWin runs shared/scripts/extract-virtio-win.sh on an ISO
// made here with every folder the map names (and one it does not): the
// map's folders come out, the rest does not, and a wrong checksum stops it.
func TestExtractVirtioWin(t *testing.T) {
	if testing.Short() {
		t.Skip("makes an ISO with genisoimage (run without -short)")
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	paths := virtioMap(t).paths()
	for _, p := range paths {
		f := filepath.Join(tree, filepath.FromSlash(p))
		if !strings.HasSuffix(p, ".msi") {
			f = filepath.Join(f, "driver.inf")
		}
		mustWrite(t, f, p)
	}
	mustWrite(t, filepath.Join(tree, "unrelated", "big.bin"), "not wanted")
	iso := filepath.Join(dir, "virtio-win.iso")
	run(t, dir, os.Environ(), "genisoimage", "-quiet", "-R", "-J", "-o", iso, tree)
	b, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	script := filepath.Join(root(t), "templates", "shared", "scripts", "extract-virtio-win.sh")

	if _, err := runErr(dir, os.Environ(), "", "sh", script, iso, strings.Repeat("0", 64), filepath.Join(dir, "bad")); err == nil {
		t.Error("a wrong checksum did not stop the extraction")
	}
	out := filepath.Join(dir, "out")
	run(t, dir, os.Environ(), "sh", script, iso, hex.EncodeToString(sum[:]), out)
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(out, filepath.FromSlash(p))); err != nil {
			t.Errorf("%s was not extracted: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "unrelated")); err == nil {
		t.Error("a folder the map does not name was extracted")
	}
}

// Every template is in packer fmt's canonical form, as terraform fmt keeps
// the examples.
func TestTemplatesFormatted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs packer (run without -short)")
	}
	out, err := exec.Command(testenv.PackerBinary(t), "fmt", "-check", "-recursive", filepath.Join(root(t), "templates")).CombinedOutput()
	if err != nil {
		t.Errorf("packer fmt -check -recursive templates: %v; run packer fmt on these:\n%s", err, out)
	}
}

// buildersBindingHTTP are the builders that, with http_bind_address unset,
// bind Packer's HTTP server to the host's address on the build network
// rather than to all addresses (virt-machine: packer/builder/machine's
// TestHTTPServerBindsToTheNetwork holds it to that).
var buildersBindingHTTP = []string{"virt-machine"}

// httpSource is a source block of a template that runs Packer's HTTP
// server, and where it binds it: bind is nil when http_bind_address is
// unset, else its value.
type httpSource struct {
	kind, name string
	bind       *cty.Value
}

// httpSources reads the source blocks of a template folder (its own files
// and the shared ones it links) that serve files over Packer's HTTP server
// (http_directory, http_content), with http_bind_address evaluated against
// the variables' defaults.
func httpSources(t *testing.T, dir string) []httpSource {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.pkr.hcl"))
	var bodies []*hclsyntax.Body
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, diags := hclsyntax.ParseConfig(b, f, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", f, diags)
		}
		bodies = append(bodies, file.Body.(*hclsyntax.Body))
	}
	defaults := map[string]cty.Value{}
	for _, body := range bodies {
		for _, blk := range body.Blocks {
			if blk.Type != "variable" || len(blk.Labels) != 1 {
				continue
			}
			if a, ok := blk.Body.Attributes["default"]; ok {
				// Defaults that need more than literals stay unknown.
				if v, diags := a.Expr.Value(nil); !diags.HasErrors() {
					defaults[blk.Labels[0]] = v
				}
			}
		}
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(defaults)}}
	var out []httpSource
	for _, body := range bodies {
		for _, blk := range body.Blocks {
			if blk.Type != "source" || len(blk.Labels) != 2 {
				continue
			}
			attrs := blk.Body.Attributes
			if attrs["http_directory"] == nil && attrs["http_content"] == nil {
				continue
			}
			s := httpSource{kind: blk.Labels[0], name: blk.Labels[1]}
			if a := attrs["http_bind_address"]; a != nil {
				v, diags := a.Expr.Value(ctx)
				if diags.HasErrors() {
					t.Errorf("%s: source %s.%s: http_bind_address: %v (keep it a literal or a variable with a literal default)", dir, s.kind, s.name, diags)
					continue
				}
				s.bind = &v
			}
			out = append(out, s)
		}
	}
	return out
}

// boundError says why a source's HTTP server would listen on all of this
// machine's addresses, or nil when it binds to one.
func (s httpSource) boundError() error {
	if s.bind == nil {
		if slices.Contains(buildersBindingHTTP, s.kind) {
			return nil
		}
		return fmt.Errorf("serves HTTP without http_bind_address: the %s builder then listens on all addresses", s.kind)
	}
	v := *s.bind
	if v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return fmt.Errorf("http_bind_address is %#v, not an address", v)
	}
	if a, err := netip.ParseAddr(v.AsString()); v.AsString() == "" || (err == nil && a.IsUnspecified()) {
		return fmt.Errorf("http_bind_address %q listens on all addresses", v.AsString())
	}
	return nil
}

// TestTemplatesBindHTTPServer: a template whose installer takes its answer
// file (and the passwords in it) from Packer's HTTP server must not have
// that server listen on all of this machine's addresses, only on the one
// the guest reaches: http_bind_address set to an address, or unset in a
// source whose builder then binds to the build network's host address.
func TestTemplatesBindHTTPServer(t *testing.T) {
	served := 0
	for _, d := range templateDirs(t) {
		for _, s := range httpSources(t, filepath.Join(root(t), "templates", filepath.FromSlash(d))) {
			served++
			if err := s.boundError(); err != nil {
				t.Errorf("templates/%s: source %s.%s: %v", d, s.kind, s.name, err)
			}
		}
	}
	// debian-12, freebsd-14 and those linking machine-http-install.pkr.hcl.
	if served < 3 {
		t.Errorf("%d sources serve HTTP: the check does not see the templates' http_content", served)
	}
}

// The check of TestTemplatesBindHTTPServer on made-up templates: each way
// of leaving the server on all addresses fails it.
func TestHTTPBindCheck(t *testing.T) {
	source := func(kind string, attrs ...string) string {
		return fmt.Sprintf("source %q \"a\" {\n  %s\n}\n", kind, strings.Join(attrs, "\n  "))
	}
	const bindVar = `http_bind_address = var.bind`
	variable := func(def string) string { return fmt.Sprintf("variable \"bind\" {\n  default = %q\n}\n", def) }
	for name, tc := range map[string]struct {
		hcl string
		ok  bool
	}{
		"virt-machine, unset":       {source("virt-machine", `http_content = {}`), true},
		"other builder, unset":      {source("qemu", `http_directory = "http"`), false},
		"all IPv4 addresses":        {source("virt-machine", `http_content = {}`, `http_bind_address = "0.0.0.0"`), false},
		"all IPv6 addresses":        {source("virt-machine", `http_content = {}`, `http_bind_address = "::"`), false},
		"empty":                     {source("qemu", `http_content = {}`, `http_bind_address = ""`), false},
		"variable, all addresses":   {variable("0.0.0.0") + source("virt-machine", `http_content = {}`, bindVar), false},
		"variable, network address": {variable("192.168.122.1") + source("qemu", `http_content = {}`, bindVar), true},
		"no HTTP server":            {source("qemu", `http_bind_address = "0.0.0.0"`), true},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mustWrite(t, filepath.Join(dir, "t.pkr.hcl"), tc.hcl)
			var errs []error
			for _, s := range httpSources(t, dir) {
				if err := s.boundError(); err != nil {
					errs = append(errs, err)
				}
			}
			if ok := len(errs) == 0; ok != tc.ok {
				t.Errorf("passes: %v (%v), want %v", ok, errs, tc.ok)
			}
		})
	}
}
