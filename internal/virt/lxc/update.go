//go:build linux && cgo

package lxc

import (
	"context"
	"errors"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// UpdateContainer is a placeholder until the live update lands.
func (c *Client) UpdateContainer(ctx context.Context, name string, want virt.ContainerSpec) (*virt.ContainerSpec, error) {
	return nil, errors.New("update container: not implemented yet")
}

// ContainerTemplates is a placeholder until the template listing lands.
func (c *Client) ContainerTemplates(ctx context.Context) ([]virt.ContainerTemplate, error) {
	return nil, errors.New("list container templates: not implemented yet")
}
