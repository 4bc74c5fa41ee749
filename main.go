// Command terraform-provider-virt serves the virt Terraform provider: KVM
// machines through libvirt and LXC containers on a Linux host.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/virtforge/terraform-provider-virt/provider"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// Address is where Terraform finds the provider.
const Address = "registry.terraform.io/virtforge/virt"

func main() {
	var debug, showVersion bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.BoolVar(&showVersion, "version", false, "print the version and exit")
	flag.Parse()

	if showVersion {
		fmt.Println(version)
		return
	}

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: Address,
		Debug:   debug,
	})
	if err != nil {
		log.Println(err)
		os.Exit(1)
	}
}
