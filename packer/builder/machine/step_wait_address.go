package machine

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// stepWaitAddress finds the guest's address as the host sees it: the DHCP
// lease on the libvirt network, then ARP, then the guest agent (the layer
// asks all three).
type stepWaitAddress struct{}

func (s *stepWaitAddress) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c := state.Get(stateConfig).(*Config)
	if c.Comm.Type == "none" {
		return multistep.ActionContinue
	}
	d := state.Get(stateDriver).(Driver)
	ui := state.Get("ui").(packersdk.Ui)
	m := state.Get(stateMachine).(*virt.MachineSpec)
	timeout := c.Comm.SSHTimeout
	if c.Comm.Type == "winrm" {
		timeout = c.Comm.WinRMTimeout
	}
	ui.Say("Waiting for the guest's IP address...")
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addrs, err := d.WaitForAddress(wctx, c.VMName, m.Interfaces[0].MAC)
	if err != nil {
		return halt(state, err)
	}
	ip := addrs[0]
	for _, a := range addrs {
		if p, err := netip.ParseAddr(a); err == nil && p.Is4() {
			ip = a
			break
		}
	}
	ui.Say(fmt.Sprintf("Guest address: %s", ip))
	state.Put(stateIP, ip)
	return multistep.ActionContinue
}

func (s *stepWaitAddress) Cleanup(multistep.StateBag) {}

func commHost(state multistep.StateBag) (string, error) {
	ip, ok := state.Get(stateIP).(string)
	if !ok || ip == "" {
		return "", fmt.Errorf("no guest address known")
	}
	return ip, nil
}
