package cloudinit

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// fieldsOf returns the fields a Validate error names, in order.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es virt.SpecErrors
	if !errors.As(err, &es) {
		t.Fatalf("error %v (%T) is not virt.SpecErrors", err, err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Field)
	}
	return out
}

func TestValidateUserData(t *testing.T) {
	mime := "Content-Type: multipart/mixed; boundary=\"XX\"\nMIME-Version: 1.0\n\n--XX\nContent-Type: text/cloud-config\n\nhostname: a\n--XX--\n"
	for _, tc := range []struct {
		name, userData string
		wantErr        string // substring of the reason; "" when valid
	}{
		{"empty", "", ""},
		{"only white space", " \n\t\n", ""},
		{"cloud-config", "#cloud-config\nhostname: a\npackages: [curl]\n", ""},
		{"cloud-config with only the header", "#cloud-config\n", ""},
		{"cloud-config header in another case after blank lines", "\n\n  #Cloud-Config\nhostname: a\n", ""},
		{"cloud-config with duplicate keys (PyYAML keeps the last)", "#cloud-config\nhostname: a\nhostname: b\n", ""},
		{"shell script", "#!/bin/sh\necho hi\n", ""},
		{"python script", "#!/usr/bin/env python3\nprint(1)\n", ""},
		{"include", "#include\nhttps://example.com/ud\n", ""},
		{"include-once", "#include-once\nhttps://example.com/ud\n", ""},
		{"boothook", "#cloud-boothook\n#!/bin/sh\necho hi\n", ""},
		{"part handler", "#part-handler\ndef list_types(): return []\n", ""},
		{"jinja template is not YAML until rendered", "## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n{% if x %}\n", ""},
		{"cloud-config archive is a YAML list", "#cloud-config-archive\n- type: text/cloud-config\n  content: 'a: b'\n", ""},
		{"cloud-config jsonp", "#cloud-config-jsonp\n[{\"op\": \"add\", \"path\": \"/a\", \"value\": 1}]\n", ""},
		{"MIME multipart", mime, ""},
		{"gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00", ""},

		{"plain YAML without the header", "hostname: a\n", "if it is cloud-config, add the line #cloud-config at the top"},
		{"text", "hello world\n", "its first line (11 characters) has no header cloud-init recognizes"},
		{"text lists the headers", "hello world\r\nmore\n", "must start with one of #cloud-config, #!, #include"},
		{"multipart without MIME-Version", "Content-Type: multipart/mixed; boundary=XX\n\n--XX--\n", "MIME-Version"},
		{"byte order mark", "\ufeff#cloud-config\nhostname: a\n", "byte order mark"},
		{"cloud-config that is a list", "#cloud-config\n- a\n- b\n", "cloud-config must be a YAML mapping"},
		{"cloud-config that is a scalar", "#cloud-config\njust text\n", "cloud-config must be a YAML mapping"},
		{"cloud-config that does not parse", "#cloud-config\nusers: [a, b\n", "cloud-config is not valid YAML"},
		{"cloud-config with a tab indent", "#cloud-config\nusers:\n\t- a\n", "cloud-config is not valid YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{UserData: tc.userData}.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if got := fieldsOf(t, err); !slices.Equal(got, []string{FieldUserData}) {
				t.Fatalf("Validate = %v, want one error on %s", err, FieldUserData)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// user_data is Sensitive: whatever is wrong with it, the message says so
// without quoting it, since it goes to terminals and CI logs.
func TestValidateQuotesNoContent(t *testing.T) {
	// Letters and digits only, so that it can be an anchor's name too.
	const secret = "s3cr3tPa55"
	for _, tc := range []struct{ name, userData string }{
		{"unrecognized first line", secret + "\n#cloud-config\n"},
		{"unrecognized, long first line", "password: " + strings.Repeat(secret, 20) + "\n"},
		{"unrecognized YAML", "chpasswd: {list: 'root:" + secret + "'}\n"},
		{"cloud-config that is a list", "#cloud-config\n- " + secret + "\n"},
		{"cloud-config with an undefined alias", "#cloud-config\npassword: *" + secret + "\n"},
		{"cloud-config with an alias before its anchor", "#cloud-config\na: *" + secret + "\nb: &" + secret + " 1\n"},
		{"cloud-config with a bad key", "#cloud-config\n" + secret + ": [a\n"},
		{"cloud-config with a bad value", "#cloud-config\npassword: \"" + secret + "\n"},
		{"cloud-config with a bad tag", "#cloud-config\npassword: !<" + secret + "\n"},
		{"cloud-config with a tab", "#cloud-config\nusers:\n\t- " + secret + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{UserData: tc.userData, MetaData: tc.userData, NetworkConfig: tc.userData}.Validate()
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, part := range []string{secret, "s3cr3t", "Pa55"} {
				if strings.Contains(err.Error(), part) {
					t.Errorf("Validate quotes the content (%q): %v", part, err)
				}
			}
		})
	}
}

func TestValidateYAMLFiles(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		wantErr   string
	}{
		{"empty", "", ""},
		{"comments only", "# nothing yet\n", ""},
		{"explicit null", "~\n", ""},
		{"mapping", "instance-id: i-1\nlocal-hostname: a\n", ""},
		{"network config v2", "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n", ""},
		{"network config v1 under network:", "network:\n  version: 1\n  config:\n  - type: physical\n    name: eth0\n", ""},
		{"anchors and aliases", "a: &x {b: 1}\nc: *x\n", ""},
		{"list", "- a\n- b\n", "must be a YAML mapping"},
		{"scalar", "instance-id\n", "must be a YAML mapping"},
		{"broken", "a: [1, 2\n", "is not valid YAML"},
		{"two documents", "a: 1\n---\nb: 2\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range []struct {
				field string
				cfg   Config
			}{
				{FieldMetaData, Config{MetaData: tc.doc}},
				{FieldNetworkConfig, Config{NetworkConfig: tc.doc}},
			} {
				err := f.cfg.Validate()
				if tc.wantErr == "" {
					if err != nil {
						t.Errorf("%s: Validate = %v, want nil", f.field, err)
					}
					continue
				}
				if got := fieldsOf(t, err); !slices.Equal(got, []string{f.field}) {
					t.Errorf("%s: Validate = %v, want one error on it", f.field, err)
				} else if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("%s: Validate = %q, want it to contain %q", f.field, err, tc.wantErr)
				}
			}
		})
	}
}

// Every problem is reported at once, each under its own field, and ISO
// refuses to render what Validate refuses.
func TestValidateReportsAll(t *testing.T) {
	cfg := Config{UserData: "hello\n", MetaData: "- a\n", NetworkConfig: "a: [\n"}
	want := []string{FieldUserData, FieldMetaData, FieldNetworkConfig}
	if got := fieldsOf(t, cfg.Validate()); !slices.Equal(got, want) {
		t.Errorf("Validate fields = %v, want %v", got, want)
	}
	img, err := ISO(cfg)
	if got := fieldsOf(t, err); !slices.Equal(got, want) || img != nil {
		t.Errorf("ISO = %d bytes, fields %v; want no image and fields %v", len(img), got, want)
	}
}

func TestDefaultMetaData(t *testing.T) {
	for _, tc := range []struct {
		id, host string
		want     map[string]string
	}{
		{"8a3f0c2e-1b7d-4c1e-9f00-5d2a6b7c8d9e", "web-1", map[string]string{"instance-id": "8a3f0c2e-1b7d-4c1e-9f00-5d2a6b7c8d9e", "local-hostname": "web-1"}},
		// Values YAML would read as something else stay strings.
		{"123", "yes", map[string]string{"instance-id": "123", "local-hostname": "yes"}},
		{"a: b", "#x", map[string]string{"instance-id": "a: b", "local-hostname": "#x"}},
		{"i-1", "", map[string]string{"instance-id": "i-1"}},
		{"", "", nil},
	} {
		md := DefaultMetaData(tc.id, tc.host)
		if err := (Config{MetaData: md}).Validate(); err != nil {
			t.Errorf("DefaultMetaData(%q, %q) = %q does not validate: %v", tc.id, tc.host, md, err)
		}
		var got map[string]any
		if err := yaml.Unmarshal([]byte(md), &got); err != nil {
			t.Fatalf("DefaultMetaData(%q, %q) = %q: %v", tc.id, tc.host, md, err)
		}
		if len(got) != len(tc.want) {
			t.Errorf("DefaultMetaData(%q, %q) = %q, want keys %v", tc.id, tc.host, md, tc.want)
		}
		for k, v := range tc.want {
			if s, ok := got[k].(string); !ok || s != v {
				t.Errorf("DefaultMetaData(%q, %q) = %q: %s = %#v, want the string %q", tc.id, tc.host, md, k, got[k], v)
			}
		}
	}
}

func TestChecksum(t *testing.T) {
	a := Config{UserData: "#cloud-config\n", MetaData: "instance-id: i-1\n"}
	if same := (Config{UserData: "#cloud-config\n", MetaData: "instance-id: i-1\n"}); same.Checksum() != a.Checksum() {
		t.Fatal("equal configs have different checksums")
	}
	// A fixed value: the checksum is stored in state, so it must not change
	// between versions of this package for the same input.
	const want = "sha256:79fc4d26d85b5883eba37ba37fd17dcba33b67de213b5673313f0cb6be1bfd3a"
	if got := a.Checksum(); got != want {
		t.Errorf("Checksum = %s, want %s", got, want)
	}
	for _, b := range []Config{
		{UserData: "#cloud-config", MetaData: "\ninstance-id: i-1\n"}, // a byte moved across fields
		{UserData: "#cloud-config\n", MetaData: "instance-id: i-2\n"},
		{UserData: "#cloud-config\n", MetaData: "instance-id: i-1\n", NetworkConfig: "version: 2\n"},
		{MetaData: "#cloud-config\n", UserData: "instance-id: i-1\n"},
	} {
		if b.Checksum() == a.Checksum() {
			t.Errorf("Checksum of %+v equals that of %+v", b, a)
		}
	}
}
