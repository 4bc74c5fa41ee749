// Package provider is the Terraform front end of internal/virt: thin
// resources and data sources that map their models to virt specs and back.
package provider

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
	"github.com/virtforge/terraform-provider-virt/provider/validators"
)

// DefaultLXCPath is where LXC keeps containers when lxc_path is not set.
const DefaultLXCPath = "/var/lib/lxc"

// unverifiedHostURIDescription is the rule of libvirt.ParseURI that the
// uri and hosts attributes share.
const unverifiedHostURIDescription = "URI parameters that switch off the check of the host's identity are refused: " +
	"`no_verify` (other than `no_verify=0`) and `known_hosts_verify=auto` or `=ignore`. Add the host's SSH key " +
	"to the known_hosts file, or trust the CA of its TLS certificate with `pkipath=DIR`, instead."

var _ provider.Provider = (*virtProvider)(nil)

type virtProvider struct {
	version string
}

// New returns the provider factory that providerserver and the acceptance
// tests use.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &virtProvider{version: version} }
}

type providerModel struct {
	URI     types.String `tfsdk:"uri"`
	Hosts   types.Map    `tfsdk:"hosts"`
	LXCPath types.String `tfsdk:"lxc_path"`
}

func (p *virtProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "virt"
	resp.Version = p.version
}

func (p *virtProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages KVM machines (through libvirt) and LXC system containers on a Linux host.",
		Attributes: map[string]schema.Attribute{
			"uri": schema.StringAttribute{
				MarkdownDescription: "libvirt connection URI, for example `qemu:///system` or " +
					"`qemu+ssh://root@host/system`. Defaults to the `LIBVIRT_DEFAULT_URI` environment " +
					"variable, then `" + libvirt.DefaultURI + "`. The connection is opened on first use " +
					"and shared by every resource of this provider. " + unverifiedHostURIDescription,
				Optional:   true,
				Validators: []validator.String{validators.LibvirtURI()},
			},
			"hosts": schema.MapAttribute{
				MarkdownDescription: "More libvirt hosts for this one provider: a map from a name of your choosing to " +
					"a libvirt URI. A resource or data source picks one with its `host` attribute; without it, it uses " +
					"`uri`. SSH host keys are always checked and an unknown one is refused: `qemu+ssh://` checks " +
					"`~/.ssh/known_hosts` of the user the provider runs as; `qemu+libssh://` also takes a " +
					"`known_hosts=PATH` parameter. " + unverifiedHostURIDescription +
					" Passwords in URIs are masked in messages and logs.",
				Optional:    true,
				ElementType: types.StringType,
				Validators:  []validator.Map{mapvalidator.ValueStringsAre(validators.LibvirtURI()), mapvalidator.KeysAre(validators.HostName())},
			},
			"lxc_path": schema.StringAttribute{
				MarkdownDescription: "Directory where LXC keeps containers (LXC's `lxc.lxcpath`). " +
					"Defaults to `" + DefaultLXCPath + "`. Containers are managed on the host the provider runs on.",
				Optional:   true,
				Validators: []validator.String{validators.AbsolutePath()},
			},
		},
	}
}

func (p *virtProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.URI.IsUnknown() || cfg.LXCPath.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("uri"), "Provider configuration not yet known",
			"The virt provider's uri and lxc_path must be known at plan time; they depend on values that are only known after apply.")
		return
	}
	if cfg.URI.IsNull() {
		checkEnvironmentURI(&resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	lxcPath := cfg.LXCPath.ValueString()
	if lxcPath == "" {
		lxcPath = DefaultLXCPath
	}
	hosts := map[string]string{}
	if !cfg.Hosts.IsNull() {
		if cfg.Hosts.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root("hosts"), "Provider configuration not yet known",
				"The virt provider's hosts must be known at plan time.")
			return
		}
		resp.Diagnostics.Append(cfg.Hosts.ElementsAs(ctx, &hosts, false)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	clients := newClients(libvirt.ResolveURI(cfg.URI.ValueString()), hosts, filepath.Clean(lxcPath), newLogger(pluginStderr))
	resp.DataSourceData = clients
	resp.ResourceData = clients
}

func (p *virtProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newContainerResource,
		newMachineResource,
		newNetworkResource,
		newPoolResource,
		newVolumeResource,
	}
}

func (p *virtProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newContainerDataSource,
		newContainerTemplateDataSource,
		newHostDataSource,
		newMachineDataSource,
		newNetworkDataSource,
		newVolumeDataSource,
	}
}

// checkEnvironmentURI applies uri's check of the host's identity to the URI
// that LIBVIRT_DEFAULT_URI gives when uri is not set: that one is only known
// here, after validation, and the plan must refuse it as it refuses uri.
// Other faults of it are left to the first connection, as before, so that a
// configuration with only containers does not depend on it.
func checkEnvironmentURI(diags *diag.Diagnostics) {
	env := os.Getenv("LIBVIRT_DEFAULT_URI")
	if env == "" {
		return
	}
	_, err := libvirt.ParseURI(env)
	var unverified *libvirt.UnverifiedHostError
	if errors.As(err, &unverified) {
		diags.AddAttributeError(path.Root("uri"), "Insecure libvirt URI",
			"The URI in LIBVIRT_DEFAULT_URI, used because uri is not set, is refused: "+err.Error())
	}
}
