package libvirt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/cloudinit"
)

// newSeedTestPool makes a dir pool that QEMU can read volumes from (under a
// directory it may traverse) and deletes it when the test ends; volumes in
// it must be gone by then (their own cleanups run first).
func newSeedTestPool(t *testing.T, c *Client) string {
	t.Helper()
	name := testenv.Name(t, "lv-pool")
	p, err := c.CreatePool(t.Context(), virt.PoolSpec{Name: name, Path: filepath.Join(qemuWorkDir(t), "pool")})
	if err != nil {
		t.Fatalf("create pool: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), cleanupTimeout)
		defer cancel()
		if err := c.DeletePool(ctx, p.Name); err != nil && !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p.Name
}

// deleteVolumeAtEnd deletes a volume when the test ends, pass or fail.
func deleteVolumeAtEnd(t *testing.T, c *Client, key string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), cleanupTimeout)
		defer cancel()
		if err := c.DeleteVolume(ctx, key); err != nil && !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// A seed lands in the pool as the raw image ISO renders, byte for byte; its
// name is not taken over; bad content makes nothing; and a guest booted
// with the seed attached starts and sees it as a block device.
func TestCreateSeedVolume(t *testing.T) {
	c := newTestClient(t)
	t.Parallel()
	ctx := t.Context()
	pool := newSeedTestPool(t, c)
	name := testenv.Name(t, "lv-seed")
	cfg := cloudinit.Config{
		UserData:      "#cloud-config\nhostname: seeded\n",
		MetaData:      cloudinit.DefaultMetaData(name, "seeded"),
		NetworkConfig: "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n",
	}
	img, err := cloudinit.ISO(cfg)
	if err != nil {
		t.Fatal(err)
	}

	seed, err := c.CreateSeedVolume(ctx, pool, name+"-cidata.iso", cfg)
	if err != nil {
		t.Fatalf("CreateSeedVolume: %v", err)
	}
	deleteVolumeAtEnd(t, c, seed.Key)
	// Made raw, a dir pool reads the volume back as "iso": libvirt probes
	// the file and knows the ISO 9660 signature. Both are raw to QEMU.
	if seed.Pool != pool || seed.Name != name+"-cidata.iso" || (seed.Format != virt.FormatRaw && seed.Format != "iso") ||
		seed.CapacityBytes != uint64(len(img)) || seed.Key == "" || seed.Path == "" {
		t.Errorf("seed volume = %+v, want raw (or iso) %s/%s-cidata.iso of %d bytes", seed, pool, name, len(img))
	}
	// The test daemon is local: the volume's file is readable here.
	onHost, err := os.ReadFile(seed.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onHost, img) {
		t.Errorf("volume %s holds %d bytes that differ from the rendered seed (%d bytes)", seed.Path, len(onHost), len(img))
	}
	for file, want := range map[string]string{
		cloudinit.UserDataFile: cfg.UserData, cloudinit.MetaDataFile: cfg.MetaData, cloudinit.NetworkConfigFile: cfg.NetworkConfig,
	} {
		out, err := exec.Command("isoinfo", "-R", "-x", "/"+file, "-i", seed.Path).Output()
		if err != nil || string(out) != want {
			t.Errorf("isoinfo -R -x /%s of the volume = %q, %v; want %q", file, out, err, want)
		}
	}

	t.Run("name taken", func(t *testing.T) {
		_, err := c.CreateSeedVolume(ctx, pool, seed.Name, cloudinit.Config{UserData: "#!/bin/sh\n"})
		if !errors.Is(err, virt.ErrExists) {
			t.Fatalf("CreateSeedVolume over %s = %v, want virt.ErrExists", seed.Name, err)
		}
		if b, _ := os.ReadFile(seed.Path); !bytes.Equal(b, img) {
			t.Error("the existing seed was changed")
		}
	})

	t.Run("content cloud-init would ignore", func(t *testing.T) {
		bad := name + "-bad.iso"
		_, err := c.CreateSeedVolume(ctx, pool, bad, cloudinit.Config{UserData: "hostname: x\n", MetaData: "- a\n"})
		var es virt.SpecErrors
		if !errors.As(err, &es) || len(es) != 2 || es[0].Field != cloudinit.FieldUserData || es[1].Field != cloudinit.FieldMetaData {
			t.Fatalf("CreateSeedVolume with bad content = %v, want SpecErrors on user_data and meta_data", err)
		}
		v, err := c.Volume(ctx, pool, bad)
		if err == nil {
			deleteVolumeAtEnd(t, c, v.Key)
		}
		if !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("volume after a refused seed: %+v, %v; want virt.ErrNotFound", v, err)
		}
	})

	t.Run("boot", func(t *testing.T) {
		// The seed goes on as the machine resource attaches it: a cdrom on
		// SATA. The test guest's kernel (Debian's cloud flavour) has no AHCI
		// driver, so its init cannot list that; the same volume is attached
		// a second time as a read-only virtio disk, which it does list.
		dir := qemuWorkDir(t)
		spec := testGuestSpec(t, name, dir)
		spec.Disks = append(spec.Disks,
			virt.DiskSpec{VolumeKey: seed.Key, Device: virt.DeviceCDROM},
			virt.DiskSpec{VolumeKey: seed.Key, ReadOnly: true})
		removeMachineAtEnd(t, c, name)
		if _, err := c.DefineMachine(ctx, spec); err != nil {
			t.Fatalf("DefineMachine: %v", err)
		}
		if err := c.StartMachine(ctx, name); err != nil {
			t.Fatalf("StartMachine: %v", err)
		}
		console := waitConsole(t, spec.Console.Path, testenv.Marker)
		if want := fmt.Sprintf("VIRT-TESTENV-DISK vdb %d\n", len(img)); !strings.Contains(console, want) {
			t.Errorf("guest does not see the seed as vdb of %d bytes (%q):\n%s", len(img), strings.TrimSpace(want), console)
		}
		m, err := c.Machine(ctx, name)
		if err != nil {
			t.Fatalf("Machine: %v", err)
		}
		// libvirt keeps disks sorted by bus and target, so the cdrom (sda)
		// reads back after both virtio disks: find it by its device.
		i := slices.IndexFunc(m.Disks, func(d virt.DiskSpec) bool { return d.Device == virt.DeviceCDROM })
		if i < 0 {
			t.Fatalf("running machine has no cdrom: %+v", m.Disks)
		}
		if d := m.Disks[i]; d.VolumeKey != seed.Key || d.Bus != virt.BusSATA || !d.ReadOnly {
			t.Errorf("seed cdrom reads back as %+v, want a read-only SATA cdrom of volume %s", d, seed.Key)
		}
		if err := c.UndefineMachine(ctx, name); err != nil {
			t.Fatalf("UndefineMachine: %v", err)
		}
	})
}
