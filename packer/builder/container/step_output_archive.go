package container

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// metadataPath is where the metadata of an output archive goes: beside
// it, named after it.
func metadataPath(archive string) string { return archive + ".json" }

// artifactMode is the mode of the output archive and its metadata: the
// archive holds the guest's whole file system, its secrets (host keys,
// shadow, tokens a provisioner left) included, so only its owner may read
// it; sharing it is a choice made after the build.
const artifactMode fs.FileMode = 0o600

// stepOutputArchive writes the stopped build container's root file system
// as output_archive (ids as the container sees them, so unprivileged
// builds come out from 0), and the metadata file beside it. Both are
// written under temporary names and renamed once complete, so a failed or
// interrupted build leaves no partial output under the final names.
type stepOutputArchive struct {
	written []string // final and temporary paths this step made
}

func (s *stepOutputArchive) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get(stateConfig).(*Config)
	if cfg.OutputArchive == "" {
		return multistep.ActionContinue
	}
	drv := state.Get(stateDriver).(driver)
	ui := state.Get(stateUI).(packersdk.Ui)
	md := state.Get(stateMetadata).(map[string]string)

	ui.Say(fmt.Sprintf("Writing root file system archive %s (%s)...", cfg.OutputArchive, cfg.OutputFormat))
	start := time.Now()
	dir := filepath.Dir(cfg.OutputArchive)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(cfg.OutputArchive)+".partial-*")
	if err != nil {
		return halt(state, fmt.Errorf("output_archive: %w", err))
	}
	s.written = append(s.written, tmp.Name())
	err = writeArchive(ctx, drv, cfg, md, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), artifactMode)
	}
	if err != nil {
		return halt(state, fmt.Errorf("output_archive: %w", err))
	}

	mdJSON, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return halt(state, fmt.Errorf("output_archive metadata: %w", err))
	}
	mdTmp := tmp.Name() + ".json"
	s.written = append(s.written, mdTmp)
	if err := writeNewFile(mdTmp, append(mdJSON, '\n'), artifactMode); err != nil {
		return halt(state, fmt.Errorf("output_archive metadata: %w", err))
	}

	for _, mv := range [][2]string{{tmp.Name(), cfg.OutputArchive}, {mdTmp, metadataPath(cfg.OutputArchive)}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return halt(state, fmt.Errorf("output_archive: %w", err))
		}
		s.written = append(s.written, mv[1])
	}
	st, _ := os.Stat(cfg.OutputArchive)
	var size int64
	if st != nil {
		size = st.Size()
	}
	ui.Say(fmt.Sprintf("Wrote %s (%d MiB) in %s", cfg.OutputArchive, size>>20, time.Since(start).Round(100*time.Millisecond)))
	state.Put(stateArchiveFiles, []string{cfg.OutputArchive, metadataPath(cfg.OutputArchive)})
	return multistep.ActionContinue
}

// Cleanup removes what the step wrote when the build did not succeed.
func (s *stepOutputArchive) Cleanup(state multistep.StateBag) {
	if !buildFailed(state) {
		return
	}
	ui := state.Get(stateUI).(packersdk.Ui)
	for _, p := range s.written {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			ui.Error(fmt.Sprintf("Could not remove %s: %v", p, err))
		}
	}
}

// writeArchive compresses the container's root file system into w, as a
// plain rootfs tarball or as an LXD unified image.
func writeArchive(ctx context.Context, drv driver, cfg *Config, md map[string]string, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	gz, err := gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	if cfg.OutputFormat == FormatLXD {
		err = writeLXDImage(ctx, drv, cfg.ContainerName, md, gz)
	} else {
		err = drv.ExportContainer(ctx, cfg.ContainerName, gz)
	}
	if err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// writeLXDImage writes LXD's unified image form: metadata.yaml, then the
// root file system under rootfs/.
func writeLXDImage(ctx context.Context, drv driver, name string, md map[string]string, w io.Writer) error {
	tw := tar.NewWriter(w)
	meta := lxdMetadataYAML(md)
	if err := tw.WriteHeader(&tar.Header{
		Name: "metadata.yaml", Mode: 0o644, Size: int64(len(meta)), ModTime: now(), Typeflag: tar.TypeReg, Format: tar.FormatPAX,
	}); err != nil {
		return err
	}
	if _, err := tw.Write(meta); err != nil {
		return err
	}

	pr, pw := io.Pipe()
	exported := make(chan error, 1)
	go func() {
		err := drv.ExportContainer(ctx, name, pw)
		pw.CloseWithError(err)
		exported <- err
	}()
	err := prefixTar(tar.NewReader(pr), tw, "rootfs")
	if err == nil {
		// tar pads its stream to whole records after the end marker
		// that ends the read: take the rest, so its writes succeed.
		_, err = io.Copy(io.Discard, pr)
	} else {
		// Unblock the exporter: the copy stopped early.
		pr.CloseWithError(errors.New("image writer stopped"))
	}
	if xerr := <-exported; xerr != nil && err == nil {
		err = xerr
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

// prefixTar copies a tar stream whose names are relative to a root ("./etc")
// under prefix ("rootfs/etc"); hard link targets move with the names,
// symlink targets are the container's own and stay.
func prefixTar(tr *tar.Reader, tw *tar.Writer, prefix string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the exported root file system: %w", err)
		}
		h.Name = prefixName(prefix, h.Name)
		if h.Typeflag == tar.TypeLink {
			h.Linkname = prefixName(prefix, h.Linkname)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

func prefixName(prefix, name string) string {
	name = strings.TrimPrefix(name, "./")
	if name == "" || name == "." {
		return prefix + "/"
	}
	return prefix + "/" + name
}

// lxdArch is the architecture as LXD names it (the kernel's names).
func lxdArch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	case "arm":
		return "armv7l"
	}
	return goarch
}

// lxdMetadataYAML renders metadata.yaml. Strings are written JSON-quoted,
// which YAML reads as double-quoted scalars, so no value can break the
// document.
func lxdMetadataYAML(md map[string]string) []byte {
	var b strings.Builder
	arch := md[virt.MetadataArch]
	if arch == "" {
		arch = runtime.GOARCH
	}
	created := now()
	if t, err := time.Parse(time.RFC3339, md[virt.MetadataBuildTime]); err == nil {
		created = t
	}
	fmt.Fprintf(&b, "architecture: %s\n", strconv.Quote(lxdArch(arch)))
	fmt.Fprintf(&b, "creation_date: %d\n", created.Unix())
	b.WriteString("properties:\n")
	props := map[string]string{}
	for k, v := range md {
		props[k] = v
	}
	props["architecture"] = lxdArch(arch)
	if _, ok := props["description"]; !ok {
		props["description"] = strings.TrimSpace(fmt.Sprintf("%s %s %s (%s)", md[virt.MetadataOS], md[virt.MetadataRelease], lxdArch(arch), md[virt.MetadataBuildTime]))
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q, _ := json.Marshal(props[k])
		fmt.Fprintf(&b, "  %s: %s\n", k, q)
	}
	b.WriteString("templates: {}\n")
	return []byte(b.String())
}

// writeNewFile writes data to a file that must not exist yet (so nothing
// planted under its name, a symlink, is written through), with mode exactly
// (not narrowed by the umask).
func writeNewFile(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
