package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
)

// --- unit tests (no daemon) ---

func TestMachineResourceSchema(t *testing.T) {
	ctx := context.Background()
	var resp fwresource.SchemaResponse
	newMachineResource().Schema(ctx, fwresource.SchemaRequest{}, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	if diags := resp.Schema.ValidateImplementation(ctx); diags.HasError() {
		t.Fatal(diags)
	}
}

func TestSpecFieldPath(t *testing.T) {
	for _, tc := range []struct {
		field string
		disks int
		want  string
		ok    bool
	}{
		{"memory", 1, "memory", true},
		{"boot.cmdline", 1, "boot.cmdline", true},
		{"disks[0].bus", 2, "disk[0].bus", true},
		{"disks[1]", 2, "disk[1]", true},
		{"disks[0].volume_key", 1, "disk[0].volume_id", true},
		{"disks[2].pool", 2, "cloud_init", true},
		{"disks[1]", 1, "cloud_init", true},
		{"interfaces[3].mac", 0, "network_interface[3].mac", true},
		{"console.path", 0, "console.path", true},
		{"uuid", 0, "id", true},
		{"something_new", 0, "", false},
	} {
		p, ok := specFieldPath(tc.field, tc.disks)
		if ok != tc.ok || (ok && p.String() != tc.want) {
			t.Errorf("specFieldPath(%q, %d) = %q, %v; want %q, %v", tc.field, tc.disks, p, ok, tc.want, tc.ok)
		}
	}
}

// machineSchema is the resource's schema, for building plans and states.
func machineSchema(t *testing.T) fwresource.SchemaResponse {
	t.Helper()
	var resp fwresource.SchemaResponse
	newMachineResource().Schema(context.Background(), fwresource.SchemaRequest{}, &resp)
	return resp
}

var timeoutsAttrTypes = map[string]attr.Type{"create": types.StringType, "update": types.StringType, "delete": types.StringType}

// stateOfTestGuest is a running test guest as Read leaves it in state.
func stateOfTestGuest(t *testing.T) machineModel {
	t.Helper()
	ctx := context.Background()
	spec := &virt.MachineSpec{
		Name: "vt-unit", UUID: "3f0e3a36-7a0e-4d8e-9b8e-0f0e3a367a0e", Type: virt.DomainQEMU,
		VCPU: 1, MaxVCPU: 2, MemoryMiB: 256, MaxMemoryMiB: 512, Firmware: virt.FirmwareBIOS,
		Boot:       &virt.DirectBoot{Kernel: "/boot/vmlinuz", Initrd: "/boot/initrd", Cmdline: "console=ttyS0"},
		Disks:      []virt.DiskSpec{{VolumeKey: "/pool/a.qcow2", Format: "qcow2", Bus: "virtio", Device: "disk", Target: "vda"}},
		Interfaces: []virt.InterfaceSpec{{Type: "network", Network: "default", Model: "virtio", MAC: "52:54:00:00:00:01", Addresses: []string{"192.168.122.5"}}},
		Console:    virt.ConsoleSpec{Type: virt.ConsoleFile, Path: "/tmp/console.log"},
		Graphics:   virt.GraphicsSpec{Type: virt.GraphicsNone},
		QemuAgent:  true, RNG: true, Balloon: true,
		State: virt.StateRunning,
	}
	prior := machineModel{
		Host:           types.StringNull(),
		Description:    types.StringNull(),
		RebootOnUpdate: types.BoolValue(false),
		Boot:           types.ObjectNull(bootAttrTypes),
		Interfaces:     types.ListNull(types.ObjectType{AttrTypes: interfaceAttrTypes}),
		CloudInit:      types.ObjectNull(cloudInitAttrTypes),
		Console:        types.ObjectNull(consoleAttrTypes),
		Graphics:       types.ObjectNull(graphicsAttrTypes),
		Timeouts:       timeouts.Value{Object: types.ObjectNull(timeoutsAttrTypes)},
	}
	m, diags := modelFromSpec(ctx, spec, prior)
	if diags.HasError() {
		t.Fatal(diags)
	}
	return m
}

// configOf is the configuration that state came from: computed attributes
// without a default are null.
func configOf(t *testing.T, m machineModel) machineModel {
	t.Helper()
	ctx := context.Background()
	c := m
	c.ID, c.State = types.StringNull(), types.StringNull()
	c.PendingRestart = types.ListNull(types.StringType)
	c.MaxVCPU, c.MaxMemory = types.Int64Value(2), types.Int64Value(512)
	disks, _ := listAs[diskModel](ctx, m.Disks)
	for i := range disks {
		disks[i].Format, disks[i].Bus, disks[i].ReadOnly, disks[i].Target = types.StringNull(), types.StringNull(), types.BoolNull(), types.StringNull()
	}
	c.Disks, _ = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: diskAttrTypes}, disks)
	nics, _ := listAs[interfaceModel](ctx, m.Interfaces)
	for i := range nics {
		nics[i].MAC, nics[i].Addresses = types.StringNull(), types.ListNull(types.StringType)
	}
	c.Interfaces, _ = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: interfaceAttrTypes}, nics)
	return c
}

// modifyPlan runs the resource's ModifyPlan (without a provider, so no
// host checks) on a plan as Terraform proposes it: the configuration with
// the state's values for computed attributes it leaves unset.
func modifyPlan(t *testing.T, state, config machineModel, edit func(*machineModel)) (machineModel, fwresource.ModifyPlanResponse) {
	t.Helper()
	ctx := context.Background()
	s := machineSchema(t).Schema
	if edit != nil {
		edit(&config)
	}
	plan := config
	plan.ID, plan.State, plan.PendingRestart = state.ID, state.State, state.PendingRestart
	if config.MaxVCPU.IsNull() {
		plan.MaxVCPU = state.MaxVCPU
	}
	if config.MaxMemory.IsNull() {
		plan.MaxMemory = state.MaxMemory
	}
	plan.Disks, plan.Interfaces = state.Disks, state.Interfaces
	if edit != nil {
		edit(&plan)
	}
	toRaw := func(m machineModel) tftypes.Value {
		st := tfsdk.State{Schema: s, Raw: tftypes.NewValue(s.Type().TerraformType(ctx), nil)}
		if diags := st.Set(ctx, &m); diags.HasError() {
			t.Fatal(diags)
		}
		return st.Raw
	}
	req := fwresource.ModifyPlanRequest{
		Config: tfsdk.Config{Schema: s, Raw: toRaw(config)},
		Plan:   tfsdk.Plan{Schema: s, Raw: toRaw(plan)},
		State:  tfsdk.State{Schema: s, Raw: toRaw(state)},
	}
	resp := fwresource.ModifyPlanResponse{Plan: req.Plan}
	(&machineResource{}).ModifyPlan(ctx, req, &resp)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	var out machineModel
	if diags := resp.Plan.Get(ctx, &out); diags.HasError() {
		t.Fatal(diags)
	}
	return out, resp
}

func warnings(diags diag.Diagnostics) string {
	var out []string
	for _, d := range diags.Warnings() {
		out = append(out, d.Summary()+": "+d.Detail())
	}
	return strings.Join(out, "\n")
}

func setCmdline(s string) func(*machineModel) {
	return func(m *machineModel) {
		boot, _ := objectAs[bootModel](context.Background(), m.Boot)
		boot.Cmdline = types.StringValue(s)
		m.Boot, _ = types.ObjectValueFrom(context.Background(), bootAttrTypes, boot)
	}
}

// The plan grades an update: nothing, live, next boot (with a warning that
// says what and whether the apply restarts), replace.
func TestMachineModifyPlan(t *testing.T) {
	state := stateOfTestGuest(t)
	config := configOf(t, state)

	t.Run("no change plans the state", func(t *testing.T) {
		plan, resp := modifyPlan(t, state, config, nil)
		if w := warnings(resp.Diagnostics); w != "" || len(resp.RequiresReplace) > 0 {
			t.Errorf("warnings %q, replace %v", w, resp.RequiresReplace)
		}
		ctx := context.Background()
		s := machineSchema(t).Schema
		a := tfsdk.State{Schema: s, Raw: tftypes.NewValue(s.Type().TerraformType(ctx), nil)}
		b := a
		a.Set(ctx, &plan)
		b.Set(ctx, &state)
		if !a.Raw.Equal(b.Raw) {
			diffs, _ := a.Raw.Diff(b.Raw)
			t.Errorf("plan differs from state: %v", diffs)
		}
	})

	t.Run("live", func(t *testing.T) {
		_, resp := modifyPlan(t, state, config, func(m *machineModel) {
			m.Memory = types.Int64Value(384)
			m.Description = types.StringValue("bigger")
		})
		if w := warnings(resp.Diagnostics); w != "" || len(resp.RequiresReplace) > 0 {
			t.Errorf("warnings %q, replace %v", w, resp.RequiresReplace)
		}
	})

	t.Run("next boot warns", func(t *testing.T) {
		_, resp := modifyPlan(t, state, config, setCmdline("console=ttyS0 quiet"))
		w := warnings(resp.Diagnostics)
		if !strings.Contains(w, `Machine "vt-unit" needs a restart`) || !strings.Contains(w, "boot.cmdline") || !strings.Contains(w, "reboot_on_update is false") {
			t.Errorf("warnings: %q", w)
		}
		if len(resp.RequiresReplace) > 0 {
			t.Errorf("replace %v", resp.RequiresReplace)
		}
	})

	t.Run("next boot with reboot_on_update", func(t *testing.T) {
		_, resp := modifyPlan(t, state, config, func(m *machineModel) {
			setCmdline("console=ttyS0 quiet")(m)
			m.RebootOnUpdate = types.BoolValue(true)
		})
		if w := warnings(resp.Diagnostics); !strings.Contains(w, `Machine "vt-unit" will be restarted`) || !strings.Contains(w, "boot.cmdline") {
			t.Errorf("warnings: %q", w)
		}
	})

	t.Run("memory above max_memory is next boot", func(t *testing.T) {
		_, resp := modifyPlan(t, state, config, func(m *machineModel) {
			m.Memory, m.MaxMemory = types.Int64Value(1024), types.Int64Value(1024)
		})
		if w := warnings(resp.Diagnostics); !strings.Contains(w, "memory: 1024 MiB is above the max_memory of 512 MiB") {
			t.Errorf("warnings: %q", w)
		}
	})

	t.Run("stopped machine takes next-boot changes without a warning", func(t *testing.T) {
		stopped := state
		stopped.Running, stopped.State = types.BoolValue(false), types.StringValue("shutoff")
		cfg := config
		cfg.Running = types.BoolValue(false)
		_, resp := modifyPlan(t, stopped, cfg, setCmdline("console=ttyS0 quiet"))
		if w := warnings(resp.Diagnostics); w != "" {
			t.Errorf("warnings: %q", w)
		}
	})

	t.Run("type replaces", func(t *testing.T) {
		_, resp := modifyPlan(t, state, config, func(m *machineModel) { m.Type = types.StringValue("kvm") })
		if !resp.RequiresReplace.Contains(path.Root("type")) {
			t.Errorf("replace %v, want type", resp.RequiresReplace)
		}
	})

	t.Run("unknown vcpu may take a restart", func(t *testing.T) {
		_, resp := modifyPlan(t, state, config, func(m *machineModel) { m.VCPU = types.Int64Unknown() })
		if w := warnings(resp.Diagnostics); !strings.Contains(w, "vcpu (known after apply; may take a restart)") {
			t.Errorf("warnings: %q", w)
		}
	})

	t.Run("unknown firmware replaces", func(t *testing.T) {
		_, resp := modifyPlan(t, state, config, func(m *machineModel) { m.Firmware = types.StringUnknown() })
		if !resp.RequiresReplace.Contains(path.Root("firmware")) {
			t.Errorf("replace %v, want firmware", resp.RequiresReplace)
		}
	})

	t.Run("max_vcpu follows vcpu", func(t *testing.T) {
		cfg := config
		cfg.MaxVCPU = types.Int64Null()
		plan, _ := modifyPlan(t, state, cfg, func(m *machineModel) {
			if !m.MaxVCPU.IsNull() {
				m.MaxVCPU = types.Int64Unknown() // as the framework marks it
			}
		})
		if plan.MaxVCPU.ValueInt64() != 1 {
			t.Errorf("max_vcpu planned %s, want vcpu's 1", plan.MaxVCPU)
		}
	})

	t.Run("a new disk gets the next target and the boot disk keeps its own", func(t *testing.T) {
		ctx := context.Background()
		plan, _ := modifyPlan(t, state, config, func(m *machineModel) {
			disks, _ := listAs[diskModel](ctx, m.Disks)
			extra := diskModel{VolumeID: types.StringValue("/pool/b.qcow2"), Path: types.StringNull(), Format: types.StringNull(),
				Bus: types.StringNull(), Device: types.StringValue("disk"), ReadOnly: types.BoolNull(), Target: types.StringNull()}
			disks = append([]diskModel{extra}, disks...)
			m.Disks, _ = types.ListValueFrom(ctx, types.ObjectType{AttrTypes: diskAttrTypes}, disks)
		})
		disks, _ := listAs[diskModel](ctx, plan.Disks)
		if len(disks) != 2 || disks[0].Target.ValueString() != "vdb" || disks[1].Target.ValueString() != "vda" ||
			!disks[0].Format.IsUnknown() || disks[1].Format.ValueString() != "qcow2" || disks[0].Bus.ValueString() != "virtio" {
			t.Errorf("disks planned %+v", disks)
		}
	})
}
