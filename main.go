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

	quietSDKLogs()
	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: Address,
		Debug:   debug,
	})
	if err != nil {
		log.Println(err)
		os.Exit(1)
	}
}

// quietSDKLogs turns the plugin SDK's own trace logs off when nobody asked
// for logs: the framework formats and ships them to Terraform for every
// call, which then throws them away, and that was a quarter of the
// provider's CPU time per machine in `make bench`. Any TF_LOG* variable
// leaves logging as the user set it.
func quietSDKLogs() {
	for _, v := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_PROVIDER_VIRT", "TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
		if os.Getenv(v) != "" {
			return
		}
	}
	_ = os.Setenv("TF_LOG_SDK", "off")
}
