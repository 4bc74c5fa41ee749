// Package scripts holds no Go code: its tests drive the set-up scripts
// beside them (scripts/setup, scripts/testenv and their shared steps in
// lib/host.sh) the way a host owner runs them.
package scripts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runStep sources lib/host.sh and runs one step function with env added,
// returning its combined output and whether it succeeded.
func runStep(t *testing.T, step string, env ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command("bash", "-c", `set -euo pipefail; TAG=test; . lib/host.sh; `+step+`; echo "RESULT=$RESULT"`)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("bash: %v", err)
	}
	return string(out), err == nil
}

// Root's subordinate ids: a range of its own, free in both files, and never
// one that overlaps another user's (that user could then write into
// unprivileged containers' files). The files are test copies.
func TestSubids(t *testing.T) {
	for _, tc := range []struct {
		name           string
		subuid, subgid string
		// wantUID/wantGID: the files afterwards; wantErr: the failure names it.
		wantUID, wantGID string
		wantErr          []string
	}{{
		name:    "no files",
		wantUID: "root:100000:65536\n", wantGID: "root:100000:65536\n",
	}, {
		name:   "a first user owns the usual range",
		subuid: "alice:100000:65536\n", subgid: "alice:100000:65536\n",
		wantUID: "alice:100000:65536\nroot:196608:65536\n", wantGID: "alice:100000:65536\nroot:196608:65536\n",
	}, {
		name:    "taken ranges differ between the files: one start free in both",
		subuid:  "alice:100000:65536\n",
		subgid:  "bob:196608:65536\n",
		wantUID: "alice:100000:65536\nroot:262144:65536\n", wantGID: "bob:196608:65536\nroot:262144:65536\n",
	}, {
		name:   "root has a range of its own already: nothing changes",
		subuid: "alice:100000:65536\nroot:1000000:65536\n", subgid: "root:1000000:65536\n",
		wantUID: "alice:100000:65536\nroot:1000000:65536\n", wantGID: "root:1000000:65536\n",
	}, {
		name:   "root's range overlaps a user's: stop and say so",
		subuid: "root:100000:65536\nalice:100000:65536\n", subgid: "root:100000:65536\n",
		wantErr: []string{"overlaps alice:100000:65536", "subuid"},
	}, {
		name:   "overlap in subgid only",
		subuid: "root:100000:65536\n", subgid: "root:100000:65536\ncarol:150000:100\n",
		wantErr: []string{"overlaps carol:150000:100", "subgid"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			uidFile, gidFile := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
			for f, s := range map[string]string{uidFile: tc.subuid, gidFile: tc.subgid} {
				if s == "" {
					continue
				}
				if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := []string{"SUBUID_FILE=" + uidFile, "SUBGID_FILE=" + gidFile}
			out, ok := runStep(t, "step_subids", env...)
			if tc.wantErr != nil {
				if ok {
					t.Fatalf("step_subids succeeded, want a failure naming %q:\n%s", tc.wantErr, out)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(out, w) {
						t.Errorf("failure does not name %q:\n%s", w, out)
					}
				}
				got, _ := os.ReadFile(uidFile)
				if string(got) != tc.subuid {
					t.Errorf("subuid changed on failure: %q", got)
				}
				return
			}
			if !ok {
				t.Fatalf("step_subids failed:\n%s", out)
			}
			for f, want := range map[string]string{uidFile: tc.wantUID, gidFile: tc.wantGID} {
				got, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != want {
					t.Errorf("%s = %q, want %q", filepath.Base(f), got, want)
				}
			}
			// Every change is printed; a second run changes nothing.
			if changes := strings.Count(out, "change: "); changes != strings.Count(tc.wantUID+tc.wantGID, "\n")-strings.Count(tc.subuid+tc.subgid, "\n") {
				t.Errorf("%d changes printed for the lines added:\n%s", changes, out)
			}
			again, ok := runStep(t, "step_subids", env...)
			if !ok || strings.Contains(again, "change: ") || !strings.Contains(again, "RESULT=ok:") {
				t.Errorf("second run (ok %v) is not a no-op:\n%s", ok, again)
			}
		})
	}
}

// scripts/testenv changes the host's libvirtd, sshd and root's known_hosts:
// on a host not marked disposable it refuses, says what it would change,
// and touches nothing.
func TestTestenvRefusesNonDisposableHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("scripts/testenv runs as root: run the tests as root")
	}
	cache := t.TempDir()
	cmd := exec.Command("./testenv")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CI=") && !strings.HasPrefix(kv, "VIRT_TEST_HOST_DISPOSABLE=") && !strings.HasPrefix(kv, "VIRT_TESTENV_CACHE=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "VIRT_TESTENV_CACHE="+cache)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("scripts/testenv on a host not marked disposable: %v, want exit status 2:\n%s", err, out)
	}
	for _, want := range []string{"not marked disposable", "stops the running libvirtd", "known_hosts", "VIRT_TEST_HOST_DISPOSABLE=1"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out)
		}
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("the refusal wrote into its cache: %v", entries)
	}
}
