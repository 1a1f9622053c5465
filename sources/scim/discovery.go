package scim

import (
	"fmt"
	"net/http"
	"strings"
)

// discovery serves /ServiceProviderConfig, /ResourceTypes[/{name}] and /Schemas[/{urn}].
func (h *Handler) discovery(w http.ResponseWriter, s *source, endpoint, id string, hasID bool) {
	switch endpoint {
	case "serviceproviderconfig":
		if hasID {
			writeError(w, &Error{Status: http.StatusNotFound, Detail: "no such endpoint"})
			return
		}
		writeJSON(w, http.StatusOK, h.spConfig(s))
	case "resourcetypes":
		all := []map[string]any{h.resourceTypeJSON(s, userType), h.resourceTypeJSON(s, groupType)}
		if hasID {
			for i, rt := range []*resourceType{userType, groupType} {
				if strings.EqualFold(id, rt.Name) {
					writeJSON(w, http.StatusOK, all[i])
					return
				}
			}
			writeError(w, &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("resource type %q not found", id)})
			return
		}
		writeJSON(w, http.StatusOK, listOf(all))
	case "schemas":
		defs := []*schemaDef{userSchema, groupSchema, enterpriseSchema}
		all := make([]map[string]any, len(defs))
		for i, d := range defs {
			all[i] = schemaJSON(d, h.location(s.name, "Schemas/"+d.ID))
		}
		if hasID {
			for i, d := range defs {
				if strings.EqualFold(id, d.ID) {
					writeJSON(w, http.StatusOK, all[i])
					return
				}
			}
			writeError(w, &Error{Status: http.StatusNotFound, Detail: fmt.Sprintf("schema %q not found", id)})
			return
		}
		writeJSON(w, http.StatusOK, listOf(all))
	}
}

func listOf(items []map[string]any) map[string]any {
	res := make([]any, len(items))
	for i, it := range items {
		res[i] = it
	}
	return map[string]any{
		"schemas":      []string{schemaListResp},
		"totalResults": len(items),
		"startIndex":   1,
		"itemsPerPage": len(items),
		"Resources":    res,
	}
}

func (h *Handler) spConfig(s *source) map[string]any {
	return map[string]any{
		"schemas":          []string{schemaSPConfig},
		"documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": h.opts.MaxCount},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "Bearer token",
			"description": "The bearer token configured for this source (sources[].push.token).",
			"primary":     true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": h.location(s.name, "ServiceProviderConfig")},
	}
}

func (h *Handler) resourceTypeJSON(s *source, rt *resourceType) map[string]any {
	exts := make([]any, 0, len(rt.Extensions))
	for _, e := range rt.Extensions {
		exts = append(exts, map[string]any{"schema": e.ID, "required": false})
	}
	m := map[string]any{
		"schemas":     []string{schemaResType},
		"id":          rt.Name,
		"name":        rt.Name,
		"endpoint":    rt.Endpoint,
		"description": rt.Schema.Description,
		"schema":      rt.Schema.ID,
		"meta":        map[string]any{"resourceType": "ResourceType", "location": h.location(s.name, "ResourceTypes/"+rt.Name)},
	}
	if len(exts) > 0 {
		m["schemaExtensions"] = exts
	}
	return m
}
