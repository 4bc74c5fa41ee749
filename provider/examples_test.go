package provider

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Every folder of examples/ is validated by the real terraform binary
// against this provider's schema, as a user's `terraform validate` would: an
// example that drifts from the schema fails here, not in a user's hands.
// Examples that can run on the test host are also planned or applied by
// their resource's acceptance tests.
func TestAccExamplesValidate(t *testing.T) {
	testAccPreCheck(t)
	tfBin, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatal(err)
	}

	// The provider as a user installs it with dev_overrides.
	binDir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, "terraform-provider-virt"), "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build provider: %v\n%s", err, out)
	}
	cli := filepath.Join(t.TempDir(), "terraformrc")
	rc := "provider_installation {\n  dev_overrides {\n    \"virtforge/virt\" = \"" + binDir + "\"\n  }\n  direct {}\n}\n"
	if err := os.WriteFile(cli, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}

	dirs := map[string]bool{}
	err = filepath.WalkDir("../examples", func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".tf") {
			dirs[filepath.Dir(path)] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 5 {
		t.Fatalf("found only %d example folders under examples/", len(dirs))
	}
	for dir := range dirs {
		t.Run(strings.TrimPrefix(dir, "../examples/"), func(t *testing.T) {
			t.Parallel()
			// A copy, so that validate writes nothing into the tree. Files
			// without a terraform block get one naming this provider's
			// source, as a user's root module would have.
			work := t.TempDir()
			files, _ := filepath.Glob(filepath.Join(dir, "*.tf"))
			hasTerraformBlock := false
			for _, f := range files {
				src, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				hasTerraformBlock = hasTerraformBlock || strings.Contains(string(src), "required_providers")
				if err := os.WriteFile(filepath.Join(work, filepath.Base(f)), src, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if !hasTerraformBlock {
				req := "terraform {\n  required_providers {\n    virt = { source = \"virtforge/virt\" }\n  }\n}\n"
				if err := os.WriteFile(filepath.Join(work, "versions.tf"), []byte(req), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(tfBin, "validate", "-no-color")
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cli, "TF_IN_AUTOMATION=1")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "The configuration is valid") {
				t.Fatalf("terraform validate %s: %v\n%s", dir, err, out)
			}
		})
	}
}
