package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// containerSchema is virt_container's schema.
func containerSchema(t *testing.T) schema.Schema {
	t.Helper()
	var sr fwresource.SchemaResponse
	(&containerResource{}).Schema(context.Background(), fwresource.SchemaRequest{}, &sr)
	if sr.Diagnostics.HasError() {
		t.Fatalf("schema: %v", sr.Diagnostics)
	}
	return sr.Schema
}

// validateContainerConfig runs virt_container's ValidateConfig on a
// configuration with a name, a template and the given config map.
func validateContainerConfig(t *testing.T, config map[string]tftypes.Value) diag.Diagnostics {
	t.Helper()
	ctx := context.Background()
	s := containerSchema(t)
	typ := s.Type().TerraformType(ctx).(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for k, at := range typ.AttributeTypes {
		vals[k] = tftypes.NewValue(at, nil)
	}
	vals["name"] = tftypes.NewValue(tftypes.String, "vt-ct")
	vals["template"] = tftypes.NewValue(tftypes.String, "vt-base")
	vals["config"] = tftypes.NewValue(tftypes.Map{ElementType: tftypes.String}, config)
	var resp fwresource.ValidateConfigResponse
	(&containerResource{}).ValidateConfig(ctx, fwresource.ValidateConfigRequest{
		Config: tfsdk.Config{Schema: s, Raw: tftypes.NewValue(typ, vals)},
	}, &resp)
	return resp.Diagnostics
}

// Each config key that reaches outside the container is accepted with a
// warning on that key that names it and says what it gives; ordinary keys
// get none.
func TestContainerResourceWarnsHostAccessConfig(t *testing.T) {
	str := func(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }
	diags := validateContainerConfig(t, map[string]tftypes.Value{
		"lxc.hook.pre-start":   str("/usr/local/bin/prepare"),
		"lxc.apparmor.profile": str("unconfined"),
		"lxc.environment":      tftypes.NewValue(tftypes.String, tftypes.UnknownValue),
		"lxc.signal.halt":      str("SIGUSR1"),
		"lxc.cap.keep":         str("none"),
	})
	if diags.HasError() {
		t.Fatalf("keys that reach the host must be accepted: %v", diags)
	}
	want := map[string][]string{
		"lxc.hook.pre-start":   {`config["lxc.hook.pre-start"]`, "runs a program as root on the host"},
		"lxc.apparmor.profile": {`config["lxc.apparmor.profile"] = "unconfined"`, "without an AppArmor profile"},
		"lxc.environment":      {`config["lxc.environment"]`, "not known yet", "a name without `=`", "provider's own environment"},
	}
	got := map[string]bool{}
	for _, d := range diags {
		if d.Severity() != diag.SeverityWarning {
			t.Errorf("unexpected %s: %s: %s", d.Severity(), d.Summary(), d.Detail())
			continue
		}
		wp, ok := d.(diag.DiagnosticWithPath)
		if !ok {
			t.Errorf("warning without a path: %s", d.Detail())
			continue
		}
		var key string
		for k := range want {
			if wp.Path().Equal(path.Root("config").AtMapKey(k)) {
				key = k
			}
		}
		if key == "" {
			t.Errorf("warning on %s, which reaches nothing: %s", wp.Path(), d.Detail())
			continue
		}
		got[key] = true
		for _, w := range want[key] {
			if !strings.Contains(d.Detail(), w) {
				t.Errorf("warning on %s: %q does not say %q", key, d.Detail(), w)
			}
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("no warning for config[%q] (diagnostics: %v)", k, diags)
		}
	}
}

// The config attribute's description names every key that reaches outside
// the container, and the keys that are refused.
func TestContainerConfigDescriptionNamesHostAccess(t *testing.T) {
	desc := containerSchema(t).Attributes["config"].GetMarkdownDescription()
	for _, w := range []string{
		"`lxc.hook.*`", "`lxc.mount.fstab`", "`lxc.apparmor.profile`", "`unconfined`", "`lxc.cap.keep`",
		"`lxc.log.file`", "`lxc.console.logfile`", "`lxc.namespace.*`", "`lxc.environment`",
		"runs a program as root on the host",
		"`lxc.net.N.script.up`", "`lxc.mount.entry`", "`lxc.include`", "`lxc.idmap`",
	} {
		if !strings.Contains(desc, w) {
			t.Errorf("config's description does not mention %s:\n%s", w, desc)
		}
	}
}
