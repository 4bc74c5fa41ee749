package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// TestMain lets `go test ./provider -sweep=local` run the sweepers that each
// resource's test file registers; without -sweep it runs the tests.
func TestMain(m *testing.M) {
	resource.TestMain(m)
}
