package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
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
	resource.AddTestSweepers("virt_pool", &resource.Sweeper{
		Name: "virt_pool",
		// A pool goes only once its volumes have, and those once the
		// machines that use them have.
		Dependencies: []string{"virt_machine", "virt_volume"},
		F:            sweepPools,
	})
}

// sweepPools removes every pool a test left behind (names starting with
// testenv.Prefix), with whatever volumes are still in it.
func sweepPools(string) error { return sweepPoolsNamed(testenv.Prefix) }

func sweepPoolsNamed(prefix string) error {
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
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		// A stopped pool cannot list its volumes. One that does not start
		// (its directory is gone) has none left, and DeletePool undefines it.
		_ = lv.StartPool(ctx, p)
		errs = append(errs, sweepVolumesOf(ctx, lv, p, ""))
		if err := lv.DeletePool(ctx, p); err != nil && !errors.Is(err, virt.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// --- unit tests (no daemon) ---

func TestPoolResourceSchema(t *testing.T) {
	ctx := context.Background()
	var resp fwresource.SchemaResponse
	newPoolResource().Schema(ctx, fwresource.SchemaRequest{}, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	if diags := resp.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatal(diags)
	}
	for _, pt := range virt.PoolTypes {
		if poolTypeDescriptions[pt] == "" {
			t.Errorf("pool type %q has no description", pt)
		}
	}
	for pt := range poolTypeDescriptions {
		if !slices.Contains(virt.PoolTypes, pt) {
			t.Errorf("description for %q, which is not one of virt.PoolTypes", pt)
		}
	}
	for name, a := range resp.Schema.Attributes {
		if a.GetMarkdownDescription() == "" {
			t.Errorf("attribute %s has no description", name)
		}
	}
	// Sizes the server fills in must not be kept from the state by a plan
	// modifier: they are refreshed by reads and never a change of their own.
	for _, name := range []string{"capacity", "allocation", "available"} {
		a := resp.Schema.Attributes[name]
		if !a.IsComputed() || a.IsOptional() || a.IsRequired() {
			t.Errorf("%s must be computed only", name)
		}
	}
}

// diagnosticPaths returns the attribute paths of diagnostics, failing the
// test for one without a path.
func diagnosticPaths(t *testing.T, diags diag.Diagnostics) []path.Path {
	t.Helper()
	var got []path.Path
	for _, d := range diags {
		if wp, ok := d.(diag.DiagnosticWithPath); ok {
			got = append(got, wp.Path())
		} else {
			t.Errorf("diagnostic without a path: %v", d)
		}
	}
	return got
}

// validateStorageConfig runs a resource's ValidateConfig on a configuration
// that sets only the given attributes.
func validateStorageConfig(t *testing.T, r fwresource.ResourceWithValidateConfig, set map[string]tftypes.Value) diag.Diagnostics {
	t.Helper()
	ctx := context.Background()
	var sr fwresource.SchemaResponse
	r.Schema(ctx, fwresource.SchemaRequest{}, &sr)
	typ := sr.Schema.Type().TerraformType(ctx).(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for k, at := range typ.AttributeTypes {
		vals[k] = tftypes.NewValue(at, nil)
	}
	for k, v := range set {
		vals[k] = v
	}
	var resp fwresource.ValidateConfigResponse
	r.ValidateConfig(ctx, fwresource.ValidateConfigRequest{
		Config: tfsdk.Config{Schema: sr.Schema, Raw: tftypes.NewValue(typ, vals)},
	}, &resp)
	return resp.Diagnostics
}

func TestPoolResourceValidateConfig(t *testing.T) {
	str := func(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }
	unknown := tftypes.NewValue(tftypes.String, tftypes.UnknownValue)
	for _, tc := range []struct {
		name string
		set  map[string]tftypes.Value
		want []path.Path
	}{
		{"valid", map[string]tftypes.Value{"name": str("vt-p"), "path": str("/srv/vt")}, nil},
		{"relative path", map[string]tftypes.Value{"name": str("vt-p"), "path": str("srv/vt")}, []path.Path{path.Root("path")}},
		{"unclean path", map[string]tftypes.Value{"name": str("vt-p"), "path": str("/srv/vt/")}, []path.Path{path.Root("path")}},
		{"slash in name", map[string]tftypes.Value{"name": str("a/b"), "path": str("/srv/vt")}, []path.Path{path.Root("name")}},
		{"both", map[string]tftypes.Value{"name": str(".."), "path": str("x")}, []path.Path{path.Root("name"), path.Root("path")}},
		{"unknown values", map[string]tftypes.Value{"name": unknown, "path": unknown}, nil},
		{"unknown type left to its validator", map[string]tftypes.Value{"name": str("p"), "path": str("/x"), "type": str("rbd")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diags := validateStorageConfig(t, &poolResource{}, tc.set)
			if got := diagnosticPaths(t, diags); !slices.EqualFunc(got, tc.want, path.Path.Equal) {
				t.Errorf("paths %v, want %v (%v)", got, tc.want, diags)
			}
		})
	}
}

// --- acceptance tests ---

const poolUUIDPattern = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`

// testAccCheckStorageDestroyed asks libvirt, not the provider, whether the
// pools and volumes of the state are gone.
func testAccCheckStorageDestroyed(t *testing.T) resource.TestCheckFunc {
	lv := testLibvirtClient(t)
	return func(s *terraform.State) error {
		ctx := context.Background()
		for key, rs := range s.RootModule().Resources {
			if strings.HasPrefix(key, "data.") {
				continue
			}
			var err error
			switch rs.Type {
			case "virt_pool":
				_, err = lv.Pool(ctx, rs.Primary.Attributes["name"])
			case "virt_volume":
				_, err = lv.VolumeByKey(ctx, rs.Primary.ID)
			default:
				continue
			}
			if err == nil {
				return fmt.Errorf("%s still exists after destroy", key)
			}
			if !errors.Is(err, virt.ErrNotFound) {
				return fmt.Errorf("check %s: %w", key, err)
			}
		}
		return nil
	}
}

// poolMatchesLibvirt compares a virt_pool's state with what libvirt says.
type poolMatchesLibvirt struct {
	lv      *libvirt.Client
	address string
}

func (c poolMatchesLibvirt) CheckState(ctx context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	attrs := stateAttributes(req, c.address)
	if attrs == nil {
		resp.Error = fmt.Errorf("%s is not in the state", c.address)
		return
	}
	spec, err := c.lv.Pool(ctx, fmt.Sprint(attrs["name"]))
	if err != nil {
		resp.Error = fmt.Errorf("%s: libvirt: %w", c.address, err)
		return
	}
	var problems []string
	for attr, want := range map[string]any{
		"id": spec.UUID, "type": spec.Type, "path": spec.Path, "autostart": spec.Autostart, "active": spec.Active,
	} {
		if got := attrs[attr]; fmt.Sprint(got) != fmt.Sprint(want) {
			problems = append(problems, fmt.Sprintf("%s = %v in state, %v in libvirt", attr, got, want))
		}
	}
	if len(problems) > 0 {
		resp.Error = fmt.Errorf("%s: %s", c.address, strings.Join(problems, "; "))
	}
}

// stateAttributes returns the attribute values of a resource in the state.
func stateAttributes(req statecheck.CheckStateRequest, address string) map[string]any {
	if req.State == nil || req.State.Values == nil || req.State.Values.RootModule == nil {
		return nil
	}
	for _, r := range req.State.Values.RootModule.Resources {
		if r.Address == address {
			return r.AttributeValues
		}
	}
	return nil
}

// storageImportID builds an import ID from an attribute of a resource in
// the state.
func storageImportID(address, prefix, attr string) resource.ImportStateIdFunc {
	return func(s *terraform.State) (string, error) {
		rs, ok := s.RootModule().Resources[address]
		if !ok {
			return "", fmt.Errorf("%s is not in the state", address)
		}
		return prefix + rs.Primary.Attributes[attr], nil
	}
}

func virsh(t *testing.T, args ...string) string {
	t.Helper()
	return commandOutput(t, "virsh", append([]string{"-c", testenv.URI()}, args...)...)
}

// A pool: create, read back without a diff, import by name and by UUID,
// autostart in place, a pool stopped out of band started again, one deleted
// out of band created again, and a destroy refused while a volume made
// outside Terraform remains, naming it.
func TestAccPoolResource(t *testing.T) {
	testAccPreCheck(t)
	name := testenv.Name(t, "tf-pool")
	dir := filepath.Join(t.TempDir(), "pool")
	lv := testLibvirtClient(t)
	const addr = "virt_pool.test"
	config := func(autostart bool) string {
		return providerConfig() + fmt.Sprintf(`
resource "virt_pool" "test" {
  name      = %q
  path      = %q
  autostart = %t
}
`, name, dir, autostart)
	}
	sameID := statecheck.CompareValue(compare.ValuesSame())
	positive := knownvalue.Int64Func(func(v int64) error {
		if v <= 0 {
			return fmt.Errorf("%d is not positive", v)
		}
		return nil
	})
	matches := poolMatchesLibvirt{lv: lv, address: addr}
	t.Cleanup(func() {
		// Leftovers of a failed run: the stray volume, then the pool.
		_ = lv.DeleteVolume(context.Background(), filepath.Join(dir, "stray.qcow2"))
		_ = lv.DeletePool(context.Background(), name)
	})

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		CheckDestroy:             testAccCheckStorageDestroyed(t),
		Steps: []resource.TestStep{
			{
				Config: config(false),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(poolUUIDPattern))),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("host"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("type"), knownvalue.StringExact("dir")),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("path"), knownvalue.StringExact(dir)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("autostart"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("active"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("capacity"), positive),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("allocation"), positive),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("available"), positive),
					matches,
					sameID.AddStateValue(addr, tfjsonpath.New("id")),
				},
			},
			{
				// Writing into the pool's file system changes the sizes;
				// that is a refresh, not a change to plan.
				PreConfig: func() {
					commandOutput(t, "dd", "if=/dev/zero", "of="+filepath.Join(dir, "..", "filler"), "bs=1M", "count=8")
				},
				Config: config(false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				ResourceName:      addr,
				ImportState:       true,
				ImportStateVerify: true,
				ImportStateIdFunc: storageImportID(addr, "", "name"),
				// The sizes are re-read by the import; the file system
				// they describe is shared with everything else on it.
				ImportStateVerifyIgnore: []string{"capacity", "allocation", "available"},
			},
			{
				ResourceName:            addr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateIdFunc:       storageImportID(addr, "", "id"),
				ImportStateVerifyIgnore: []string{"capacity", "allocation", "available"},
			},
			{
				Config: config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("autostart"), knownvalue.Bool(true)),
					matches,
					sameID.AddStateValue(addr, tfjsonpath.New("id")),
				},
			},
			{
				PreConfig: func() { virsh(t, "pool-destroy", name) },
				Config:    config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(addr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(addr, tfjsonpath.New("active"), knownvalue.Bool(true)),
					},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("active"), knownvalue.Bool(true)),
					matches,
					sameID.AddStateValue(addr, tfjsonpath.New("id")),
				},
			},
			{
				PreConfig: func() {
					if err := lv.DeletePool(context.Background(), name); err != nil {
						t.Fatalf("delete pool out of band: %v", err)
					}
				},
				Config: config(true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(addr, plancheck.ResourceActionCreate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{matches},
			},
			{
				// A volume that Terraform does not manage keeps the pool.
				PreConfig: func() {
					_, err := lv.CreateVolume(context.Background(), virt.VolumeSpec{Pool: name, Name: "stray.qcow2", CapacityBytes: 1 << 20})
					if err != nil {
						t.Fatalf("create a volume out of band: %v", err)
					}
				},
				Config:      providerConfig(),
				ExpectError: regexp.MustCompile(`(?s)Cannot delete pool.*` + regexp.QuoteMeta(name) + `.*1 volume\(s\): stray\.qcow2`),
			},
			{
				PreConfig: func() {
					if err := lv.DeleteVolume(context.Background(), filepath.Join(dir, "stray.qcow2")); err != nil {
						t.Fatalf("delete the stray volume: %v", err)
					}
				},
				Config: providerConfig(),
			},
		},
	})
}

// Bad pools fail at plan, naming the attribute.
func TestAccPoolResource_invalid(t *testing.T) {
	testAccPreCheck(t)
	for _, tc := range []struct {
		name, body string
		err        string
	}{
		{"relative path", `name = "vt-x"
  path = "pools/x"`, `(?s)path.*must be absolute, got "pools/x"`},
		{"trailing slash", `name = "vt-x"
  path = "/srv/x/"`, `(?s)path.*clean form: "/srv/x"`},
		{"slash in name", `name = "vt/x"
  path = "/srv/x"`, `(?s)name.*must not contain '/'`},
		{"unknown type", `name = "vt-x"
  type = "rbd"
  path = "/srv/x"`, `(?s)type.*value must be one of.*"dir"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resource.ParallelTest(t, resource.TestCase{
				ProtoV6ProviderFactories: testProtoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      providerConfig() + "resource \"virt_pool\" \"bad\" {\n  " + tc.body + "\n}\n",
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(tc.err),
				}},
			})
		})
	}
}

// The sweepers remove leftovers: volumes named with the prefix in any pool,
// and pools named with it, stopped or running, with what they hold. They run
// here on this test's own names only, so that they cannot pull objects from
// under tests running beside it.
func TestAccStorageSweepers(t *testing.T) {
	testAccPreCheck(t)
	t.Parallel()
	lv := testLibvirtClient(t)
	ctx := context.Background()
	prefix := testenv.Name(t, "tf-storsweep")
	running, stopped := prefix+"-a", prefix+"-b"
	for _, name := range []string{running, stopped} {
		if _, err := lv.CreatePool(ctx, virt.PoolSpec{Name: name, Path: filepath.Join(t.TempDir(), name)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = sweepVolumesOf(ctx, lv, name, "")
			_ = lv.DeletePool(ctx, name)
		})
		if _, err := lv.CreateVolume(ctx, virt.VolumeSpec{Pool: name, Name: "left.qcow2", CapacityBytes: 1 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	stray, err := lv.CreateVolume(ctx, virt.VolumeSpec{Pool: virt.DefaultPool, Name: prefix + "-stray.qcow2", CapacityBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lv.DeleteVolume(ctx, stray.Key) })
	keep, err := lv.CreateVolume(ctx, virt.VolumeSpec{Pool: running, Name: "not-" + prefix, CapacityBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	virsh(t, "pool-destroy", stopped)

	if err := sweepVolumesNamed(prefix); err != nil {
		t.Fatal(err)
	}
	if _, err := lv.VolumeByKey(ctx, stray.Key); !errors.Is(err, virt.ErrNotFound) {
		t.Errorf("stray volume after the volume sweep: %v, want not found", err)
	}
	if _, err := lv.VolumeByKey(ctx, keep.Key); err != nil {
		t.Errorf("the volume sweep took a volume without the prefix: %v", err)
	}
	if err := sweepPoolsNamed(prefix); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{running, stopped} {
		if _, err := lv.Pool(ctx, name); !errors.Is(err, virt.ErrNotFound) {
			t.Errorf("pool %s after the sweep: %v, want not found", name, err)
		}
	}
}

// exampleConfig returns an example of examples/ with the exact
// replacements (old, new pairs) that make it run on the test host. An old
// string the example no longer holds fails the test: an edited example must
// not silently stop being exercised.
func exampleConfig(t *testing.T, file string, oldnew ...string) string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(oldnew); i += 2 {
		if !strings.Contains(string(src), oldnew[i]) {
			t.Fatalf("%s no longer holds %q, which this test replaces to run it here: update the test", file, oldnew[i])
		}
	}
	return providerConfig() + strings.NewReplacer(oldnew...).Replace(string(src))
}

// exampleSteps applies an example, checks that a second plan is empty (the
// read-back matches what the example says), and leaves the destroy and its
// check to the test case.
func exampleSteps(config string, checks ...statecheck.StateCheck) []resource.TestStep {
	return []resource.TestStep{
		{Config: config, ConfigStateChecks: checks},
		{Config: config, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
	}
}

// The storage examples of the documentation are applied, re-planned and
// destroyed, with the names of the test, pools in its temporary
// directories, and images and a template volume that it makes.
func TestAccStorageExamples(t *testing.T) {
	testAccPreCheck(t)
	lv := testLibvirtClient(t)
	ctx := context.Background()
	run := func(t *testing.T, config string, checks ...statecheck.StateCheck) {
		resource.ParallelTest(t, resource.TestCase{
			ProtoV6ProviderFactories: testProtoV6ProviderFactories,
			CheckDestroy:             testAccCheckStorageDestroyed(t),
			Steps:                    exampleSteps(config, checks...),
		})
	}
	t.Run("virt_pool", func(t *testing.T) {
		pool := testenv.Name(t, "tf-pool")
		dir := t.TempDir()
		// libvirt reports a directory pool's capacity as its file
		// system's size (statvfs).
		var fs syscall.Statfs_t
		if err := syscall.Statfs(dir, &fs); err != nil {
			t.Fatal(err)
		}
		run(t, exampleConfig(t, "../examples/resources/virt_pool/resource.tf",
			`name = "guests"`, "name = "+strconv.Quote(pool),
			`"/srv/libvirt/guests"`, strconv.Quote(filepath.Join(dir, "guests")),
		), statecheck.ExpectKnownValue("virt_pool.guests", tfjsonpath.New("active"), knownvalue.Bool(true)),
			statecheck.ExpectKnownOutputValue("guests_pool_size_gib", knownvalue.Int64Exact(int64(fs.Blocks*uint64(fs.Frsize)>>30))))
	})
	t.Run("virt_volume", func(t *testing.T) {
		name := testenv.Name(t, "tf-vol")
		run(t, exampleConfig(t, "../examples/resources/virt_volume/resource.tf",
			`name = "guests"`, "name = "+strconv.Quote(name),
			`"/srv/libvirt/guests"`, strconv.Quote(filepath.Join(t.TempDir(), "guests")),
			`"/var/cache/images/debian-12-genericcloud-amd64.qcow2"`, strconv.Quote(testAccImage(t, "16M", 7)),
			`"debian-12.qcow2"`, strconv.Quote(name+"-debian.qcow2"),
			`"web-root.qcow2"`, strconv.Quote(name+"-web-root.qcow2"),
			`"web-data.raw"`, strconv.Quote(name+"-web-data.raw"),
		), statecheck.ExpectKnownValue("virt_volume.web", tfjsonpath.New("size"), knownvalue.Int64Exact(20<<30)),
			statecheck.ExpectKnownValue("virt_volume.web_data", tfjsonpath.New("size"), knownvalue.Int64Exact(50<<30)))
	})
	t.Run("data-source virt_volume", func(t *testing.T) {
		name := testenv.Name(t, "tf-vol")
		v, err := lv.CreateVolume(ctx, virt.VolumeSpec{Pool: virt.DefaultPool, Name: name + "-base.qcow2", CapacityBytes: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lv.DeleteVolume(context.Background(), v.Key) })
		run(t, exampleConfig(t, "../examples/data-sources/virt_volume/data-source.tf",
			`"debian-12-base.qcow2"`, strconv.Quote(v.Name),
			`"app-root.qcow2"`, strconv.Quote(name+"-app-root.qcow2"),
		), statecheck.ExpectKnownValue("virt_volume.root", tfjsonpath.New("base_volume_id"), knownvalue.StringExact(v.Key)),
			statecheck.ExpectKnownValue("virt_volume.root", tfjsonpath.New("size"), knownvalue.Int64Exact(10<<30)))
	})
}
