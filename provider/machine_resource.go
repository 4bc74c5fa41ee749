package provider

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/virtforge/terraform-provider-virt/internal/virt"
	"github.com/virtforge/terraform-provider-virt/internal/virt/cloudinit"
	"github.com/virtforge/terraform-provider-virt/internal/virt/libvirt"
)

var (
	_ resource.Resource                   = (*machineResource)(nil)
	_ resource.ResourceWithConfigure      = (*machineResource)(nil)
	_ resource.ResourceWithImportState    = (*machineResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*machineResource)(nil)
	_ resource.ResourceWithValidateConfig = (*machineResource)(nil)
)

const (
	defaultMachineCreateTimeout = 10 * time.Minute
	defaultMachineUpdateTimeout = 10 * time.Minute
	defaultMachineDeleteTimeout = 5 * time.Minute
	// machineCleanupTimeout bounds the undo of a failed create, which runs
	// even after the create's own deadline has passed.
	machineCleanupTimeout = time.Minute
)

// shutdownGrace is how long a guest gets to power off on an ACPI request
// before the plug is pulled: half the operation's timeout, so that the
// rest (destroy, undefine, start) still fits in it.
func shutdownGrace(timeout time.Duration) time.Duration { return timeout / 2 }

var (
	consoleTypes  = []string{virt.ConsolePTY, virt.ConsoleFile}
	graphicsTypes = []string{virt.GraphicsNone, virt.GraphicsVNC, virt.GraphicsSpice}
)

func newMachineResource() resource.Resource { return &machineResource{} }

type machineResource struct {
	clients *clients
}

func (r *machineResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_machine"
}

func (r *machineResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A KVM (or QEMU) virtual machine managed through libvirt.\n\n" +
			"Changes are applied in the gentlest way libvirt allows. **Live** changes reach the running guest " +
			"at once: `memory` up to `max_memory`, more `vcpu` up to `max_vcpu`, adding or removing data disks " +
			"and network interfaces, `running`, `autostart`, `description`. **Next-boot** changes (the boot " +
			"settings, `max_memory`, `max_vcpu`, the devices of a disk or interface that stays, the cloud-init " +
			"seed...) are written to the machine's definition; the plan warns that the guest needs a restart, and " +
			"`reboot_on_update = true` makes the apply restart it. Changing `name`, `type`, `firmware` or `host` " +
			"replaces the machine.\n\n" +
			"Destroying the machine asks the guest to power off (ACPI), pulls the plug when it has not within " +
			"half the delete timeout, and removes the definition with its NVRAM and the cloud-init seed. Volumes " +
			"are separate resources and stay.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The machine's UUID.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"host": hostResourceAttribute(),
			"name": schema.StringAttribute{
				MarkdownDescription: "Name of the machine (libvirt domain): 1 to 64 letters, digits, `-`, `_` or `.`, " +
					"starting with a letter or digit. Changing it replaces the machine.",
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"type": schema.StringAttribute{
				MarkdownDescription: "Domain type: one of " + describeValues(virt.DomainTypes) + ". `kvm` uses hardware " +
					"virtualization; `qemu` emulates the CPU (slow, but works where KVM does not, such as inside " +
					"another virtual machine). Default `kvm`. Changing it replaces the machine.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(string(virt.DomainKVM)),
				Validators: []validator.String{stringvalidator.OneOf(stringsOf(virt.DomainTypes)...)},
			},
			"description": schema.StringAttribute{
				MarkdownDescription: "Free text kept in the machine's definition. Changes live.",
				Optional:            true,
			},
			"vcpu": schema.Int64Attribute{
				MarkdownDescription: "Number of virtual CPUs at boot. Default 1. Raising it up to `max_vcpu` " +
					"changes a running machine live; lowering it, or going above `max_vcpu`, takes a restart. " +
					"Must not exceed the host's CPUs (checked at plan time).",
				Optional:   true,
				Computed:   true,
				Default:    int64default.StaticInt64(1),
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			"max_vcpu": schema.Int64Attribute{
				MarkdownDescription: "Number of vCPU slots, up to which `vcpu` can grow while the machine runs. " +
					"Default: `vcpu`. Changing it takes a restart.",
				Optional:   true,
				Computed:   true,
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			"memory": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("Memory in MiB, at least %d. Default 512. Changes live (through "+
					"the balloon) up to `max_memory`. Must not exceed the host's memory (checked at plan time).", virt.MinMemoryMiB),
				Optional:   true,
				Computed:   true,
				Default:    int64default.StaticInt64(512),
				Validators: []validator.Int64{int64validator.AtLeast(virt.MinMemoryMiB)},
			},
			"max_memory": schema.Int64Attribute{
				MarkdownDescription: "Most memory in MiB the machine can be given while it runs (needs `balloon`). " +
					"Default: `memory`. Changing it takes a restart.",
				Optional:   true,
				Computed:   true,
				Validators: []validator.Int64{int64validator.AtLeast(virt.MinMemoryMiB)},
			},
			"firmware": schema.StringAttribute{
				MarkdownDescription: "Firmware: one of " + describeValues(virt.Firmwares) + ". `efi` uses OVMF, " +
					"with a per-machine NVRAM that is removed with the machine. Default `bios`. Changing it " +
					"replaces the machine.",
				Optional:   true,
				Computed:   true,
				Default:    stringdefault.StaticString(string(virt.FirmwareBIOS)),
				Validators: []validator.String{stringvalidator.OneOf(stringsOf(virt.Firmwares)...)},
			},
			"running": schema.BoolAttribute{
				MarkdownDescription: "Whether the machine runs. Default `true`. A machine found stopped (or " +
					"started) outside Terraform is planned back to this.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"autostart": schema.BoolAttribute{
				MarkdownDescription: "Whether libvirt starts the machine when the host boots. Default `false`.",
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(false),
			},
			"reboot_on_update": schema.BoolAttribute{
				MarkdownDescription: "Whether an apply may restart the running machine (ACPI shutdown, then " +
					"start) to bring in changes that take a restart. Default `false`: such changes are written " +
					"to the definition, the plan warns, and the guest sees them when it next starts.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
			},
			"qemu_agent": schema.BoolAttribute{
				MarkdownDescription: "Whether the machine has the virtio-serial channel the QEMU guest agent " +
					"talks through (the agent reports addresses and handles shutdowns cleanly). Default `true`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"rng": schema.BoolAttribute{
				MarkdownDescription: "Whether the machine has a virtio random number generator fed from the " +
					"host's `/dev/urandom`. Default `true`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"balloon": schema.BoolAttribute{
				MarkdownDescription: "Whether the machine has a virtio memory balloon, which changing `memory` " +
					"live needs. Default `true`.",
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
			},
			"state": schema.StringAttribute{
				MarkdownDescription: "Run state as libvirt reports it: `running`, `shutoff`, `paused`, `crashed`...",
				Computed:            true,
			},
			"pending_restart": schema.ListAttribute{
				MarkdownDescription: "Changes written to the machine's definition that the running guest gets only " +
					"when it is next started (see `reboot_on_update`), as attribute paths. Empty when there are none.",
				Computed:    true,
				ElementType: types.StringType,
			},
		},
		Blocks: map[string]schema.Block{
			"boot": schema.SingleNestedBlock{
				MarkdownDescription: "Direct kernel boot: the machine boots a kernel from the host instead of " +
					"a boot loader on its disk. Changes take a restart.",
				Attributes: map[string]schema.Attribute{
					// Required in effect (the layer says so at validate):
					// the framework would demand a Required attribute of an
					// absent block too.
					"kernel": schema.StringAttribute{
						MarkdownDescription: "Absolute path of the kernel on the host. Required.",
						Optional:            true,
					},
					"initrd": schema.StringAttribute{
						MarkdownDescription: "Absolute path of the initial ramdisk on the host.",
						Optional:            true,
					},
					"cmdline": schema.StringAttribute{
						MarkdownDescription: "Kernel command line.",
						Optional:            true,
					},
				},
			},
			"disk": schema.ListNestedBlock{
				MarkdownDescription: "A disk or CD-ROM, from a volume (`volume_id`) or a host path (`path`). The " +
					"first disk is the boot disk; when it has nothing to boot (a blank disk), the CD-ROMs after it are " +
					"tried in order, so a blank disk and an installer ISO boot the installer. A disk is known by its source: adding or removing a data disk " +
					"on the virtio bus changes a running machine live; anything else takes a restart.",
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"volume_id": schema.StringAttribute{
							MarkdownDescription: "Key of a libvirt volume (the `id` of a `virt_volume`). Exactly one of " +
								"`volume_id` and `path`.",
							Optional: true,
						},
						"path": schema.StringAttribute{
							MarkdownDescription: "Absolute path of an image file or block device on the host. Outside " +
								"a storage pool, `format` is required.",
							Optional: true,
						},
						"format": schema.StringAttribute{
							MarkdownDescription: "Image format: one of " + describeValues(virt.VolumeFormats) + ". Read " +
								"from the volume when unset.",
							Optional:   true,
							Computed:   true,
							Validators: []validator.String{stringvalidator.OneOf(virt.VolumeFormats...)},
						},
						"bus": schema.StringAttribute{
							MarkdownDescription: "Bus: one of " + describeValues(virt.DiskBuses) + ". Default `virtio` " +
								"for a disk, `sata` for a CD-ROM, `fdc` for a floppy.",
							Optional:   true,
							Computed:   true,
							Validators: []validator.String{stringvalidator.OneOf(virt.DiskBuses...)},
						},
						"device": schema.StringAttribute{
							MarkdownDescription: "Device kind: one of " + describeValues(virt.DiskDevices) + ". Default `disk`.",
							Optional:            true,
							Computed:            true,
							Default:             stringdefault.StaticString(virt.DeviceDisk),
							Validators:          []validator.String{stringvalidator.OneOf(virt.DiskDevices...)},
						},
						"readonly": schema.BoolAttribute{
							MarkdownDescription: "Whether the guest sees the disk read-only. Always `true` for a CD-ROM; " +
								"default `false` for a disk.",
							Optional: true,
							Computed: true,
						},
						"target": schema.StringAttribute{
							MarkdownDescription: "Device name the guest is offered (`vda`, `sdb`...). Assigned in order " +
								"per bus when unset; a disk that stays keeps its name.",
							Optional: true,
							Computed: true,
						},
					},
				},
			},
			"network_interface": schema.ListNestedBlock{
				MarkdownDescription: "A network interface on a libvirt network or a host bridge. Adding or " +
					"removing one changes a running machine live.",
				NestedObject: schema.NestedBlockObject{
					Attributes: map[string]schema.Attribute{
						"network": schema.StringAttribute{
							MarkdownDescription: "Name of the libvirt network. Exactly one of `network` and `bridge`.",
							Optional:            true,
						},
						"bridge": schema.StringAttribute{
							MarkdownDescription: "Name of an existing bridge on the host.",
							Optional:            true,
						},
						"model": schema.StringAttribute{
							MarkdownDescription: "NIC model: one of " + describeValues(virt.InterfaceModels) + ". Default `" + virt.ModelVirtio + "`.",
							Optional:            true,
							Computed:            true,
							Default:             stringdefault.StaticString(virt.ModelVirtio),
							Validators:          []validator.String{stringvalidator.OneOf(virt.InterfaceModels...)},
						},
						"mac": schema.StringAttribute{
							MarkdownDescription: "MAC address in lower case (`52:54:00:xx:xx:xx`). Generated by libvirt when " +
								"unset, and kept as long as the interface stays on the same network or bridge.",
							Optional:      true,
							Computed:      true,
							PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
							// libvirt reports MACs in lower case; one written
							// otherwise would show as a change in every plan
							// after an import.
							Validators: []validator.String{stringvalidator.RegexMatches(regexp.MustCompile(`^[^A-F]*$`),
								"must be in lower case, as libvirt reports MAC addresses")},
						},
						"wait_for_address": schema.BoolAttribute{
							MarkdownDescription: "Whether creating the machine waits (within the create timeout) until " +
								"this interface has an address, from the network's DHCP leases or the guest agent. " +
								"Default `false`.",
							Optional: true,
							Computed: true,
							Default:  booldefault.StaticBool(false),
						},
						"addresses": schema.ListAttribute{
							MarkdownDescription: "IP addresses of the interface as last read, from the DHCP leases of " +
								"its network or the guest agent. They change outside Terraform's control, so they " +
								"never cause a change in a plan.",
							Computed:    true,
							ElementType: types.StringType,
						},
					},
				},
			},
			"cloud_init": schema.SingleNestedBlock{
				MarkdownDescription: "A cloud-init NoCloud seed: the provider builds the ISO image, stores it as " +
					"the volume `<name>-cidata.iso` in `pool`, attaches it as a CD-ROM on the virtio-scsi bus, and " +
					"removes it with the machine. A change re-creates the seed for the next boot; cloud-init acts " +
					"on it again only if the `instance-id` in `meta_data` changes.",
				Attributes: map[string]schema.Attribute{
					"user_data": schema.StringAttribute{
						MarkdownDescription: "User data: cloud-config (starting with `#cloud-config`), a script " +
							"(`#!`), or anything else cloud-init recognises (" +
							strings.Join(cloudinit.UserDataPrefixes(), ", ") + ", MIME multipart).",
						Optional:  true,
						Sensitive: true,
					},
					"meta_data": schema.StringAttribute{
						MarkdownDescription: "Meta data (YAML). Default: `instance-id` is the machine's UUID and " +
							"`local-hostname` its name.",
						Optional: true,
					},
					"network_config": schema.StringAttribute{
						MarkdownDescription: "Network configuration (version 1 or 2, YAML). Unset: cloud-init " +
							"uses DHCP on the first interface.",
						Optional: true,
					},
					"pool": schema.StringAttribute{
						MarkdownDescription: "Storage pool that holds the seed volume. Default `" + virt.DefaultPool + "`.",
						Optional:            true,
						Computed:            true,
						Default:             stringdefault.StaticString(virt.DefaultPool),
					},
				},
			},
			"console": schema.SingleNestedBlock{
				MarkdownDescription: "The serial console (first serial port). Unset: a pseudo-terminal " +
					"(`virsh console`). Changes take a restart.",
				Attributes: map[string]schema.Attribute{
					"type": schema.StringAttribute{
						MarkdownDescription: "One of " + describeValues(consoleTypes) + ". Default `file` when `path` " +
							"is set, else `pty`.",
						Optional:   true,
						Computed:   true,
						Validators: []validator.String{stringvalidator.OneOf(consoleTypes...)},
					},
					"path": schema.StringAttribute{
						MarkdownDescription: "For `file`: absolute host path the console output is appended to.",
						Optional:            true,
					},
				},
			},
			"graphics": schema.SingleNestedBlock{
				MarkdownDescription: "The display. Unset: none (headless). Changes take a restart.",
				Attributes: map[string]schema.Attribute{
					"type": schema.StringAttribute{
						MarkdownDescription: "One of " + describeValues(graphicsTypes) + ". Default `vnc`.",
						Optional:            true,
						Computed:            true,
						Default:             stringdefault.StaticString(virt.GraphicsVNC),
						Validators:          []validator.String{stringvalidator.OneOf(graphicsTypes...)},
					},
					"listen": schema.StringAttribute{
						MarkdownDescription: "Address VNC or SPICE listens on. Default `" + virt.DefaultListen +
							"` (neither is encrypted by default).",
						Optional: true,
						Computed: true,
					},
				},
			},
			"timeouts": timeouts.Block(ctx, timeouts.Opts{
				Create: true, Update: true, Delete: true,
				CreateDescription: "Default 10m. Covers creating the seed, defining and starting the machine, and " +
					"waiting for addresses.",
				UpdateDescription: "Default 10m. Half of it is the most a guest gets to power off when the update restarts it.",
				DeleteDescription: "Default 5m. Half of it is the most a guest gets to power off before the plug is pulled.",
			}),
		},
	}
}

func (r *machineResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	c, err := clientsFrom(req.ProviderData)
	if err != nil {
		resp.Diagnostics.AddError("Provider not configured", err.Error())
		return
	}
	r.clients = c
}

// ValidateConfig runs the layer's own validation of the machine spec, so
// that cross-field rules (a CD-ROM on virtio, max_memory below memory, a
// malformed MAC, a relative kernel path...) fail at validate with the
// attribute path, and the rules live in one place.
func (r *machineResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m machineModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	b := specBuilder{unknown: map[string]bool{}}
	spec, diags := b.toSpec(ctx, withSchemaDefaults(m), nil)
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	userDisks := len(spec.Disks)
	if !m.CloudInit.IsNull() {
		userDisks--
	}
	if err := spec.Validate(); err != nil {
		addSpecErrors(&resp.Diagnostics, "Invalid machine", err, userDisks, func(field string) bool {
			return b.involvesUnknown(field) || coveredBySchema(spec, field)
		})
	}

	disks, diags := listAs[diskModel](ctx, m.Disks)
	resp.Diagnostics.Append(diags...)
	for i, d := range disks {
		exactlyOne(&resp.Diagnostics, path.Root("disk").AtListIndex(i), "disk", d.VolumeID, "volume_id (a volume)", d.Path, "path (a host file or device)")
	}
	nics, diags := listAs[interfaceModel](ctx, m.Interfaces)
	resp.Diagnostics.Append(diags...)
	for i, n := range nics {
		exactlyOne(&resp.Diagnostics, path.Root("network_interface").AtListIndex(i), "network interface", n.Network, "network (a libvirt network)", n.Bridge, "bridge (a host bridge)")
	}

	ci, diags := objectAs[cloudInitModel](ctx, m.CloudInit)
	resp.Diagnostics.Append(diags...)
	if ci != nil {
		cfg := cloudinit.Config{UserData: ci.UserData.ValueString(), MetaData: ci.MetaData.ValueString(), NetworkConfig: ci.NetworkConfig.ValueString()}
		var es virt.SpecErrors
		if err := cfg.Validate(); err != nil && errors.As(err, &es) {
			for _, e := range es {
				p := path.Root("cloud_init").AtName(e.Field)
				var v types.String
				resp.Diagnostics.Append(req.Config.GetAttribute(ctx, p, &v)...)
				if v.IsUnknown() {
					continue
				}
				resp.Diagnostics.AddAttributeError(p, "Invalid cloud-init seed", e.Reason)
			}
		}
	}
}

// exactlyOne reports a block that sets both or neither of two attributes.
func exactlyOne(diags *diag.Diagnostics, p path.Path, what string, a types.String, aDesc string, b types.String, bDesc string) {
	if a.IsUnknown() || b.IsUnknown() {
		return
	}
	switch {
	case a.IsNull() && b.IsNull():
		diags.AddAttributeError(p, "Invalid "+what, fmt.Sprintf("Set one of %s and %s; neither is set.", aDesc, bDesc))
	case !a.IsNull() && !b.IsNull():
		diags.AddAttributeError(p, "Invalid "+what, fmt.Sprintf("Set only one of %s and %s; both are set.", aDesc, bDesc))
	}
}

// coveredBySchema tells the layer's complaints that the schema's
// validators or exactlyOne already make (a value outside its list, both or
// neither of volume_id and path, network and bridge together), so that
// each mistake is reported once.
func coveredBySchema(spec virt.MachineSpec, field string) bool {
	var i int
	var rest string
	switch field {
	case "type":
		return !slices.Contains(virt.DomainTypes, spec.Type)
	case "firmware":
		return !slices.Contains(virt.Firmwares, spec.Firmware)
	case "memory":
		return spec.MemoryMiB < virt.MinMemoryMiB
	case "console.type":
		return !slices.Contains(consoleTypes, spec.Console.Type)
	case "graphics.type":
		return !slices.Contains(graphicsTypes, spec.Graphics.Type)
	}
	if n, _ := fmt.Sscanf(field, "disks[%d]%s", &i, &rest); n >= 1 && i < len(spec.Disks) {
		d := spec.Disks[i]
		switch rest {
		case "":
			return true // exactly one of volume_id and path
		case ".bus":
			return d.Bus != "" && !slices.Contains(virt.DiskBuses, d.Bus)
		case ".device":
			return !slices.Contains(virt.DiskDevices, d.Device)
		case ".format":
			return d.Format != "" && !slices.Contains(virt.VolumeFormats, d.Format)
		}
	}
	if n, _ := fmt.Sscanf(field, "interfaces[%d]%s", &i, &rest); n >= 1 {
		switch rest {
		case ".network", ".bridge", ".type", ".model":
			return true
		}
	}
	return false
}

// ModifyPlan fills in what the layer would choose for attributes left
// unset (so that the plan shows it and the apply cannot differ), checks the
// machine against the host, and grades an update: replace, next boot (with
// a warning) or live.
func (r *machineResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan, config machineModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	var state *machineModel
	if !req.State.Raw.IsNull() {
		state = &machineModel{}
		resp.Diagnostics.Append(req.State.Get(ctx, state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}

	var lv *libvirt.Client
	if r.clients != nil && !plan.Host.IsUnknown() {
		var err error
		if lv, err = r.clients.Libvirt(ctx, plan.Host.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("host"), "Cannot connect to libvirt", err.Error())
			return
		}
	}

	graded, diags := gradingModel(ctx, plan, config)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	var update *virt.MachineUpdate
	if state != nil {
		update = r.planUpdate(ctx, graded, *state, resp)
	}
	resp.Diagnostics.Append(fillPlanDefaults(ctx, &plan, config, graded, state, update)...)
	if lv != nil {
		r.checkHost(ctx, lv, plan, state, &resp.Diagnostics)
	}
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// planUpdate grades the difference between state and plan with the layer's
// classifier. It returns nil when the plan cannot be graded (its spec is not
// valid; the apply then reports why).
func (r *machineResource) planUpdate(ctx context.Context, plan machineModel, state machineModel, resp *resource.ModifyPlanResponse) *virt.MachineUpdate {
	old, diags := specBuilder{}.toSpec(ctx, state, nil)
	resp.Diagnostics.Append(diags...)
	b := specBuilder{unknown: map[string]bool{}}
	want, diags := b.toSpec(ctx, plan, &old)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return nil
	}
	upd, err := virt.PlanMachineUpdate(old, want)
	if err != nil {
		return nil
	}
	userDisks := len(want.Disks)
	if !plan.CloudInit.IsNull() {
		userDisks--
	}

	var restart []string
	for _, c := range upd.Changes {
		p, _ := specFieldPath(c.Field, userDisks)
		switch c.Class {
		case virt.UpdateReplace:
			resp.RequiresReplace.Append(p)
		case virt.UpdateNextBoot:
			restart = append(restart, describeChange(c, userDisks))
		}
	}
	// Values known only after apply: the layer will grade them then, and a
	// plan must not promise an update that turns out to be a replace.
	for _, f := range b.unknownFields() {
		switch f {
		case "name", "type", "firmware":
			p, _ := specFieldPath(f, userDisks)
			resp.RequiresReplace.Append(p)
		default:
			restart = append(restart, f+" (known after apply; may take a restart)")
		}
	}
	if seedChanged(ctx, plan, state) {
		restart = append(restart, "cloud_init (the seed is re-created)")
	}

	running := plan.Running.ValueBool() && state.Running.ValueBool()
	if len(restart) > 0 && running && len(resp.RequiresReplace) == 0 {
		name := plan.Name.ValueString()
		if plan.RebootOnUpdate.ValueBool() {
			resp.Diagnostics.AddWarning(fmt.Sprintf("Machine %q will be restarted", name),
				fmt.Sprintf("These changes take a restart, and reboot_on_update is true: the apply shuts the guest down "+
					"(ACPI) and starts it again.\n\n%s", strings.Join(restart, "\n")))
		} else {
			resp.Diagnostics.AddWarning(fmt.Sprintf("Machine %q needs a restart", name),
				fmt.Sprintf("These changes are written to the machine's definition but reach the guest only when it "+
					"is next started (reboot_on_update is false):\n\n%s", strings.Join(restart, "\n")))
		}
	}
	return &upd
}

// describeChange names a change in the user's terms for a plan warning.
func describeChange(c virt.Change, userDisks int) string {
	name := c.Field
	if p, ok := specFieldPath(c.Field, userDisks); ok {
		name = p.String()
	}
	switch c.Action {
	case virt.ChangeAttach:
		name += " (added)"
	case virt.ChangeDetach:
		name += " (removed)"
	}
	if c.Reason != "" {
		name += ": " + c.Reason
	}
	return "- " + name
}

// seedChanged reports whether the cloud-init seed's content differs between
// state and plan (its presence and pool are disk changes the layer grades).
func seedChanged(ctx context.Context, plan, state machineModel) bool {
	p, _ := objectAs[cloudInitModel](ctx, plan.CloudInit)
	s, _ := objectAs[cloudInitModel](ctx, state.CloudInit)
	if p == nil || s == nil {
		return false
	}
	return !p.UserData.Equal(s.UserData) || !p.MetaData.Equal(s.MetaData) || !p.NetworkConfig.Equal(s.NetworkConfig)
}

// fillPlanDefaults sets the attributes the user left unset to what the
// layer will make of them: the defaults of virt.MachineSpec.WithDefaults,
// and, for an update, what the machine keeps (a disk's target, a NIC's MAC).
// Values a default cannot give (a volume's format) stay unknown.
func fillPlanDefaults(ctx context.Context, plan *machineModel, config, graded machineModel, state *machineModel, update *virt.MachineUpdate) diag.Diagnostics {
	var diags diag.Diagnostics
	if config.MaxVCPU.IsNull() && !plan.VCPU.IsUnknown() {
		plan.MaxVCPU = plan.VCPU
	}
	if config.MaxMemory.IsNull() && !plan.Memory.IsUnknown() {
		plan.MaxMemory = plan.Memory
	}

	var spec virt.MachineSpec
	if update != nil {
		spec = update.Spec
	} else {
		s, d := specBuilder{}.toSpec(ctx, graded, nil)
		diags.Append(d...)
		spec = s.WithDefaults()
	}

	disks, d := listAs[diskModel](ctx, plan.Disks)
	diags.Append(d...)
	cfgDisks, d := listAs[diskModel](ctx, config.Disks)
	diags.Append(d...)
	var stateDisks []diskModel
	if state != nil {
		stateDisks, d = listAs[diskModel](ctx, state.Disks)
		diags.Append(d...)
	}
	if disks != nil && len(cfgDisks) == len(disks) && len(spec.Disks) >= len(disks) {
		// Targets are numbered per bus: one bus not known yet leaves them
		// all open.
		busesKnown := !slices.ContainsFunc(cfgDisks, func(d diskModel) bool { return d.Bus.IsUnknown() || d.Device.IsUnknown() })
		for i := range disks {
			want := spec.Disks[i]
			if cfgDisks[i].Bus.IsNull() && !disks[i].Device.IsUnknown() {
				disks[i].Bus = types.StringValue(want.Bus)
			}
			if cfgDisks[i].ReadOnly.IsNull() && !disks[i].Device.IsUnknown() {
				disks[i].ReadOnly = types.BoolValue(want.ReadOnly)
			}
			if cfgDisks[i].Target.IsNull() && busesKnown && want.Target != "" {
				disks[i].Target = types.StringValue(want.Target)
			}
			if cfgDisks[i].Format.IsNull() {
				disks[i].Format = types.StringUnknown()
				// The format is the volume's: known from state while the
				// disk's source stays the same.
				for _, s := range stateDisks {
					if sameDiskSource(s, disks[i]) {
						disks[i].Format = s.Format
						break
					}
				}
			}
		}
		list, d := types.ListValueFrom(ctx, types.ObjectType{AttrTypes: diskAttrTypes}, disks)
		diags.Append(d...)
		plan.Disks = list
	}

	nics, d := listAs[interfaceModel](ctx, plan.Interfaces)
	diags.Append(d...)
	cfgNICs, d := listAs[interfaceModel](ctx, config.Interfaces)
	diags.Append(d...)
	if nics != nil && len(cfgNICs) == len(nics) && len(spec.Interfaces) == len(nics) {
		for i := range nics {
			if cfgNICs[i].MAC.IsNull() {
				// The MAC of a NIC that stays on its network; a new NIC
				// (and one moved elsewhere) gets one from libvirt.
				nics[i].MAC = types.StringUnknown()
				if mac := spec.Interfaces[i].MAC; mac != "" {
					nics[i].MAC = types.StringValue(mac)
				}
			}
		}
		list, d := types.ListValueFrom(ctx, types.ObjectType{AttrTypes: interfaceAttrTypes}, nics)
		diags.Append(d...)
		plan.Interfaces = list
	}

	if console, d := objectAs[consoleModel](ctx, plan.Console); console != nil {
		diags.Append(d...)
		if cfg, _ := objectAs[consoleModel](ctx, config.Console); cfg != nil && cfg.Type.IsNull() && !console.Path.IsUnknown() {
			console.Type = types.StringValue(spec.Console.Type)
			obj, d := types.ObjectValueFrom(ctx, consoleAttrTypes, console)
			diags.Append(d...)
			plan.Console = obj
		}
	}
	if graphics, d := objectAs[graphicsModel](ctx, plan.Graphics); graphics != nil {
		diags.Append(d...)
		if cfg, _ := objectAs[graphicsModel](ctx, config.Graphics); cfg != nil && cfg.Listen.IsNull() && !graphics.Type.IsUnknown() {
			graphics.Listen = optString(spec.Graphics.Listen, types.StringNull())
			obj, d := types.ObjectValueFrom(ctx, graphicsAttrTypes, graphics)
			diags.Append(d...)
			plan.Graphics = obj
		}
	}
	return diags
}

func sameDiskSource(a, b diskModel) bool {
	if a.VolumeID.IsUnknown() || b.VolumeID.IsUnknown() || a.Path.IsUnknown() || b.Path.IsUnknown() {
		return false
	}
	return a.VolumeID.Equal(b.VolumeID) && a.Path.Equal(b.Path)
}

// hostInfoCache keeps each host's facts for the life of the provider
// process: they serve only the plan-time size checks, and asking once per
// machine would cost a round trip each in large plans. Terraform plans 10
// machines at once, and each would find the cache empty and ask (seven
// calls, the capabilities XML among them): a host's entry is filled by the
// first that asks, while the others wait for it.
var hostInfoCache sync.Map // *libvirt.Client -> *hostInfoEntry

type hostInfoEntry struct {
	mu   sync.Mutex
	info *virt.HostInfo // nil until read; a failed read is not kept
}

func cachedHostInfo(ctx context.Context, lv *libvirt.Client) (*virt.HostInfo, error) {
	e, _ := hostInfoCache.LoadOrStore(lv, &hostInfoEntry{})
	entry := e.(*hostInfoEntry)
	entry.mu.Lock()
	defer entry.mu.Unlock()
	if entry.info != nil {
		return entry.info, nil
	}
	info, err := readHostInfo(ctx, lv)
	if err != nil {
		return nil, err
	}
	entry.info = info
	return info, nil
}

// readHostInfo asks the host; a test counts the asking through it.
var readHostInfo = func(ctx context.Context, lv *libvirt.Client) (*virt.HostInfo, error) { return lv.HostInfo(ctx) }

// checkHost refuses, at plan time, a machine larger than its host or of a
// domain type the host does not offer. Values that do not change are not
// judged again: a machine that fits no more (the host shrank) must still
// plan cleanly.
func (r *machineResource) checkHost(ctx context.Context, lv *libvirt.Client, plan machineModel, state *machineModel, diags *diag.Diagnostics) {
	var prior machineModel
	if state != nil {
		prior = *state
	}
	// The ceilings (max_vcpu, max_memory) may exceed the host: they are
	// slots and address space, not what the guest is given.
	vcpuChanged := !plan.VCPU.IsUnknown() && (state == nil || !plan.VCPU.Equal(prior.VCPU))
	memoryChanged := !plan.Memory.IsUnknown() && (state == nil || !plan.Memory.Equal(prior.Memory))
	typeChanged := !plan.Type.IsUnknown() && (state == nil || !plan.Type.Equal(prior.Type))
	if !vcpuChanged && !memoryChanged && !typeChanged {
		return
	}
	info, err := cachedHostInfo(ctx, lv)
	if err != nil {
		diags.AddError("Cannot read host facts", fmt.Sprintf("libvirt at %s: %v", lv.URI(), err))
		return
	}
	if v := plan.VCPU.ValueInt64(); vcpuChanged && v > int64(info.CPUs) {
		diags.AddAttributeError(path.Root("vcpu"), "Machine larger than its host",
			fmt.Sprintf("vcpu = %d is more than the %d CPUs that host %s has.", v, info.CPUs, info.Hostname))
	}
	if v, hostMiB := plan.Memory.ValueInt64(), int64(info.MemoryBytes>>20); memoryChanged && v > hostMiB {
		diags.AddAttributeError(path.Root("memory"), "Machine larger than its host",
			fmt.Sprintf("memory = %d MiB is more than the %d MiB of memory that host %s has.", v, hostMiB, info.Hostname))
	}
	if t := plan.Type.ValueString(); typeChanged && len(info.DomainTypes) > 0 && !slices.Contains(info.DomainTypes, t) {
		diags.AddAttributeError(path.Root("type"), "Domain type not offered by the host",
			fmt.Sprintf("Host %s offers domain types %s, not %q.", info.Hostname, strings.Join(info.DomainTypes, ", "), t))
	}
}

func (r *machineResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan machineModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, defaultMachineCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	lv, err := r.clients.Libvirt(ctx, plan.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	spec, diags := specBuilder{}.toSpec(ctx, plan, nil)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := spec.Name
	summary := "Cannot create machine " + name
	userDisks := len(spec.Disks)
	// Choosing the UUID here lets the cloud-init seed carry it as the
	// instance-id before the machine exists.
	spec.UUID = newUUID()

	ci, diags := objectAs[cloudInitModel](ctx, plan.CloudInit)
	resp.Diagnostics.Append(diags...)
	if ci != nil {
		// The seed's name derives from the machine's, and making it
		// replaces a leftover of that name: an existing machine must be
		// refused before its seed is touched. Without a seed, the create
		// itself refuses a taken name.
		if exists, err := lv.MachineExists(ctx, name); err != nil {
			resp.Diagnostics.AddError(summary, fmt.Sprintf("on %s: %v", lv.URI(), err))
			return
		} else if exists {
			resp.Diagnostics.AddAttributeError(path.Root("name"), summary, fmt.Sprintf(
				"A machine named %q already exists on %s. Import it (terraform import) to manage it, or choose another name.", name, lv.URI()))
			return
		}
		userDisks--
		if err := createSeed(ctx, lv, ci.Pool.ValueString(), name, cloudInitConfig(ci, spec.UUID, name)); err != nil {
			addSeedError(&resp.Diagnostics, summary, err, lv)
			return
		}
	}

	// Define and start are one call: it undefines the machine again when
	// the start fails, and reads the machine back once, running.
	got, err := lv.CreateMachine(ctx, spec, plan.Running.ValueBool())
	if err != nil {
		if errors.Is(err, virt.ErrExists) {
			resp.Diagnostics.AddAttributeError(path.Root("name"), summary, fmt.Sprintf(
				"A machine named %q already exists on %s (%v). Import it (terraform import) to manage it, or choose another name.", name, lv.URI(), err))
		} else {
			addSpecErrors(&resp.Diagnostics, summary, fmt.Errorf("on %s: %w", lv.URI(), err), userDisks, nil)
		}
		if !errors.Is(err, virt.ErrExists) {
			// Whatever the create made is gone, unless undoing it failed
			// too: then the machine is recorded, so that Terraform keeps
			// it (tainted, to be replaced) instead of losing track of it.
			r.undoCreate(ctx, lv, plan, spec.UUID, resp)
		} else if cleanupErr := r.removeSeed(ctx, lv, plan.CloudInit, name); cleanupErr != nil {
			resp.Diagnostics.AddError("Cannot remove the cloud-init seed of the failed machine "+name, cleanupErr.Error())
		}
		return
	}

	// The machine exists from here on: recording it now means that should
	// a later step fail, Terraform keeps it (as tainted, to be replaced)
	// instead of losing track of it.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), got.UUID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("host"), plan.Host)...)

	if waits := waitingInterfaces(ctx, plan); len(waits) > 0 && plan.Running.ValueBool() {
		if got, err = waitForAddresses(ctx, lv, name, got, waits); err != nil {
			// The machine is fine; only the wait failed. It stays in state
			// (tainted) for the user to look at or replace.
			resp.Diagnostics.AddError(summary, fmt.Sprintf("waiting for an address on %s: %v", lv.URI(), err))
			if got == nil {
				return
			}
		}
	}
	m, diags := modelFromSpec(ctx, got, plan)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

// undoCreate makes sure that a failed create leaves nothing behind: the
// domain (should the layer's own undo have failed) and the seed. When that
// fails too, the machine goes into state by its UUID, so that Terraform
// keeps it, tainted, and the next apply replaces it.
func (r *machineResource) undoCreate(ctx context.Context, lv *libvirt.Client, plan machineModel, uuid string, resp *resource.CreateResponse) {
	name := plan.Name.ValueString()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), machineCleanupTimeout)
	defer cancel()
	var errs []error
	if err := lv.UndefineMachine(ctx, name); err != nil && !errors.Is(err, virt.ErrNotFound) {
		errs = append(errs, err)
	}
	if err := r.removeSeed(ctx, lv, plan.CloudInit, name); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return
	}
	resp.Diagnostics.AddError("Cannot remove the failed machine "+name,
		fmt.Sprintf("on %s: %v\n\nThe machine stays in the state as tainted; the next apply replaces it.", lv.URI(), errors.Join(errs...)))
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), uuid)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("host"), plan.Host)...)
}

func (r *machineResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state machineModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	lv, err := r.clients.Libvirt(ctx, state.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	got, err := lv.Machine(ctx, state.Name.ValueString())
	if errors.Is(err, virt.ErrNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read machine "+state.Name.ValueString(), fmt.Sprintf("on %s: %v", lv.URI(), err))
		return
	}
	m, diags := modelFromSpec(ctx, got, state)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func (r *machineResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state machineModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, defaultMachineUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	lv, err := r.clients.Libvirt(ctx, plan.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	name := state.Name.ValueString()
	summary := "Cannot update machine " + name
	want, diags := specBuilder{}.toSpec(ctx, plan, nil)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	userDisks := len(want.Disks)

	// A changed seed is re-created under its name before the definition
	// changes: the running guest keeps the old image open, the next boot
	// reads the new one. A new seed (cloud_init added, or moved to another
	// pool) is made here too; the update attaches it.
	ci, diags := objectAs[cloudInitModel](ctx, plan.CloudInit)
	resp.Diagnostics.Append(diags...)
	oldCI, diags := objectAs[cloudInitModel](ctx, state.CloudInit)
	resp.Diagnostics.Append(diags...)
	seedRestart := false
	if ci != nil {
		userDisks--
		if oldCI == nil || !oldCI.Pool.Equal(ci.Pool) || seedChanged(ctx, plan, state) {
			if oldCI != nil && oldCI.Pool.Equal(ci.Pool) {
				if err := r.removeSeed(ctx, lv, state.CloudInit, name); err != nil {
					resp.Diagnostics.AddError(summary, err.Error())
					return
				}
			}
			if err := createSeed(ctx, lv, ci.Pool.ValueString(), name, cloudInitConfig(ci, state.ID.ValueString(), name)); err != nil {
				addSeedError(&resp.Diagnostics, summary, err, lv)
				return
			}
			seedRestart = oldCI != nil
		}
	}

	running := plan.Running.ValueBool()
	opts := virt.UpdateOptions{
		Reboot:        plan.RebootOnUpdate.ValueBool(),
		ShutdownGrace: shutdownGrace(timeout),
		Running:       &running,
	}
	// A new seed does not show in the definition, so the layer would not
	// restart for it: the restart is done here, once, after the update.
	restartHere := seedRestart && opts.Reboot && running && state.Running.ValueBool()
	if restartHere {
		opts.Reboot = false
	}
	got, err := lv.UpdateMachine(ctx, name, want, opts)
	if err != nil {
		addSpecErrors(&resp.Diagnostics, summary, fmt.Errorf("on %s: %w", lv.URI(), err), userDisks, nil)
		if got != nil {
			// Some changes were made (a guest did not release a disk, say):
			// state says what the machine is now, so the next plan shows
			// what is still to do.
			m, diags := modelFromSpec(ctx, got, plan)
			resp.Diagnostics.Append(diags...)
			resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
		}
		return
	}
	if oldCI != nil && (ci == nil || !oldCI.Pool.Equal(ci.Pool)) {
		// The old seed is detached now.
		if err := r.removeSeed(ctx, lv, state.CloudInit, name); err != nil {
			resp.Diagnostics.AddWarning("Cannot remove the old cloud-init seed of machine "+name, err.Error())
		}
	}
	if restartHere && machineRuns(got.State) {
		if got, err = restartMachine(ctx, lv, name, opts.Grace()); err != nil {
			resp.Diagnostics.AddError(summary, fmt.Sprintf("restart on %s: %v", lv.URI(), err))
			return
		}
	}
	m, diags := modelFromSpec(ctx, got, plan)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}

func restartMachine(ctx context.Context, lv *libvirt.Client, name string, grace time.Duration) (*virt.MachineSpec, error) {
	if err := lv.ShutdownMachine(ctx, name, grace); err != nil {
		return nil, err
	}
	if err := lv.StartMachine(ctx, name); err != nil {
		return nil, err
	}
	return lv.Machine(ctx, name)
}

func (r *machineResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state machineModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, defaultMachineDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	lv, err := r.clients.Libvirt(ctx, state.Host.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	name := state.Name.ValueString()
	summary := "Cannot delete machine " + name
	// The definition removed says which seeds were attached: an imported
	// machine's seed is not in state.
	var seeds []virt.DiskSpec
	got, err := lv.DeleteMachine(ctx, name, shutdownGrace(timeout))
	switch {
	case errors.Is(err, virt.ErrNotFound):
	case err != nil:
		resp.Diagnostics.AddError(summary, fmt.Sprintf("on %s: %v", lv.URI(), err))
		return
	default:
		for _, d := range got.Disks {
			if isSeedDisk(name, d) {
				seeds = append(seeds, d)
			}
		}
	}
	for _, d := range seeds {
		if err := deleteDiskVolume(ctx, lv, d); err != nil {
			resp.Diagnostics.AddError(summary, fmt.Sprintf("remove its cloud-init seed on %s: %v", lv.URI(), err))
		}
	}
	if err := r.removeSeed(ctx, lv, state.CloudInit, name); err != nil {
		resp.Diagnostics.AddError(summary, err.Error())
	}
}

// deleteDiskVolume deletes the volume a disk was attached from; one that
// is gone already is fine.
func deleteDiskVolume(ctx context.Context, lv *libvirt.Client, d virt.DiskSpec) error {
	if d.Volume != "" {
		return deleteVolumeByName(ctx, lv, d.Pool, d.Volume)
	}
	key := d.VolumeKey
	if key == "" {
		key = d.Path // a dir pool's volume key is its path
	}
	if err := lv.DeleteVolume(ctx, key); err != nil && !errors.Is(err, virt.ErrNotFound) {
		return err
	}
	return nil
}

// ImportState takes a machine's name or UUID, prefixed with "HOST/" for a
// host of the provider's hosts map. Read fills in the rest.
func (r *machineResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	host, ref := "", req.ID
	if h, rest, ok := strings.Cut(req.ID, "/"); ok {
		host, ref = h, rest
	}
	if ref == "" {
		resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf(
			"%q: expected a machine's name or UUID, or HOST/NAME_OR_UUID for a host of the provider's hosts map.", req.ID))
		return
	}
	lv, err := r.clients.Libvirt(ctx, host)
	if err != nil {
		resp.Diagnostics.AddError("Cannot connect to libvirt", err.Error())
		return
	}
	name, err := machineNameOf(ctx, lv, ref)
	if err != nil {
		resp.Diagnostics.AddError("Cannot import machine "+ref, fmt.Sprintf("on %s: %v", lv.URI(), err))
		return
	}
	if host != "" {
		resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("host"), host)...)
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
}

// machineNameOf resolves an import reference: a machine's name, or else its
// UUID.
func machineNameOf(ctx context.Context, lv *libvirt.Client, ref string) (string, error) {
	_, err := lv.Machine(ctx, ref)
	if err == nil {
		return ref, nil
	}
	if !errors.Is(err, virt.ErrNotFound) {
		return "", err
	}
	if !uuidRE.MatchString(ref) {
		return "", fmt.Errorf("no machine is named %q: %w", ref, virt.ErrNotFound)
	}
	m, err := lv.MachineByUUID(ctx, ref)
	if errors.Is(err, virt.ErrNotFound) {
		return "", fmt.Errorf("no machine is named %q or has that UUID: %w", ref, virt.ErrNotFound)
	}
	if err != nil {
		return "", err
	}
	return m.Name, nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// createSeed builds the machine's cloud-init seed. A volume of the seed's
// name can only be a leftover of an earlier machine of this name (the
// machine does not exist, or is being updated, when this runs): it is
// replaced.
func createSeed(ctx context.Context, lv *libvirt.Client, pool, machine string, cfg cloudinit.Config) error {
	name := seedVolumeName(machine)
	_, err := lv.CreateSeedVolume(ctx, pool, name, cfg)
	if errors.Is(err, virt.ErrExists) {
		if err := deleteVolumeByName(ctx, lv, pool, name); err != nil {
			return fmt.Errorf("replace leftover seed volume %q in pool %q: %w", name, pool, err)
		}
		_, err = lv.CreateSeedVolume(ctx, pool, name, cfg)
	}
	return err
}

// addSeedError reports a failed seed; bad content names its attribute.
func addSeedError(diags *diag.Diagnostics, summary string, err error, lv *libvirt.Client) {
	var es virt.SpecErrors
	if errors.As(err, &es) {
		for _, e := range es {
			diags.AddAttributeError(path.Root("cloud_init").AtName(e.Field), summary, e.Reason)
		}
		return
	}
	diags.AddError(summary, fmt.Sprintf("cloud-init seed on %s: %v", lv.URI(), err))
}

// removeSeed deletes the machine's seed volume, if the model has one; one
// that is already gone is fine.
func (r *machineResource) removeSeed(ctx context.Context, lv *libvirt.Client, ciObj types.Object, machine string) error {
	ci, _ := objectAs[cloudInitModel](ctx, ciObj)
	if ci == nil {
		return nil
	}
	pool := ci.Pool.ValueString()
	if pool == "" {
		pool = virt.DefaultPool
	}
	if err := deleteVolumeByName(ctx, lv, pool, seedVolumeName(machine)); err != nil {
		return fmt.Errorf("remove cloud-init seed of machine %q on %s: %w", machine, lv.URI(), err)
	}
	return nil
}

func deleteVolumeByName(ctx context.Context, lv *libvirt.Client, pool, name string) error {
	vol, err := lv.Volume(ctx, pool, name)
	if errors.Is(err, virt.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := lv.DeleteVolume(ctx, vol.Key); err != nil && !errors.Is(err, virt.ErrNotFound) {
		return err
	}
	return nil
}

// waitingInterfaces lists the indexes of the NICs with wait_for_address.
func waitingInterfaces(ctx context.Context, m machineModel) []int {
	nics, _ := listAs[interfaceModel](ctx, m.Interfaces)
	var out []int
	for i, n := range nics {
		if n.WaitForAddress.ValueBool() {
			out = append(out, i)
		}
	}
	return out
}

// waitForAddresses waits until each NIC of waits has an address and reads
// the machine back. It returns the last reading also on failure.
func waitForAddresses(ctx context.Context, lv *libvirt.Client, name string, got *virt.MachineSpec, waits []int) (*virt.MachineSpec, error) {
	for _, i := range waits {
		if i >= len(got.Interfaces) || len(got.Interfaces[i].Addresses) > 0 {
			continue
		}
		if _, err := lv.WaitForAddress(ctx, name, got.Interfaces[i].MAC); err != nil {
			return got, fmt.Errorf("network_interface[%d]: %w", i, err)
		}
	}
	return lv.Machine(ctx, name)
}
