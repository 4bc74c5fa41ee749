package virt

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
)

// Where shadow-utils keeps the subordinate id ranges that newuidmap and LXC
// hand out to user namespaces.
const (
	SubUIDFile = "/etc/subuid"
	SubGIDFile = "/etc/subgid"
)

// HostIDMap returns the id map an unprivileged container of user gets: the
// user's subordinate uid and gid ranges from /etc/subuid and /etc/subgid,
// each mapped to container ids starting at 0.
func HostIDMap(userName string) ([]IDMapEntry, error) {
	names := []string{userName}
	// Both files may name the user by uid instead of by name.
	if u, err := user.Lookup(userName); err == nil {
		names = append(names, u.Uid)
	}
	return HostIDMapFrom(SubUIDFile, SubGIDFile, userName, names...)
}

// HostIDMapFrom is HostIDMap reading the given files; userName is what
// error messages call the user, and aliases are the names or numeric ids
// that the files' lines may use for it (userName itself when none are
// given).
func HostIDMapFrom(subuidPath, subgidPath, userName string, aliases ...string) ([]IDMapEntry, error) {
	if len(aliases) == 0 {
		aliases = []string{userName}
	}
	var out []IDMapEntry
	for _, f := range []struct{ kind, path, what string }{
		{"u", subuidPath, "uid"},
		{"g", subgidPath, "gid"},
	} {
		start, count, err := subordinateRange(f.path, aliases)
		if err != nil {
			return nil, fmt.Errorf("read subordinate %s range of %q: %w", f.what, userName, err)
		}
		if count == 0 {
			return nil, fmt.Errorf("no subordinate %s range for %q in %s: unprivileged containers map their ids into it; "+
				"add one with `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s`",
				f.what, userName, f.path, userName)
		}
		out = append(out, IDMapEntry{Kind: f.kind, ContainerID: 0, HostID: start, Count: count})
	}
	return out, nil
}

// subordinateRange picks the user's range from one subid file: the first
// one of at least 65536 ids (enough for every id a distribution uses,
// nobody = 65534 included), else the first one there is. A missing file
// reads as no range: on a fresh host the file does not exist until usermod
// writes it.
func subordinateRange(path string, aliases []string) (start, count uint32, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }() // opened read-only: nothing to flush

	var firstStart, firstCount uint32
	sc := bufio.NewScanner(f)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) != 3 || !slices.Contains(aliases, fields[0]) {
			continue
		}
		s, err1 := strconv.ParseUint(fields[1], 10, 32)
		c, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 != nil || err2 != nil || c == 0 || s+c-1 > 1<<32-1 {
			return 0, 0, fmt.Errorf("%s:%d: %q is not a valid name:start:count entry", path, lineNo, line)
		}
		if c >= 65536 {
			return uint32(s), uint32(c), nil
		}
		if firstCount == 0 {
			firstStart, firstCount = uint32(s), uint32(c)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return firstStart, firstCount, nil
}
