package container

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

func TestCommunicatorStart(t *testing.T) {
	f := &fakeDriver{exec: func(cmd virt.ExecSpec) (int, error) {
		_, _ = io.WriteString(cmd.Stdout, "out\n")
		_, _ = io.WriteString(cmd.Stderr, "err\n")
		return 7, nil
	}}
	c := &Communicator{driver: f, name: "ct"}
	var stdout, stderr bytes.Buffer
	cmd := &packersdk.RemoteCmd{Command: "echo hi; exit 7", Stdout: &stdout, Stderr: &stderr}
	if err := c.Start(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waitExit(cmd):
	case <-time.After(5 * time.Second):
		t.Fatal("command never exited")
	}
	if cmd.ExitStatus() != 7 || stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("status %d stdout %q stderr %q", cmd.ExitStatus(), stdout.String(), stderr.String())
	}
	if want := []string{"/bin/sh", "-c", "echo hi; exit 7"}; !reflect.DeepEqual(f.execs[0], want) {
		t.Errorf("exec %q, want %q", f.execs[0], want)
	}
}

// TestCommunicatorStartLogRedacted: the command a provisioner runs is
// logged without the values of the environment it sets for its script.
func TestCommunicatorStartLogRedacted(t *testing.T) {
	var logged bytes.Buffer
	prevOut, prevFlags := log.Writer(), log.Flags()
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(prevOut); log.SetFlags(prevFlags) })

	c := &Communicator{driver: &fakeDriver{exec: func(virt.ExecSpec) (int, error) { return 0, nil }}, name: "ct"}
	command := `chmod +x /tmp/script.sh; PASSWORD='s3cret' TOKEN="tok en" /tmp/script.sh`
	cmd := &packersdk.RemoteCmd{Command: command}
	if err := c.Start(context.Background(), cmd); err != nil {
		t.Fatal(err)
	}
	select {
	case <-waitExit(cmd):
	case <-time.After(5 * time.Second):
		t.Fatal("command never exited")
	}
	out := logged.String()
	for _, secret := range []string{"s3cret", "tok en"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds the secret %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "PASSWORD=<redacted> TOKEN=<redacted> /tmp/script.sh") {
		t.Errorf("the log does not show the redacted command:\n%s", out)
	}
}

func waitExit(cmd *packersdk.RemoteCmd) <-chan struct{} {
	ch := make(chan struct{})
	go func() { cmd.Wait(); close(ch) }()
	return ch
}

func TestCommunicatorUploadDownload(t *testing.T) {
	var uploaded bytes.Buffer
	f := &fakeDriver{exec: func(cmd virt.ExecSpec) (int, error) {
		switch {
		case strings.Contains(cmd.Args[2], "cat > "):
			_, _ = io.Copy(&uploaded, cmd.Stdin)
			return 0, nil
		case cmd.Args[4] == "/missing":
			_, _ = io.WriteString(cmd.Stderr, "cat: /missing: No such file or directory\n")
			return 1, nil
		default:
			_, _ = io.WriteString(cmd.Stdout, "content")
			return 0, nil
		}
	}}
	c := &Communicator{driver: f, name: "ct"}

	dir := t.TempDir()
	src := filepath.Join(dir, "script.sh")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o750); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(src)
	if err := c.Upload("/tmp/", strings.NewReader("#!/bin/sh\n"), &fi); err != nil {
		t.Fatal(err)
	}
	if uploaded.String() != "#!/bin/sh\n" {
		t.Errorf("uploaded %q", uploaded.String())
	}
	if got := f.execs[0][4:]; !reflect.DeepEqual(got, []string{"/tmp/", "0750", "script.sh"}) {
		t.Errorf("upload args %q", got)
	}

	var got bytes.Buffer
	if err := c.Download("/etc/hostname", &got); err != nil || got.String() != "content" {
		t.Errorf("download: %q, %v", got.String(), err)
	}
	err := c.Download("/missing", io.Discard)
	if err == nil || !strings.Contains(err.Error(), `download /missing from container "ct": exit status 1: cat: /missing: No such file or directory`) {
		t.Errorf("download error = %v", err)
	}
}

func TestCommunicatorDirs(t *testing.T) {
	src := t.TempDir()
	for p, content := range map[string]string{"a.txt": "a", "sub/b.txt": "b", "skip.log": "x"} {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	// The fake container keeps what is uploaded as a tar and hands it back
	// on download.
	var stored bytes.Buffer
	f := &fakeDriver{exec: func(cmd virt.ExecSpec) (int, error) {
		if cmd.Stdin != nil {
			_, err := io.Copy(&stored, cmd.Stdin)
			return 0, err
		}
		_, err := cmd.Stdout.Write(stored.Bytes())
		return 0, err
	}}
	c := &Communicator{driver: f, name: "ct"}

	if err := c.UploadDir("/srv", src, []string{"*.log"}); err != nil {
		t.Fatal(err)
	}
	names := tarNames(t, stored.Bytes())
	base := filepath.Base(src)
	want := []string{base + "/", base + "/a.txt", base + "/link", base + "/sub/", base + "/sub/b.txt"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("without a trailing slash: %q, want %q", names, want)
	}

	stored.Reset()
	if err := c.UploadDir("/srv", src+"/", nil); err != nil {
		t.Fatal(err)
	}
	names = tarNames(t, stored.Bytes())
	want = []string{"a.txt", "link", "skip.log", "sub/", "sub/b.txt"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("with a trailing slash: %q, want %q", names, want)
	}

	dst := t.TempDir()
	if err := c.DownloadDir("/srv", dst, []string{"skip.log"}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "sub", "b.txt")); err != nil || string(b) != "b" {
		t.Errorf("downloaded sub/b.txt: %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "a.txt" {
		t.Errorf("downloaded link: %q, %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "skip.log")); err == nil {
		t.Errorf("excluded file downloaded")
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name)
	}
	sort.Strings(out)
	return out
}
