// Package version holds the plugin's version, which Packer reads through
// `describe` and checks against required_plugins.
package version

import "github.com/hashicorp/packer-plugin-sdk/version"

var (
	// Version is set at build time (-ldflags "-X .../packer/version.Version=1.2.3").
	Version = "0.1.0"
	// VersionPrerelease is "dev" for builds that are not releases; a release
	// build sets it empty.
	VersionPrerelease = "dev"
	// VersionMetadata is the optional build metadata after a "+".
	VersionMetadata = ""

	// PluginVersion is what the plugin reports.
	PluginVersion = version.NewPluginVersion(Version, VersionPrerelease, VersionMetadata)
)
