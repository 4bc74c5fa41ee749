package machine

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// stoppingDriver reports every machine stopped at once.
type stoppingDriver struct{ Driver }

func (stoppingDriver) WaitMachineStopped(context.Context, string) error { return nil }

// recordingComm runs nothing and records the command it was given.
type recordingComm struct {
	packersdk.Communicator
	got string
}

func (c *recordingComm) Start(_ context.Context, cmd *packersdk.RemoteCmd) error {
	c.got = cmd.Command
	cmd.SetExited(0)
	return nil
}

// TestShutdownCommandShownRedacted: the shutdown command the UI shows
// leaves out the values of the environment it sets; the guest still gets
// the command as written.
func TestShutdownCommandShownRedacted(t *testing.T) {
	var shown bytes.Buffer
	comm := &recordingComm{}
	command := `PASSWORD='s3cret' /usr/local/bin/finish && shutdown -P now`
	state := new(multistep.BasicStateBag)
	state.Put("ui", &packersdk.BasicUi{Writer: &shown, ErrorWriter: &shown})
	cfg := &Config{VMName: "vm"}
	cfg.ShutdownCommand = command
	state.Put(stateConfig, cfg)
	state.Put(stateDriver, stoppingDriver{})
	state.Put("communicator", comm)

	if action := (&stepShutdown{}).Run(context.Background(), state); action != multistep.ActionContinue {
		t.Fatalf("step halted: %v", state.Get("error"))
	}
	if strings.Contains(shown.String(), "s3cret") || !strings.Contains(shown.String(), "PASSWORD=<redacted>") {
		t.Errorf("the UI showed %q", shown.String())
	}
	if comm.got != command {
		t.Errorf("the guest ran %q, want %q", comm.got, command)
	}
}
