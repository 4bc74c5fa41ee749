// Package cloudinit builds NoCloud seeds: the small ISO 9660 image, labelled
// "cidata", from which cloud-init in a guest reads its user-data, meta-data and
// network-config on first boot. It knows nothing about libvirt or about who
// calls it; the libvirt backend uploads what ISO renders as a volume.
package cloudinit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// Config is what a NoCloud seed carries. Each field is the content of the
// file of the same name on the seed, byte for byte.
type Config struct {
	// UserData is what cloud-init acts on: cloud-config, a script, a MIME
	// multipart archive... Empty means none.
	UserData string
	// MetaData is YAML; cloud-init reads instance-id (a change makes it run
	// its once-per-instance modules again) and local-hostname from it. Empty
	// is allowed (cloud-init then uses the instance-id "nocloud"); front ends
	// fill it with DefaultMetaData when the user gives none.
	MetaData string
	// NetworkConfig is network configuration version 1 or 2 in YAML. Empty
	// leaves the file out, and cloud-init falls back to DHCP on the first NIC.
	NetworkConfig string
}

// SpecError fields, in the snake_case front ends map to their attributes.
const (
	FieldUserData      = "user_data"
	FieldMetaData      = "meta_data"
	FieldNetworkConfig = "network_config"
)

// userDataStarts are the first characters by which cloud-init recognizes a
// user-data part that is not MIME (cloudinit/handlers/__init__.py,
// INCLUSION_TYPES_MAP, compared lower-cased after leading white space is
// stripped). "#!" covers every script; "#cloud-config" also matches
// "#cloud-config-archive" and "#cloud-config-jsonp", "#include" also
// "#include-once". "#upstart-job" was dropped from cloud-init long ago.
var userDataStarts = []string{
	"#cloud-config",
	"#!",
	"#include",
	"#cloud-boothook",
	"#part-handler",
	"## template: jinja",
}

// UserDataPrefixes lists the starts of user-data cloud-init recognizes, for
// front ends' descriptions.
func UserDataPrefixes() []string {
	return append([]string(nil), userDataStarts...)
}

// Validate reports, as virt.SpecErrors, the content that cloud-init would
// certainly ignore: user-data of no type it recognizes, cloud-config that is
// not a YAML mapping, meta-data or network-config that is not a YAML mapping.
// It does not second-guess anything cloud-init might act on: a MIME archive, a
// gzip-compressed blob or a Jinja template pass as they are.
func (cfg Config) Validate() error {
	var es virt.SpecErrors
	if reason := checkUserData(cfg.UserData); reason != "" {
		es = append(es, &virt.SpecError{Field: FieldUserData, Reason: reason})
	}
	if reason := checkYAMLMapping(cfg.MetaData); reason != "" {
		es = append(es, &virt.SpecError{Field: FieldMetaData, Reason: reason})
	}
	if reason := checkYAMLMapping(cfg.NetworkConfig); reason != "" {
		es = append(es, &virt.SpecError{Field: FieldNetworkConfig, Reason: reason})
	}
	for _, f := range []struct{ field, content string }{
		{FieldUserData, cfg.UserData}, {FieldMetaData, cfg.MetaData}, {FieldNetworkConfig, cfg.NetworkConfig},
	} {
		if uint64(len(f.content)) > maxFileSize {
			es = append(es, &virt.SpecError{Field: f.field, Reason: fmt.Sprintf(
				"is %d bytes; an ISO 9660 file holds at most %d", len(f.content), maxFileSize)})
		}
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

// checkUserData mirrors cloud-init's own recognition of user-data
// (cloudinit/user_data.py convert_string and handlers.type_from_starts_with)
// and returns why it would be ignored, or "" when it would not be.
func checkUserData(ud string) string {
	if strings.TrimSpace(ud) == "" {
		// Nothing to act on, and nothing wrong: a seed without user-data
		// still sets the hostname and the network.
		return ""
	}
	if strings.HasPrefix(ud, "\x1f\x8b") {
		// cloud-init unpacks gzip before anything else; the content inside
		// cannot be checked without unpacking it, and it is the user's.
		return ""
	}
	head := strings.ToLower(ud[:min(len(ud), 4096)])
	if strings.Contains(head, "mime-version:") {
		return ""
	}
	start := strings.TrimLeftFunc(strings.ToLower(ud), unicode.IsSpace)
	if strings.HasPrefix(start, "\ufeff") {
		return "starts with a byte order mark, which cloud-init does not skip: it would ignore the user-data; save the file as UTF-8 without BOM"
	}
	recognized := false
	for _, p := range userDataStarts {
		if strings.HasPrefix(start, p) {
			recognized = true
			break
		}
	}
	if !recognized {
		return unrecognizedUserData(ud)
	}
	if strings.HasPrefix(start, "#cloud-config") &&
		!strings.HasPrefix(start, "#cloud-config-archive") && !strings.HasPrefix(start, "#cloud-config-jsonp") {
		if reason := checkYAMLMapping(ud); reason != "" {
			return "cloud-config " + reason
		}
	}
	return ""
}

// unrecognizedUserData says why cloud-init would ignore user-data that has
// no header it knows. It describes the content without quoting it:
// user-data often holds passwords and keys, and the message ends up in
// terminals and CI logs that a Sensitive attribute keeps them out of.
func unrecognizedUserData(ud string) string {
	first, _, _ := strings.Cut(strings.TrimLeftFunc(ud, unicode.IsSpace), "\n")
	first = strings.TrimRight(first, "\r")
	what := fmt.Sprintf("its first line (%d characters) has no header cloud-init recognizes", utf8.RuneCountInString(first))
	if checkYAMLMapping(ud) == "" {
		what += "; it reads as a YAML mapping, so if it is cloud-config, add the line #cloud-config at the top"
	}
	return fmt.Sprintf("cloud-init would ignore it: %s. User-data must start with one of %s, or be a MIME multipart message (with a MIME-Version header)",
		what, strings.Join(userDataStarts, ", "))
}

// checkYAMLMapping returns why doc is not what cloud-init's load_yaml takes
// (a mapping, or nothing at all), or "" when it is. cloud-init parses with
// PyYAML (YAML 1.1) and yaml.v3 is a YAML 1.2 parser; they agree on what is
// malformed, and duplicate keys, which PyYAML takes (the last one wins), are
// not refused here either, because parsing into a yaml.Node does not check
// them.
func checkYAMLMapping(doc string) string {
	if strings.TrimSpace(doc) == "" {
		return ""
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		return "is not valid YAML: " + yamlProblem(err)
	}
	if n.Kind == 0 || len(n.Content) == 0 {
		return "" // only comments: cloud-init reads it as empty
	}
	root := n.Content[0]
	for root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return ""
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Sprintf("must be a YAML mapping (key: value lines), got a %s; cloud-init would ignore it", kindName(root))
	}
	return ""
}

// yamlAnchorName matches the one piece of the document yaml.v3 quotes in
// its errors while building a node tree: the name of an anchor ("unknown
// anchor 'x' referenced"). Its other messages are the parser's own words
// and a line number.
var yamlAnchorName = regexp.MustCompile(`anchor '\S*'`)

// yamlProblem is yaml's complaint without the pieces of the document it
// quotes, which may be secret (user-data holds passwords); the line number
// says where to look.
func yamlProblem(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	return yamlAnchorName.ReplaceAllString(msg, "anchor")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	default:
		return "non-mapping document"
	}
}

// DefaultMetaData returns meta-data with instance-id and local-hostname for a
// machine when the user gives none. An empty argument leaves its key out.
// The instance-id should stay the same for the life of the machine (its
// UUID, say): cloud-init runs its once-per-instance modules again whenever
// it changes.
func DefaultMetaData(instanceID, hostname string) string {
	md := struct {
		InstanceID    string `yaml:"instance-id,omitempty"`
		LocalHostname string `yaml:"local-hostname,omitempty"`
	}{instanceID, hostname}
	// Marshalling a struct of strings cannot fail; yaml quotes whatever
	// needs quoting.
	b, _ := yaml.Marshal(md)
	if string(b) == "{}\n" {
		return ""
	}
	return string(b)
}

// Checksum identifies the seed's content: "sha256:" and the hex digest of the
// three fields (length-prefixed, so that no two configs collide by moving
// bytes from one field to the next). It hashes the inputs, not the rendered
// image, so that a change in how the image is laid out (a later version of
// this package) does not look like a changed seed to a front end that stored
// the checksum. Compute it on the Config as it is rendered (after
// DefaultMetaData is filled in).
func (cfg Config) Checksum() string {
	h := sha256.New()
	h.Write([]byte("nocloud-seed-v1\x00"))
	for _, s := range []string{cfg.UserData, cfg.MetaData, cfg.NetworkConfig} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Label is the volume label by which cloud-init's NoCloud data source finds
// the seed (it looks for both "cidata" and "CIDATA").
const Label = "cidata"

// Names of the files on the seed.
const (
	UserDataFile      = "user-data"
	MetaDataFile      = "meta-data"
	NetworkConfigFile = "network-config"
)

// ISO renders a NoCloud seed: an ISO 9660 image with volume label "cidata"
// holding user-data, meta-data and (if set) network-config at its root. Names
// read as written through both Rock Ridge and Joliet, as `genisoimage -volid
// cidata -joliet -rock` (cloud-localds) makes them; user-data and meta-data
// are always there, even empty, because NoCloud ignores a seed that lacks
// either. The same Config always gives the same bytes: every timestamp is
// fixed. It validates cfg first and returns its virt.SpecErrors.
func ISO(cfg Config) ([]byte, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	files := []isoFile{
		{name: MetaDataFile, data: []byte(cfg.MetaData)},
		{name: UserDataFile, data: []byte(cfg.UserData)},
	}
	if cfg.NetworkConfig != "" {
		files = append(files, isoFile{name: NetworkConfigFile, data: []byte(cfg.NetworkConfig)})
	}
	var buf bytes.Buffer
	if err := writeISO(&buf, Label, files); err != nil {
		return nil, fmt.Errorf("render NoCloud seed: %w", err)
	}
	return buf.Bytes(), nil
}
