package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// Artifact is what a build leaves: a template container on the host, a
// root file system archive with its metadata file, or both.
type Artifact struct {
	// Template is the template container's name ("" when none was asked).
	Template string
	// Archive and MetadataFile are the archive's paths ("" when none).
	Archive      string
	MetadataFile string
	// Metadata is what both carry: os, release, arch, build_time and the
	// user's keys.
	Metadata map[string]string

	driver  driver
	lxcPath string
}

var _ packersdk.Artifact = (*Artifact)(nil)

// Artifact state keys, for post-processors and HCL's build.* data.
const (
	ArtifactStateTemplate = "template"
	ArtifactStateLXCPath  = "lxc_path"
	ArtifactStateArchive  = "archive"
	ArtifactStateMetadata = "metadata"
)

func (a *Artifact) BuilderId() string { return BuilderID }

// Files are the archive and its metadata file.
func (a *Artifact) Files() []string {
	if a.Archive == "" {
		return nil
	}
	return []string{a.Archive, a.MetadataFile}
}

// Id is what virt_container clones: the template's name (its `template`),
// else the archive's path (its `archive`).
func (a *Artifact) Id() string {
	if a.Template != "" {
		return a.Template
	}
	return a.Archive
}

func (a *Artifact) String() string {
	var parts []string
	if a.Template != "" {
		parts = append(parts, fmt.Sprintf("LXC template container %q in %s", a.Template, a.lxcPath))
	}
	if a.Archive != "" {
		parts = append(parts, fmt.Sprintf("root file system archive %s (metadata %s)", a.Archive, a.MetadataFile))
	}
	return strings.Join(parts, " and ")
}

func (a *Artifact) State(name string) interface{} {
	switch name {
	case ArtifactStateTemplate:
		return a.Template
	case ArtifactStateLXCPath:
		return a.lxcPath
	case ArtifactStateArchive:
		return a.Archive
	case ArtifactStateMetadata:
		return a.Metadata
	}
	return nil
}

// Destroy removes the template container and the archive files.
func (a *Artifact) Destroy() error {
	var errs []error
	if a.Template != "" && a.driver != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := a.driver.DestroyContainer(ctx, a.Template); err != nil && !errors.Is(err, virt.ErrNotFound) {
			errs = append(errs, fmt.Errorf("destroy template container %q: %w", a.Template, err))
		}
	}
	for _, f := range a.Files() {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
