package provider

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

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
