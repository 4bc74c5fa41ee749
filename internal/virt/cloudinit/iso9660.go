package cloudinit

// A writer for the small subset of ISO 9660 (ECMA-119) a NoCloud seed needs:
// a few small files in the root directory, no subdirectories, with Rock Ridge
// (RRIP 1.09) names and a Joliet tree, so that "user-data" reads back as
// "user-data" and not as USER_DAT.
//
// Why not a module: github.com/kdomanski/iso9660 v0.4.0 writes neither Rock
// Ridge nor Joliet (it mangles names to 8.3 d-characters) and stamps images
// with time.Now(); github.com/diskfs/go-diskfs v1.9.4 writes both, but it
// stages files in a temporary directory, stamps time.Now() into the volume
// descriptors and brings about ten modules (logrus, xz, lz4, zstd, lzo...)
// for a job of three files. The subset below is a few hundred lines, has no
// dependencies, and its output is the same bytes for the same input, which a
// front end comparing checksums needs.
//
// Layout, in 2048-byte sectors:
//
//	0-15   system area (zeros)
//	16     primary volume descriptor
//	17     supplementary volume descriptor (Joliet, UCS-2 level 3)
//	18     volume descriptor set terminator
//	19-20  primary path table, little- and big-endian
//	21-22  Joliet path table, little- and big-endian
//	23     Rock Ridge continuation area (the ER entry)
//	24...  primary root directory, then the Joliet root directory
//	...    file data, each file from a sector boundary; both trees point at it
//	...    150 sectors of zeros, as genisoimage pads, against read-ahead past
//	       the end on some drives

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf16"
)

const (
	sectorSize = 2048
	// padSectors is genisoimage's default trailing pad.
	padSectors = 150
	// maxFileSize is what one extent's 32-bit length can say.
	maxFileSize = 1<<32 - 1

	sectorPVD        = 16
	sectorSVD        = 17
	sectorTerminator = 18
	sectorPathL      = 19
	sectorPathM      = 20
	sectorJolietL    = 21
	sectorJolietM    = 22
	sectorContinue   = 23
	sectorFirstDir   = 24
)

// The Rock Ridge extension reference: the identifier, description and source
// RRIP 1.09 prescribes, as genisoimage writes them. Linux turns Rock Ridge on
// only when it finds this ER entry.
const (
	rripID     = "RRIP_1991A"
	rripDesc   = "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS"
	rripSource = "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION."
)

// POSIX modes in Rock Ridge PX entries: a read-only medium.
const (
	modeDir  = 0o040555
	modeFile = 0o100444
)

// recordingDate (directory records) and volumeDate (volume descriptors) are
// the one fixed time stamped everywhere (the Unix epoch, as
// reproducible builds use with SOURCE_DATE_EPOCH=0): the image must not
// depend on when it was made.
var (
	recordingDate = [7]byte{70, 1, 1, 0, 0, 0, 0} // years since 1900, month, day, h, m, s, UTC offset
	volumeDate    = append([]byte("1970010100000000"), 0)
)

type isoFile struct {
	name string
	data []byte
}

// writeISO writes the image to w. Names must be unique, and fit in one
// directory sector per tree, which a seed's three short names always do.
func writeISO(w io.Writer, label string, files []isoFile) error {
	files = slices.Clone(files)
	for _, f := range files {
		if f.name == "" || strings.ContainsAny(f.name, "/\x00") || len(f.name) > 64 {
			return fmt.Errorf("file name %q: must be 1 to 64 characters without '/'", f.name)
		}
		if uint64(len(f.data)) > maxFileSize {
			return fmt.Errorf("file %s is %d bytes; an extent holds at most %d", f.name, len(f.data), uint64(maxFileSize))
		}
	}
	// Data goes in name order too, so that the layout does not depend on
	// the order the caller lists the files in.
	slices.SortFunc(files, func(a, b isoFile) int { return strings.Compare(a.name, b.name) })
	seen := map[string]string{}
	for _, f := range files {
		if other, ok := seen[primaryName(f.name)]; ok {
			return fmt.Errorf("file names %q and %q are the same on ISO 9660", other, f.name)
		}
		seen[primaryName(f.name)] = f.name
	}

	// Place the data: each file from a sector boundary after the two
	// directories. An empty file has no extent; its location says 0.
	const primaryDir, jolietDir = sectorFirstDir, sectorFirstDir + 1
	loc := make([]uint32, len(files))
	next := uint32(jolietDir + 1)
	for i, f := range files {
		if len(f.data) > 0 {
			loc[i] = next
			next += sectors(len(f.data))
		}
	}
	total := next + padSectors

	er := susp("ER", append([]byte{byte(len(rripID)), byte(len(rripDesc)), byte(len(rripSource)), 1},
		rripID+rripDesc+rripSource...))

	primary, err := directory(primaryDir, files, loc, func(name string) []byte { return []byte(primaryName(name)) },
		func(kind byte, name string) []byte { return rockRidge(kind, name, len(er)) })
	if err != nil {
		return err
	}
	joliet, err := directory(jolietDir, files, loc, jolietName, nil)
	if err != nil {
		return err
	}

	img := make([]byte, 0, int(sectorFirstDir+2)*sectorSize)
	img = append(img, make([]byte, sectorPVD*sectorSize)...)
	img = append(img, volumeDescriptor(1, label, total, sectorPathL, sectorPathM, primaryDir)...)
	img = append(img, volumeDescriptor(2, label, total, sectorJolietL, sectorJolietM, jolietDir)...)
	img = append(img, padSector(append([]byte{255}, "CD001\x01"...))...)
	img = append(img, padSector(pathTable(binary.LittleEndian, primaryDir))...)
	img = append(img, padSector(pathTable(binary.BigEndian, primaryDir))...)
	img = append(img, padSector(pathTable(binary.LittleEndian, jolietDir))...)
	img = append(img, padSector(pathTable(binary.BigEndian, jolietDir))...)
	img = append(img, padSector(er)...)
	img = append(img, primary...)
	img = append(img, joliet...)
	if _, err := w.Write(img); err != nil {
		return err
	}
	for _, f := range files {
		if len(f.data) == 0 {
			continue
		}
		if _, err := w.Write(f.data); err != nil {
			return err
		}
		if _, err := w.Write(make([]byte, int(sectors(len(f.data)))*sectorSize-len(f.data))); err != nil {
			return err
		}
	}
	_, err = w.Write(make([]byte, padSectors*sectorSize))
	return err
}

func sectors(n int) uint32 { return uint32((n + sectorSize - 1) / sectorSize) }

// padSector pads b with zeros to a whole number of sectors.
func padSector(b []byte) []byte {
	return append(b, make([]byte, int(sectors(len(b)))*sectorSize-len(b))...)
}

// primaryName is a file's identifier in the primary tree. Rock Ridge and
// Joliet readers never show it; a reader that knows neither (Linux mounted
// with norock,nojoliet, which lower-cases names and drops ".;1") then still
// sees "user-data". That keeps '-', which strict ECMA-119 d-characters lack,
// as genisoimage's -relaxed-filenames does.
func primaryName(name string) string {
	up := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		}
		return '_' // a '.' too: the one allowed separates name and extension
	}, name)
	return up + ".;1"
}

// jolietName is a file's identifier in the Joliet tree: UCS-2 big-endian,
// without the ";1" version suffix, as genisoimage writes it (Joliet allows
// leaving it out, and readers such as isoinfo -J then find "/user-data").
func jolietName(name string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(name)) {
		b = binary.BigEndian.AppendUint16(b, u)
	}
	return b
}

// Entry kinds for rockRidge.
const (
	entryRoot   = iota // the root's "." record: carries SP and the CE to the ER
	entryParent        // the root's ".." record
	entryFile
)

// rockRidge returns the System Use entries of one primary directory record.
func rockRidge(kind byte, name string, erLen int) []byte {
	const rrPX, rrNM = 1 << 0, 1 << 3
	var b []byte
	mode, links := uint32(modeDir), uint32(2)
	flags := byte(rrPX)
	if kind == entryRoot {
		// SP must come first in the root's "." record: it says SUSP is in use.
		b = append(b, susp("SP", []byte{0xbe, 0xef, 0})...)
	}
	if kind == entryFile {
		mode, links, flags = modeFile, 1, rrPX|rrNM
	}
	b = append(b, susp("RR", []byte{flags})...)
	px := make([]byte, 0, 32)
	for _, v := range []uint32{mode, links, 0, 0} { // mode, links, uid, gid
		px = bothEndian32(px, v)
	}
	b = append(b, susp("PX", px)...)
	if kind == entryFile {
		b = append(b, susp("NM", append([]byte{0}, name...))...)
	}
	if kind == entryRoot {
		// The ER entry is too long for a directory record (at most 255
		// bytes): it lives in the continuation area.
		var ce []byte
		ce = bothEndian32(ce, sectorContinue)
		ce = bothEndian32(ce, 0)
		ce = bothEndian32(ce, uint32(erLen))
		b = append(b, susp("CE", ce)...)
	}
	return b
}

// susp frames one System Use Sharing Protocol entry: signature, length,
// version 1, data.
func susp(sig string, data []byte) []byte {
	return append([]byte{sig[0], sig[1], byte(4 + len(data)), 1}, data...)
}

// directory renders the root directory (".", "..", then files) at sector at,
// in one sector. ident gives a file's identifier; su, when set, its System
// Use entries.
func directory(at uint32, files []isoFile, loc []uint32, ident func(string) []byte, su func(byte, string) []byte) ([]byte, error) {
	suOf := func(kind byte, name string) []byte {
		if su == nil {
			return nil
		}
		return su(kind, name)
	}
	var b []byte
	add := func(extent, size uint32, dir bool, id, su []byte) error {
		r, err := dirRecord(extent, size, dir, id, su)
		b = append(b, r...)
		return err
	}
	if err := add(at, sectorSize, true, []byte{0}, suOf(entryRoot, "")); err != nil {
		return nil, err
	}
	if err := add(at, sectorSize, true, []byte{1}, suOf(entryParent, "")); err != nil {
		return nil, err
	}
	// ECMA-119 9.3: records in a directory are ordered by identifier, and
	// each tree has its own identifiers.
	order := make([]int, len(files))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return bytes.Compare(ident(files[i].name), ident(files[j].name)) })
	for _, i := range order {
		f := files[i]
		if err := add(loc[i], uint32(len(f.data)), false, ident(f.name), suOf(entryFile, f.name)); err != nil {
			return nil, err
		}
	}
	if len(b) > sectorSize {
		return nil, errors.New("too many or too long file names for a one-sector directory")
	}
	return padSector(b), nil
}

// dirRecord renders one directory record (ECMA-119 9.1): a 33-byte header,
// the identifier, a pad byte that puts the System Use area on an even
// offset, the System Use entries, and a pad byte that keeps the record's
// length even.
func dirRecord(extent, size uint32, dir bool, id, su []byte) ([]byte, error) {
	n := 33 + len(id)
	if n%2 == 1 {
		n++
	}
	n += len(su)
	if n%2 == 1 {
		n++
	}
	if n > 255 {
		return nil, fmt.Errorf("directory record for %q is %d bytes, more than 255", id, n)
	}
	r := make([]byte, 0, n)
	r = append(r, byte(n), 0)
	r = bothEndian32(r, extent)
	r = bothEndian32(r, size)
	r = append(r, recordingDate[:]...)
	var flags byte
	if dir {
		flags = 1 << 1
	}
	r = append(r, flags, 0, 0)
	r = bothEndian16(r, 1) // volume sequence number
	r = append(r, byte(len(id)))
	r = append(r, id...)
	if len(id)%2 == 0 {
		r = append(r, 0)
	}
	r = append(r, su...)
	return append(r, make([]byte, n-len(r))...), nil
}

// pathTable renders a path table with its one entry, the root directory
// (ECMA-119 9.4), in the byte order of its kind.
func pathTable(order binary.AppendByteOrder, rootSector uint32) []byte {
	b := []byte{1, 0}
	b = order.AppendUint32(b, rootSector)
	b = order.AppendUint16(b, 1) // the root's parent is itself, directory 1
	return append(b, 0, 0)       // identifier 0x00, pad to even
}

// pathTableSize is the size of the table pathTable renders.
const pathTableSize = 10

// volumeDescriptor renders the primary (kind 1) or the Joliet supplementary
// (kind 2) volume descriptor (ECMA-119 8.4, 8.5).
func volumeDescriptor(kind byte, label string, total, pathL, pathM, root uint32) []byte {
	joliet := kind == 2
	text := func(s string, n int) []byte {
		if joliet {
			return ucs2Field(s, n)
		}
		return []byte(fmt.Sprintf("%-*s", n, s)[:n])
	}
	d := make([]byte, 0, sectorSize)
	d = append(d, kind)
	d = append(d, "CD001\x01\x00"...)
	d = append(d, text("", 32)...)    // system identifier
	d = append(d, text(label, 32)...) // volume identifier
	d = append(d, make([]byte, 8)...)
	d = bothEndian32(d, total)
	escapes := make([]byte, 32)
	if joliet {
		copy(escapes, "%/E") // UCS-2 level 3
	}
	d = append(d, escapes...)
	d = bothEndian16(d, 1)          // volume set size
	d = bothEndian16(d, 1)          // volume sequence number
	d = bothEndian16(d, sectorSize) // logical block size
	d = bothEndian32(d, pathTableSize)
	d = binary.LittleEndian.AppendUint32(d, pathL)
	d = binary.LittleEndian.AppendUint32(d, 0)
	d = binary.BigEndian.AppendUint32(d, pathM)
	d = binary.BigEndian.AppendUint32(d, 0)
	rootRecord, _ := dirRecord(root, sectorSize, true, []byte{0}, nil) // 34 bytes: cannot fail
	d = append(d, rootRecord...)
	d = append(d, text("", 128)...) // volume set
	d = append(d, text("", 128)...) // publisher
	d = append(d, text("", 128)...) // data preparer
	d = append(d, text("", 128)...) // application
	d = append(d, text("", 37)...)  // copyright file
	d = append(d, text("", 37)...)  // abstract file
	d = append(d, text("", 37)...)  // bibliographic file
	d = append(d, volumeDate...)    // creation
	d = append(d, volumeDate...)    // modification
	d = append(d, bytes.Repeat([]byte("0"), 16)...)
	d = append(d, 0) // expiration: none
	d = append(d, bytes.Repeat([]byte("0"), 16)...)
	d = append(d, 0) // effective: at once
	d = append(d, 1) // file structure version
	return padSector(d)
}

// ucs2Field renders s in UCS-2 big-endian, padded with UCS-2 spaces to n
// bytes (an odd n ends with a zero byte).
func ucs2Field(s string, n int) []byte {
	b := make([]byte, 0, n)
	for _, u := range utf16.Encode([]rune(s)) {
		if len(b)+2 > n {
			break
		}
		b = binary.BigEndian.AppendUint16(b, u)
	}
	for len(b)+2 <= n {
		b = append(b, 0, ' ')
	}
	return append(b, make([]byte, n-len(b))...)
}

func bothEndian16(b []byte, v uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.LittleEndian.AppendUint16(b, v), v)
}

func bothEndian32(b []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.LittleEndian.AppendUint32(b, v), v)
}
