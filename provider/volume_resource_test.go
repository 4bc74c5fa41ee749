package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

func init() {
	resource.AddTestSweepers("virt_volume", &resource.Sweeper{
		Name: "virt_volume",
		// Machines use the volumes: they go first, so that no machine is
		// left with a definition whose disk was deleted under it.
		Dependencies: []string{"virt_machine"},
		F:            sweepVolumes,
	})
}

// sweepVolumes removes, from every active pool, the volumes a test left
// behind (names starting with testenv.Prefix).
func sweepVolumes(string) error { return sweepVolumesNamed(testenv.Prefix) }

func sweepVolumesNamed(prefix string) error {
	ctx := context.Background()
	lv, err := libvirt.New(ctx, libvirt.Options{URI: testenv.URI()})
	if err != nil {
		return err
	}
	defer func() { _ = lv.Close() }()
	pools, err := lv.ListPools(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range pools {
		errs = append(errs, sweepVolumesOf(ctx, lv, p, prefix))
	}
	return errors.Join(errs...)
}

// sweepVolumesOf deletes the volumes of a pool whose names start with
// prefix. A pool that is stopped, or gone meanwhile, has none to delete.
func sweepVolumesOf(ctx context.Context, lv *libvirt.Client, pool, prefix string) error {
	names, err := lv.ListVolumes(ctx, pool)
	if err != nil {
		if !errors.Is(err, virt.ErrNotFound) && !strings.Contains(err.Error(), "is not active") {
			return err
		}
		return nil
	}
	var errs []error
	for _, n := range names {
		if !strings.HasPrefix(n, prefix) {
			continue
		}
		v, err := lv.Volume(ctx, pool, n)
		if err == nil {
			err = lv.DeleteVolume(ctx, v.Key)
		}
		if err != nil && !errors.Is(err, virt.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// --- unit tests (no daemon) ---

func TestVolumeResourceSchema(t *testing.T) {
	ctx := context.Background()
	var resp fwresource.SchemaResponse
	newVolumeResource().Schema(ctx, fwresource.SchemaRequest{}, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	if diags := resp.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatal(diags)
	}
	for _, f := range virt.VolumeFormats {
		if volumeFormatDescriptions[f] == "" {
			t.Errorf("format %q has no description", f)
		}
	}
	for f := range volumeFormatDescriptions {
		if !slices.Contains(virt.VolumeFormats, f) {
			t.Errorf("description for %q, which is not one of virt.VolumeFormats", f)
		}
	}
	for name, a := range resp.Schema.Attributes {
		if a.GetMarkdownDescription() == "" {
			t.Errorf("attribute %s has no description", name)
		}
	}
	for name, b := range resp.Schema.Blocks {
		if b.GetMarkdownDescription() == "" {
			t.Errorf("block %s has no description", name)
		}
	}
	if a := resp.Schema.Attributes["allocation"]; !a.IsComputed() || a.IsOptional() {
		t.Error("allocation must be computed only: it grows as guests write")
	}
}

func TestVolumeResourceValidateConfig(t *testing.T) {
	str := func(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }
	num := func(n int64) tftypes.Value { return tftypes.NewValue(tftypes.Number, n) }
	unknown := tftypes.NewValue(tftypes.String, tftypes.UnknownValue)
	for _, tc := range []struct {
		name string
		set  map[string]tftypes.Value
		want []path.Path
	}{
		{"empty volume", map[string]tftypes.Value{"size": num(1 << 20)}, nil},
		{"empty volume without size", nil, []path.Path{path.Root("size")}},
		{"clone", map[string]tftypes.Value{"base_volume_id": str("/p/base.qcow2")}, nil},
		{"clone of an unknown base", map[string]tftypes.Value{"base_volume_id": unknown}, nil},
		{"upload", map[string]tftypes.Value{"source": str("/img/disk.qcow2")}, nil},
		{"raw clone", map[string]tftypes.Value{"base_volume_id": str("/p/base"), "format": str("raw")}, []path.Path{path.Root("format")}},
		{"raw upload", map[string]tftypes.Value{"source": str("/img/disk.raw"), "format": str("raw")}, nil},
		{"slash in name", map[string]tftypes.Value{"name": str("a/b"), "size": num(1)}, []path.Path{path.Root("name")}},
		{"bad pool name", map[string]tftypes.Value{"pool": str(".."), "size": num(1)}, []path.Path{path.Root("pool")}},
		{"unknown name", map[string]tftypes.Value{"name": unknown, "size": num(1)}, nil},
		{"unknown format left to its validator", map[string]tftypes.Value{"format": str("vmdk"), "size": num(1)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := map[string]tftypes.Value{"name": str("vt-vol")}
			for k, v := range tc.set {
				set[k] = v
			}
			diags := validateStorageConfig(t, &volumeResource{}, set)
			if got := diagnosticPaths(t, diags); !slices.EqualFunc(got, tc.want, path.Path.Equal) {
				t.Errorf("paths %v, want %v (%v)", got, tc.want, diags)
			}
		})
	}
}

func TestParseVolumeImportID(t *testing.T) {
	for _, tc := range []struct {
		id                    string
		host, key, pool, name string
		ok                    bool
	}{
		{id: "/var/lib/libvirt/images/a.qcow2", key: "/var/lib/libvirt/images/a.qcow2", ok: true},
		{id: "default/a.qcow2", pool: "default", name: "a.qcow2", ok: true},
		{id: "second//var/lib/libvirt/images/a.qcow2", host: "second", key: "/var/lib/libvirt/images/a.qcow2", ok: true},
		{id: "second/default/a.qcow2", host: "second", pool: "default", name: "a.qcow2", ok: true},
		{id: "a.qcow2"},
		{id: ""},
		{id: "default/"},
		{id: "second//"},
		{id: "a/b/c/d"},
		{id: "second/default/"},
	} {
		host, key, pool, name, ok := parseVolumeImportID(tc.id)
		if ok != tc.ok || host != tc.host || key != tc.key || pool != tc.pool || name != tc.name {
			t.Errorf("parseVolumeImportID(%q) = %q %q %q %q %v; want %q %q %q %q %v",
				tc.id, host, key, pool, name, ok, tc.host, tc.key, tc.pool, tc.name, tc.ok)
		}
	}
}

// The fingerprint hashes a file only when its size or time changed.
func TestCurrentSourceFingerprint(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img")
	if err := os.WriteFile(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

	fp, exists, err := currentSourceFingerprint(p, nil)
	if err != nil || !exists || fp.SHA256 != sum("first") || fp.Size != 5 {
		t.Fatalf("first = %+v, %v, %v", fp, exists, err)
	}
	// A record that matches size and time is trusted: the hash is not redone.
	trusted := fp
	trusted.SHA256 = "recorded"
	if got, _, _ := currentSourceFingerprint(p, &trusted); got.SHA256 != "recorded" {
		t.Errorf("matching record not trusted: %+v", got)
	}
	// New content with a new time is hashed again.
	later := time.Now().Add(time.Minute)
	if err := os.WriteFile(p, []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := currentSourceFingerprint(p, &trusted); got.SHA256 != sum("other") {
		t.Errorf("changed file = %+v, want the new content's hash", got)
	}
	if _, exists, err := currentSourceFingerprint(filepath.Join(t.TempDir(), "missing"), nil); exists || err != nil {
		t.Errorf("missing file: exists %v, %v", exists, err)
	}
}

// --- acceptance tests ---

// qemuImage is what `qemu-img info --output=json` says about a volume.
type qemuImage struct {
	Format          string `json:"format"`
	VirtualSize     int64  `json:"virtual-size"`
	BackingFilename string `json:"backing-filename"`
	BackingFormat   string `json:"backing-filename-format"`
}

func qemuImageOf(path string) (qemuImage, error) {
	var info qemuImage
	out, err := runHostTool("qemu-img", "info", "-U", "--output=json", path)
	if err != nil {
		return info, err
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		return info, fmt.Errorf("qemu-img info %s: %w: %s", path, err, out)
	}
	return info, nil
}

// volumeImageCheck runs qemu-img on a volume's path from the state and hands
// what it says, with the state's attributes, to check.
type volumeImageCheck struct {
	address string
	check   func(info qemuImage, attrs map[string]any) error
}

func expectVolumeImage(address string, check func(info qemuImage, attrs map[string]any) error) statecheck.StateCheck {
	return volumeImageCheck{address: address, check: check}
}

func (c volumeImageCheck) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	attrs := stateAttributes(req, c.address)
	if attrs == nil {
		resp.Error = fmt.Errorf("%s is not in the state", c.address)
		return
	}
	info, err := qemuImageOf(fmt.Sprint(attrs["path"]))
	if err == nil {
		err = c.check(info, attrs)
	}
	if err != nil {
		resp.Error = fmt.Errorf("%s: %w", c.address, err)
	}
}

// imageIs checks a volume's format and virtual size as qemu-img sees them.
func imageIs(format string, size int64) func(qemuImage, map[string]any) error {
	return func(info qemuImage, attrs map[string]any) error {
		if info.Format != format || info.VirtualSize != size || fmt.Sprint(attrs["size"]) != fmt.Sprint(size) {
			return fmt.Errorf("qemu-img sees %+v, state size %v; want %s of %d bytes", info, attrs["size"], format, size)
		}
		return nil
	}
}

// testAccStoragePool is the HCL of virt_pool.test, a pool of the test's own
// in a temporary directory, on host (the provider's default when empty).
func testAccStoragePool(t *testing.T, host string) (name, hcl string) {
	t.Helper()
	name = testenv.Name(t, "tf-pool")
	dir := filepath.Join(t.TempDir(), "pool")
	hostLine := ""
	if host != "" {
		hostLine = fmt.Sprintf("\n  host      = %q", host)
	}
	return name, fmt.Sprintf(`
resource "virt_pool" "test" {%s
  name      = %q
  path      = %q
  autostart = false
}
`, hostLine, name, dir)
}

// runHostTool runs a host tool for a state check, returning its output or
// an error that carries it.
func runHostTool(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// testAccImage makes a qcow2 image of size bytes with a pattern written at
// its start, the way a user's image file would be.
func testAccImage(t *testing.T, size string, pattern byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.qcow2")
	commandOutput(t, "qemu-img", "create", "-q", "-f", "qcow2", p, size)
	commandOutput(t, "qemu-io", "-f", "qcow2", "-c", fmt.Sprintf("write -P %d 0 1M", pattern), p)
	return p
}

// fileSHA256Now checks a value against the file's SHA-256 as of the check,
// not as of when the test's steps were written down.
func fileSHA256Now(t *testing.T, p string) knownvalue.Check {
	t.Helper()
	return knownvalue.StringFunc(func(v string) error {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		if want := hex.EncodeToString(h[:]); v != want {
			return fmt.Errorf("%s, but %s has SHA-256 %s", v, p, want)
		}
		return nil
	})
}

const mib = 1 << 20

// Empty volumes: qcow2 in the test's pool (on the provider's second host
// name), raw, and one in the default pool; read back without a diff, import
// by key and by pool and name, grow in place, refuse to shrink, and
// re-create one deleted out of band.
func TestAccVolumeResource_empty(t *testing.T) {
	testAccPreCheck(t)
	poolName, pool := testAccStoragePool(t, "second")
	qcowName, rawName, defName := testenv.Name(t, "tf-vol"), testenv.Name(t, "tf-vol"), testenv.Name(t, "tf-vol")
	lv := testLibvirtClient(t)
	const qcow, raw, def = "virt_volume.qcow", "virt_volume.raw", "virt_volume.default_pool"
	config := func(qcowSize int64) string {
		return fmt.Sprintf(`provider "virt" {
  uri   = %[1]q
  hosts = { second = %[1]q }
}
`, testenv.URI()) + pool + fmt.Sprintf(`
resource "virt_volume" "qcow" {
  host = "second"
  name = %q
  pool = virt_pool.test.name
  size = %d
}

resource "virt_volume" "raw" {
  name   = %q
  pool   = virt_pool.test.name
  format = "raw"
  size   = %d
}

resource "virt_volume" "default_pool" {
  name = %q
  size = %d
}
`, qcowName, qcowSize, rawName, 8*mib, defName, 4*mib)
	}
	sameID := statecheck.CompareValue(compare.ValuesSame())
	t.Cleanup(func() {
		_ = sweepVolumesOf(context.Background(), lv, "default", defName)
	})

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckStorageDestroyed(t),
		Steps: []resource.TestStep{
			{
				Config: config(16 * mib),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(qcow, tfjsonpath.New("format"), knownvalue.StringExact("qcow2")),
					statecheck.ExpectKnownValue(qcow, tfjsonpath.New("pool"), knownvalue.StringExact(poolName)),
					statecheck.ExpectKnownValue(qcow, tfjsonpath.New("base_volume_id"), knownvalue.Null()),
					statecheck.ExpectKnownValue(qcow, tfjsonpath.New("source"), knownvalue.Null()),
					statecheck.ExpectKnownValue(qcow, tfjsonpath.New("source_sha256"), knownvalue.Null()),
					statecheck.ExpectKnownValue(qcow, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`/`+qcowName+`$`))),
					statecheck.CompareValuePairs(qcow, tfjsonpath.New("id"), qcow, tfjsonpath.New("path"), compare.ValuesSame()),
					statecheck.ExpectKnownValue(qcow, tfjsonpath.New("allocation"), knownvalue.Int64Func(func(v int64) error {
						if v > mib {
							return fmt.Errorf("allocation %d: a new volume should be thin", v)
						}
						return nil
					})),
					expectVolumeImage(qcow, imageIs("qcow2", 16*mib)),
					expectVolumeImage(raw, imageIs("raw", 8*mib)),
					statecheck.ExpectKnownValue(def, tfjsonpath.New("pool"), knownvalue.StringExact("default")),
					expectVolumeImage(def, imageIs("qcow2", 4*mib)),
					sameID.AddStateValue(qcow, tfjsonpath.New("id")),
				},
			},
			{
				Config: config(16 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				ResourceName:      qcow,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: storageImportID(qcow, "second/"+poolName+"/", "name"),
			},
			{
				ResourceName:      raw,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: storageImportID(raw, "", "id"),
			},
			{
				// Grow in place: same volume, larger size, seen by qemu-img.
				Config: config(48 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(qcow, plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction(raw, plancheck.ResourceActionNoop),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					expectVolumeImage(qcow, imageIs("qcow2", 48*mib)),
					sameID.AddStateValue(qcow, tfjsonpath.New("id")),
				},
			},
			{
				Config:      config(32 * mib),
				ExpectError: regexp.MustCompile(`(?s)Volume cannot shrink.*50331648 bytes.*33554432`),
			},
			{
				// Deleted out of band: the plan creates it again.
				PreConfig: func() {
					v, err := lv.Volume(context.Background(), poolName, rawName)
					if err == nil {
						err = lv.DeleteVolume(context.Background(), v.Key)
					}
					if err != nil {
						t.Fatalf("delete volume out of band: %v", err)
					}
				},
				Config: config(48 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(raw, plancheck.ResourceActionCreate),
						plancheck.ExpectResourceAction(qcow, plancheck.ResourceActionNoop),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{expectVolumeImage(raw, imageIs("raw", 8*mib))},
			},
			{
				// A stopped pool hides its volumes from libvirt: they are
				// kept, not planned anew, and apply starts the pool.
				PreConfig: func() { virsh(t, "pool-destroy", poolName) },
				Config:    config(48 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction("virt_pool.test", plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction(qcow, plancheck.ResourceActionNoop),
						plancheck.ExpectResourceAction(raw, plancheck.ResourceActionNoop),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					expectVolumeImage(qcow, imageIs("qcow2", 48*mib)),
					sameID.AddStateValue(qcow, tfjsonpath.New("id")),
				},
			},
			{
				Config: config(48 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// An uploaded template and a larger clone of it: the upload takes the
// image's format and size, the clone's backing file is the template (as
// qemu-img sees it), the clone grows in place, imports verify, and a rebuilt
// image replaces the template and, through its id, the clone.
func TestAccVolumeResource_uploadAndClone(t *testing.T) {
	testAccPreCheck(t)
	_, pool := testAccStoragePool(t, "")
	image := testAccImage(t, "24M", 0x5a)
	baseName, cloneName := testenv.Name(t, "tf-vol"), testenv.Name(t, "tf-vol")
	const base, clone = "virt_volume.base", "virt_volume.clone"
	config := func(cloneSize int64) string {
		return providerConfig() + pool + fmt.Sprintf(`
resource "virt_volume" "base" {
  name   = %q
  pool   = virt_pool.test.name
  source = %q
}

resource "virt_volume" "clone" {
  name           = %q
  pool           = virt_pool.test.name
  base_volume_id = virt_volume.base.id
  size           = %d
}
`, baseName, image, cloneName, cloneSize)
	}
	baseID := statecheck.CompareValue(compare.ValuesSame())
	cloneID := statecheck.CompareValue(compare.ValuesSame())
	backedByBase := func(info qemuImage, attrs map[string]any) error {
		if info.Format != "qcow2" || info.BackingFilename != attrs["base_volume_id"] || info.BackingFormat != "qcow2" {
			return fmt.Errorf("qemu-img sees %+v; want a qcow2 backed by %v (qcow2)", info, attrs["base_volume_id"])
		}
		return nil
	}
	// The clone reads the template's data through its backing file.
	readsPattern := func(p byte) func(qemuImage, map[string]any) error {
		return func(_ qemuImage, attrs map[string]any) error {
			_, err := runHostTool("qemu-io", "-r", "-f", "qcow2", "-c", fmt.Sprintf("read -P %d 0 1M", p), fmt.Sprint(attrs["path"]))
			return err
		}
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckStorageDestroyed(t),
		Steps: []resource.TestStep{
			{
				Config: config(64 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					// The image's format and size are known at plan time.
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue(base, tfjsonpath.New("format"), knownvalue.StringExact("qcow2")),
						plancheck.ExpectKnownValue(base, tfjsonpath.New("size"), knownvalue.Int64Exact(24*mib)),
						plancheck.ExpectKnownValue(base, tfjsonpath.New("source_sha256"), fileSHA256Now(t, image)),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(base, tfjsonpath.New("source_sha256"), fileSHA256Now(t, image)),
					expectVolumeImage(base, imageIs("qcow2", 24*mib)),
					expectVolumeImage(base, readsPattern(0x5a)),
					statecheck.CompareValuePairs(clone, tfjsonpath.New("base_volume_id"), base, tfjsonpath.New("id"), compare.ValuesSame()),
					expectVolumeImage(clone, backedByBase),
					expectVolumeImage(clone, imageIs("qcow2", 64*mib)),
					expectVolumeImage(clone, readsPattern(0x5a)),
					statecheck.ExpectKnownValue(clone, tfjsonpath.New("allocation"), knownvalue.Int64Func(func(v int64) error {
						if v > mib {
							return fmt.Errorf("clone allocation %d: the template's data was copied", v)
						}
						return nil
					})),
					baseID.AddStateValue(base, tfjsonpath.New("id")),
					cloneID.AddStateValue(clone, tfjsonpath.New("id")),
				},
			},
			{
				Config: config(64 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				Config: config(96 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(clone, plancheck.ResourceActionUpdate),
						plancheck.ExpectResourceAction(base, plancheck.ResourceActionNoop),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					expectVolumeImage(clone, imageIs("qcow2", 96*mib)),
					expectVolumeImage(clone, backedByBase),
					cloneID.AddStateValue(clone, tfjsonpath.New("id")),
				},
			},
			{
				ResourceName:      base,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: storageImportID(base, "", "id"),
				// Where the image came from and what it held is known only
				// to the configuration.
				ImportStateVerifyIgnore: []string{"source", "source_sha256"},
			},
			{
				ResourceName:      clone,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: storageImportID(clone, "", "id"),
			},
			{
				// A rebuilt image (new content) replaces the template, and
				// the clone with it.
				PreConfig: func() { commandOutput(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x33 0 1M", image) },
				Config:    config(96 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(base, plancheck.ResourceActionDestroyBeforeCreate),
						plancheck.ExpectResourceAction(clone, plancheck.ResourceActionDestroyBeforeCreate),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(base, tfjsonpath.New("source_sha256"), fileSHA256Now(t, image)),
					expectVolumeImage(clone, readsPattern(0x33)),
					expectVolumeImage(clone, backedByBase),
				},
			},
			{
				// Touched but unchanged: hashed again once, no change.
				PreConfig: func() {
					later := time.Now().Add(time.Hour)
					if err := os.Chtimes(image, later, later); err != nil {
						t.Fatal(err)
					}
				},
				Config: config(96 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// The image removed after its upload leaves the volumes be.
				PreConfig: func() {
					if err := os.Remove(image); err != nil {
						t.Fatal(err)
					}
				},
				Config: config(96 * mib),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// Bad volumes fail at plan, naming the attribute and the reason; nothing
// is made.
func TestAccVolumeResource_invalid(t *testing.T) {
	testAccPreCheck(t)
	image := testAccImage(t, "8M", 1)
	overlay := filepath.Join(t.TempDir(), "overlay.qcow2")
	commandOutput(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", image, "-F", "qcow2", overlay)
	for _, tc := range []struct {
		name, body string
		err        string
	}{
		{"base and source", fmt.Sprintf(`base_volume_id = "/var/lib/libvirt/images/base.qcow2"
  source         = %q`, image), `(?s)Invalid Attribute Combination.*base_volume_id.*source`},
		{"unknown format", `format = "vmdk"
  size   = 1048576`, `(?s)format.*value must be one of.*"qcow2".*"raw"`},
		{"relative source", `source = "images/disk.qcow2"`, `(?s)Relative path.*images/disk.qcow2.*must be absolute`},
		{"size 0", `size = 0`, `(?s)size.*must be at least 1`},
		{"no size", ``, `(?s)Missing volume size.*needs a size\s+in\s+bytes`},
		{"raw clone", `base_volume_id = "/var/lib/libvirt/images/base.qcow2"
  format         = "raw"`, `(?s)format.*clone.*must be qcow2`},
		{"slash in name", `size = 1048576
  name = "a/b"`, `(?s)name.*must not contain '/'`},
		{"image with a backing file", fmt.Sprintf(`source = %q`, overlay), `(?s)Unusable source image.*backing file`},
		{"format other than the image's", fmt.Sprintf(`source = %q
  format = "raw"`, image), `(?s)Format differs.*is a qcow2\s+image`},
		{"size below the image's", fmt.Sprintf(`source = %q
  size   = 1048576`, image), `(?s)Size smaller than the image.*8388608`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if !strings.Contains(body, "name =") {
				body = "name = \"vt-tf-vol-invalid\"\n  " + body
			}
			resource.ParallelTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      providerConfig() + "resource \"virt_volume\" \"bad\" {\n  " + body + "\n}\n",
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(tc.err),
				}},
			})
		})
	}
}

// Twenty clones of one template with `count`, at Terraform's default
// parallelism of 10: no lock errors, and a plan that stays empty.
func TestAccVolumeResource_parallelClones(t *testing.T) {
	testAccPreCheck(t)
	poolName, pool := testAccStoragePool(t, "")
	image := testAccImage(t, "32M", 7)
	prefix := testenv.Name(t, "tf-vol")
	config := providerConfig() + pool + fmt.Sprintf(`
resource "virt_volume" "template" {
  name   = "%[1]s-template"
  pool   = virt_pool.test.name
  source = %[2]q
}

resource "virt_volume" "clone" {
  count          = 20
  name           = "%[1]s-${count.index}"
  pool           = virt_pool.test.name
  base_volume_id = virt_volume.template.id
  size           = 64 * 1024 * 1024 + count.index * 1024 * 1024
}
`, prefix, image)
	lv := testLibvirtClient(t)
	checks := []statecheck.StateCheck{}
	for i := range 20 {
		addr := fmt.Sprintf("virt_volume.clone[%d]", i)
		checks = append(checks,
			statecheck.CompareValuePairs(addr, tfjsonpath.New("base_volume_id"), "virt_volume.template", tfjsonpath.New("id"), compare.ValuesSame()),
			expectVolumeImage(addr, imageIs("qcow2", int64(64+i)*mib)))
	}
	var started time.Time
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckStorageDestroyed(t),
		Steps: []resource.TestStep{
			{
				PreConfig:         func() { started = time.Now() },
				Config:            config,
				ConfigStateChecks: checks,
				Check: func(*terraform.State) error {
					t.Logf("apply of 20 clones (and the template and pool) took %s", time.Since(started))
					names, err := lv.ListVolumes(context.Background(), poolName)
					if err != nil {
						return err
					}
					if len(names) != 21 {
						return fmt.Errorf("pool holds %v, want 21 volumes", names)
					}
					return nil
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// A volume uploaded outside Terraform, imported, with its source in the
// configuration: the next apply adopts the path (and records the image's
// checksum) in place, rather than uploading the image again.
func TestAccVolumeResource_importAdoptsSource(t *testing.T) {
	testAccPreCheck(t)
	poolName, pool := testAccStoragePool(t, "")
	image := testAccImage(t, "8M", 9)
	name := testenv.Name(t, "tf-vol")
	lv := testLibvirtClient(t)
	const addr = "virt_volume.imported"
	t.Cleanup(func() {
		// A failed run leaves the volume made out of band, which keeps the pool.
		_ = sweepVolumesOf(context.Background(), lv, poolName, name)
		_ = lv.DeletePool(context.Background(), poolName)
	})
	config := providerConfig() + pool + fmt.Sprintf(`
resource "virt_volume" "imported" {
  name   = %q
  pool   = virt_pool.test.name
  source = %q
}
`, name, image)
	sameID := statecheck.CompareValue(compare.ValuesSame())
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckStorageDestroyed(t),
		Steps: []resource.TestStep{
			{Config: providerConfig() + pool},
			{
				PreConfig: func() {
					if _, err := lv.UploadVolume(context.Background(), virt.VolumeSpec{Pool: poolName, Name: name}, image); err != nil {
						t.Fatalf("upload out of band: %v", err)
					}
				},
				Config:             config,
				ResourceName:       addr,
				ImportState:        true,
				ImportStateId:      poolName + "/" + name,
				ImportStatePersist: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					for _, s := range states {
						if s.ID != filepath.Join(poolDir(t, lv, poolName), name) {
							continue
						}
						if _, ok := s.Attributes["source"]; ok || s.Attributes["format"] != "qcow2" || s.Attributes["size"] != "8388608" {
							return fmt.Errorf("imported %v", s.Attributes)
						}
						return nil
					}
					return fmt.Errorf("the volume is not among the imported %v", states)
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("source_sha256"), fileSHA256Now(t, image)),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("source"), knownvalue.StringExact(image)),
					sameID.AddStateValue(addr, tfjsonpath.New("id")),
				},
			},
			{
				Config: config,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{sameID.AddStateValue(addr, tfjsonpath.New("id"))},
			},
		},
	})
}

func poolDir(t *testing.T, lv *libvirt.Client, pool string) string {
	t.Helper()
	p, err := lv.Pool(context.Background(), pool)
	if err != nil {
		t.Fatalf("pool %s: %v", pool, err)
	}
	return p.Path
}
