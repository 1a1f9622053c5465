package scim

import (
	"strings"

	"github.com/idsync/idsync/sources/scim/filter"
)

// Schema and message URNs (RFC 7643, RFC 7644).
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaListResp   = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	schemaPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaError      = "urn:ietf:params:scim:api:messages:2.0:Error"
	schemaSPConfig   = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
	schemaResType    = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
	schemaSchema     = "urn:ietf:params:scim:schemas:core:2.0:Schema"
)

// Resource types.
const (
	TypeUser  = "User"
	TypeGroup = "Group"
)

// attrDef is one attribute of a schema, with what /Schemas publishes and what validation
// and filters need.
type attrDef struct {
	Name        string
	Type        string
	Multi       bool
	Required    bool
	CaseExact   bool
	Mutability  string // readWrite | readOnly | immutable | writeOnly
	Returned    string // always | never | default | request
	Uniqueness  string // none | server | global
	Canonical   []string
	RefTypes    []string
	Description string
	Sub         []*attrDef
	// filterAttr is the evaluation view, built once.
	filterAttr *filter.Attr
}

func (a *attrDef) sub(name string) *attrDef {
	for _, s := range a.Sub {
		if strings.EqualFold(s.Name, name) {
			return s
		}
	}
	return nil
}

type schemaDef struct {
	ID          string
	Name        string
	Description string
	Attrs       []*attrDef
}

func (s *schemaDef) attr(name string) *attrDef {
	for _, a := range s.Attrs {
		if strings.EqualFold(a.Name, name) {
			return a
		}
	}
	return nil
}

func str(name, desc string) *attrDef {
	return &attrDef{Name: name, Type: filter.TypeString, Mutability: "readWrite", Returned: "default", Uniqueness: "none", Description: desc}
}

func boolean(name, desc string) *attrDef {
	return &attrDef{Name: name, Type: filter.TypeBoolean, Mutability: "readWrite", Returned: "default", Uniqueness: "none", Description: desc}
}

func complexAttr(name string, multi bool, desc string, sub ...*attrDef) *attrDef {
	return &attrDef{Name: name, Type: filter.TypeComplex, Multi: multi, Mutability: "readWrite", Returned: "default", Uniqueness: "none", Description: desc, Sub: sub}
}

// multiValued builds the usual value/display/type/primary multi-valued attribute.
func multiValued(name, valueType, desc string, types ...string) *attrDef {
	v := str("value", "The value.")
	v.Type = valueType
	t := str("type", "A label indicating the attribute's function.")
	t.Canonical = types
	return complexAttr(name, true, desc, v, str("display", "A human-readable name, primarily used for display purposes."), t,
		boolean("primary", "Indicates the 'primary' or preferred value."))
}

func with(a *attrDef, f func(a *attrDef)) *attrDef { f(a); return a }

var (
	userSchema = &schemaDef{
		ID: SchemaUser, Name: "User", Description: "User Account",
		Attrs: []*attrDef{
			with(str("userName", "Unique identifier for the User, typically used to sign in."), func(a *attrDef) {
				a.Required = true
				a.Uniqueness = "server"
			}),
			complexAttr("name", false, "The components of the user's real name.",
				str("formatted", "The full name."), str("familyName", "The family name."),
				str("givenName", "The given name."), str("middleName", "The middle name(s)."),
				str("honorificPrefix", "The honorific prefix(es)."), str("honorificSuffix", "The honorific suffix(es).")),
			str("displayName", "The name of the User, suitable for display to end-users."),
			str("nickName", "The casual way to address the user."),
			with(str("profileUrl", "A fully qualified URL pointing to a page representing the User's online profile."), func(a *attrDef) {
				a.Type = filter.TypeReference
				a.RefTypes = []string{"external"}
			}),
			str("title", "The user's title, such as \"Vice President\"."),
			str("userType", "Used to identify the relationship between the organization and the user."),
			str("preferredLanguage", "The User's preferred written or spoken language."),
			str("locale", "The User's default location."),
			str("timezone", "The User's time zone in the Olson time zone database format."),
			boolean("active", "The User's administrative status."),
			multiValued("emails", filter.TypeString, "Email addresses for the user.", "work", "home", "other"),
			multiValued("phoneNumbers", filter.TypeString, "Phone numbers for the User.", "work", "home", "mobile", "fax", "pager", "other"),
			multiValued("ims", filter.TypeString, "Instant messaging addresses for the User.", "aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"),
			multiValued("photos", filter.TypeReference, "URLs of photos of the User.", "photo", "thumbnail"),
			complexAttr("addresses", true, "A physical mailing address for this User.",
				str("formatted", "The full mailing address."), str("streetAddress", "The street address."),
				str("locality", "The city or locality."), str("region", "The state or region."),
				str("postalCode", "The zip code or postal code."), str("country", "The country name."),
				with(str("type", "A label indicating the attribute's function."), func(a *attrDef) { a.Canonical = []string{"work", "home", "other"} }),
				boolean("primary", "Indicates the 'primary' or preferred value.")),
			with(complexAttr("groups", true, "A list of groups to which the user belongs (read-only: change membership through /Groups).",
				with(str("value", "The identifier of the User's group."), func(a *attrDef) { a.Mutability = "readOnly" }),
				with(str("$ref", "The URI of the corresponding Group resource."), func(a *attrDef) {
					a.Type = filter.TypeReference
					a.RefTypes = []string{"Group"}
					a.Mutability = "readOnly"
				}),
				with(str("display", "A human-readable name."), func(a *attrDef) { a.Mutability = "readOnly" }),
				with(str("type", "direct or indirect."), func(a *attrDef) {
					a.Mutability = "readOnly"
					a.Canonical = []string{"direct", "indirect"}
				})), func(a *attrDef) { a.Mutability = "readOnly" }),
			multiValued("entitlements", filter.TypeString, "A list of entitlements for the User."),
			multiValued("roles", filter.TypeString, "A list of roles for the User."),
			multiValued("x509Certificates", filter.TypeBinary, "A list of certificates issued to the User."),
		},
	}
	groupSchema = &schemaDef{
		ID: SchemaGroup, Name: "Group", Description: "Group",
		Attrs: []*attrDef{
			with(str("displayName", "A human-readable name for the Group."), func(a *attrDef) {
				a.Required = true
				a.Uniqueness = "server"
			}),
			complexAttr("members", true, "A list of members of the Group (users of this source).",
				with(str("value", "Identifier of the member of this Group."), func(a *attrDef) { a.Mutability = "immutable" }),
				with(str("$ref", "The URI of the member resource."), func(a *attrDef) {
					a.Type = filter.TypeReference
					a.RefTypes = []string{"User"}
					a.Mutability = "immutable"
				}),
				with(str("display", "A human-readable name."), func(a *attrDef) { a.Mutability = "immutable" }),
				with(str("type", "The type of member: User."), func(a *attrDef) {
					a.Mutability = "immutable"
					a.Canonical = []string{"User"}
				})),
		},
	}
	enterpriseSchema = &schemaDef{
		ID: SchemaEnterprise, Name: "EnterpriseUser", Description: "Enterprise User",
		Attrs: []*attrDef{
			str("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
			str("costCenter", "Identifies the name of a cost center."),
			str("organization", "Identifies the name of an organization."),
			str("division", "Identifies the name of a division."),
			str("department", "Identifies the name of a department."),
			complexAttr("manager", false, "The User's manager.",
				str("value", "The id of the SCIM resource representing the User's manager."),
				with(str("$ref", "The URI of the manager's User resource."), func(a *attrDef) {
					a.Type = filter.TypeReference
					a.RefTypes = []string{"User"}
				}),
				with(str("displayName", "The displayName of the User's manager."), func(a *attrDef) { a.Mutability = "readOnly" })),
		},
	}
)

// Common attributes of every resource (RFC 7643 section 3.1).
var (
	idAttr = &attrDef{Name: "id", Type: filter.TypeString, CaseExact: true, Mutability: "readOnly", Returned: "always", Uniqueness: "server",
		Description: "Unique identifier for the resource, assigned by the service provider."}
	externalIDAttr = &attrDef{Name: "externalId", Type: filter.TypeString, CaseExact: true, Mutability: "readWrite", Returned: "default", Uniqueness: "none",
		Description: "An identifier for the resource as defined by the provisioning client."}
	metaAttr = &attrDef{Name: "meta", Type: filter.TypeComplex, Mutability: "readOnly", Returned: "default", Uniqueness: "none",
		Description: "Resource metadata.",
		Sub: []*attrDef{
			with(str("resourceType", "The name of the resource type."), func(a *attrDef) { a.Mutability = "readOnly"; a.CaseExact = true }),
			{Name: "created", Type: filter.TypeDateTime, Mutability: "readOnly", Returned: "default", Uniqueness: "none", Description: "When the resource was added."},
			{Name: "lastModified", Type: filter.TypeDateTime, Mutability: "readOnly", Returned: "default", Uniqueness: "none", Description: "When the resource was last updated."},
			with(str("location", "The URI of the resource."), func(a *attrDef) { a.Mutability = "readOnly"; a.Type = filter.TypeReference; a.CaseExact = true }),
			with(str("version", "The version (ETag) of the resource."), func(a *attrDef) { a.Mutability = "readOnly"; a.CaseExact = true }),
		}}
	commonAttrs = []*attrDef{idAttr, externalIDAttr, metaAttr}
)

// resourceType ties a resource type to its schemas; it implements filter.Schema.
type resourceType struct {
	Name       string
	Endpoint   string
	Schema     *schemaDef
	Extensions []*schemaDef
}

var (
	userType  = &resourceType{Name: TypeUser, Endpoint: "/Users", Schema: userSchema, Extensions: []*schemaDef{enterpriseSchema}}
	groupType = &resourceType{Name: TypeGroup, Endpoint: "/Groups", Schema: groupSchema}
)

func init() {
	for _, s := range []*schemaDef{userSchema, groupSchema, enterpriseSchema} {
		for _, a := range s.Attrs {
			buildFilterAttr(a)
		}
	}
	for _, a := range commonAttrs {
		buildFilterAttr(a)
	}
}

func buildFilterAttr(a *attrDef) *filter.Attr {
	fa := &filter.Attr{Name: a.Name, Type: a.Type, CaseExact: a.CaseExact, Multi: a.Multi}
	for _, s := range a.Sub {
		fa.Sub = append(fa.Sub, buildFilterAttr(s))
	}
	a.filterAttr = fa
	return fa
}

// extension finds an extension schema by URN, case-insensitively.
func (rt *resourceType) extension(urn string) *schemaDef {
	for _, e := range rt.Extensions {
		if strings.EqualFold(e.ID, urn) {
			return e
		}
	}
	return nil
}

// lookupAttr finds uri:name: core attributes by name (with or without the core URN),
// extension attributes by URN. It returns the extension key ("" for core).
func (rt *resourceType) lookupAttr(uri, name string) (string, *attrDef) {
	if uri == "" || strings.EqualFold(uri, rt.Schema.ID) {
		for _, a := range commonAttrs {
			if strings.EqualFold(a.Name, name) {
				return "", a
			}
		}
		if a := rt.Schema.attr(name); a != nil {
			return "", a
		}
		return "", nil
	}
	if e := rt.extension(uri); e != nil {
		if a := e.attr(name); a != nil {
			return e.ID, a
		}
	}
	return "", nil
}

// Resolve implements filter.Schema.
func (rt *resourceType) Resolve(uri, name string) (string, *filter.Attr, bool) {
	ext, a := rt.lookupAttr(uri, name)
	if a == nil {
		return "", nil, false
	}
	return ext, a.filterAttr, true
}

var _ filter.Schema = (*resourceType)(nil)

// schemaJSON renders one schema as /Schemas publishes it.
func schemaJSON(s *schemaDef, location string) map[string]any {
	attrs := make([]any, 0, len(s.Attrs))
	for _, a := range s.Attrs {
		attrs = append(attrs, attrJSON(a))
	}
	return map[string]any{
		"schemas":     []any{schemaSchema},
		"id":          s.ID,
		"name":        s.Name,
		"description": s.Description,
		"attributes":  attrs,
		"meta":        map[string]any{"resourceType": "Schema", "location": location},
	}
}

func attrJSON(a *attrDef) map[string]any {
	m := map[string]any{
		"name":        a.Name,
		"type":        a.Type,
		"multiValued": a.Multi,
		"description": a.Description,
		"required":    a.Required,
		"caseExact":   a.CaseExact,
		"mutability":  a.Mutability,
		"returned":    a.Returned,
		"uniqueness":  a.Uniqueness,
	}
	if len(a.Canonical) > 0 {
		m["canonicalValues"] = a.Canonical
	}
	if len(a.RefTypes) > 0 {
		m["referenceTypes"] = a.RefTypes
	}
	if len(a.Sub) > 0 {
		subs := make([]any, 0, len(a.Sub))
		for _, s := range a.Sub {
			subs = append(subs, attrJSON(s))
		}
		m["subAttributes"] = subs
	}
	return m
}
