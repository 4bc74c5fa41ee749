// Command packer-plugin-virt is the virt Packer plugin: the virt-machine
// builder bakes KVM guest templates (volumes) through libvirt, the
// virt-container builder LXC template containers, on the same layer the
// Terraform provider uses to clone them.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/virtforge/terraform-provider-virt/packer/builder/container"
	"github.com/virtforge/terraform-provider-virt/packer/builder/machine"
	"github.com/virtforge/terraform-provider-virt/packer/version"
)

func main() {
	set := plugin.NewSet()
	// Packer prefixes the plugin's name: templates say "virt-machine" and
	// "virt-container".
	set.RegisterBuilder("machine", new(machine.Builder))
	set.RegisterBuilder("container", new(container.Builder))
	set.SetVersion(version.PluginVersion)
	if err := set.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
