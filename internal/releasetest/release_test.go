package releasetest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
)

const (
	// version is the release the snapshot is built as (goreleaser's
	// VIRT_SNAPSHOT_VERSION): release-shaped, not a prerelease, because
	// `packer init` only takes an installed plugin without a prerelease as
	// satisfying required_plugins.
	version = "0.1.0"
	// pluginAPI is the plugin API version of packer-plugin-sdk v0.6.x, in
	// the plugin's file names; `describe` must report the same.
	pluginAPI    = "x5.0"
	providerName = "terraform-provider-virt"
	pluginName   = "packer-plugin-virt"
	// The source addresses users write.
	providerSource = "registry.terraform.io/virtforge/virt"
	pluginSource   = "github.com/virtforge/virt"
)

var arches = []string{"amd64", "arm64"}

func TestAccRelease(t *testing.T) {
	testenv.Integration(t)
	if os.Getenv("TF_ACC") == "" {
		if testenv.CI() {
			t.Fatal("TF_ACC is not set under CI: the release test must run")
		}
		t.Skip("acceptance test: set TF_ACC=1")
	}
	goreleaser := testenv.File(t, "goreleaser/goreleaser")
	packer := testenv.PackerBinary(t)
	terraform := lookPath(t, "terraform")
	lookPath(t, "gpg")
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}

	gpgEnv, fingerprint := throwawayKey(t)
	dist := t.TempDir()
	env := append(gpgEnv, "GPG_FINGERPRINT="+fingerprint, "VIRT_SNAPSHOT_VERSION="+version)
	env = append(env, gitRemoteEnv(t, root)...)
	providerDist := filepath.Join(dist, "provider")
	pluginDist := filepath.Join(dist, "plugin")
	start := time.Now()
	snapshot(t, goreleaser, root, ".goreleaser.yml", providerDist, env)
	snapshot(t, goreleaser, root, ".goreleaser.packer.yml", pluginDist, env)
	t.Logf("goreleaser: both snapshot releases in %s", time.Since(start).Round(time.Second))

	t.Run("reproducible", func(t *testing.T) {
		out := run(t, nil, root, "git", "log", "-1", "--format=%cI")
		commitTime, err := time.Parse(time.RFC3339, strings.TrimSpace(out))
		if err != nil {
			t.Fatal(err)
		}
		// The same commit built again gives the same zips, byte for byte:
		// the binaries (-trimpath, no build time in them) and the times in
		// the zips (the commit's, see the configs' builds_info) depend on
		// the commit alone. The signatures differ (gpg dates them); the
		// sums they sign must not.
		for _, r := range []struct{ config, dist, sums string }{
			{".goreleaser.yml", providerDist, providerName + "_" + version + "_SHA256SUMS"},
			{".goreleaser.packer.yml", pluginDist, pluginName + "_v" + version + "_SHA256SUMS"},
		} {
			again := filepath.Join(dist, "again-"+filepath.Base(r.dist))
			snapshot(t, goreleaser, root, r.config, again, env)
			first, err := os.ReadFile(filepath.Join(r.dist, r.sums))
			if err != nil {
				t.Fatal(err)
			}
			second, err := os.ReadFile(filepath.Join(again, r.sums))
			if err != nil {
				t.Fatal(err)
			}
			if string(first) != string(second) {
				t.Errorf("%s: two builds of one commit differ:\n%s\n%s", r.config, first, second)
			}
			// Each file in each zip carries the commit's time: not the
			// build's, nor the checkout's (which a second build in the
			// same tree would repeat).
			zips, _ := filepath.Glob(filepath.Join(r.dist, "*.zip"))
			for _, z := range zips {
				zr, err := zip.OpenReader(z)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range zr.File {
					if !f.Modified.Equal(commitTime) {
						t.Errorf("%s: %s is dated %s, not the commit's %s", filepath.Base(z), f.Name, f.Modified.UTC(), commitTime)
					}
				}
				_ = zr.Close()
			}
		}
	})

	t.Run("provider files", func(t *testing.T) {
		checkProviderFiles(t, root, providerDist, gpgEnv)
	})
	t.Run("plugin files", func(t *testing.T) {
		checkPluginFiles(t, pluginDist, gpgEnv)
	})
	t.Run("terraform init from a filesystem mirror", func(t *testing.T) {
		terraformFromMirror(t, terraform, providerDist)
	})
	t.Run("packer plugins install and init", func(t *testing.T) {
		packerInstall(t, packer, pluginDist)
	})
}

// throwawayKey makes a signing key in a GNUPGHOME of the test's own and
// returns the environment that selects it and its fingerprint.
func throwawayKey(t *testing.T) ([]string, string) {
	t.Helper()
	home := t.TempDir()
	env := []string{"GNUPGHOME=" + home}
	// gpg started an agent for this home; it goes before the directory.
	t.Cleanup(func() { _ = command(env, "", "gpgconf", "--kill", "gpg-agent").Run() })
	run(t, env, "", "gpg", "--batch", "--passphrase", "", "--quick-gen-key",
		"virt release test <release-test@example.invalid>", "ed25519", "sign", "never")
	out := run(t, env, "", "gpg", "--batch", "--with-colons", "--list-secret-keys")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			return env, f[9]
		}
	}
	t.Fatalf("no fingerprint in gpg's key list:\n%s", out)
	return nil, ""
}

// gitRemoteEnv gives a checkout without a remote (a worktree of a local
// repository) one, through git's environment: goreleaser reads the commit's
// date, which the release's file times come from, only when the remote can
// be listed, and builds a snapshot with zero times otherwise. A checkout
// with a remote (a release's) needs nothing.
func gitRemoteEnv(t *testing.T, root string) []string {
	t.Helper()
	if out, _ := command(nil, root, "git", "remote").Output(); strings.TrimSpace(string(out)) != "" {
		return nil
	}
	return []string{"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=remote.origin.url", "GIT_CONFIG_VALUE_0=" + root}
}

// snapshot runs `goreleaser release --snapshot --clean` with a copy of the
// config whose dist is the test's own, so that the tree's dist/ is left alone.
func snapshot(t *testing.T, goreleaser, root, config, dist string, env []string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, config))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(src), "\n") {
		if !strings.HasPrefix(l, "dist:") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "dist: "+dist, "")
	cfg := filepath.Join(t.TempDir(), config)
	if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, env, root, goreleaser, "release", "--snapshot", "--clean", "--config", cfg)
}

func checkProviderFiles(t *testing.T, root, dist string, gpgEnv []string) {
	prefix := providerName + "_" + version
	sums := prefix + "_SHA256SUMS"
	var zips []string
	for _, a := range arches {
		zips = append(zips, prefix+"_linux_"+a+".zip")
	}
	requireFiles(t, dist, append(slices.Clone(zips), sums, sums+".sig"))
	run(t, gpgEnv, dist, "gpg", "--batch", "--verify", sums+".sig", sums)

	// The registry's manifest is listed in the sums under its release name.
	manifest, err := os.ReadFile(filepath.Join(root, "terraform-registry-manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, manifest)
	want := map[string]string{prefix + "_manifest.json": sha256Hex(manifest)}
	for _, z := range zips {
		want[z] = fileSHA256(t, filepath.Join(dist, z))
	}
	checkSums(t, filepath.Join(dist, sums), want)

	for i, z := range zips {
		files := zipFiles(t, filepath.Join(dist, z))
		bin := providerName + "_v" + version
		if got := sortedKeys(files); !slices.Equal(got, []string{bin, "terraform-registry-manifest.json"}) {
			t.Errorf("%s holds %v, want the manifest and %s", z, got, bin)
		}
		checkManifest(t, files["terraform-registry-manifest.json"])
		checkELF(t, z, files[bin], arches[i])
		if arches[i] == "amd64" {
			p := filepath.Join(t.TempDir(), bin)
			if err := os.WriteFile(p, files[bin], 0o755); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(run(t, nil, "", p, "-version")); got != version {
				t.Errorf("%s -version printed %q, want %q", bin, got, version)
			}
		}
	}
}

func checkManifest(t *testing.T, data []byte) {
	t.Helper()
	var m struct {
		Version  int `json:"version"`
		Metadata struct {
			ProtocolVersions []string `json:"protocol_versions"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("registry manifest: %v\n%s", err, data)
	}
	if m.Version != 1 || !slices.Equal(m.Metadata.ProtocolVersions, []string{"6.0"}) {
		t.Errorf("registry manifest: version %d, protocol_versions %v; want 1 and [6.0]", m.Version, m.Metadata.ProtocolVersions)
	}
}

func checkPluginFiles(t *testing.T, dist string, gpgEnv []string) {
	sums := pluginName + "_v" + version + "_SHA256SUMS"
	var zips []string
	for _, a := range arches {
		zips = append(zips, pluginZip(a))
	}
	requireFiles(t, dist, append(slices.Clone(zips), sums, sums+".sig"))
	run(t, gpgEnv, dist, "gpg", "--batch", "--verify", sums+".sig", sums)
	want := map[string]string{}
	for _, z := range zips {
		want[z] = fileSHA256(t, filepath.Join(dist, z))
	}
	checkSums(t, filepath.Join(dist, sums), want)

	for i, z := range zips {
		// Packer's installer wants exactly one file, named as the zip.
		bin := strings.TrimSuffix(z, ".zip")
		files := zipFiles(t, filepath.Join(dist, z))
		if got := sortedKeys(files); !slices.Equal(got, []string{bin}) {
			t.Errorf("%s holds %v, want only %s", z, got, bin)
		}
		checkELF(t, z, files[bin], arches[i])
	}
}

func pluginZip(arch string) string {
	return fmt.Sprintf("%s_v%s_%s_linux_%s.zip", pluginName, version, pluginAPI, arch)
}

// terraformFromMirror installs the provider from a filesystem mirror that
// holds the release zip as published (Terraform's packed layout), with a CLI
// configuration that has no dev_overrides, in a fresh directory, then
// applies and destroys a small configuration.
func terraformFromMirror(t *testing.T, terraform, dist string) {
	mirror := t.TempDir()
	zipName := fmt.Sprintf("%s_%s_linux_amd64.zip", providerName, version)
	dir := filepath.Join(mirror, filepath.FromSlash(providerSource))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(dist, zipName), filepath.Join(dir, zipName))

	cli := filepath.Join(t.TempDir(), "terraformrc")
	rc := fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path    = %q\n    include = [%q]\n  }\n}\n", mirror, providerSource)
	writeFile(t, cli, rc)

	name := testenv.Name(t, "rel-ct")
	work := t.TempDir()
	writeFile(t, filepath.Join(work, "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    virt = {
      source  = "virtforge/virt"
      version = %q
    }
  }
}

provider "virt" {}

data "virt_host" "this" {}

# Stopped: created by LXC's busybox template, it costs under a second.
resource "virt_container" "test" {
  name         = %q
  unprivileged = false
  running      = false

  lxc_template {
    name = "busybox"
  }
}

output "arch" {
  value = data.virt_host.this.arch
}

output "container_state" {
  value = virt_container.test.state
}
`, version, name))
	env := []string{
		"TF_CLI_CONFIG_FILE=" + cli,
		"TF_IN_AUTOMATION=1",
		"CHECKPOINT_DISABLE=1",
		"TF_PLUGIN_CACHE_DIR=",
		"TF_DATA_DIR=",
	}
	tf := func(args ...string) string { return run(t, env, work, terraform, args...) }

	out := tf("init", "-input=false", "-no-color")
	if !strings.Contains(out, "Installing virtforge/virt v"+version) {
		t.Errorf("terraform init did not install virtforge/virt v%s from the mirror:\n%s", version, out)
	}
	if strings.Contains(out, "override") {
		t.Errorf("terraform init mentions overrides; the mirror alone must serve the provider:\n%s", out)
	}
	lock, err := os.ReadFile(filepath.Join(work, ".terraform.lock.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(lock), `version     = "`+version+`"`) {
		t.Errorf("the lock file does not pin %s:\n%s", version, lock)
	}

	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			_ = command(env, work, terraform, "destroy", "-auto-approve", "-input=false", "-no-color").Run()
			_ = exec.Command("lxc-destroy", "-f", "-n", name).Run()
		}
	})
	tf("apply", "-auto-approve", "-input=false", "-no-color")
	if got := strings.TrimSpace(tf("output", "-raw", "container_state")); got != "STOPPED" {
		t.Errorf("container state %q, want STOPPED", got)
	}
	if got := strings.TrimSpace(tf("output", "-raw", "arch")); got == "" {
		t.Error("virt_host reported no architecture")
	}
	tf("destroy", "-auto-approve", "-input=false", "-no-color")
	destroyed = true
	if out, err := exec.Command("lxc-info", "-n", name).CombinedOutput(); err == nil {
		t.Errorf("container %s still exists after destroy:\n%s", name, out)
	}
}

// packerInstall installs the plugin from its release zip into an empty
// PACKER_PLUGIN_PATH and checks that a template requiring it initialises and
// validates. `packer init` would download from GitHub, which is not
// reachable: a satisfying plugin already installed is what it accepts
// offline, which is also how it behaves after a first download.
func packerInstall(t *testing.T, packer, dist string) {
	binDir := t.TempDir()
	zipName := pluginZip("amd64")
	bin := strings.TrimSuffix(zipName, ".zip")
	files := zipFiles(t, filepath.Join(dist, zipName))
	binPath := filepath.Join(binDir, bin)
	if err := os.WriteFile(binPath, files[bin], 0o755); err != nil {
		t.Fatal(err)
	}
	var describe struct {
		Version    string   `json:"version"`
		APIVersion string   `json:"api_version"`
		Builders   []string `json:"builders"`
	}
	out := run(t, nil, "", binPath, "describe")
	if err := json.Unmarshal([]byte(out), &describe); err != nil {
		t.Fatalf("describe: %v\n%s", err, out)
	}
	if describe.Version != version || describe.APIVersion != pluginAPI {
		t.Errorf("describe reports version %q, API %q; the file names say %q and %q", describe.Version, describe.APIVersion, version, pluginAPI)
	}

	pluginPath := t.TempDir()
	env := []string{"PACKER_PLUGIN_PATH=" + pluginPath, "CHECKPOINT_DISABLE=1", "PACKER_LOG="}
	run(t, env, "", packer, "plugins", "install", "--path", binPath, pluginSource)
	installed := filepath.Join(pluginPath, filepath.FromSlash(pluginSource), bin)
	for _, p := range []string{installed, installed + "_SHA256SUM"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("packer plugins install: %v", err)
		}
	}

	work := t.TempDir()
	writeFile(t, filepath.Join(work, "template.pkr.hcl"), fmt.Sprintf(`packer {
  required_plugins {
    virt = {
      source  = %q
      version = ">= %s"
    }
  }
}

source "virt-container" "test" {
  lxc_template {
    name = "busybox"
  }
  output_template = %q
}

build {
  sources = ["source.virt-container.test"]
}
`, pluginSource, version, testenv.Name(t, "rel-pk")))
	run(t, env, work, packer, "init", ".")
	run(t, env, work, packer, "validate", ".")
	out = run(t, env, work, packer, "plugins", "required", ".")
	if !strings.Contains(out, installed) {
		t.Errorf("packer plugins required does not resolve to %s:\n%s", installed, out)
	}
}

func requireFiles(t *testing.T, dir string, names []string) {
	t.Helper()
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			entries, _ := os.ReadDir(dir)
			var have []string
			for _, e := range entries {
				have = append(have, e.Name())
			}
			t.Errorf("release file missing: %v (have %v)", err, have)
		}
	}
}

// checkSums wants the sums file to list exactly the files of want, with
// their hashes (a signature listed in it would break the signature).
func checkSums(t *testing.T, path string, want map[string]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("%s: malformed line %q", filepath.Base(path), line)
		}
		got[f[1]] = f[0]
	}
	if len(got) != len(want) {
		t.Errorf("%s lists %v, want %v", filepath.Base(path), sortedKeys(got), sortedKeys(want))
	}
	for name, sum := range want {
		if got[name] != sum {
			t.Errorf("%s: %s has %q, want %q", filepath.Base(path), name, got[name], sum)
		}
	}
}

func checkELF(t *testing.T, what string, data []byte, arch string) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != want {
		t.Errorf("%s: an %v binary, want %v", what, f.Machine, want)
	}
	// cgo: the LXC backend must be linked in, not stubbed out.
	libs, _ := f.ImportedLibraries()
	if !slices.ContainsFunc(libs, func(l string) bool { return strings.HasPrefix(l, "liblxc.so") }) {
		t.Errorf("%s does not link liblxc (imports %v): built without cgo?", what, libs)
	}
}

func zipFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	r, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	files := map[string][]byte{}
	for _, f := range r.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = data
	}
	return files
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sha256Hex(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256Hex(data)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(data))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed (run `make testenv`): %v", name, err)
	}
	return p
}

func command(env []string, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// run runs a command and fails the test with its output when it fails.
func run(t *testing.T, env []string, dir, name string, args ...string) string {
	t.Helper()
	cmd := command(env, dir, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
