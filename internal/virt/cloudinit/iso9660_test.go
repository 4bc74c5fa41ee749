package cloudinit

import (
	"bytes"
	"encoding/binary"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
)

// seedCases are configs whose images the tests read back.
func seedCases() map[string]Config {
	long := "#cloud-config\nwrite_files:\n- path: /etc/motd\n  content: |\n" +
		strings.Repeat("    ünïcödé, and more than one sector of it\n", 150)
	return map[string]Config{
		"all three": {
			UserData:      "#cloud-config\nhostname: web-1\n",
			MetaData:      DefaultMetaData("i-1", "web-1"),
			NetworkConfig: "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n",
		},
		"no network-config":              {UserData: "#!/bin/sh\necho hi\n", MetaData: "instance-id: i-2\n"},
		"all empty":                      {},
		"user-data over several sectors": {UserData: long, MetaData: "instance-id: i-3\n"},
	}
}

// wantFiles is what the image of cfg must hold: user-data and meta-data
// always, network-config when set.
func wantFiles(cfg Config) map[string]string {
	m := map[string]string{UserDataFile: cfg.UserData, MetaDataFile: cfg.MetaData}
	if cfg.NetworkConfig != "" {
		m[NetworkConfigFile] = cfg.NetworkConfig
	}
	return m
}

// isoTree is one directory tree of an image as a reader sees it.
type isoTree struct {
	label string
	files map[string]string // name as the tree shows it -> content
	modes map[string]uint32 // Rock Ridge PX modes, by Rock Ridge name
	rrip  string            // the ER extension identifier, when Rock Ridge is on
}

// readISO is an independent, strict reader of what writeISO makes: it
// checks the structure ECMA-119, SUSP/RRIP and Joliet require of it and
// returns the primary tree (plain identifiers), the Rock Ridge view of it and
// the Joliet tree.
func readISO(t *testing.T, img []byte) (primary, rock, joliet isoTree) {
	t.Helper()
	if len(img)%sectorSize != 0 || len(img) < 20*sectorSize {
		t.Fatalf("image is %d bytes: not whole sectors, or too short", len(img))
	}
	sector := func(n uint32) []byte {
		if int(n+1)*sectorSize > len(img) {
			t.Fatalf("sector %d is past the end of the image", n)
		}
		return img[int(n)*sectorSize : int(n+1)*sectorSize]
	}
	both32 := func(b []byte, what string) uint32 {
		le, be := binary.LittleEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
		if le != be {
			t.Fatalf("%s: both-endian field says %d and %d", what, le, be)
		}
		return le
	}
	for i := 0; i < 16*sectorSize; i++ {
		if img[i] != 0 {
			t.Fatalf("system area byte %d is %#x, want 0", i, img[i])
		}
	}

	var pvd, svd []byte
	for n := uint32(16); ; n++ {
		d := sector(n)
		if string(d[1:7]) != "CD001\x01" {
			t.Fatalf("sector %d: no volume descriptor (%q)", n, d[:7])
		}
		switch d[0] {
		case 1:
			pvd = d
		case 2:
			if string(d[88:91]) != "%/E" {
				t.Fatalf("supplementary descriptor escape sequences %q, want Joliet level 3 %%/E", d[88:91])
			}
			svd = d
		case 255:
		default:
			t.Fatalf("sector %d: unexpected descriptor type %d", n, d[0])
		}
		if d[0] == 255 {
			break
		}
	}
	if pvd == nil || svd == nil {
		t.Fatalf("primary (%v) or Joliet (%v) descriptor missing", pvd != nil, svd != nil)
	}

	readTree := func(d []byte, isJoliet bool) (isoTree, isoTree) {
		if size := both32(d[80:88], "volume space size"); int(size)*sectorSize != len(img) {
			t.Fatalf("volume space size %d sectors, image has %d", size, len(img)/sectorSize)
		}
		if bs := binary.LittleEndian.Uint16(d[128:]); bs != sectorSize {
			t.Fatalf("logical block size %d", bs)
		}
		label := strings.TrimRight(string(d[40:72]), " ")
		if isJoliet {
			label = strings.TrimRight(ucs2(d[40:72]), " ")
		}
		root := d[156:190]
		rootExtent, rootSize := both32(root[2:10], "root extent"), both32(root[10:18], "root size")
		if root[0] != 34 || root[25]&2 == 0 || root[32] != 1 || root[33] != 0 {
			t.Fatalf("root directory record malformed: % x", root)
		}
		// The path tables: one entry, the root, in each byte order.
		ptSize := both32(d[132:140], "path table size")
		for _, pt := range []struct {
			at    uint32
			order binary.ByteOrder
		}{{binary.LittleEndian.Uint32(d[140:]), binary.LittleEndian}, {binary.BigEndian.Uint32(d[148:]), binary.BigEndian}} {
			e := sector(pt.at)
			if ptSize != 10 || e[0] != 1 || pt.order.Uint32(e[2:]) != rootExtent || pt.order.Uint16(e[6:]) != 1 || e[8] != 0 {
				t.Fatalf("path table at sector %d (size %d) malformed: % x", pt.at, ptSize, e[:10])
			}
		}

		plain := isoTree{label: label, files: map[string]string{}}
		rr := isoTree{label: label, files: map[string]string{}, modes: map[string]uint32{}}
		var lastID []byte
		dir := img[int(rootExtent)*sectorSize : int(rootExtent)*sectorSize+int(rootSize)]
		for off := 0; off < len(dir); {
			n := int(dir[off])
			if n == 0 { // the rest of this sector is padding
				off = (off/sectorSize + 1) * sectorSize
				continue
			}
			if n%2 != 0 || off%sectorSize+n > sectorSize {
				t.Fatalf("record at %d: length %d is odd or crosses a sector", off, n)
			}
			r := dir[off : off+n]
			off += n
			idLen := int(r[32])
			id := r[33 : 33+idLen]
			suStart := 33 + idLen
			if idLen%2 == 0 {
				suStart++
			}
			extent, size := both32(r[2:10], "extent"), both32(r[10:18], "size")
			if !bytes.Equal(r[18:25], recordingDate[:]) {
				t.Errorf("record %q dated % x, want the fixed date", id, r[18:25])
			}
			name, mode, nm := "", uint32(0), ""
			for su := r[suStart:]; len(su) >= 4 && su[2] >= 4; su = su[su[2]:] {
				e := su[:su[2]]
				switch string(e[:2]) {
				case "SP":
					if !bytes.Equal(e[4:6], []byte{0xbe, 0xef}) {
						t.Fatalf("SP entry % x", e)
					}
				case "CE":
					cont := sector(both32(e[4:12], "CE block"))[both32(e[12:20], "CE offset"):]
					cont = cont[:both32(e[20:28], "CE length")]
					if string(cont[:2]) == "ER" {
						rr.rrip = string(cont[8 : 8+int(cont[4])])
					}
				case "PX":
					mode = both32(e[4:12], "PX mode")
				case "NM":
					nm = string(e[5:])
				}
			}
			if idLen == 1 && (id[0] == 0 || id[0] == 1) {
				if r[25]&2 == 0 || extent != rootExtent {
					t.Fatalf("'.' or '..' record does not point at the root: % x", r)
				}
				continue
			}
			if lastID != nil && bytes.Compare(lastID, id) >= 0 {
				t.Errorf("records out of order: %q after %q", id, lastID)
			}
			lastID = id
			data := ""
			if size > 0 {
				data = string(img[int(extent)*sectorSize : int(extent)*sectorSize+int(size)])
			}
			name = string(id)
			if isJoliet {
				name = ucs2(id)
			}
			plain.files[name] = data
			if nm != "" {
				rr.files[nm] = data
				rr.modes[nm] = mode
			}
		}
		return plain, rr
	}
	primary, rock = readTree(pvd, false)
	joliet, _ = readTree(svd, true)
	return primary, rock, joliet
}

func ucs2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func TestISOReadBack(t *testing.T) {
	for name, cfg := range seedCases() {
		t.Run(name, func(t *testing.T) {
			img, err := ISO(cfg)
			if err != nil {
				t.Fatal(err)
			}
			primary, rock, joliet := readISO(t, img)
			want := wantFiles(cfg)
			for _, tree := range []struct {
				name string
				tree isoTree
			}{{"Rock Ridge", rock}, {"Joliet", joliet}} {
				if tree.tree.label != Label {
					t.Errorf("%s label %q, want %q", tree.name, tree.tree.label, Label)
				}
				if !maps.Equal(tree.tree.files, want) {
					t.Errorf("%s files:\n got %q\nwant %q", tree.name, tree.tree.files, want)
				}
			}
			if rock.rrip != rripID {
				t.Errorf("Rock Ridge extension %q, want %q (Linux turns Rock Ridge on by the ER entry)", rock.rrip, rripID)
			}
			for n, m := range rock.modes {
				if m != modeFile {
					t.Errorf("%s: mode %o, want %o", n, m, modeFile)
				}
			}
			// A reader that knows neither extension still finds the files
			// under names Linux maps to the real ones.
			var plainNames []string
			for n, data := range primary.files {
				plainNames = append(plainNames, n)
				real := strings.ToLower(strings.TrimSuffix(n, ".;1"))
				if want[real] != data {
					t.Errorf("primary %s holds %q, want %q", n, data, want[real])
				}
			}
			slices.Sort(plainNames)
			var wantPlain []string
			for n := range want {
				wantPlain = append(wantPlain, strings.ToUpper(n)+".;1")
			}
			slices.Sort(wantPlain)
			if !slices.Equal(plainNames, wantPlain) {
				t.Errorf("primary names %q, want %q", plainNames, wantPlain)
			}
		})
	}
}

// Same input, same bytes: a front end compares checksums across plans.
func TestISODeterministic(t *testing.T) {
	seen := map[string]string{}
	for name, cfg := range seedCases() {
		a, err := ISO(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := ISO(cfg)
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two renders differ", name)
		}
		if other, ok := seen[string(a)]; ok {
			t.Errorf("%s and %s render the same image", name, other)
		}
		seen[string(a)] = name
	}
}

func TestWriteISORejects(t *testing.T) {
	for _, files := range [][]isoFile{
		{{name: "a-b"}, {name: "A-B"}}, // the same primary identifier
		{{name: "a/b"}},
		{{name: ""}},
		{{name: strings.Repeat("x", 65)}},
	} {
		if err := writeISO(&bytes.Buffer{}, Label, files); err == nil {
			t.Errorf("writeISO(%v) = nil, want an error", files)
		}
	}
}

// lookTool finds a command the test needs; missing tools fail the test (run
// `make testenv`), they do not skip it.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (Debian package %s; run `make testenv`): %v", name, pkg, err)
	}
	return p
}

func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok { //nolint:errorlint // Output returns *exec.ExitError unwrapped
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// Tools other than this package's reader read the image as cloud-init's
// hosts would: isoinfo (cdrtools' reader) through Rock Ridge and Joliet,
// isovfy for the structure, blkid for the label cloud-init searches by.
func TestISOWithTools(t *testing.T) {
	// Host tools, as the integration tests use: skipped only under -short.
	testenv.Integration(t)
	isoinfo := lookTool(t, "isoinfo", "genisoimage")
	isovfy := lookTool(t, "isovfy", "genisoimage")
	blkid := lookTool(t, "blkid", "util-linux")
	for name, cfg := range seedCases() {
		t.Run(name, func(t *testing.T) {
			img, err := ISO(cfg)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "seed.iso")
			if err := os.WriteFile(path, img, 0o644); err != nil {
				t.Fatal(err)
			}

			info := runOut(t, isoinfo, "-d", "-i", path)
			for _, want := range []string{"Volume id: " + Label + "\n", "Joliet with UCS level 3 found", "Rock Ridge signatures version 1 found"} {
				if !strings.Contains(info, want) {
					t.Errorf("isoinfo -d lacks %q:\n%s", want, info)
				}
			}
			want := wantFiles(cfg)
			for _, mode := range []string{"-R", "-J"} {
				listing := runOut(t, isoinfo, mode, "-l", "-i", path)
				var names []string
				for line := range strings.Lines(listing) {
					if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "-") {
						names = append(names, f[len(f)-1])
					}
				}
				if !slices.Equal(names, slices.Sorted(maps.Keys(want))) {
					t.Errorf("isoinfo %s -l lists %q, want %q:\n%s", mode, names, slices.Sorted(maps.Keys(want)), listing)
				}
				for n, content := range want {
					if got := runOut(t, isoinfo, mode, "-x", "/"+n, "-i", path); got != content {
						t.Errorf("isoinfo %s -x /%s = %q, want %q", mode, n, got, content)
					}
				}
			}
			if out := runOut(t, isovfy, path); !strings.Contains(out, "No errors found") {
				t.Errorf("isovfy:\n%s", out)
			}
			tags := runOut(t, blkid, "-p", "-o", "export", path)
			for _, want := range []string{"LABEL=" + Label + "\n", "TYPE=iso9660\n"} {
				if !strings.Contains(tags, want) {
					t.Errorf("blkid lacks %q:\n%s", want, tags)
				}
			}
		})
	}
}
