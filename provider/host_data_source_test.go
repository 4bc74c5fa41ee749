package provider

import (
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
)

func TestAccHostDataSource(t *testing.T) {
	testAccPreCheck(t)

	// What the host's own tools say, to compare with what the provider reads.
	hostname := commandOutput(t, "virsh", "-c", "qemu:///system", "hostname")
	libvirtd := commandOutput(t, "libvirtd", "--version") // "libvirtd (libvirt) 9.0.0"
	libvirtVersion := libvirtd[strings.LastIndex(libvirtd, " ")+1:]
	lxcVersion := commandOutput(t, "lxc-info", "--version")
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerConfig() + `data "virt_host" "this" {}`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.virt_host.this", tfjsonpath.New("hostname"), knownvalue.StringExact(hostname)),
				statecheck.ExpectKnownValue("data.virt_host.this", tfjsonpath.New("id"), knownvalue.StringExact(hostname)),
				statecheck.ExpectKnownValue("data.virt_host.this", tfjsonpath.New("arch"), knownvalue.StringExact(arch)),
				statecheck.ExpectKnownValue("data.virt_host.this", tfjsonpath.New("cpus"), knownvalue.Int64Exact(int64(runtime.NumCPU()))),
				statecheck.ExpectKnownValue("data.virt_host.this", tfjsonpath.New("libvirt_version"), knownvalue.StringExact(libvirtVersion)),
				statecheck.ExpectKnownValue("data.virt_host.this", tfjsonpath.New("lxc_version"), knownvalue.StringExact(lxcVersion)),
				statecheck.ExpectKnownValue("data.virt_host.this", tfjsonpath.New("domain_types"), listContains{"qemu"}),
				statecheck.ExpectKnownValue("data.virt_host.this", tfjsonpath.New("memory"), positiveInt64{}),
			},
		}},
	})
}

// A URI that cannot be dialled fails with a message naming it and the
// reason, at once rather than after a hang.
func TestAccHostDataSource_unreachableURI(t *testing.T) {
	testAccPreCheck(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `provider "virt" {
  uri = "qemu:///system?socket=/nonexistent/vt-acc.sock"
}
data "virt_host" "this" {}`,
			ExpectError: regexp.MustCompile(`(?s)Cannot connect to libvirt.*qemu:///system\?socket=/nonexistent/vt-acc.sock.*is libvirtd\s+running`),
		}},
	})
}

// A URI that is malformed is refused at validate time, before any dial.
func TestAccProvider_invalidURI(t *testing.T) {
	testAccPreCheck(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `provider "virt" {
  uri      = "kvm:///system"
  lxc_path = "relative/lxc"
}
data "virt_host" "this" {}`,
			ExpectError: regexp.MustCompile(`(?s)Invalid libvirt URI.*unknown driver "kvm"`),
		}, {
			Config: `provider "virt" {
  lxc_path = "relative/lxc"
}
data "virt_host" "this" {}`,
			ExpectError: regexp.MustCompile(`(?s)Relative path.*relative/lxc.*must be absolute`),
		}},
	})
}

// positiveInt64 checks a number is above zero, for facts whose exact value
// the test cannot know in advance.
type positiveInt64 struct{}

func (positiveInt64) CheckValue(v any) error {
	n, ok := v.(interface{ String() string })
	if !ok {
		return fmt.Errorf("expected a number, got %T", v)
	}
	if s := n.String(); s == "0" || strings.HasPrefix(s, "-") {
		return fmt.Errorf("expected a positive number, got %s", s)
	}
	return nil
}

func (positiveInt64) String() string { return "positive number" }

// listContains checks that a list holds a string, wherever it stands.
type listContains struct{ want string }

func (c listContains) CheckValue(v any) error {
	items, ok := v.([]any)
	if !ok {
		return fmt.Errorf("expected a list, got %T", v)
	}
	for _, item := range items {
		if item == c.want {
			return nil
		}
	}
	return fmt.Errorf("%v does not contain %q", items, c.want)
}

func (c listContains) String() string { return fmt.Sprintf("list containing %q", c.want) }

// One provider reaches several hosts through its hosts map; each data source
// reads the host it names. The daemon's test driver stands in for a second
// host: its fixed facts (i686, 16 CPUs) tell the two apart.
func TestAccHostDataSource_hosts(t *testing.T) {
	testAccPreCheck(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `provider "virt" {
  uri = "` + testenv.URI() + `"
  hosts = {
    other = "test:///default"
    same  = "` + testenv.URI() + `"
  }
}
data "virt_host" "default" {}
data "virt_host" "other" {
  host = "other"
}
data "virt_host" "same" {
  host = "same"
}`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.virt_host.default", tfjsonpath.New("cpus"), knownvalue.Int64Exact(int64(runtime.NumCPU()))),
				statecheck.ExpectKnownValue("data.virt_host.other", tfjsonpath.New("arch"), knownvalue.StringExact("i686")),
				statecheck.ExpectKnownValue("data.virt_host.other", tfjsonpath.New("cpus"), knownvalue.Int64Exact(16)),
				statecheck.ExpectKnownValue("data.virt_host.other", tfjsonpath.New("host"), knownvalue.StringExact("other")),
				statecheck.ExpectKnownValue("data.virt_host.same", tfjsonpath.New("cpus"), knownvalue.Int64Exact(int64(runtime.NumCPU()))),
			},
		}},
	})
}

// A host name that the provider does not define, or a hosts map with a bad
// name or URI, fails with the attribute at fault.
func TestAccHostDataSource_badHosts(t *testing.T) {
	testAccPreCheck(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerConfig() + `data "virt_host" "this" {
  host = "nowhere"
}`,
			ExpectError: regexp.MustCompile(`host "nowhere" is not defined: the provider configuration has no hosts map`),
		}, {
			Config: `provider "virt" {
  hosts = {
    "9bad" = "qemu:///system"
    good   = "qemu+carrier://x/system"
  }
}
data "virt_host" "this" {}`,
			ExpectError: regexp.MustCompile(`(?s)Invalid host name.*"9bad".*unknown transport "carrier"`),
		}},
	})
}
