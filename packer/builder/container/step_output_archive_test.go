package container

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// exportingDriver exports a root file system of one file.
type exportingDriver struct{ fakeDriver }

func (*exportingDriver) ExportContainer(_ context.Context, _ string, w io.Writer) error {
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Name: "./etc/shadow", Typeflag: tar.TypeReg, Mode: 0o640, Size: 6}); err != nil {
		return err
	}
	if _, err := tw.Write([]byte("root:*")); err != nil {
		return err
	}
	return tw.Close()
}

// TestOutputArchiveModes: the archive holds the guest's files, its
// secrets included, so it and its metadata are the owner's only, whatever
// the umask and whatever mode an earlier archive of the name had.
func TestOutputArchiveModes(t *testing.T) {
	prevMask := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(prevMask) })
	for _, format := range []string{FormatTarGz, FormatLXD} {
		t.Run(format, func(t *testing.T) {
			archive := filepath.Join(t.TempDir(), "rootfs.tar.gz")
			// An earlier build's output, replaced (-force).
			for _, p := range []string{archive, metadataPath(archive)} {
				if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			state := new(multistep.BasicStateBag)
			state.Put(stateConfig, &Config{ContainerName: "b", OutputArchive: archive, OutputFormat: format})
			state.Put(stateDriver, &exportingDriver{})
			state.Put(stateUI, packersdk.TestUi(t))
			state.Put(stateMetadata, virt.NewContainerMetadata("debian", "12", "amd64", now()))

			if action := (&stepOutputArchive{}).Run(context.Background(), state); action != multistep.ActionContinue {
				t.Fatalf("step halted: %v", state.Get(stateError))
			}
			for _, p := range []string{archive, metadataPath(archive)} {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s has mode %v, want -rw-------", filepath.Base(p), st.Mode().Perm())
				}
			}
		})
	}
}
