package machine

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

// forgedRawDisk is a 16 MiB raw build disk whose guest wrote a qcow2 header
// onto it that names a host file (testenv.SecretFile) as its backing file.
func forgedRawDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(16 << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	testenv.ForgeQCOW2Header(t, path, testenv.SecretFile(t))
}

// checkTemplate fails unless the qcow2 template at path is standalone and
// holds the guest's raw disk at disk, not the host file.
func checkTemplate(t *testing.T, path, disk string) {
	t.Helper()
	backing, secret := testenv.ImageLeak(t, path, virt.FormatQCOW2)
	if backing != "" {
		t.Errorf("the template has the backing file %s", backing)
	}
	if secret {
		t.Error("the template holds the host file's bytes: the build disk was read as the qcow2 image its guest forged")
	}
	if out, err := exec.Command("qemu-img", "compare", "-q", "-U", "-f", "raw", "-F", "qcow2", disk, path).CombinedOutput(); err != nil {
		t.Errorf("the template is not the guest's disk as it wrote it: qemu-img compare: %v %s", err, out)
	}
}

// compact's compression reads the build disk as the format the build made
// it with: from a raw disk whose guest wrote a qcow2 header onto it, the
// template holds those bytes as they are, not the host file the header
// names, and has no backing file.
func TestCompressInPlaceReadsTheDiskAsMade(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "build.raw")
	forgedRawDisk(t, disk)
	dst := filepath.Join(dir, "out.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", dst, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	if err := os.Chmod(dst, 0o600); err != nil {
		t.Fatal(err)
	}

	if err := compressInPlace(t.Context(), disk, virt.FormatRaw, dst); err != nil {
		t.Fatal(err)
	}
	checkTemplate(t, dst, disk)
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the compressed volume: %v, %v; want the mode of the volume it replaces (0600)", fi, err)
	}
	if err := compressInPlace(t.Context(), disk, "", dst); err == nil {
		t.Error("compressInPlace without the source's format: no error")
	}
}

// The export step, compact, against libvirt: a raw build disk whose guest
// forged a qcow2 header becomes a template of the guest's bytes while
// libvirt still has the disk on record as raw; once a pool refresh has made
// libvirt read the forged header (it then takes the disk for a qcow2 image
// backed by the host file), the step refuses the copy and leaves no output.
func TestStepExportCompactForgedHeader(t *testing.T) {
	testenv.Integration(t)
	if !isLocalURI(testenv.URI()) {
		t.Fatalf("needs a libvirt host on this machine (compression runs qemu-img here), not %s", testenv.URI())
	}
	ctx := context.Background()
	lv, err := libvirt.New(ctx, libvirt.Options{URI: testenv.URI()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lv.Close() })
	pool := testPool(t, lv)

	build, err := lv.CreateVolume(ctx, virt.VolumeSpec{Pool: pool, Name: "build.raw", Format: virt.FormatRaw, CapacityBytes: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	forgedRawDisk(t, build.Path)

	export := func(output string) (multistep.StepAction, multistep.StateBag) {
		state := new(multistep.BasicStateBag)
		state.Put("ui", packersdk.TestUi(t))
		state.Put(stateDriver, Driver(lv))
		state.Put(stateConfig, &Config{
			URI: testenv.URI(), VMName: testenv.Name(t, "pk-none"), Compact: true,
			Format: virt.FormatQCOW2, OutputPool: pool, OutputVolume: output,
		})
		state.Put(stateBuildVolume, &virt.VolumeSpec{Key: build.Key, Path: build.Path, Pool: pool, Name: build.Name, Format: virt.FormatRaw})
		state.Put(stateBuildIsOut, false)
		step := &stepExport{}
		action := step.Run(ctx, state)
		if action == multistep.ActionHalt {
			state.Put(multistep.StateHalted, true)
		}
		step.Cleanup(state)
		return action, state
	}

	if action, state := export("recorded-raw.qcow2"); action != multistep.ActionContinue {
		t.Fatalf("export while libvirt has the disk as raw: %v", state.Get("error"))
	} else {
		out := state.Get(stateOutput).(*virt.VolumeSpec)
		checkTemplate(t, out.Path, build.Path)
	}

	// A refresh re-reads the disk's format from its content.
	if _, err := lv.Pool(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if probed, err := lv.VolumeByKey(ctx, build.Key); err != nil || probed.Format != virt.FormatQCOW2 || probed.BackingPath == "" {
		t.Fatalf("after a refresh libvirt should take the forged disk for a qcow2 image with a backing file (the case this test is for): %+v, %v", probed, err)
	}
	action, state := export("recorded-qcow2.qcow2")
	if action != multistep.ActionHalt {
		out := state.Get(stateOutput).(*virt.VolumeSpec)
		checkTemplate(t, out.Path, build.Path)
		t.Fatal("the export went on although libvirt took the raw disk for a qcow2 image")
	}
	if err, _ := state.Get("error").(error); err == nil || !strings.Contains(err.Error(), "was made raw") {
		t.Errorf("error %v, want one saying the disk was made raw", err)
	}
	if v, err := lv.Volume(ctx, pool, "recorded-qcow2.qcow2"); err == nil {
		t.Errorf("the refused export left %s behind", v.Key)
	}
}

// testPool makes a directory pool for one test and removes it, with what
// it holds, when the test ends.
func testPool(t *testing.T, lv *libvirt.Client) string {
	t.Helper()
	ctx := context.Background()
	name := testenv.Name(t, "pk-pool")
	path := filepath.Join(t.TempDir(), "pool") // removed after the pool: cleanups run last first
	t.Cleanup(func() {
		vols, _ := lv.ListVolumes(ctx, name)
		for _, v := range vols {
			if vol, err := lv.Volume(ctx, name, v); err == nil {
				if err := lv.DeleteVolume(ctx, vol.Key); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
		if err := lv.DeletePool(ctx, name); err != nil && !isNotFound(err) {
			t.Errorf("cleanup: %v", err)
		}
	})
	if _, err := lv.CreatePool(ctx, virt.PoolSpec{Name: name, Path: path}); err != nil {
		t.Fatal(err)
	}
	return name
}

// volumeDriver is a Driver that reads back one volume as libvirt has it on
// record; the export step of a build whose disk is the output asks it
// nothing else.
type volumeDriver struct {
	Driver
	vol virt.VolumeSpec
}

func (d volumeDriver) MachineXML(context.Context, string) (string, error) { return "<domain/>", nil }

func (d volumeDriver) VolumeByKey(context.Context, string) (*virt.VolumeSpec, error) {
	v := d.vol
	return &v, nil
}

// A build disk that is the output (no compact) is kept as the template
// only while libvirt has it on record as what the build made it: clones
// take its format from that record, and a raw disk that libvirt took for
// the qcow2 image its guest forged would give them the host file.
func TestStepExportKeepsTheDiskAsMade(t *testing.T) {
	made := virt.VolumeSpec{Pool: "p", Name: "tpl", Key: "/p/tpl", Path: "/p/tpl", Format: virt.FormatRaw}
	probed := made
	probed.Format, probed.BackingPath = virt.FormatQCOW2, "/etc/shadow"
	rawWithBacking := made
	rawWithBacking.BackingPath = "/etc/shadow"
	for name, tc := range map[string]struct {
		record virt.VolumeSpec
		ok     bool
	}{
		"as made":                 {made, true},
		"taken for qcow2":         {probed, false},
		"raw with a backing file": {rawWithBacking, false},
	} {
		t.Run(name, func(t *testing.T) {
			state := new(multistep.BasicStateBag)
			state.Put("ui", packersdk.TestUi(t))
			state.Put(stateDriver, Driver(volumeDriver{vol: tc.record}))
			state.Put(stateConfig, &Config{VMName: "tpl-build", Format: virt.FormatRaw, OutputPool: "p", OutputVolume: "tpl"})
			build := made
			state.Put(stateBuildVolume, &build)
			state.Put(stateBuildIsOut, true)
			action := (&stepExport{}).Run(context.Background(), state)
			_, kept := state.GetOk(stateOutput)
			if ok := action == multistep.ActionContinue && kept; ok != tc.ok {
				t.Errorf("kept as the template: %v (%v), want %v", ok, state.Get("error"), tc.ok)
			}
		})
	}
}
