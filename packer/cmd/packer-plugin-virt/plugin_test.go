package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/packer/version"
)

// pluginSource is the address templates' required_plugins use.
const pluginSource = "github.com/virtforge/virt"

// apiVersion is the plugin protocol Packer 1.7+ speaks with SDK 0.6; it is
// part of the installed file name, so a change is a release-visible change
// and must fail here first.
const apiVersion = "x5.0"

// repoRoot is the module root, three levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// packerSDC is bin/packer-sdc from `make tools`, else one built here from
// the tools module, so that a missing tool never skips the check.
func packerSDC(t *testing.T, root, dir string) string {
	t.Helper()
	p := filepath.Join(root, "bin", "packer-sdc")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	p = filepath.Join(dir, "packer-sdc")
	run(t, filepath.Join(root, "tools"), os.Environ(), "go", "build", "-o", p, "github.com/hashicorp/packer-plugin-sdk/cmd/packer-sdc")
	return p
}

// TestPlugin builds the plugin, runs Packer's release check on it
// (packer-sdc plugin-check), installs it as `packer plugins install --path`
// does for users, and validates every example template under
// packer/examples with the installed plugin and the real packer.
func TestPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin and runs packer (run without -short)")
	}
	root := repoRoot(t)
	packer := testenv.PackerBinary(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "packer-plugin-virt")
	run(t, root, os.Environ(), "go", "build", "-o", bin, "./packer/cmd/packer-plugin-virt")

	t.Run("describe", func(t *testing.T) {
		var desc struct {
			Version    string   `json:"version"`
			APIVersion string   `json:"api_version"`
			Builders   []string `json:"builders"`
		}
		out := run(t, dir, os.Environ(), bin, "describe")
		if err := json.Unmarshal(out, &desc); err != nil {
			t.Fatalf("describe: %v\n%s", err, out)
		}
		if desc.Version != version.PluginVersion.String() {
			t.Errorf("version %q, want %q", desc.Version, version.PluginVersion.String())
		}
		if desc.APIVersion != apiVersion {
			t.Errorf("api_version %q, want %q", desc.APIVersion, apiVersion)
		}
		slices.Sort(desc.Builders)
		if want := []string{"container", "machine"}; !slices.Equal(desc.Builders, want) {
			t.Errorf("builders %q, want %q", desc.Builders, want)
		}
	})

	t.Run("plugin-check", func(t *testing.T) {
		// packer-sdc checks the name it is given: the bare file name, run
		// from its directory.
		out := run(t, dir, os.Environ(), packerSDC(t, root, dir), "plugin-check", "packer-plugin-virt")
		t.Logf("packer-sdc plugin-check: ok %s", bytes.TrimSpace(out))
	})

	env := append(os.Environ(),
		"PACKER_PLUGIN_PATH="+filepath.Join(dir, "plugins"),
		"PACKER_CONFIG_DIR="+dir,
		"CHECKPOINT_DISABLE=1",
	)
	installed := t.Run("install", func(t *testing.T) {
		run(t, dir, env, packer, "plugins", "install", "--path", bin, pluginSource)
		name := "packer-plugin-virt_v" + version.PluginVersion.String() + "_" + apiVersion + "_" + runtime.GOOS + "_" + runtime.GOARCH
		p := filepath.Join(dir, "plugins", filepath.FromSlash(pluginSource), name)
		b, err := os.ReadFile(p)
		if err != nil {
			entries, _ := filepath.Glob(filepath.Join(dir, "plugins", "*", "*", "*", "*"))
			t.Fatalf("installed plugin: %v (installed: %q)", err, entries)
		}
		sum, err := os.ReadFile(p + "_SHA256SUM")
		if err != nil {
			t.Fatalf("installed plugin's checksum: %v", err)
		}
		if h := sha256.Sum256(b); strings.TrimSpace(string(sum)) != hex.EncodeToString(h[:]) {
			t.Errorf("%s_SHA256SUM is %q, the file's SHA-256 is %x", name, sum, h)
		}
		out := run(t, dir, env, packer, "plugins", "installed")
		if !strings.Contains(string(out), name) {
			t.Errorf("packer plugins installed does not list %s:\n%s", name, out)
		}
	})
	if !installed {
		t.Fatal("the plugin did not install: the examples cannot be validated")
	}

	t.Run("examples", func(t *testing.T) {
		examples, err := filepath.Glob(filepath.Join(root, "packer", "examples", "*", "*.pkr.hcl"))
		if err != nil || len(examples) == 0 {
			t.Fatalf("no examples under packer/examples (%v)", err)
		}
		standIns := exampleStandIns(t, dir)
		for _, ex := range examples {
			rel, _ := filepath.Rel(filepath.Join(root, "packer", "examples"), ex)
			t.Run(filepath.ToSlash(rel), func(t *testing.T) {
				run(t, filepath.Dir(ex), env, packer, "validate", "-syntax-only", ex)
				// The full validation runs the builder's Prepare: every
				// option checked, with the host files the example names
				// replaced by ones that exist here.
				args := []string{"validate"}
				for _, v := range declaredVariables(t, ex) {
					if s, ok := standIns[v]; ok {
						args = append(args, "-var", v+"="+s)
					}
				}
				run(t, filepath.Dir(ex), env, packer, append(args, ex)...)
			})
		}
	})
}

// exampleStandIns are values for the examples' variables that name files
// on the user's machine, or that would download at validation time.
func exampleStandIns(t *testing.T, dir string) map[string]string {
	t.Helper()
	key := filepath.Join(dir, "id_ed25519")
	run(t, dir, os.Environ(), "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "plugin-test", "-f", key)
	return map[string]string{
		"disk_image":           testenv.GuestDisk(t),
		"ssh_private_key_file": key,
		"ssh_public_key_file":  key + ".pub",
		// A file: checksum is fetched when the template is validated.
		"iso_checksum":   "none",
		"output_archive": filepath.Join(dir, "out.tar.gz"),
	}
}

var variableRE = regexp.MustCompile(`(?m)^variable\s+"([A-Za-z0-9_-]+)"`)

// declaredVariables lists a template's variables: packer refuses a -var
// for an undeclared one.
func declaredVariables(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range variableRE.FindAllSubmatch(b, -1) {
		names = append(names, string(m[1]))
	}
	return names
}

// TestDocsIncludeEveryExample keeps the builder pages and packer/examples
// together: each example is included into its builder's page (and so is
// validated by TestPlugin), and each page's includes exist.
func TestDocsIncludeEveryExample(t *testing.T) {
	root := repoRoot(t)
	for _, builder := range []string{"machine", "container"} {
		page, err := os.ReadFile(filepath.Join(root, "docs", "packer", "builders", builder+".mdx"))
		if err != nil {
			t.Fatal(err)
		}
		examples, _ := filepath.Glob(filepath.Join(root, "packer", "examples", builder, "*.pkr.hcl"))
		if len(examples) == 0 {
			t.Errorf("%s: no example under packer/examples/%s", builder, builder)
		}
		for _, ex := range examples {
			inc := "@include 'examples/" + builder + "/" + filepath.Base(ex) + "'"
			if !bytes.Contains(page, []byte(inc)) {
				t.Errorf("docs/packer/builders/%s.mdx does not include %s (%s)", builder, filepath.Base(ex), inc)
			}
		}
		for _, m := range regexp.MustCompile(`@include '([^']+)'`).FindAllSubmatch(page, -1) {
			inc := string(m[1])
			var p string
			switch {
			case strings.HasPrefix(inc, "examples/"):
				p = filepath.Join(root, "packer", filepath.FromSlash(inc))
			case strings.HasPrefix(inc, "builder/"):
				p = filepath.Join(root, "packer", "docs-partials", filepath.FromSlash(inc))
			default:
				continue // the SDK's own partials, built into packer-sdc
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("docs/packer/builders/%s.mdx includes %s: %v (run make generate)", builder, inc, err)
			}
		}
	}
}
