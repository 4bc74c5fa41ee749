package libvirt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
)

// slowStartMachines defines n machines whose emulator, when started as a
// guest, waits for delay and then fails: a start of one is a call that
// libvirtd works on for delay (a slow domain start on demand), and leaves
// no guest behind. libvirt's own runs of the emulator (probing what it can
// do) go to the real one.
func slowStartMachines(t *testing.T, c *Client, n int, delay time.Duration) []golibvirt.Domain {
	t.Helper()
	ctx := t.Context()
	dir := qemuWorkDir(t)
	define := func(name, emulator string) golibvirt.Domain {
		t.Helper()
		x := libvirtxml.Domain{Type: "qemu", Name: name,
			Memory: &libvirtxml.DomainMemory{Value: 32, Unit: "MiB"},
			OS:     &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Type: "hvm"}}}
		if emulator != "" {
			x.Devices = &libvirtxml.DomainDeviceList{Emulator: emulator}
		}
		doc, err := x.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		removeMachineAtEnd(t, c, name)
		var dom golibvirt.Domain
		if err := c.call(ctx, func(lv *golibvirt.Libvirt) error {
			var err error
			dom, err = lv.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate)
			return err
		}); err != nil {
			t.Fatalf("define %s: %v", name, err)
		}
		return dom
	}

	// libvirt fills in the emulator it would run.
	probe := define(testenv.Name(t, "lv-pool"), "")
	doc, err := c.MachineXML(ctx, probe.Name)
	if err != nil {
		t.Fatal(err)
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	if x.Devices == nil || x.Devices.Emulator == "" {
		t.Fatalf("libvirt chose no emulator for %s", probe.Name)
	}
	slow := filepath.Join(dir, "slow-failing-qemu")
	script := fmt.Sprintf("#!/bin/sh\ncase \"$*\" in *guest=*) sleep %d; exit 1 ;; esac\nexec %s \"$@\"\n",
		int(delay/time.Second), x.Devices.Emulator)
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	doms := make([]golibvirt.Domain, n)
	for i := range doms {
		doms[i] = define(testenv.Name(t, "lv-pool"), slow)
	}
	return doms
}

// ourDaemonClients lists the clients libvirtd has from this process that
// are not in before (virt-admin).
func ourDaemonClients(t *testing.T, before map[string]bool) []string {
	t.Helper()
	pid := strconv.Itoa(os.Getpid())
	var ids []string
	for id := range daemonClients(t) {
		if before[id] {
			continue
		}
		if info := daemonClientInfo(id); info != nil && info["transport"] == "unix" && info["unix_process_id"] == pid {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// poolConns is a copy of the client's connections, in pool order.
func (c *Client) poolConns() []*poolConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLost()
	return slices.Clone(c.conns)
}

// The client keeps one connection while its calls fit libvirtd's default
// limit per connection (max_client_requests, 5), opens more when they do
// not, so that a quick call is not queued behind slow ones, keeps its
// events on the first, and gets over the loss of any of them. libvirtd
// runs with its defaults here, as at users'. Not parallel: it tells its
// connections from the others of this process by when they came.
func TestPoolOpensConnectionsUnderLoad(t *testing.T) {
	setup := newTestClient(t)
	ctx := t.Context()
	const slow = 12
	const delay = 6 * time.Second
	doms := slowStartMachines(t, setup, slow, delay)

	before := daemonClients(t)
	c := newTestClient(t)
	quick := func() error {
		return c.call(ctx, func(lv *golibvirt.Libvirt) error {
			_, err := lv.ConnectGetHostname()
			return err
		})
	}

	// Idle, or a few calls at once: one connection.
	for i := 0; i < 20; i++ {
		if err := quick(); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		errs := make(chan error, perConnRequests-1)
		for i := 0; i < perConnRequests-1; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- quick() }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := c.connCount(); n != 1 {
		t.Fatalf("idle client has %d connections, want 1", n)
	}
	if ids := ourDaemonClients(t, before); len(ids) != 1 {
		t.Fatalf("libvirtd lists %d clients of this test (%v), want 1", len(ids), ids)
	}

	// Twelve slow starts at once need three connections of five calls.
	begin := time.Now()
	results := make(chan error, slow)
	for _, dom := range doms {
		go func() {
			results <- c.call(ctx, func(lv *golibvirt.Libvirt) error { return lv.DomainCreate(dom) })
		}()
	}
	want := (slow + perConnRequests - 1) / perConnRequests
	for c.connCount() < want && time.Since(begin) < delay/2 {
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.connCount(); n != want {
		t.Fatalf("with %d slow calls in flight the client has %d connections, want %d", slow, n, want)
	}
	// A quick call now is served at once, not after a slow one.
	t0 := time.Now()
	if err := quick(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(t0); took > delay/3 {
		t.Fatalf("a quick call took %s with %d slow ones in flight: it waited behind them", took, slow)
	}
	if ids := ourDaemonClients(t, before); len(ids) != want {
		t.Fatalf("libvirtd lists %d clients of this test (%v), want %d", len(ids), ids, want)
	}
	// Watches go to the first connection, whichever is least busy.
	conns := c.poolConns()
	w, err := c.watchDomain(ctx, doms[0], golibvirt.DomainEventIDLifecycle)
	if err != nil {
		t.Fatal(err)
	}
	if w.hub.lv != conns[0].lv {
		t.Fatal("a watch went to another connection than the first")
	}

	for range doms {
		// The emulator gives up after the delay, so every start fails.
		if err := <-results; err == nil {
			t.Error("a start of a machine whose emulator fails succeeded")
		}
	}
	if took := time.Since(begin); took < delay {
		t.Fatalf("the starts took %s, less than the emulator's delay %s: they were not slow calls", took, delay)
	}

	// Losing an extra connection: the calls go on with the others.
	if err := conns[1].lv.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if err := quick(); err != nil {
		t.Fatalf("call after an extra connection dropped: %v", err)
	}
	if n := c.connCount(); n != want-1 {
		t.Fatalf("after one of %d connections dropped the client has %d, want %d", want, n, want-1)
	}
	// Losing the first: the watch is told, and watches go to the oldest
	// of the others.
	if err := conns[0].lv.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := w.next(ctx); ok || err != nil {
		t.Fatalf("watch on the dropped first connection: ok %v, error %v; want its end", ok, err)
	}
	w.Close()
	again, err := c.watchDomain(ctx, doms[0], golibvirt.DomainEventIDLifecycle)
	if err != nil {
		t.Fatalf("watch after the first connection dropped: %v", err)
	}
	again.Close()
	if again.hub.lv != conns[2].lv {
		t.Fatal("the watch after the first connection dropped is not on the oldest of the others")
	}
	// libvirtd throws the rest out: the next call dials again.
	for _, id := range ourDaemonClients(t, before) {
		if out, err := exec.Command("virt-admin", "client-disconnect", "libvirtd", id).CombinedOutput(); err != nil {
			t.Fatalf("virt-admin client-disconnect %s: %v\n%s", id, err, out)
		}
	}
	select {
	case <-conns[2].lv.Disconnected():
	case <-time.After(remoteFailFast):
		t.Fatalf("libvirtd threw the client out, but its last connection did not notice within %s", remoteFailFast)
	}
	if err := quick(); err != nil {
		t.Fatalf("call after libvirtd dropped every connection: %v", err)
	}
	if n := c.connCount(); n != 1 {
		t.Fatalf("after reconnecting the client has %d connections, want 1", n)
	}
	if ids := ourDaemonClients(t, before); len(ids) != 1 {
		t.Fatalf("libvirtd lists %d clients of this test after the reconnect (%v), want 1", len(ids), ids)
	}
}
