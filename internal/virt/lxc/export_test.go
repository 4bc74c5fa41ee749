//go:build linux && cgo

package lxc

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// TestExportContainer exports an unprivileged container (ids from 0 in
// the stream, not the host's subordinate ones) and a snapshot clone of it
// (its overlay, with the clone's own change), and refuses a running one.
func TestExportContainer(t *testing.T) {
	c := newTestClient(t)
	ctx := context.Background()
	tmpl := testenv.Name(t, "lxc-exp")
	create(t, c, virt.ContainerSpec{Name: tmpl, Unprivileged: true, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}})
	clone := testenv.Name(t, "lxc-exp")
	create(t, c, virt.ContainerSpec{Name: clone, Unprivileged: true, Template: tmpl})
	if err := os.WriteFile(filepath.Join(c.dir(clone), "overlay", "delta", "clone-only"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	list := func(name string) string {
		t.Helper()
		var buf bytes.Buffer
		if err := c.ExportContainer(ctx, name, &buf); err != nil {
			t.Fatalf("ExportContainer(%s): %v", name, err)
		}
		cmd := exec.Command("tar", "--list", "--verbose", "--numeric-owner")
		cmd.Stdin = &buf
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("list export of %s: %v", name, err)
		}
		return string(out)
	}
	l := list(tmpl)
	if !strings.Contains(l, " 0/0 ") || !strings.Contains(l, "./bin/busybox") || strings.Contains(l, " 100000/") {
		t.Errorf("export of %s: ids or files wrong:\n%s", tmpl, l)
	}
	l = list(clone)
	if !strings.Contains(l, "./bin/busybox") || !strings.Contains(l, "./clone-only") {
		t.Errorf("export of clone %s lacks the template's or its own files:\n%s", clone, l)
	}
	if mps, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mps), "virt-lxc-export-") {
		t.Errorf("the overlay mount of the export is left")
	}

	start(t, c, clone)
	if err := c.ExportContainer(ctx, clone, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("export of a running container: %v", err)
	}
}
