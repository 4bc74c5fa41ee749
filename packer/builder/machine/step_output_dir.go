package machine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// manifest describes what output_directory holds, for tools that import it.
type manifest struct {
	Builder    string    `json:"builder"`
	Build      string    `json:"build"`
	Created    time.Time `json:"created"`
	Volume     string    `json:"volume"`
	VolumeKey  string    `json:"volume_key"`
	Pool       string    `json:"pool"`
	Format     string    `json:"format"`
	DiskSize   uint64    `json:"disk_size"`
	DomainType string    `json:"domain_type"`
	Files      []string  `json:"files"`
	SHA256     []string  `json:"sha256"`
}

// stepOutputDir writes a copy of the output disk (sparse), the domain XML
// the build used, its serial console log, SHA256SUMS and manifest.json into
// output_directory.
//
// All of it is its owner's only (files 0600, the directory 0700): the disk
// holds the guest's secrets, the console log can show what an installer
// was told (passwords included), and the rest says where the template is.
type stepOutputDir struct{}

// Modes of what stepOutputDir writes.
const (
	outputDirMode  os.FileMode = 0o700
	outputFileMode os.FileMode = 0o600
)

func (s *stepOutputDir) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	if c.OutputDirectory == "" {
		return multistep.ActionContinue
	}
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)
	out := state.Get(stateOutput).(*virt.VolumeSpec)
	if c.PackerForce {
		_ = os.RemoveAll(c.OutputDirectory)
	}
	if err := os.MkdirAll(c.OutputDirectory, outputDirMode); err != nil {
		return halt(state, fmt.Errorf("output_directory: %w", err))
	}
	// One that was there (empty) keeps its mode otherwise.
	if err := os.Chmod(c.OutputDirectory, outputDirMode); err != nil {
		return halt(state, fmt.Errorf("output_directory: %w", err))
	}
	state.Put("output_dir_made", true)
	disk := filepath.Join(c.OutputDirectory, c.OutputVolume+"."+out.Format)
	ui.Say(fmt.Sprintf("Copying the disk to %s...", disk))
	if err := d.DownloadVolume(ctx, out.Key, disk); err != nil {
		return halt(state, err)
	}
	if err := os.Chmod(disk, outputFileMode); err != nil {
		return halt(state, err)
	}
	files := []string{disk}
	if x, ok := state.Get(stateDomainXML).(string); ok && x != "" {
		p := filepath.Join(c.OutputDirectory, c.VMName+".xml")
		if err := os.WriteFile(p, []byte(x), outputFileMode); err != nil {
			return halt(state, err)
		}
		files = append(files, p)
	}
	// The serial console of the whole build: what an unattended installer
	// printed is often the only record of why it did what it did.
	if log, ok := state.Get(stateConsole).(*consoleLog); ok {
		if b, err := os.ReadFile(log.path); err == nil {
			p := filepath.Join(c.OutputDirectory, c.VMName+"-console.log")
			if err := os.WriteFile(p, b, outputFileMode); err != nil {
				return halt(state, err)
			}
			files = append(files, p)
		}
	}
	var sums []string
	for _, f := range files {
		h, err := sha256File(f)
		if err != nil {
			return halt(state, err)
		}
		sums = append(sums, h+"  "+filepath.Base(f))
	}
	sumFile := filepath.Join(c.OutputDirectory, "SHA256SUMS")
	if err := os.WriteFile(sumFile, []byte(strings.Join(sums, "\n")+"\n"), outputFileMode); err != nil {
		return halt(state, err)
	}
	m := manifest{
		Builder: BuilderID, Build: c.PackerBuildName, Created: time.Now().UTC(),
		Volume: out.Name, VolumeKey: out.Key, Pool: out.Pool, Format: out.Format, DiskSize: out.CapacityBytes,
		DomainType: c.DomainType, SHA256: sums,
	}
	for _, f := range files {
		m.Files = append(m.Files, filepath.Base(f))
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	manFile := filepath.Join(c.OutputDirectory, "manifest.json")
	if err := os.WriteFile(manFile, append(b, '\n'), outputFileMode); err != nil {
		return halt(state, err)
	}
	state.Put(stateOutputFiles, append(files, sumFile, manFile))
	return multistep.ActionContinue
}

// Cleanup removes a half-written output_directory of a failed build.
func (s *stepOutputDir) Cleanup(state multistep.StateBag) {
	_, cancelled := state.GetOk(multistep.StateCancelled)
	_, halted := state.GetOk(multistep.StateHalted)
	if _, made := state.GetOk("output_dir_made"); made && (cancelled || halted) {
		_ = os.RemoveAll(state.Get(stateConfig).(*Config).OutputDirectory)
	}
}

func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
