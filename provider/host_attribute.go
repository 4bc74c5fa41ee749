package provider

import (
	dsschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/virtforge/terraform-provider-virt/provider/validators"
)

const hostDescription = "Name of the libvirt host to use, a key of the provider's `hosts` map. " +
	"Unset: the provider's `uri`."

// hostResourceAttribute is the host attribute every libvirt resource has. An
// object cannot move between hosts, so a change replaces it.
func hostResourceAttribute() schema.StringAttribute {
	return schema.StringAttribute{
		MarkdownDescription: hostDescription + " Changing it replaces the resource.",
		Optional:            true,
		Validators:          []validator.String{validators.HostName()},
		PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
	}
}

// hostDataSourceAttribute is the host attribute of libvirt data sources.
func hostDataSourceAttribute() dsschema.StringAttribute {
	return dsschema.StringAttribute{
		MarkdownDescription: hostDescription,
		Optional:            true,
		Validators:          []validator.String{validators.HostName()},
	}
}
