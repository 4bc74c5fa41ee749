package machine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// One build of the tiny test guest exercises the installer paths that need
// no communicator: an ISO (iso_path, iso_checksum) whose kernel and initrd
// boot directly (iso_kernel, iso_initrd), a cidata CD (cd_files,
// cd_content), a floppy (floppy_files, floppy_content), a boot_command
// typed through send-key once boot_wait_for saw the guest ready to read it,
// and the installer's reboot at the end: the guest must then boot from its
// devices (the blank build disk, then the ISO's own boot loader, isolinux),
// not the ISO's kernel again. The guest reports on its serial console what
// it saw (scripts/guest-init); the builder's output_directory keeps that
// console log.
func TestAccMachineBuilder_installerMedia(t *testing.T) {
	e := newPackerEnv(t)
	ctx := context.Background()
	output := testenv.Name(t, "pk-vm")
	t.Cleanup(func() {
		_ = e.lv.UndefineMachine(ctx, output+"-build")
		for _, n := range []string{output, output + "-build-iso", output + "-build-kernel", output + "-build-initrd", output + "-build-cd", output + "-build-floppy"} {
			if v, err := e.lv.Volume(ctx, virt.DefaultPool, n); err == nil {
				_ = e.lv.DeleteVolume(ctx, v.Key)
			}
		}
	})

	// The "installer" ISO: the test guest's kernel and initrd, bootable
	// through isolinux with a command line of its own, as installer ISOs
	// are. iso_kernel boots the same files directly with another one.
	// no_timer_check on both command lines: see testGuestSpec in the
	// libvirt layer's tests (a loaded CI host can make the kernel panic).
	iso := testenv.InstallerISO(t, e.dir, "VTINSTALL", "no_timer_check virt.boot=isolinux")
	isoSum, err := sha256File(iso)
	if err != nil {
		t.Fatal(err)
	}

	// What the CD and the floppy carry, and the sums the guest must report.
	userData := "#cloud-config\nhostname: vt-media\n"
	userDataFile := filepath.Join(e.dir, "user-data")
	if err := os.WriteFile(userDataFile, []byte(userData), 0o644); err != nil {
		t.Fatal(err)
	}
	metaData := "instance-id: vt-media\n"
	driverFile := filepath.Join(e.dir, "VTDRV.INF")
	if err := os.WriteFile(driverFile, []byte("[Version]\r\nSignature=\"$Windows NT$\"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	outDir := filepath.Join(e.dir, "out")
	liveXML := filepath.Join(e.dir, "live.xml")
	floppyCopy := filepath.Join(e.dir, "floppy.img")
	tpl := e.template(t, fmt.Sprintf(`
source "virt-machine" "media" {
  # Over TCP, as to a remote host: the console comes through libvirt.
  uri          = %[11]q
  iso_path     = %[1]q
  iso_checksum = "sha256:%[2]s"
  iso_kernel   = "/vmlinuz"
  iso_initrd   = "/initrd.gz"
  boot {
    cmdline = "console=ttyS0 no_timer_check virt.typed=1 virt.reboot=1"
  }
  # The cloud kernel of the test guest has no AHCI driver.
  cdrom_bus = "scsi"
  cd_files  = [%[3]q]
  cd_content = {
    "meta-data" = %[4]q
  }
  cd_label = "cidata"
  floppy_files   = [%[5]q]
  floppy_content = { "README.TXT" = "F6 drivers" }
  floppy_label   = "VTDRV"

  boot_wait_for = "VIRT-TESTENV-READ-KEYS"
  boot_command  = ["hello<spacebar>World<tab>x<enter>"]

  communicator     = "none"
  shutdown_timeout = "2m"
  type             = "qemu"
  memory           = 256
  disk_size        = "16M"
  output_volume    = %[6]q
  output_directory = %[7]q
}

build {
  sources = ["source.virt-machine.media"]
  # Once the guest, after typing and its reboot, booted again (from the
  # ISO's isolinux), the live definition it runs with and its floppy image
  # (ACPI shutdown follows this).
  provisioner "shell-local" {
    inline = [
      "log='${build.ConsoleLog}'",
      "for i in $(seq 1 600); do [ \"$(grep -c VIRT-TESTENV-GUEST-READY \"$log\")\" -ge 2 ] && break; sleep 0.2; done",
      "virsh -c %[8]s dumpxml %[6]s-build > %[9]s",
      "cp \"$(grep -o \"file='[^']*-build-floppy'\" %[9]s | cut -d\"'\" -f2)\" %[10]s",
    ]
  }
}
`, iso, isoSum, userDataFile, metaData, driverFile, output, outDir, testenv.URI(), liveXML, floppyCopy, testenv.TCPURI(t)))

	start := time.Now()
	out := e.run(t, e.command("build", tpl))
	took := time.Since(start)
	t.Logf("packer build took %s", took.Round(100*time.Millisecond))

	console, err := os.ReadFile(filepath.Join(outDir, output+"-build-console.log"))
	if err != nil {
		t.Fatalf("console log in output_directory: %v\n%s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(outDir, output+"-build-console.log")); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("console log in output_directory: mode %v, want 0600 (it may show secrets)", fi.Mode().Perm())
	}
	// What each boot printed, by marker: the first boot is the installer
	// (iso_kernel), the second what followed its reboot.
	var boots []map[string][]string
	for _, l := range strings.Split(strings.ReplaceAll(string(console), "\r", ""), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || !strings.HasPrefix(f[0], "VIRT-TESTENV-") {
			continue
		}
		if f[0] == "VIRT-TESTENV-CPUS" || len(boots) == 0 {
			boots = append(boots, map[string][]string{})
		}
		b := boots[len(boots)-1]
		b[f[0]] = append(b[f[0]], strings.Join(f[1:], " "))
	}
	lines := map[string][]string{}
	if len(boots) > 0 {
		lines = boots[0]
	}
	for _, l := range strings.Split(strings.ReplaceAll(string(console), "\r", ""), "\n") {
		if strings.HasPrefix(l, "VIRT-TESTENV-") {
			t.Logf("guest: %s", l)
		}
	}
	if t.Failed() || len(lines["VIRT-TESTENV-GUEST-READY"]) == 0 {
		t.Fatalf("the guest did not boot from the ISO's kernel and initrd:\n%s\n%s", console, out)
	}

	// The definition the guest ran with after its reboot (the provisioner
	// saved it).
	raw, err := os.ReadFile(liveXML)
	if err != nil {
		t.Fatal(err)
	}
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(string(raw)); err != nil {
		t.Fatal(err)
	}

	t.Run("iso kernel and initrd", func(t *testing.T) {
		// The guest booted the kernel and initrd taken from the ISO with
		// the template's command line, and sees the ISO itself as a CD.
		if got := lines["VIRT-TESTENV-CMDLINE"]; len(got) != 1 || !strings.Contains(got[0], "virt.reboot=1") {
			t.Errorf("first boot's command line: got %q, want the template's boot.cmdline", got)
		}
		if !slices.ContainsFunc(lines["VIRT-TESTENV-CDROM"], func(s string) bool { return strings.HasSuffix(s, " VTINSTALL") }) {
			t.Errorf("no CD-ROM labelled VTINSTALL: %q", lines["VIRT-TESTENV-CDROM"])
		}
		if want := fmt.Sprintf("vda %d", 16<<20); !slices.ContainsFunc(lines["VIRT-TESTENV-DISK"], func(s string) bool { return s == want }) {
			t.Errorf("build disk: want %q in %q", want, lines["VIRT-TESTENV-DISK"])
		}
	})

	t.Run("console through libvirt", func(t *testing.T) {
		// The console the log above came from is a pty that libvirt
		// streamed: nothing in the definition is a path on this machine,
		// which a remote host would not have.
		if len(dom.Devices.Serials) != 1 || dom.Devices.Serials[0].Source == nil || dom.Devices.Serials[0].Source.Pty == nil {
			t.Errorf("serial port: want one pty, got %+v", dom.Devices.Serials)
		}
		if strings.Contains(string(raw), e.dir) || strings.Contains(string(raw), os.TempDir()+"/packer-virt") {
			t.Errorf("the definition names a path on the build machine:\n%s", raw)
		}
	})

	t.Run("installer reboot", func(t *testing.T) {
		// The installer rebooted once; the builder power-cycled the machine,
		// which then booted from its devices: the blank build disk first
		// (nothing to boot), then the ISO, whose isolinux has its own
		// command line. A reset that kept the ISO's kernel would have
		// rebooted again and again.
		if got := lines["VIRT-TESTENV-REBOOTING"]; len(got) != 1 {
			t.Errorf("the installer did not reboot once: %q", got)
		}
		if len(boots) != 2 {
			t.Fatalf("%d boots on the console, want the installer's and the one after its reboot:\n%s\npacker build:\n%s", len(boots), console, out)
		}
		second := boots[1]
		if got := second["VIRT-TESTENV-CMDLINE"]; len(got) != 1 || !strings.Contains(got[0], "virt.boot=isolinux") || strings.Contains(got[0], "virt.reboot=1") {
			t.Errorf("second boot's command line: got %q, want isolinux's", got)
		}
		if len(second["VIRT-TESTENV-GUEST-READY"]) != 1 || len(second["VIRT-TESTENV-REBOOTING"]) != 0 {
			t.Errorf("second boot: %q", second)
		}
		if !strings.Contains(out, "The guest rebooted") {
			t.Errorf("the build did not say it power-cycled the guest:\n%s", out)
		}
		if dom.OS != nil && (dom.OS.Kernel != "" || dom.OS.Initrd != "") {
			t.Errorf("after the reboot the machine still boots a kernel directly: %+v", dom.OS)
		}
		order := map[string]uint{}
		for _, d := range dom.Devices.Disks {
			if d.Boot != nil && d.Source != nil && d.Source.File != nil {
				order[d.Device+" "+filepath.Base(d.Source.File.File)] = d.Boot.Order
			}
		}
		if order["disk "+output] != 1 || order["cdrom "+output+"-build-iso"] != 2 {
			t.Errorf("boot order: got %v, want the build disk 1, the ISO 2", order)
		}
	})

	t.Run("cidata cd", func(t *testing.T) {
		if !slices.ContainsFunc(lines["VIRT-TESTENV-CDROM"], func(s string) bool { return strings.HasSuffix(s, " cidata") }) {
			t.Errorf("no CD-ROM labelled cidata: %q", lines["VIRT-TESTENV-CDROM"])
		}
		got := append([]string(nil), lines["VIRT-TESTENV-CIDATA"]...)
		sort.Strings(got)
		want := []string{"meta-data " + sum(metaData), "user-data " + sum(userData)}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("cidata files: got %q, want %q", got, want)
		}
	})

	t.Run("boot command", func(t *testing.T) {
		// <tab> reaches the line as a tab: read -r keeps it, and the
		// guest's echo prints it as typed.
		if got := lines["VIRT-TESTENV-TYPED"]; len(got) != 1 || got[0] != "hello World x" {
			t.Errorf("typed line: got %q, want [\"hello World x\"]", got)
		}
		waited := strings.Index(out, "Waiting for \"VIRT-TESTENV-READ-KEYS\"")
		typed := strings.Index(out, "Typing the boot command")
		if waited < 0 || typed < waited {
			t.Errorf("boot_wait_for was not awaited before typing:\n%s", out)
		}
	})

	t.Run("floppy", func(t *testing.T) {
		// The test guest's cloud kernel has no floppy driver
		// (CONFIG_BLK_DEV_FD is off), so the proof is libvirt's live
		// definition: a floppy drive whose image holds the files.
		var src string
		for _, d := range dom.Devices.Disks {
			if d.Device == "floppy" && d.Target != nil && d.Target.Bus == "fdc" && d.Source != nil && d.Source.File != nil {
				src = d.Source.File.File
			}
		}
		if !strings.HasSuffix(src, "/"+output+"-build-floppy") {
			t.Fatalf("no fdc floppy from volume %s-build-floppy in the live XML:\n%s", output, raw)
		}
		// The image the drive had: a FAT floppy with the label and files
		// asked for (8.3 names in its root directory).
		img, err := os.ReadFile(floppyCopy)
		if err != nil {
			t.Fatal(err)
		}
		if len(img) != 1474560 {
			t.Errorf("floppy image is %d bytes, want a 1.44 MB floppy", len(img))
		}
		for _, want := range []string{"VTDRV      ", "VTDRV   INF", "README  TXT", "F6 drivers", "Signature="} {
			if !strings.Contains(string(img), want) {
				t.Errorf("floppy image lacks %q", want)
			}
		}
		for _, d := range dom.Devices.Disks {
			if d.Device == "disk" && (d.Driver == nil || d.Driver.Discard != "unmap") {
				t.Errorf("build disk without discard='unmap': %+v", d.Driver)
			}
		}
	})

	t.Run("artifact", func(t *testing.T) {
		vol, err := e.lv.Volume(ctx, virt.DefaultPool, output)
		if err != nil {
			t.Fatalf("output volume: %v", err)
		}
		if vol.CapacityBytes != 16<<20 {
			t.Errorf("output volume capacity %d, want %d", vol.CapacityBytes, 16<<20)
		}
		if !strings.Contains(out, "Volume default/"+output) || !strings.Contains(out, vol.Key) {
			t.Errorf("the artifact does not name the volume %s:\n%s", vol.Key, out)
		}
		for _, f := range []string{output + ".qcow2", output + "-build.xml", "SHA256SUMS", "manifest.json"} {
			if _, err := os.Stat(filepath.Join(outDir, f)); err != nil {
				t.Errorf("output_directory: %v", err)
			}
		}
		// The media volumes and the build machine are gone.
		for _, n := range []string{"-build-iso", "-build-kernel", "-build-initrd", "-build-cd", "-build-floppy"} {
			if _, err := e.lv.Volume(ctx, virt.DefaultPool, output+n); err == nil {
				t.Errorf("volume %s%s was left behind", output, n)
			}
		}
		if ok, _ := e.lv.MachineExists(ctx, output+"-build"); ok {
			t.Errorf("the build machine was left behind")
		}
	})
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
