package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Where Debian's isolinux and syslinux-common packages (scripts/testenv
// installs them) keep the BIOS boot loader of an ISO.
const (
	isolinuxBin = "/usr/lib/ISOLINUX/isolinux.bin"
	ldlinuxC32  = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
)

// InstallerISO writes, in dir, an ISO 9660 image labelled label that boots
// the test guest as an installer ISO does: the guest's kernel and initrd at
// /vmlinuz and /initrd.gz, and isolinux starting them with "console=ttyS0"
// and cmdline. A test can boot it as a CD-ROM, or take the kernel out of
// it (iso_kernel) and boot that with a command line of its own; the guest
// prints its command line on the console (VIRT-TESTENV-CMDLINE), which
// tells the two apart.
func InstallerISO(t testing.TB, dir, label, cmdline string) string {
	t.Helper()
	root := filepath.Join(dir, label+"-root")
	if err := os.MkdirAll(filepath.Join(root, "isolinux"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ src, dst string }{
		{GuestKernel(t), "vmlinuz"},
		{GuestInitrd(t), "initrd.gz"},
		{isolinuxBin, "isolinux/isolinux.bin"},
		{ldlinuxC32, "isolinux/ldlinux.c32"},
	} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			t.Fatalf("installer ISO: %v (run `make testenv`)", err)
		}
		if err := os.WriteFile(filepath.Join(root, f.dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := "DEFAULT install\nPROMPT 0\nTIMEOUT 1\nLABEL install\n" +
		"  KERNEL /vmlinuz\n  APPEND initrd=/initrd.gz console=ttyS0 " + cmdline + "\n"
	if err := os.WriteFile(filepath.Join(root, "isolinux", "isolinux.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, label+".iso")
	// -boot-info-table patches isolinux.bin in place: it is our copy.
	cmd := exec.Command("genisoimage", "-quiet", "-R", "-J", "-V", label, "-o", iso,
		"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
		"-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", root)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("genisoimage: %v\n%s", err, out)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	return iso
}
