// Package lxc is the container backend: it implements virt.ContainerBackend
// with liblxc (through go-lxc, which needs cgo). Builds without cgo or for
// other systems get a stand-in whose New says so, so the rest of the
// provider still builds and manages machines.
//
// Containers live under an LXC path (/var/lib/lxc), each with LXC's own
// config plus a managed file holding what the spec renders; see
// ManagedConfigName. A template container may hold a metadata file
// (virt.ContainerMetadataName) that ContainerTemplates reads. Limits change
// live in the cgroup hierarchy that holds their controller (cgroupLayout);
// what only a restart applies is found by asking the running container's
// monitor for its config (pendingRestart).
package lxc
