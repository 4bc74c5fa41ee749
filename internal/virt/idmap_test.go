package virt

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestHostIDMapFrom(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	subuid := write("subuid", "# comment\nalice:200000:65536\nroot:100000:1000\nroot:300000:65536\n0:400000:65536\n")
	subgid := write("subgid", "root:500000:65536\n")
	small := write("small", "root:100000:1000\n")
	bad := write("bad", "root:x:65536\n")
	missing := filepath.Join(dir, "missing")

	for _, tc := range []struct {
		name           string
		uid, gid, user string
		aliases        []string
		want           []IDMapEntry
		wantErr        string
	}{
		{
			name: "first large range wins", uid: subuid, gid: subgid, user: "root",
			want: []IDMapEntry{{"u", 0, 300000, 65536}, {"g", 0, 500000, 65536}},
		},
		{
			name: "small range when it is the only one", uid: small, gid: subgid, user: "root",
			want: []IDMapEntry{{"u", 0, 100000, 1000}, {"g", 0, 500000, 65536}},
		},
		{
			name: "numeric alias", uid: subuid, gid: subuid, user: "toor", aliases: []string{"toor", "0"},
			want: []IDMapEntry{{"u", 0, 400000, 65536}, {"g", 0, 400000, 65536}},
		},
		{
			name: "no entry", uid: subuid, gid: subgid, user: "bob",
			wantErr: "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 bob",
		},
		{
			name: "missing file", uid: missing, gid: subgid, user: "root",
			wantErr: "no subordinate uid range for \"root\" in " + missing,
		},
		{
			name: "no gid range", uid: subuid, gid: missing, user: "alice",
			wantErr: "no subordinate gid range",
		},
		{
			name: "malformed", uid: bad, gid: subgid, user: "root",
			wantErr: bad + ":1",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := HostIDMapFrom(tc.uid, tc.gid, tc.user, tc.aliases...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
