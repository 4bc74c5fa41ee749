package machine

import (
	"context"
	"errors"
	"fmt"
	"os"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// Artifact is a template volume on the host (and, with output_directory,
// its copy and description here). Its Id is the volume key, which
// virt_volume.base_volume_id takes.
type Artifact struct {
	driver     Driver
	volume     virt.VolumeSpec
	files      []string
	domainType string
	stateData  map[string]interface{}
}

var _ packersdk.Artifact = (*Artifact)(nil)

func (a *Artifact) BuilderId() string { return BuilderID }
func (a *Artifact) Files() []string   { return a.files }
func (a *Artifact) Id() string        { return a.volume.Key }

func (a *Artifact) String() string {
	s := fmt.Sprintf("Volume %s/%s (%s, %d bytes), key %s", a.volume.Pool, a.volume.Name, a.volume.Format, a.volume.CapacityBytes, a.volume.Key)
	if len(a.files) > 0 {
		s += fmt.Sprintf("; %d files in the output directory", len(a.files))
	}
	return s
}

// State answers the keys a Vagrant post-processor reads (diskName,
// diskType, diskSize, domainType) and the SDK's generated data.
func (a *Artifact) State(name string) interface{} {
	switch name {
	case "diskName":
		return a.volume.Name
	case "diskType":
		return a.volume.Format
	case "diskSize":
		// Vagrant's libvirt box format takes the virtual size in GiB.
		return fmt.Sprintf("%d", (a.volume.CapacityBytes+(1<<30)-1)>>30)
	case "domainType":
		return a.domainType
	case "volumeKey":
		return a.volume.Key
	case "volumePool":
		return a.volume.Pool
	}
	return a.stateData[name]
}

// Destroy removes the volume and the files.
func (a *Artifact) Destroy() error {
	var errs []error
	if a.driver != nil {
		if err := a.driver.DeleteVolume(context.Background(), a.volume.Key); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	for _, f := range a.files {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
