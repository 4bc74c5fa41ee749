// Package validators holds the attribute validators that the framework's
// own validator packages lack.
package validators

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

// LibvirtURI checks that a string is a libvirt URI the provider can dial,
// and without parameters that switch off the check of the host's identity.
func LibvirtURI() validator.String { return libvirtURI{} }

type libvirtURI struct{}

func (libvirtURI) Description(context.Context) string {
	return "value must be a libvirt URI such as qemu:///system or qemu+ssh://user@host/system"
}

func (v libvirtURI) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (libvirtURI) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := libvirt.ParseURI(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, uriErrorSummary(err), err.Error())
	}
}

// uriErrorSummary tells a URI that would skip the host check from one that
// is merely wrong: the first is a security refusal, not a typo.
func uriErrorSummary(err error) string {
	var unverified *libvirt.UnverifiedHostError
	if errors.As(err, &unverified) {
		return "Insecure libvirt URI"
	}
	return "Invalid libvirt URI"
}

// AbsolutePath checks that a string is an absolute filesystem path.
func AbsolutePath() validator.String { return absolutePath{} }

type absolutePath struct{}

func (absolutePath) Description(context.Context) string { return "value must be an absolute path" }

func (v absolutePath) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (absolutePath) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if p := req.ConfigValue.ValueString(); !filepath.IsAbs(p) {
		resp.Diagnostics.AddAttributeError(req.Path, "Relative path",
			"The path \""+p+"\" must be absolute, for example /var/lib/lxc.")
	}
}

// HostName checks a key of the provider's hosts map: a short name that
// resources refer to in their host attribute.
func HostName() validator.String { return hostName{} }

type hostName struct{}

var hostNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,62}$`)

func (hostName) Description(context.Context) string {
	return "value must start with a letter and hold only letters, digits, '_', '.' and '-' (at most 63)"
}

func (v hostName) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v hostName) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if s := req.ConfigValue.ValueString(); !hostNameRE.MatchString(s) {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid host name", fmt.Sprintf("%q: %s.", s, v.Description(ctx)))
	}
}
