//go:generate packer-sdc mapstructure-to-hcl2 -type Config

package container

import (
	"github.com/hashicorp/packer-plugin-sdk/common"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"
)

// Config is the virt-container builder's configuration.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	ctx interpolate.Context
}

// Prepare decodes raws into c and validates it.
func (c *Config) Prepare(raws ...interface{}) ([]string, error) {
	err := config.Decode(c, &config.DecodeOpts{
		PluginType:         BuilderID,
		Interpolate:        true,
		InterpolateContext: &c.ctx,
	}, raws...)
	if err != nil {
		return nil, err
	}
	return nil, nil
}
