package container

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// now is the build time; tests replace it.
var now = time.Now

// stepReadMetadata reads what the provisioned container is (os-release)
// while it still runs, and makes the metadata every output carries.
type stepReadMetadata struct{}

func (s *stepReadMetadata) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	cfg := state.Get(stateConfig).(*Config)
	drv := state.Get(stateDriver).(driver)
	ui := state.Get(stateUI).(packersdk.Ui)

	var out, errOut bytes.Buffer
	// Both places os-release(5) allows; busybox-style roots have neither.
	status, err := drv.Exec(ctx, cfg.ContainerName, virt.ExecSpec{
		Args:   []string{"/bin/sh", "-c", "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release"},
		Stdout: &out, Stderr: &errOut,
	})
	if err != nil {
		return halt(state, fmt.Errorf("read os-release: %w", err))
	}
	osRelease := map[string]string{}
	if status == 0 {
		osRelease = parseOSRelease(out.String())
	} else {
		ui.Say("The container has no os-release file; its metadata names the source instead.")
	}
	md := buildMetadata(cfg, osRelease, now())
	state.Put(stateMetadata, md)
	ui.Say(fmt.Sprintf("Metadata: os=%q release=%q arch=%q", md[virt.MetadataOS], md[virt.MetadataRelease], md[virt.MetadataArch]))
	return multistep.ActionContinue
}

func (s *stepReadMetadata) Cleanup(multistep.StateBag) {}

// parseOSRelease reads os-release(5): KEY=value lines, values optionally
// quoted in shell style.
func parseOSRelease(text string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			if v[0] == '"' {
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				} else {
					v = v[1 : len(v)-1]
				}
			} else {
				v = v[1 : len(v)-1]
			}
		}
		out[k] = v
	}
	return out
}

// buildMetadata is the standard keys (from os-release, or the source when
// the container has none), then the user's.
func buildMetadata(cfg *Config, osRelease map[string]string, built time.Time) map[string]string {
	osID, release := osRelease["ID"], osRelease["VERSION_ID"]
	if release == "" {
		// Debian testing/sid have no VERSION_ID; the codename says which.
		release = osRelease["VERSION_CODENAME"]
	}
	if osID == "" && cfg.LXCTemplate != nil {
		osID = cfg.LXCTemplate.Name
	}
	if release == "" && cfg.Bootstrap != nil {
		release = cfg.Bootstrap.Release
	}
	md := virt.NewContainerMetadata(osID, release, runtime.GOARCH, built)
	for k, v := range cfg.Metadata {
		md[k] = v
	}
	return md
}
