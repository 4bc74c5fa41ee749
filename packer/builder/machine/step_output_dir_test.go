package machine

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// downloadDriver is a Driver whose DownloadVolume writes a stand-in disk,
// readable by all as a careless driver would leave it; the steps that
// output_directory's test runs call nothing else.
type downloadDriver struct{ Driver }

func (downloadDriver) DownloadVolume(_ context.Context, _ string, path string) error {
	return os.WriteFile(path, []byte("the guest's disk, secrets and all"), 0o644)
}

// Everything in output_directory is its owner's only: the disk (the
// guest's secrets), the domain XML, the console log, SHA256SUMS, the
// manifest, and the directory itself, also one that was there (empty).
func TestStepOutputDirOwnerOnly(t *testing.T) {
	for name, existing := range map[string]bool{"new": false, "existing": true} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			if existing {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			console, err := newConsoleLog(filepath.Join(t.TempDir(), "console.log"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = console.Close() })
			if _, err := console.Write([]byte("installer: root password is hunter2\n")); err != nil {
				t.Fatal(err)
			}
			state := new(multistep.BasicStateBag)
			state.Put("ui", packersdk.TestUi(t))
			state.Put(stateDriver, Driver(downloadDriver{}))
			state.Put(stateConfig, &Config{OutputDirectory: dir, OutputVolume: "tpl", VMName: "tpl-build"})
			state.Put(stateOutput, &virt.VolumeSpec{Pool: "p", Name: "tpl", Key: "/p/tpl", Format: virt.FormatQCOW2})
			state.Put(stateDomainXML, "<domain/>")
			state.Put(stateConsole, console)

			if action := (&stepOutputDir{}).Run(context.Background(), state); action != multistep.ActionContinue {
				t.Fatalf("stepOutputDir: %v", state.Get("error"))
			}
			files := state.Get(stateOutputFiles).([]string)
			if len(files) != 5 {
				t.Errorf("files %v, want the disk, the domain XML, the console log, SHA256SUMS and the manifest", files)
			}
			for _, f := range files {
				fi, err := os.Stat(f)
				if err != nil {
					t.Error(err)
				} else if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, want 0600", filepath.Base(f), fi.Mode().Perm())
				}
			}
			if fi, err := os.Stat(dir); err != nil {
				t.Error(err)
			} else if fi.Mode().Perm() != 0o700 {
				t.Errorf("output_directory: mode %v, want 0700", fi.Mode().Perm())
			}
		})
	}
}
