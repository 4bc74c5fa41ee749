package provider

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

// testProtoV6ProviderFactories runs the provider in-process for the real
// terraform binary that terraform-plugin-testing drives.
var testProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"virt": providerserver.NewProtocol6WithError(New("test")()),
}

// testAccPreCheck fails (never skips) when what acceptance tests need is
// missing, so that CI cannot go green by testing nothing.
func testAccPreCheck(t *testing.T) {
	t.Helper()
	testenv.Integration(t)
	if os.Getenv("TF_ACC") == "" {
		t.Fatal("acceptance tests need TF_ACC=1 (make testacc sets it)")
	}
	if _, err := exec.LookPath("terraform"); err != nil && os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		t.Fatal("acceptance tests need the terraform binary on PATH")
	}
}

// providerConfig points the provider at the test daemon.
func providerConfig() string {
	return `provider "virt" {
  uri = "` + testenv.URI() + `"
}
`
}

// commandOutput runs a host tool whose answer a test compares with the
// provider's; it fails the test when the tool fails.
func commandOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// testLibvirtClient connects to the test daemon directly, for CheckDestroy
// functions and out-of-band changes: what the provider did is checked
// against libvirt itself, not against the provider's own reading of it.
func testLibvirtClient(t *testing.T) *libvirt.Client {
	t.Helper()
	c, err := libvirt.New(context.Background(), libvirt.Options{URI: testenv.URI()})
	if err != nil {
		t.Fatalf("connect to %s: %v", testenv.URI(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A URI that would connect without checking the host's identity is refused
// wherever the provider takes one: uri and hosts at validate, before any
// connection, and LIBVIRT_DEFAULT_URI when the provider is configured. The
// error names the parameter and what to do instead.
func TestAccProvider_unverifiedHostURI(t *testing.T) {
	testAccPreCheck(t)
	t.Setenv("LIBVIRT_DEFAULT_URI", "qemu+tls://hv1.example.com/system?no_verify=1")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: `provider "virt" {
  uri = "qemu+tls://hv1.example.com/system?no_verify=1"
}
data "virt_host" "this" {}`,
			ExpectError: phrasesInOrder("Insecure libvirt URI", "no_verify=1 is refused", "server's TLS certificate", "pkipath=DIR"),
		}, {
			Config: `provider "virt" {
  uri = "` + testenv.URI() + `"
  hosts = {
    rack1 = "qemu+libssh://root@hv1.example.com/system?known_hosts_verify=ignore"
  }
}
data "virt_host" "this" {}`,
			ExpectError: phrasesInOrder("Insecure libvirt URI", "known_hosts_verify=ignore is refused", "add the host's key"),
		}, {
			Config: `provider "virt" {}
data "virt_host" "this" {}`,
			ExpectError: phrasesInOrder("Insecure libvirt URI", "LIBVIRT_DEFAULT_URI", "no_verify=1 is refused"),
		}},
	})
}

// phrasesInOrder matches the phrases in this order, each with any run of
// blanks where it has one: Terraform wraps long messages at its width.
func phrasesInOrder(phrases ...string) *regexp.Regexp {
	parts := make([]string, len(phrases))
	for i, p := range phrases {
		parts[i] = spaced(p).String()
	}
	return regexp.MustCompile(`(?s)` + strings.Join(parts, `.*`))
}
