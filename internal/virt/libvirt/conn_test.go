package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
)

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		uri     string
		wantErr string
	}{
		{"qemu:///system", ""},
		{"qemu:///session", ""},
		{"qemu+ssh://root@host/system", ""},
		{"qemu+tcp://host:16509/system", ""},
		{"qemu+tls://host/system?pkipath=/etc/pki", ""},
		{"test:///default", ""},
		{"qemu:///system?socket=/run/libvirt/libvirt-sock", ""},
		{"", "no driver"},
		{"/var/run/libvirt/libvirt-sock", "no driver"},
		{"kvm:///system", "unknown driver"},
		{"qemu+carrier://host/system", "unknown transport"},
		{"qemu+ext:///system?command=/bin/x", "not supported"},
		{"qemu+ssh:///system", "needs a host"},
		{"qemu:///sytem", "path is /system or /session"},
		{"qemu://%zz/system", "malformed"},
		{"kvm+ssh://root:hunter2@host/system", `"kvm+ssh://root:xxxxx@host/system": unknown driver`},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			_, err := ParseURI(tc.uri)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseURI(%q): %v", tc.uri, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseURI(%q) = %v, want error containing %q", tc.uri, err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows the URI's password: %v", err)
			}
		})
	}
}

func TestResolveURI(t *testing.T) {
	t.Setenv("LIBVIRT_DEFAULT_URI", "")
	if got := ResolveURI(""); got != DefaultURI {
		t.Fatalf("ResolveURI(\"\") = %q, want %q", got, DefaultURI)
	}
	t.Setenv("LIBVIRT_DEFAULT_URI", "test:///default")
	if got := ResolveURI(""); got != "test:///default" {
		t.Fatalf("ResolveURI from env = %q", got)
	}
	if got := ResolveURI("qemu:///session"); got != "qemu:///session" {
		t.Fatalf("explicit URI lost: %q", got)
	}
}

// A socket path that does not exist fails at once and says why.
func TestConnectMissingSocket(t *testing.T) {
	start := time.Now()
	_, err := New(context.Background(), Options{URI: "qemu:///system?socket=/nonexistent/libvirt-sock"})
	if err == nil {
		t.Fatal("connect to a missing socket succeeded")
	}
	for _, want := range []string{"/nonexistent/libvirt-sock", "is libvirtd running"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing took %s", d)
	}
}

// A peer that accepts the connection but never answers must not hang: this is
// the fault a real daemon cannot be made to produce, so a silent listener
// stands in for it.
func TestConnectSilentPeerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	// Closing the listener ends the accept loop, which then closes what it
	// accepted; the close errors of a fake peer say nothing about the test.
	defer func() {
		_ = ln.Close()
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }()
		}
	}()
	uri := "qemu+tcp://" + ln.Addr().String() + "/system"
	_, err = New(context.Background(), Options{URI: uri, ConnectTimeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("connect to a silent peer succeeded")
	}
	if !strings.Contains(err.Error(), "no answer within") || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("unhelpful error: %v", err)
	}
}

func newTestClient(t *testing.T) *Client {
	t.Helper()
	testenv.Integration(t)
	c, err := New(context.Background(), Options{URI: testenv.URI()})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// The daemon's test driver needs no hypervisor: it proves the URI reaches
// the remote side as written.
func TestConnectTestDriver(t *testing.T) {
	testenv.Integration(t)
	c, err := New(context.Background(), Options{URI: "test:///default"})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer func() { _ = c.Close() }()
	err = c.call(context.Background(), func(lv *golibvirt.Libvirt) error {
		doms, _, err := lv.ConnectListAllDomains(1, 0)
		if err != nil {
			return err
		}
		if len(doms) == 0 || doms[0].Name != "test" {
			t.Errorf("test driver domains = %v, want the built-in \"test\" domain", doms)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// After the socket drops, the next call dials again instead of failing for
// ever.
func TestReconnectAfterDrop(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	var first *golibvirt.Libvirt
	if err := c.call(ctx, func(lv *golibvirt.Libvirt) error { first = lv; _, err := lv.ConnectGetLibVersion(); return err }); err != nil {
		t.Fatal(err)
	}
	if err := first.Disconnect(); err != nil {
		t.Fatalf("drop: %v", err)
	}
	var second *golibvirt.Libvirt
	if err := c.call(ctx, func(lv *golibvirt.Libvirt) error { second = lv; _, err := lv.ConnectGetLibVersion(); return err }); err != nil {
		t.Fatalf("call after drop: %v", err)
	}
	if second == first {
		t.Fatal("client kept the dropped connection")
	}
}

// One client serves many goroutines at once.
func TestConcurrentCalls(t *testing.T) {
	c := newTestClient(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.call(context.Background(), func(lv *golibvirt.Libvirt) error {
				_, err := lv.ConnectGetHostname()
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Parameters that would connect without checking the host's identity are
// refused at parse time, naming the parameter and the way to keep the check
// on; the parameters that leave the check on pass.
func TestParseURIRefusesUnverifiedHost(t *testing.T) {
	for _, tc := range []struct {
		uri string
		// want are the parts of the error; none means the URI is accepted.
		want []string
	}{
		{"qemu+tls://host/system?no_verify=1", []string{"no_verify=1", "server's TLS certificate", "pkipath=DIR", "/etc/pki/CA/cacert.pem"}},
		{"qemu://host/system?no_verify=1", []string{"no_verify=1", "server's TLS certificate"}},
		{"qemu+tls://host/system?pkipath=/srv/pki&no_verify=1", []string{"no_verify=1", "/srv/pki/cacert.pem"}},
		{"qemu+ssh://root@host/system?no_verify=1", []string{"no_verify=1", "SSH host key", ".ssh/known_hosts", "ssh-keyscan host"}},
		{"qemu+libssh://root@host/system?no_verify=2", []string{"no_verify=2", "SSH host key"}},
		{"qemu+libssh2://root@host/system?no_verify=yes", []string{"no_verify=yes", "SSH host key"}},
		{"qemu+tcp://host/system?no_verify=1", []string{"no_verify=1", "remove it"}},
		{"qemu:///system?no_verify=1", []string{"no_verify=1"}},
		{"qemu+libssh://root@host:2222/system?known_hosts_verify=ignore", []string{"known_hosts_verify=ignore", "any key is accepted", "ssh-keyscan -p 2222 host"}},
		{"qemu+libssh://root@host/system?known_hosts_verify=auto&known_hosts=/srv/kh",
			[]string{"known_hosts_verify=auto", "unknown key is accepted", "add the host's key to /srv/kh"}},
		{"qemu+libssh2://root@host/system?known_hosts_verify=Ignore", []string{"known_hosts_verify=Ignore"}},
		{"qemu+ssh://root@host/system?known_hosts_verify=auto", []string{"known_hosts_verify=auto"}},
		// libvirt reads names without regard to case, and a repeated name
		// must not hide a later value.
		{"qemu+tls://host/system?NO_VERIFY=1", []string{"NO_VERIFY=1"}},
		{"qemu+tls://host/system?no_verify=0&no_verify=1", []string{"no_verify=1"}},
		// The password stays masked in this error too.
		{"qemu+ssh://root:hunter2@host/system?no_verify=1", []string{"root:xxxxx@host", "no_verify=1"}},

		{"qemu+tls://host/system?no_verify=0", nil},
		{"qemu+libssh://root@host/system?known_hosts_verify=normal&known_hosts=/srv/kh", nil},
		{"qemu+libssh://root@host/system?sshauth=privkey&keyfile=/srv/id", nil},
		{"qemu+tls://host/system?pkipath=/srv/pki", nil},
		{"qemu+ssh://root@host/system?keyfile=/srv/id&no_tty=1", nil},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			_, err := ParseURI(tc.uri)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("ParseURI(%q): %v", tc.uri, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseURI(%q) accepted a URI that switches off the host check", tc.uri)
			}
			var uerr *UnverifiedHostError
			if !errors.As(err, &uerr) {
				t.Errorf("error %v is not an UnverifiedHostError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the URI's password: %v", err)
			}
		})
	}
}

// dialerFor picks go-libvirt's dialer for each transport as libvirt reads
// the URI, and refuses the parameters a transport does not take instead of
// ignoring them. (The remote tests dial each transport for real.)
func TestDialerFor(t *testing.T) {
	for _, tc := range []struct {
		uri     string
		want    string // the dialer's type, or
		wantErr string // a part of the error
	}{
		{"qemu:///system", "*dialers.Local", ""},
		{"qemu+unix:///system?socket=/run/x", "*dialers.Local", ""},
		{"qemu:///system?mode=legacy", "*dialers.Local", ""},
		{"qemu://host/system", "*dialers.TLS", ""},
		{"qemu+tls://host:1234/system?pkipath=/srv/pki", "*dialers.TLS", ""},
		{"qemu+tcp://host:16509/system", "*dialers.Remote", ""},
		{"qemu+ssh://root@host:2222/system?keyfile=/srv/id&socket=/run/x", "*dialers.SSH", ""},
		{"qemu+libssh://root@host/system?known_hosts=/srv/kh&known_hosts_verify=normal&sshauth=privkey,agent", "*dialers.SSH", ""},
		{"qemu+libssh2://root@host/system", "*dialers.SSH", ""},
		{"qemu:///system?mode=direct", "", "mode=direct is not supported"},
		{"qemu+ssh://root@host/system?mode=sideways", "", "mode=sideways is unknown"},
		{"qemu+ssh://root@host/system?known_hosts=/srv/kh", "", "known_hosts is not read by the ssh transport"},
		{"qemu+ssh://root@host/system?sshauth=agent", "", "sshauth is not read by the ssh transport"},
		{"qemu+libssh://root@host/system?no_verify=0", "", "no_verify is not read by the libssh transport"},
		{"qemu+libssh://root@host/system?sshauth=telepathy", "", `unknown method "telepathy"`},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			u, err := url.Parse(tc.uri)
			if err != nil {
				t.Fatal(err)
			}
			d, err := dialerFor(u, time.Second)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("dialerFor(%s) = %T, %v; want an error containing %q", tc.uri, d, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("dialerFor(%s): %v", tc.uri, err)
			}
			if got := fmt.Sprintf("%T", d); got != tc.want {
				t.Fatalf("dialerFor(%s) = %s, want %s", tc.uri, got, tc.want)
			}
		})
	}
}
