package machine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func validRaw(t *testing.T) map[string]interface{} {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(img, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]interface{}{
		"disk_image":          img,
		"output_volume":       "tpl",
		"ssh_username":        "root",
		"ssh_password":        "x",
		"packer_build_name":   "b",
		"packer_builder_type": "virt-machine",
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	if _, err := c.Prepare(validRaw(t)); err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		c.URI: "qemu:///system", c.DomainType: "kvm", c.DiskBus: "virtio", c.Network: "default",
		c.NICModel: "virtio", c.Firmware: "bios", c.CDROMBus: "sata", c.OutputPool: "default", c.Format: "qcow2", c.VMName: "tpl-build",
	} {
		if got != want {
			t.Errorf("default %q, want %q", got, want)
		}
	}
	if c.VCPU != 1 || c.Memory != 1024 || c.Comm.SSHPort != 22 {
		t.Errorf("vcpu %d memory %d ssh port %d", c.VCPU, c.Memory, c.Comm.SSHPort)
	}
}

func TestConfigWinRMPort(t *testing.T) {
	raw := validRaw(t)
	delete(raw, "ssh_username")
	delete(raw, "ssh_password")
	raw["communicator"] = "winrm"
	raw["winrm_username"] = "Administrator"
	var c Config
	if _, err := c.Prepare(raw); err != nil {
		t.Fatal(err)
	}
	if c.Comm.WinRMPort != 5985 {
		t.Errorf("winrm port %d, want 5985", c.Comm.WinRMPort)
	}
}

// Every bad input is reported, with its field's name, all at once.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]interface{}
		drop []string
		want []string
	}{
		{"no source", nil, []string{"disk_image"}, []string{"set exactly one source", "(none given)"}},
		{"two sources", map[string]interface{}{"source_volume": "default/x"}, nil, []string{"(disk_image and source_volume given)"}},
		{"iso without size", map[string]interface{}{"iso_path": "/nonexistent.iso"}, []string{"disk_image"},
			[]string{"iso_path: stat /nonexistent.iso", "disk_size: required with an ISO source"}},
		{"iso_kernel without iso", map[string]interface{}{"iso_kernel": "/install/vmlinuz"}, nil, []string{"iso_kernel, iso_initrd: only with an ISO source"}},
		{"image missing", map[string]interface{}{"disk_image": "/nonexistent.qcow2"}, nil, []string{"disk_image: /nonexistent.qcow2:"}},
		{"bad type", map[string]interface{}{"type": "xen"}, nil, []string{`type: "xen" is not one of "kvm", "qemu"`}},
		{"bad firmware", map[string]interface{}{"firmware": "uefi"}, nil, []string{`firmware: "uefi" is not one of "bios", "efi"`}},
		{"bad format", map[string]interface{}{"format": "vmdk"}, nil, []string{`format: "vmdk" is not one of "qcow2", "raw"`}},
		{"bad bus", map[string]interface{}{"disk_bus": "usb"}, nil, []string{`disk_bus: "usb" is not one of`}},
		{"disk on fdc", map[string]interface{}{"disk_bus": "fdc"}, nil, []string{`disk_bus: "fdc" is not one of "virtio", "sata", "scsi", "ide"`}},
		{"bad cdrom bus", map[string]interface{}{"cdrom_bus": "virtio"}, nil, []string{`cdrom_bus: "virtio" is not one of "sata", "scsi", "ide"`}},
		{"floppy file missing", map[string]interface{}{"floppy_files": []string{"/nonexistent.inf"}}, nil, []string{"/nonexistent.inf"}},
		{"bad nic", map[string]interface{}{"nic_model": "ne2k"}, nil, []string{`nic_model: "ne2k" is not one of`}},
		{"bad size", map[string]interface{}{"disk_size": "ten gigs"}, nil, []string{`disk_size: "ten gigs" is not a size`}},
		{"low memory", map[string]interface{}{"memory": 8}, nil, []string{"memory: 8 MiB is less than the minimum of 16 MiB"}},
		{"bad vcpu", map[string]interface{}{"vcpu": -1}, nil, []string{"vcpu: must be at least 1, got -1"}},
		{"bad vm name", map[string]interface{}{"vm_name": "-x"}, nil, []string{`vm_name: "-x" is not a valid machine name`}},
		{"bad output", map[string]interface{}{"output_volume": "a/b"}, nil, []string{`output_volume: "a/b" is not a valid name`}},
		{"bad regexp", map[string]interface{}{"boot_wait_for": "login("}, nil, []string{"boot_wait_for: not a regular expression"}},
		{"kernel relative", map[string]interface{}{"boot": map[string]interface{}{"kernel": "vmlinuz"}}, nil,
			[]string{`boot.kernel: "vmlinuz" is not an absolute path on the host`}},
		{"kernel missing", map[string]interface{}{"boot": map[string]interface{}{"cmdline": "x"}}, nil,
			[]string{"boot.kernel: required for direct kernel boot"}},
		{"clean without comm", map[string]interface{}{"clean_for_clone": true, "communicator": "none"}, []string{"ssh_username", "ssh_password"},
			[]string{"clean_for_clone: needs a communicator"}},
		{"uri skips tls check", map[string]interface{}{"uri": "qemu+tls://hv1/system?no_verify=1"}, nil,
			[]string{"uri: ", "no_verify=1 is refused", "server's TLS certificate", "pkipath=DIR"}},
		{"uri skips host key", map[string]interface{}{"uri": "qemu+libssh://root@hv1/system?known_hosts_verify=auto"}, nil,
			[]string{"uri: ", "known_hosts_verify=auto is refused", "add the host's key"}},
		{"uri malformed", map[string]interface{}{"uri": "kvm:///system"}, nil, []string{`uri: libvirt URI "kvm:///system": unknown driver`}},
		{"many at once", map[string]interface{}{"type": "xen", "memory": 8, "format": "vmdk"}, nil,
			[]string{"type:", "memory:", "format:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw(t)
			for k, v := range tc.set {
				raw[k] = v
			}
			for _, k := range tc.drop {
				delete(raw, k)
			}
			var c Config
			_, err := c.Prepare(raw)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("want %q in:\n%v", w, err)
				}
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"1048576": 1 << 20, "10G": 10 << 30, "10GiB": 10 << 30, "10gb": 10 << 30, "512M": 512 << 20, "1T": 1 << 40, "4k": 4096,
	} {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1G", "1.5G", "10P", "G"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q): no error", in)
		}
	}
}
