//go:build !(linux && cgo)

package lxc

import (
	"context"
	"io"
)

// ExportContainer is not available in builds without liblxc.
func (*Client) ExportContainer(context.Context, string, io.Writer) error { return errNoLXC }
