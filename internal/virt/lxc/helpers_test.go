//go:build linux && cgo

package lxc

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCompressionFlag(t *testing.T) {
	for _, tc := range []struct {
		magic []byte
		want  string
	}{
		{[]byte{0x1f, 0x8b, 8, 0}, "--gzip"},
		{[]byte("BZh91AY"), "--bzip2"},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "--xz"},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0}, "--zstd"},
		{[]byte("./\x00\x00\x00\x00"), ""}, // plain tar starts with a member name
		{nil, ""},
	} {
		if got := compressionFlag(tc.magic); got != tc.want {
			t.Errorf("compressionFlag(% x) = %q, want %q", tc.magic, got, tc.want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 16}
	for i := 0; i < 10; i++ {
		if _, err := b.Write([]byte("line\n")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Write([]byte("last one\n")); err != nil {
		t.Fatal(err)
	}
	if got := b.lastLines(2); got != "line\nlast one" {
		t.Fatalf("lastLines(2) = %q", got)
	}
	if len(b.buf) > 16 {
		t.Fatalf("kept %d bytes, more than 16", len(b.buf))
	}
	if withOutput("") != "" || withOutput("x") != ": x" {
		t.Fatal("withOutput")
	}
}

func TestExecEnv(t *testing.T) {
	if got := execEnv([]string{"A=1"}); !reflect.DeepEqual(got, []string{defaultPath, "A=1"}) {
		t.Errorf("execEnv without PATH = %q", got)
	}
	if got := execEnv([]string{"PATH=/bin", "A=1"}); !reflect.DeepEqual(got, []string{"PATH=/bin", "A=1"}) {
		t.Errorf("execEnv with PATH = %q", got)
	}
}

func TestWaitTimeout(t *testing.T) {
	if got := waitTimeout(context.Background(), time.Minute); got != time.Minute {
		t.Errorf("no deadline: %s", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	if got := waitTimeout(ctx, time.Minute); got != 3*time.Second {
		t.Errorf("2.5s deadline: %s, want whole seconds rounded up", got)
	}
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if got := waitTimeout(past, time.Minute); got != time.Second {
		t.Errorf("past deadline: %s, want the 1s minimum", got)
	}
}

func TestLXCLogErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lxc.log")
	log := `lxc-start c 20261126213153.423 NOTICE   start - ../src/lxc/start.c:signal_handler:446 - Received 17
lxc-start c 20261126213153.445 ERROR    conf - ../src/lxc/conf.c:mount_entry:2459 - Permission denied - Failed to mount "/x" on "/y"
lxc-start c 20261126213153.446 ERROR    lxccontainer - ../src/lxc/lxccontainer.c:wait_on_daemonized_start:878 - Received container state "ABORTING" instead of "RUNNING"
lxc-start c 20261126213153.446 ERROR    lxc_start - ../src/lxc/tools/lxc_start.c:main:306 - The container failed to start
lxc-start c 20261126213153.446 ERROR    start - ../src/lxc/start.c:__lxc_start:2107 - Failed to spawn container "c"
`
	if err := os.WriteFile(p, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	got := lxcLogErrors(p)
	want := `Permission denied - Failed to mount "/x" on "/y"; Failed to spawn container "c"`
	if got != want {
		t.Fatalf("lxcLogErrors = %q, want %q", got, want)
	}
	if !strings.Contains(lxcErrors(p), "full log in "+p) {
		t.Errorf("lxcErrors does not point at the log: %q", lxcErrors(p))
	}
	if lxcErrors(filepath.Join(t.TempDir(), "none")) != "" {
		t.Error("a missing log must add nothing to an error")
	}
}

// LXC's clone bookkeeping, as DestroyContainer and Container read it.
func TestSnapshotFiles(t *testing.T) {
	lxcPath := t.TempDir()
	c := &Client{lxcPath: lxcPath}
	for name, content := range map[string]string{
		"base/lxc_snapshots":  lxcPath + "\nclone1\n/srv/lxc\nclone2\n",
		"clone1/lxc_rdepends": lxcPath + "\nbase\n",
		"other/lxc_rdepends":  "/srv/lxc\nbase\n",
	} {
		p := filepath.Join(lxcPath, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clones, err := c.snapshotClones("base")
	if err != nil || !reflect.DeepEqual(clones, []string{"clone1", "/srv/lxc/clone2"}) {
		t.Errorf("snapshotClones(base) = %q, %v", clones, err)
	}
	if clones, err := c.snapshotClones("clone1"); err != nil || clones != nil {
		t.Errorf("snapshotClones of a container without clones = %q, %v", clones, err)
	}
	if tmpl, ok := c.snapshotOrigin("clone1"); !ok || tmpl != "base" {
		t.Errorf("snapshotOrigin(clone1) = %q, %v", tmpl, ok)
	}
	// A template under another LXC path is not one of this client's.
	if tmpl, ok := c.snapshotOrigin("other"); ok {
		t.Errorf("snapshotOrigin(other) = %q, want none", tmpl)
	}
}

// A container's addresses as its network namespace's fib_trie lists them
// (testdata/fib_trie is a busybox container's with a second address
// added by hand): local /32 entries, each once, loopback's left out.
func TestLocalAddresses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "fib_trie"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := localAddresses(string(b)), []string{"10.0.3.240", "192.168.7.9"}; !reflect.DeepEqual(got, want) {
		t.Errorf("localAddresses = %q, want %q", got, want)
	}
	if got := localAddresses(""); got != nil {
		t.Errorf("no trie: %q", got)
	}
}
