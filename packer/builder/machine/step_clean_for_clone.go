package machine

import (
	"context"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// cleanForCloneScript makes a guest fit to be cloned: every clone must get
// its own machine-id (systemd makes one on the next boot when the file is
// empty), its own SSH host keys and a fresh cloud-init run; fstrim hands
// freed blocks back so that the output copy is small.
const cleanForCloneScript = `set -e
if [ "$(id -u)" != 0 ]; then exec sudo -n sh -c "$0"; fi
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
rm -f /etc/ssh/ssh_host_*
if command -v cloud-init >/dev/null 2>&1; then cloud-init clean --logs --seed; fi
rm -f /var/lib/dhcp/*.leases
fstrim -a >/dev/null 2>&1 || true
sync`

// stepCleanForClone runs cleanForCloneScript in the guest (clean_for_clone).
type stepCleanForClone struct{}

func (s *stepCleanForClone) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	if !c.CleanForClone {
		return multistep.ActionContinue
	}
	ui := state.Get("ui").(packersdk.Ui)
	if c.Comm.Type == "winrm" {
		ui.Say("clean_for_clone: Windows guests are generalized with sysprep in a provisioner; skipping")
		return multistep.ActionContinue
	}
	comm := state.Get("communicator").(packersdk.Communicator)
	ui.Say("Cleaning the guest for cloning (machine-id, SSH host keys, cloud-init, fstrim)...")
	cmd := &packersdk.RemoteCmd{Command: "sh -c '" + cleanForCloneScript + "'"}
	if err := cmd.RunWithUi(ctx, comm, ui); err != nil {
		return halt(state, fmt.Errorf("clean_for_clone: %w", err))
	}
	if st := cmd.ExitStatus(); st != 0 {
		return halt(state, fmt.Errorf("clean_for_clone: the script exited with status %d", st))
	}
	return multistep.ActionContinue
}

func (s *stepCleanForClone) Cleanup(multistep.StateBag) {}
