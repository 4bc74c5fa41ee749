package machine

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// networkDriver is a Driver that knows one network; the HTTP server's
// step asks it nothing else (and a nil network panics when asked).
type networkDriver struct {
	Driver
	network *virt.NetworkSpec
}

func (d networkDriver) Network(_ context.Context, name string) (*virt.NetworkSpec, error) {
	if d.network == nil {
		panic("the network was looked up")
	}
	if name != d.network.Name {
		return nil, fmt.Errorf("network %q: %w", name, virt.ErrNotFound)
	}
	return d.network, nil
}

// answer is what the test's HTTP server serves: an answer file's secret.
const answer = "d-i passwd/root-password password hunter2\n"

// httpStep runs the HTTP server's step of a build whose configuration is
// raw (with an answer file in http_content), as the build's step list has
// it, and returns its result; the server stops when the test ends.
func httpStep(t *testing.T, raw map[string]any, d Driver) (multistep.StepAction, multistep.StateBag, []string) {
	t.Helper()
	cfg := map[string]any{
		"source_volume": "default/vt-src",
		"output_volume": "vt-out",
		"communicator":  "none",
		"network":       "vt-net",
		"http_content":  map[string]string{"/preseed.cfg": answer},
	}
	for k, v := range raw {
		cfg[k] = v
	}
	var b Builder
	_, warnings, err := b.Prepare(cfg)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	// The step as the build runs it, found by its type's name.
	var step multistep.Step
	for _, s := range b.steps() {
		if strings.Contains(reflect.TypeOf(s).String(), "HTTPServer") {
			step = s
		}
	}
	if step == nil {
		t.Fatal("the build has no HTTP server step")
	}
	state := new(multistep.BasicStateBag)
	state.Put("ui", packersdk.TestUi(t))
	state.Put(stateConfig, &b.config)
	state.Put(stateDriver, d)
	action := step.Run(context.Background(), state)
	t.Cleanup(func() { step.Cleanup(state) })
	return action, state, warnings
}

func loopbackNetwork() *virt.NetworkSpec {
	return &virt.NetworkSpec{Name: "vt-net", Active: true, Addresses: []string{"fd00::1/64", "127.0.0.1/8"}}
}

// Unless http_bind_address is set, the HTTP server listens on the host's
// address on the build network (from the network's definition) only, and
// {{ .HTTPIP }} is that address. The test network's host address is
// 127.0.0.1: another loopback address, 127.0.0.2, reaches a server that
// listens on all addresses, and must not reach this one.
func TestHTTPServerBindsToTheNetwork(t *testing.T) {
	action, state, _ := httpStep(t, nil, networkDriver{network: loopbackNetwork()})
	if action != multistep.ActionContinue {
		t.Fatalf("the HTTP server's step: %v", state.Get("error"))
	}
	port, _ := state.Get("http_port").(int)
	if port == 0 {
		t.Fatal("no http_port")
	}
	if ip, _ := state.Get(stateHTTPIP).(string); ip != "127.0.0.1" {
		t.Errorf("http_ip %q, want the network's host address 127.0.0.1", ip)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/preseed.cfg", port))
	if err != nil {
		t.Fatalf("the answer file from the network's host address: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != answer {
		t.Errorf("served %q, want the answer file", body)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.2:%d", port), 5*time.Second); err == nil {
		_ = c.Close()
		t.Errorf("the HTTP server answers on 127.0.0.2: it listens on addresses other than the network's")
	}
}

// Where the host's address on the network cannot be this machine's, or
// there is none, the build stops rather than serve on all addresses; a
// bind address that is set is used as it is, without a look-up.
func TestHTTPServerBindAddress(t *testing.T) {
	inactive := loopbackNetwork()
	inactive.Active = false
	for name, tc := range map[string]struct {
		raw     map[string]any
		network *virt.NetworkSpec
		want    string // in the error; empty: the step goes on
		httpIP  string
	}{
		"remote host": {raw: map[string]any{"uri": "qemu+ssh://root@virt.example/system"}, network: loopbackNetwork(),
			want: "http_bind_address: set it"},
		"no IPv4 address": {network: &virt.NetworkSpec{Name: "vt-net", Active: true, Addresses: []string{"fd00::1/64"}},
			want: `network "vt-net" has no IPv4 address`},
		"inactive network": {network: inactive, want: `network "vt-net" is not active`},
		"unknown network":  {raw: map[string]any{"network": "vt-other"}, network: loopbackNetwork(), want: "not found"},
		"set":              {raw: map[string]any{"http_bind_address": "127.0.0.1"}, httpIP: "127.0.0.1"},
		"nothing served":   {raw: map[string]any{"http_content": map[string]string{}}},
	} {
		t.Run(name, func(t *testing.T) {
			action, state, _ := httpStep(t, tc.raw, networkDriver{network: tc.network})
			err, _ := state.Get("error").(error)
			switch {
			case tc.want == "" && action != multistep.ActionContinue:
				t.Fatalf("the step stopped the build: %v", err)
			case tc.want != "" && (action != multistep.ActionHalt || err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("action %v, error %v; want the build stopped with %q", action, err, tc.want)
			case tc.want != "":
				if _, ok := state.GetOk("http_port"); ok {
					t.Error("the HTTP server started")
				}
			}
			if ip, _ := state.Get(stateHTTPIP).(string); ip != tc.httpIP {
				t.Errorf("http_ip %q, want %q", ip, tc.httpIP)
			}
		})
	}
}

// A bind address of all addresses, set, is warned about.
func TestHTTPServerWildcardWarning(t *testing.T) {
	for _, addr := range []string{"0.0.0.0", "::"} {
		_, _, warnings := httpStep(t, map[string]any{"http_bind_address": addr}, networkDriver{})
		if !strings.Contains(strings.Join(warnings, "\n"), "listens on all of this machine's addresses") {
			t.Errorf("http_bind_address %q: warnings %q, want one about listening on all addresses", addr, warnings)
		}
	}
	_, _, warnings := httpStep(t, nil, networkDriver{network: loopbackNetwork()})
	if len(warnings) > 0 {
		t.Errorf("unset http_bind_address: warnings %q", warnings)
	}
}
