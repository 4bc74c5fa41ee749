// Package releasetest builds the release that goreleaser would publish and
// installs it the way the Terraform Registry and Packer's plugin installer
// would, minus the network: the provider from a filesystem mirror holding the
// release zip itself (no dev_overrides), the plugin with `packer plugins
// install --path` and `packer init` of a template with required_plugins.
// It also builds both releases a second time and requires the same bytes.
// It is an acceptance test (TF_ACC=1); it has no code of its own.
package releasetest
