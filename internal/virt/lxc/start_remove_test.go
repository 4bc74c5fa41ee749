//go:build linux && cgo

package lxc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// StartCreated gives what a start and a full read-back would: the run
// state filled into what the create returned, nothing pending a restart.
func TestStartCreated(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	tmpl := busyboxTemplate(t, c, true)
	name := testenv.Name(t, "lxc-snew")
	ip := freeTestIP(t)
	created := create(t, c, virt.ContainerSpec{
		Name: name, Template: tmpl, Unprivileged: true,
		Interfaces: []virt.ContainerInterfaceSpec{{IPv4Address: ip + "/24"}},
		Config:     map[string]string{"lxc.environment": "VT_TEST=1"},
	})
	got, err := c.StartCreated(ctx, created)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != virt.ContainerRunning || got.PID <= 0 || !slices.Contains(got.IPv4Addresses, ip) {
		t.Fatalf("StartCreated: state %s, pid %d, addresses %q; want running with a pid and %s", got.State, got.PID, got.IPv4Addresses, ip)
	}
	if created.State != virt.ContainerStopped || created.PID != 0 {
		t.Errorf("StartCreated changed the spec it was given: %+v", created)
	}
	want := readBack(t, c, name)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("StartCreated returned\n%+v\nContainer reads\n%+v", got, want)
	}
}

// A start of a container whose init exits at once returns at once. Whether
// it still sees the container running is a race with init's exit (it has
// not seen it so far); when it does not, the start fails, naming the
// container and saying what it found.
func TestStartInitExits(t *testing.T) {
	c := newTestClient(t)
	tmpl := busyboxTemplate(t, c, true)
	name := testenv.Name(t, "lxc-sexit")
	created := create(t, c, virt.ContainerSpec{
		Name: name, Template: tmpl, Unprivileged: true,
		Config: map[string]string{"lxc.init.cmd": "/bin/true"},
	})
	ops := map[string]func(context.Context) error{
		"StartContainer": func(ctx context.Context) error { return c.StartContainer(ctx, name) },
		"StartCreated":   func(ctx context.Context) error { _, err := c.StartCreated(ctx, created); return err },
	}
	for i := range 3 {
		for op, startIt := range ops {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			t0 := time.Now()
			err := startIt(ctx)
			cancel()
			if d := time.Since(t0); d > 30*time.Second {
				t.Errorf("%s took %s", op, d.Round(time.Second))
			}
			if err != nil && (!strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "right after its start")) {
				t.Errorf("%s: %v; want an error naming the container and saying what it found", op, err)
			}
			t.Logf("%s, try %d: %v", op, i+1, err)
			waitStopped(t, c, name)
		}
	}
}

// waitStopped waits for a container whose init exits to be stopped.
func waitStopped(t *testing.T, c *Client, name string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		s := readBack(t, c, name)
		if s.State == virt.ContainerStopped {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still %s", name, s.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// RemoveContainer stops (here: kills) and destroys; a template that clones
// use is refused before it is stopped, and keeps running.
func TestRemoveContainer(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	tmpl := busyboxTemplate(t, c, true)

	name := testenv.Name(t, "lxc-rm")
	create(t, c, virt.ContainerSpec{Name: name, Template: tmpl, Unprivileged: true})
	start(t, c, name)
	if err := c.RemoveContainer(ctx, name, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Container(ctx, name); !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("after RemoveContainer: %v; want ErrNotFound", err)
	}
	if err := c.RemoveContainer(ctx, name, 0); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("RemoveContainer of a missing container: %v; want ErrNotFound", err)
	}
	if clones, err := c.snapshotClones(tmpl); err != nil || slices.Contains(clones, name) {
		t.Errorf("the template still lists the removed clone: %q, %v", clones, err)
	}

	clone := testenv.Name(t, "lxc-rmc")
	create(t, c, virt.ContainerSpec{Name: clone, Template: tmpl, Unprivileged: true})
	start(t, c, tmpl)
	err := c.RemoveContainer(ctx, tmpl, 30*time.Second)
	var hc *virt.HasClonesError
	if !errors.As(err, &hc) || !slices.Contains(hc.Clones, clone) {
		t.Fatalf("RemoveContainer of a template with a clone: %v; want a HasClonesError naming %s", err, clone)
	}
	if s := readBack(t, c, tmpl); s.State != virt.ContainerRunning {
		t.Errorf("the refused template is %s, want it left running", s.State)
	}
	stop(t, c, tmpl, 0)
}

func TestStartCreatedNotFound(t *testing.T) {
	c := newTestClient(t)
	_, err := c.StartCreated(context.Background(), &virt.ContainerSpec{Name: testenv.Name(t, "lxc-missing")})
	if !errors.Is(err, virt.ErrNotFound) {
		t.Fatalf("StartCreated of a missing container: %v; want ErrNotFound", err)
	}
}

// Root's id map is read once per client and pair of files; a failure is
// not kept, and a client given other files reads those.
func TestRootIDMapCached(t *testing.T) {
	dir := t.TempDir()
	subuid, subgid := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(subuid, "someone:100000:65536\n")
	write(subgid, "root:300000:65536\n")
	c := &Client{subUIDFile: subuid, subGIDFile: subgid, idMaps: &idMapCache{}}
	if _, err := c.rootIDMap(); err == nil {
		t.Fatal("rootIDMap without a uid range for root: no error")
	}
	write(subuid, "root:200000:65536\n")
	want := []virt.IDMapEntry{{Kind: "u", HostID: 200000, Count: 65536}, {Kind: "g", HostID: 300000, Count: 65536}}
	got, err := c.rootIDMap()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("rootIDMap once the range is there: %v, %v; want %v", got, err, want)
	}
	got[0].HostID = 1 // a caller's change stays its own
	write(subuid, "root:400000:65536\n")
	if got, err := c.rootIDMap(); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("rootIDMap read again: %v, %v; want the first answer %v", got, err, want)
	}

	other := *c
	other.subUIDFile = filepath.Join(dir, "other")
	write(other.subUIDFile, "root:500000:65536\n")
	if got, err := other.rootIDMap(); err != nil || got[0].HostID != 500000 {
		t.Errorf("a client with another subuid file: %v, %v; want its range", got, err)
	}
}
