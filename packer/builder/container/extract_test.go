package container

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// tarEntry is one member of a tar built by a test.
type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	body       string
}

func buildTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil && h.Size > 0 {
			t.Fatalf("tar body %s: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// treeState describes every path under dir (modes, link targets, file
// contents, link counts), leaving out skip: what a test compares before
// and after an extraction to see that nothing outside dst changed.
func treeState(t *testing.T, dir, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			desc += " links=" + strconv.FormatUint(st.Nlink, 10)
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + l
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExtractTarStaysInside feeds extractTar archives that try to write
// outside the destination, each in its own way, and checks that the
// extraction fails naming the entry and that nothing beside the
// destination changed.
func TestExtractTarStaysInside(t *testing.T) {
	const secret = "host secret"
	tests := []struct {
		name string
		// entries get base (the directory holding dst and outside).
		entries func(base string) []tarEntry
		// preset prepares dst before the extraction.
		preset func(t *testing.T, base, dst string)
		limit  int64
		entry  string // the entry the error must name
		says   string // and what else it must say
	}{
		{
			name: "absolute symlink, then a file through it",
			entries: func(base string) []tarEntry {
				return []tarEntry{
					{name: "x", typ: tar.TypeSymlink, link: filepath.Join(base, "outside")},
					{name: "x/evil", typ: tar.TypeReg, body: "pwned"},
				}
			},
			entry: "x/evil",
		},
		{
			name: "relative symlink up, then a file through it",
			entries: func(string) []tarEntry {
				return []tarEntry{
					{name: "./x", typ: tar.TypeSymlink, link: "../outside"},
					{name: "./x/evil", typ: tar.TypeReg, body: "pwned"},
				}
			},
			entry: "./x/evil",
		},
		{
			name: "symlink to a directory, then a directory through it",
			entries: func(base string) []tarEntry {
				return []tarEntry{
					{name: "x", typ: tar.TypeSymlink, link: filepath.Join(base, "outside")},
					{name: "x/sub/", typ: tar.TypeDir, mode: 0o755},
				}
			},
			entry: "x/sub/",
		},
		{
			name: "symlink, then a symlink through it",
			entries: func(base string) []tarEntry {
				return []tarEntry{
					{name: "x", typ: tar.TypeSymlink, link: filepath.Join(base, "outside")},
					{name: "x/l", typ: tar.TypeSymlink, link: "/etc"},
				}
			},
			entry: "x/l",
		},
		{
			name: "symlink chain that leaves at its end",
			entries: func(string) []tarEntry {
				return []tarEntry{
					{name: "a", typ: tar.TypeSymlink, link: "b"},
					{name: "b", typ: tar.TypeSymlink, link: "../outside"},
					{name: "a/evil", typ: tar.TypeReg, body: "pwned"},
				}
			},
			entry: "a/evil",
		},
		{
			name: "symlink already in the destination",
			preset: func(t *testing.T, base, dst string) {
				if err := os.Symlink(filepath.Join(base, "outside"), filepath.Join(dst, "x")); err != nil {
					t.Fatal(err)
				}
			},
			entries: func(string) []tarEntry {
				return []tarEntry{{name: "x/evil", typ: tar.TypeReg, body: "pwned"}}
			},
			entry: "x/evil",
		},
		{
			name: "dot-dot name",
			entries: func(string) []tarEntry {
				return []tarEntry{{name: "../evil", typ: tar.TypeReg, body: "pwned"}}
			},
			entry: "../evil", says: "outside the destination",
		},
		{
			name: "dot-dot in the middle of a name",
			entries: func(string) []tarEntry {
				return []tarEntry{{name: "a/../../outside/evil", typ: tar.TypeReg, body: "pwned"}}
			},
			entry: "a/../../outside/evil", says: "outside the destination",
		},
		{
			name: "absolute name",
			entries: func(base string) []tarEntry {
				return []tarEntry{{name: filepath.Join(base, "outside", "evil"), typ: tar.TypeReg, body: "pwned"}}
			},
			entry: "/outside/evil", says: "outside the destination",
		},
		{
			name: "hard link to an absolute path outside",
			entries: func(base string) []tarEntry {
				return []tarEntry{{name: "h", typ: tar.TypeLink, link: filepath.Join(base, "outside", "secret")}}
			},
			entry: `"h"`, says: "outside the destination",
		},
		{
			name: "hard link up and out",
			entries: func(string) []tarEntry {
				return []tarEntry{{name: "h", typ: tar.TypeLink, link: "../outside/secret"}}
			},
			entry: `"h"`, says: "outside the destination",
		},
		{
			name: "hard link through a symlink",
			entries: func(base string) []tarEntry {
				return []tarEntry{
					{name: "x", typ: tar.TypeSymlink, link: filepath.Join(base, "outside")},
					{name: "h", typ: tar.TypeLink, link: "x/secret"},
				}
			},
			entry: `"h"`,
		},
		{
			name: "a file over the cap",
			entries: func(string) []tarEntry {
				return []tarEntry{{name: "big", typ: tar.TypeReg, body: strings.Repeat("x", 2048)}}
			},
			limit: 1024, entry: `"big"`, says: "cap of 1024 bytes",
		},
		{
			name: "files that pass the cap together",
			entries: func(string) []tarEntry {
				return []tarEntry{
					{name: "one", typ: tar.TypeReg, body: strings.Repeat("x", 600)},
					{name: "two", typ: tar.TypeReg, body: strings.Repeat("y", 600)},
				}
			},
			limit: 1000, entry: `"two"`, says: "cap of 1000 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, "dst")
			outside := filepath.Join(base, "outside")
			for _, d := range []string{dst, outside} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte(secret), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.preset != nil {
				tt.preset(t, base, dst)
			}
			before := treeState(t, base, dst)
			limit := tt.limit
			if limit == 0 {
				limit = maxDownloadBytes
			}

			err := extractTar(tar.NewReader(bytes.NewReader(buildTar(t, tt.entries(base)...))), dst, nil, limit)
			t.Logf("error: %v", err)

			if err == nil || !strings.Contains(err.Error(), tt.entry) || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error = %v; want one naming %s and saying %q", err, tt.entry, tt.says)
			}
			after := treeState(t, base, dst)
			for p, d := range after {
				if before[p] != d {
					t.Errorf("outside the destination %s is now %q (was %q)", p, d, before[p])
				}
			}
			for p := range before {
				if _, ok := after[p]; !ok {
					t.Errorf("outside the destination %s is gone", p)
				}
			}
		})
	}
}

// TestExtractTarReplacesPlantedLinks: a file whose name is taken in the
// destination by a symlink (or a hard link) to a host file replaces the
// link, as tar does, and the host file stays as it was.
func TestExtractTarReplacesPlantedLinks(t *testing.T) {
	base := t.TempDir()
	dst := filepath.Join(base, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(base, "host.conf")
	if err := os.WriteFile(hostFile, []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hostFile, filepath.Join(dst, "viasymlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(hostFile, filepath.Join(dst, "viahardlink")); err != nil {
		t.Fatal(err)
	}
	data := buildTar(t,
		tarEntry{name: "viasymlink", typ: tar.TypeReg, body: "from the container"},
		tarEntry{name: "viahardlink", typ: tar.TypeReg, body: "from the container"},
	)
	if err := extractTar(tar.NewReader(bytes.NewReader(data)), dst, nil, maxDownloadBytes); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(hostFile); err != nil || string(b) != "host" {
		t.Errorf("the host file now holds %q (%v)", b, err)
	}
	for _, n := range []string{"viasymlink", "viahardlink"} {
		st, err := os.Lstat(filepath.Join(dst, n))
		if err != nil || !st.Mode().IsRegular() {
			t.Errorf("%s is not a regular file: %v, %v", n, st, err)
			continue
		}
		if b, _ := os.ReadFile(filepath.Join(dst, n)); string(b) != "from the container" {
			t.Errorf("%s holds %q", n, b)
		}
	}
}

// TestExtractTarNormal: what a container's tar holds lands as it was:
// directories and files with their permission bits (not set-id ones),
// symlinks inside as they are (absolute ones too, unfollowed), files
// through a symlink to a directory inside, hard links between files.
func TestExtractTarNormal(t *testing.T) {
	dst := t.TempDir()
	data := buildTar(t,
		tarEntry{name: "./", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "./usr/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "./usr/lib/", typ: tar.TypeDir, mode: 0o750},
		tarEntry{name: "./lib", typ: tar.TypeSymlink, link: "usr/lib"},
		tarEntry{name: "./lib/libx.so", typ: tar.TypeReg, mode: 0o755, body: "elf"},
		tarEntry{name: "./etc/shadow", typ: tar.TypeReg, mode: 0o640, body: "root:*:"},
		tarEntry{name: "./bin/su", typ: tar.TypeReg, mode: 0o4755, body: "su"},
		tarEntry{name: "./etc/localtime", typ: tar.TypeSymlink, link: "/usr/share/zoneinfo/UTC"},
		tarEntry{name: "./etc/shadow-", typ: tar.TypeLink, link: "./etc/shadow"},
		tarEntry{name: "./dev/null", typ: tar.TypeChar, mode: 0o666},
		tarEntry{name: "./skip.log", typ: tar.TypeReg, body: "x"},
	)
	if err := extractTar(tar.NewReader(bytes.NewReader(data)), dst, []string{"*.log"}, maxDownloadBytes); err != nil {
		t.Fatal(err)
	}
	modes := map[string]fs.FileMode{
		"usr/lib":         fs.ModeDir | 0o750,
		"usr/lib/libx.so": 0o755,
		"etc/shadow":      0o640,
		"bin/su":          0o755, // no setuid root file on the host
	}
	for p, want := range modes {
		st, err := os.Lstat(filepath.Join(dst, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if st.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, st.Mode(), want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dst, "usr/lib/libx.so")); err != nil || string(b) != "elf" {
		t.Errorf("file through the lib symlink: %q, %v", b, err)
	}
	for p, want := range map[string]string{"lib": "usr/lib", "etc/localtime": "/usr/share/zoneinfo/UTC"} {
		if l, err := os.Readlink(filepath.Join(dst, p)); err != nil || l != want {
			t.Errorf("symlink %s -> %q (%v), want -> %q", p, l, err, want)
		}
	}
	a, errA := os.Stat(filepath.Join(dst, "etc/shadow"))
	b, errB := os.Stat(filepath.Join(dst, "etc/shadow-"))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("etc/shadow- is not a hard link of etc/shadow: %v, %v", errA, errB)
	}
	for _, p := range []string{"dev/null", "skip.log"} {
		if _, err := os.Lstat(filepath.Join(dst, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s was extracted (%v)", p, err)
		}
	}
}

// TestDownloadDirStopsAHostileStream: a container that keeps writing
// after a refused entry, or after the end of its archive, cannot keep the
// download (and the build) waiting for ever.
func TestDownloadDirStopsAHostileStream(t *testing.T) {
	refused := buildTar(t, tarEntry{name: "../evil", typ: tar.TypeReg, body: "x"})
	complete := buildTar(t, tarEntry{name: "ok", typ: tar.TypeReg, body: "x"})
	for _, tt := range []struct {
		name, says string
		head       []byte
	}{
		{"refused entry", `archive entry "../evil": points outside the destination`, refused},
		{"after the end", "past the archive's end", complete},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeDriver{exec: func(cmd virt.ExecSpec) (int, error) {
				if _, err := cmd.Stdout.Write(tt.head); err != nil {
					return -1, err
				}
				zeros := make([]byte, 64<<10)
				for {
					if _, err := cmd.Stdout.Write(zeros); err != nil {
						return -1, err
					}
				}
			}}
			c := &Communicator{driver: f, name: "ct"}
			done := make(chan error, 1)
			go func() { done <- c.DownloadDir("/srv", t.TempDir(), nil) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.says) {
					t.Errorf("error = %v; want one saying %s", err, tt.says)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("DownloadDir still reads the container's endless stream after 20s")
			}
		})
	}
}
