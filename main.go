// Command terraform-provider-virt serves the virt Terraform provider: KVM
// machines through libvirt and LXC containers on a Linux host.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime/pprof"

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
	stopProfile := startCPUProfile()
	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address: Address,
		Debug:   debug,
	})
	stopProfile()
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

// cpuProfileEnv names a directory: when it is set, every provider process
// Terraform starts writes a CPU profile of its whole life there, as
// cpu-PID.pprof (one command starts several: validate, plan, apply). It is
// a developer's aid for finding where the provider's time goes under a real
// terraform run, which a Go benchmark of the layer does not show (the
// framework's and the plugin protocol's share, plan-time checks). Read a
// profile with `go tool pprof -top BINARY DIR/cpu-PID.pprof`, or merge
// them: `go tool pprof -top BINARY DIR/*.pprof`.
const cpuProfileEnv = "VIRT_PROVIDER_CPUPROFILE"

// startCPUProfile starts the profile cpuProfileEnv asks for, and returns
// what stops and writes it; Serve returns when Terraform shuts the provider
// down. A profile that cannot be started is reported on stderr (Terraform's
// log) and the provider serves without one.
func startCPUProfile() (stop func()) {
	dir := os.Getenv(cpuProfileEnv)
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", os.Getpid())))
	if err != nil {
		log.Printf("%s: %v", cpuProfileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Printf("%s: %v", cpuProfileEnv, err)
		_ = f.Close() // empty: nothing to keep
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Printf("%s: %v", cpuProfileEnv, err)
		}
	}
}
