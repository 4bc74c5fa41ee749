//go:build tools

// Package tools pins the build tools (docs generator, linter) in their own
// module, so their dependencies stay out of the provider's go.mod.
package tools

import (
	_ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
	_ "github.com/hashicorp/packer-plugin-sdk/cmd/packer-sdc"
	_ "github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs"
)
