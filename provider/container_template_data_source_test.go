package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/virtforge/terraform-provider-virt/internal/testenv"
	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// Two stopped templates made outside Terraform, one with a snapshot clone
// and a build's metadata file: the listing names the clone under its
// template with the metadata, name_regex filters, and the clone's own data
// source says which template it lies on. A bad regular expression fails at
// validate.
func TestAccContainerTemplateDataSource(t *testing.T) {
	testAccPreCheck(t)
	lx := ctdsLXCClient(t)
	withClone, plain := testenv.Name(t, "tf-ctds"), testenv.Name(t, "tf-ctds")
	for _, n := range []string{withClone, plain} {
		ctdsCreate(t, lx, virt.ContainerSpec{Name: n, LXCTemplate: &virt.LXCTemplate{Name: "busybox"}, Unprivileged: true})
	}
	clone := testenv.Name(t, "tf-ctds")
	ctdsCreate(t, lx, virt.ContainerSpec{Name: clone, Template: withClone, Unprivileged: true})
	// The metadata file as a template build leaves it, one key of the
	// build's own included; the other template has none.
	metadata := map[string]string{"os": "debian", "release": "12", "arch": "amd64", "build_time": "2026-11-26T21:30:00Z", "builder": "ctds-test"}
	js, err := json.Marshal(metadata)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lx.LXCPath(), withClone, virt.ContainerMetadataName), js, 0o644); err != nil {
		t.Fatal(err)
	}

	template := func(name string, md map[string]string, clones ...string) knownvalue.Check {
		cs := make([]knownvalue.Check, len(clones))
		for i, c := range clones {
			cs[i] = knownvalue.StringExact(c)
		}
		mc := map[string]knownvalue.Check{}
		for k, v := range md {
			mc[k] = knownvalue.StringExact(v)
		}
		return knownvalue.ObjectExact(map[string]knownvalue.Check{
			"name":     knownvalue.StringExact(name),
			"clones":   knownvalue.ListExact(cs),
			"metadata": knownvalue.MapExact(mc),
		})
	}
	both := map[string]knownvalue.Check{withClone: template(withClone, metadata, clone), plain: template(plain, nil)}
	sorted := slices.Sorted(slices.Values([]string{withClone, plain}))

	config := providerConfig() + fmt.Sprintf(`
data "virt_container_template" "both" {
  name_regex = "^(%s|%s)$"
}

data "virt_container_template" "one" {
  name_regex = %q
}

data "virt_container_template" "all" {}

data "virt_container" "clone" {
  name = %q
}
`, regexp.QuoteMeta(withClone), regexp.QuoteMeta(plain), "^"+regexp.QuoteMeta(withClone)+"$", clone)

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testProtoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.virt_container_template.both", tfjsonpath.New("templates"),
						knownvalue.ListExact([]knownvalue.Check{both[sorted[0]], both[sorted[1]]})),
					statecheck.ExpectKnownValue("data.virt_container_template.one", tfjsonpath.New("templates"),
						knownvalue.ListExact([]knownvalue.Check{both[withClone]})),
					statecheck.ExpectKnownValue("data.virt_container_template.all", tfjsonpath.New("id"),
						knownvalue.StringExact(lx.LXCPath())),
					statecheck.ExpectKnownValue("data.virt_container_template.all", tfjsonpath.New("templates"),
						sortedNamesContaining{withClone, plain}),
					ctdsMatchesLXC{address: "data.virt_container.clone", name: clone, lxcPath: lx.LXCPath(), template: withClone},
				},
			},
			{
				Config:      providerConfig() + "data \"virt_container_template\" \"bad\" {\n  name_regex = \"(unclosed\"\n}\n",
				ExpectError: spaced(`"(unclosed" is not a regular expression: error parsing regexp: missing closing )`),
			},
			{
				Config: providerConfig() + fmt.Sprintf("data \"virt_container_template\" \"none\" {\n  name_regex = %q\n}\n",
					"^"+regexp.QuoteMeta(testenv.Name(t, "tf-ctds"))+"$"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.virt_container_template.none", tfjsonpath.New("templates"),
						knownvalue.ListExact([]knownvalue.Check{})),
				},
			},
		},
	})
}

// sortedNamesContaining checks a templates list: sorted by name and
// holding every one of the names (other tests' templates may be there too).
type sortedNamesContaining []string

func (c sortedNamesContaining) CheckValue(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("templates is %T, not a list", v)
	}
	var names []string
	for _, e := range list {
		obj, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("template %v is not an object", e)
		}
		name, _ := obj["name"].(string)
		names = append(names, name)
	}
	if !slices.IsSorted(names) {
		return fmt.Errorf("templates are not sorted by name: %q", names)
	}
	for _, want := range c {
		if !slices.Contains(names, want) {
			return fmt.Errorf("templates %q lack %s", names, want)
		}
	}
	return nil
}

func (c sortedNamesContaining) String() string {
	return fmt.Sprintf("sorted templates containing %q", []string(c))
}

func TestContainerTemplatesData(t *testing.T) {
	all := []virt.ContainerTemplate{
		{Name: "web", Clones: []string{"web-2", "web-1"}, Metadata: map[string]string{"os": "debian"}},
		{Name: "base"},
		{Name: "db"},
	}
	m := containerTemplatesData("/var/lib/lxc", types.StringValue("b"), all, regexp.MustCompile("b"))
	if m.ID.ValueString() != "/var/lib/lxc" || m.NameRegex.ValueString() != "b" {
		t.Errorf("id %s, name_regex %s", m.ID, m.NameRegex)
	}
	if len(m.Templates) != 3 || m.Templates[0].Name != "base" || m.Templates[1].Name != "db" || m.Templates[2].Name != "web" {
		t.Fatalf("templates %+v; want base, db, web in order", m.Templates)
	}
	if !slices.Equal(m.Templates[2].Clones, []string{"web-1", "web-2"}) || m.Templates[2].Metadata["os"] != "debian" {
		t.Errorf("web: %+v", m.Templates[2])
	}
	if m.Templates[0].Clones == nil || m.Templates[0].Metadata == nil {
		t.Errorf("base has null clones or metadata; want empty: %+v", m.Templates[0])
	}

	m = containerTemplatesData("/var/lib/lxc", types.StringValue("^d"), all, regexp.MustCompile("^d"))
	if len(m.Templates) != 1 || m.Templates[0].Name != "db" {
		t.Errorf("^d matched %+v", m.Templates)
	}
	if m = containerTemplatesData("/x", types.StringNull(), nil, nil); m.Templates == nil || !m.NameRegex.IsNull() {
		t.Errorf("no templates: %+v", m)
	}
}

func TestContainerDataSourceValidators(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		v     validator.String
		value string
		ok    bool
	}{
		{nameRegexValidator{}, "^vt-.*$", true},
		{nameRegexValidator{}, "(", false},
		{containerDataNameValidator{}, "web-1", true},
		{containerDataNameValidator{}, "-web", false},
		{containerDataNameValidator{}, "a/b", false},
	} {
		var resp validator.StringResponse
		tc.v.ValidateString(ctx, validator.StringRequest{ConfigValue: types.StringValue(tc.value)}, &resp)
		if resp.Diagnostics.HasError() == tc.ok {
			t.Errorf("%T(%q): %v, want ok=%v", tc.v, tc.value, resp.Diagnostics, tc.ok)
		}
	}
}
