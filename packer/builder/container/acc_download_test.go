package container

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/lxc"
)

// TestAccDownloadDirHostileContainer downloads from a real (privileged,
// busybox) container through the LXC layer: first a directory as the
// container's own tar writes it, then with a tar the guest replaced by one
// that writes an archive planting a symlink to a host directory and a file
// through it. The first lands as it was, the second is refused and the
// host directory stays empty.
func TestAccDownloadDirHostileContainer(t *testing.T) {
	accPrecheck(t)
	drv, err := lxc.New("", hclog.New(&hclog.LoggerOptions{Name: "lxc", Level: hclog.Debug, Output: testLogWriter{t}}))
	if err != nil {
		t.Fatal(err)
	}
	name := testenv.Name(t, "pk-dl")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := drv.DestroyContainer(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := drv.CreateContainer(ctx, virt.ContainerSpec{Name: name, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}}); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(drv.LXCPath(), name, "rootfs")
	writeFile(t, filepath.Join(rootfs, "srv", "data", "a.txt"), "a", 0o640)
	if err := os.Symlink("/etc/passwd", filepath.Join(rootfs, "srv", "data", "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := drv.StartContainer(ctx, name); err != nil {
		t.Fatal(err)
	}
	c := &Communicator{driver: drv, name: name}

	dst := t.TempDir()
	if err := c.DownloadDir("/srv/data", dst, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "a.txt")); err != nil || string(b) != "a" {
		t.Errorf("a.txt: %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "passwd")); err != nil || l != "/etc/passwd" {
		t.Errorf("the symlink passwd: %q, %v", l, err)
	}

	// The guest owns its shell and its tar (busybox's sh runs its own tar
	// applet whatever PATH says): its sh now writes a crafted archive.
	outside := t.TempDir()
	evil := filepath.Join(rootfs, "evil.tar")
	f, err := os.Create(evil)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, h := range []*tar.Header{
		{Name: "./x", Typeflag: tar.TypeSymlink, Linkname: outside},
		{Name: "./x/evil", Typeflag: tar.TypeReg, Mode: 0o755, Size: 5},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.Write([]byte("pwned")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	sh := filepath.Join(rootfs, "bin", "sh")
	if err := os.Remove(sh); err != nil {
		t.Fatal(err)
	}
	writeFile(t, sh, "#!/bin/busybox sh\ncat /evil.tar\n", 0o755)

	err = c.DownloadDir("/srv/data", t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), `"./x/evil"`) {
		t.Errorf("download through a planted symlink: %v; want an error naming ./x/evil", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) > 0 {
		t.Errorf("the download wrote %s on the host", filepath.Join(outside, ents[0].Name()))
	}
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
