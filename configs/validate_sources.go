package configs

import (
	"fmt"
	"slices"
	"strings"
)

// Validation of sources[]: names, types and their blocks, and the SCIM push listener.

func (v *validator) sources(c *Config) {
	if len(c.Sources) == 0 {
		// With no source every user looks gone; refuse rather than lean on the breaker.
		v.add("sources", "at least one source is required", ErrRequired)
		return
	}
	names := map[string]int{}
	tokens := map[string]string{} // SCIM token -> the key that holds it
	for i := range c.Sources {
		s := &c.Sources[i]
		p := fmt.Sprintf("sources[%d]", i)
		switch {
		case s.Name == "":
			v.required(p + ".name")
		case len(s.Name) > maxSourceNameLength || !sourceNameRE.MatchString(s.Name):
			v.add(p+".name", fmt.Sprintf("%q must match [a-z0-9-]+ (at most %d characters): it appears in SCIM URLs and metrics", truncate(s.Name, 70), maxSourceNameLength), ErrInvalid)
		default:
			if j, dup := names[s.Name]; dup {
				v.add(p+".name", fmt.Sprintf("%q is already the name of sources[%d]", s.Name, j), ErrDuplicate)
			} else {
				names[s.Name] = i
			}
		}
		v.sourceType(p, s)
		if s.MaxObjects < 1 {
			v.add(p+".max_objects", fmt.Sprintf("must be >= 1 (the most users or groups one listing of the source may report), got %d", s.MaxObjects), ErrInvalid)
		}
		if s.MiniOrange != nil {
			v.miniOrange(p+".miniorange", s.MiniOrange)
		}
		if s.SCIMPull != nil {
			v.scimPull(p+".scimpull", s.SCIMPull)
		}
		if s.LDAP != nil {
			v.ldap(p+".ldap", s.LDAP)
		}
		if s.Google != nil {
			v.google(p+".google", s.Google)
		}
		if s.Push != nil {
			v.push(p+".push", s, c, tokens)
		} else if s.Type == SourceSCIM {
			v.add(p+".push.token", "required: a push-only source (type scim) is its SCIM listener", ErrRequired)
		}
	}
}

func (v *validator) sourceType(p string, s *SourceConfig) {
	switch {
	case s.Type == "":
		v.add(p+".type", "required (one of "+strings.Join(SourceTypes, ", ")+")", ErrRequired)
		return
	case slices.Contains(plannedSourceTypes, s.Type):
		v.add(p+".type", fmt.Sprintf("%q is not supported yet (use one of %s)", s.Type, strings.Join(SourceTypes, ", ")), ErrUnsupported)
		return
	case !slices.Contains(SourceTypes, s.Type):
		v.add(p+".type", fmt.Sprintf("unknown source type %q (one of %s)", truncate(s.Type, 40), strings.Join(SourceTypes, ", ")), ErrInvalid)
		return
	}
	for _, b := range []struct {
		block   string
		present bool
	}{{SourceMiniOrange, s.MiniOrange != nil}, {SourceSCIMPull, s.SCIMPull != nil}, {SourceLDAP, s.LDAP != nil}, {SourceGoogle, s.Google != nil}} {
		switch {
		case b.block == s.Type && !b.present:
			v.add(p+"."+b.block, fmt.Sprintf("required for type %s", s.Type), ErrRequired)
		case b.block != s.Type && b.present:
			v.add(p+"."+b.block, fmt.Sprintf("does not belong to a source of type %s", s.Type), ErrInvalid)
		}
	}
}

func (v *validator) miniOrange(p string, m *MiniOrangeConfig) {
	v.url(p+".base_url", m.BaseURL)
	switch {
	case m.CustomerKey == "":
		v.required(p + ".customer_key")
	case !digitsRE.MatchString(m.CustomerKey):
		v.add(p+".customer_key", "must be the numeric customer key shown in miniOrange (Settings > API keys)", ErrInvalid)
	}
	if m.APIKey == "" {
		v.add(p+".api_key", "required (inline, api_key_file, or ${VAR})", ErrRequired)
	}
	v.pageSize(p+".page_size", m.PageSize)
	e := m.Endpoints
	for _, ep := range []struct{ key, val string }{
		{"users_list", e.UsersList}, {"groups_list", e.GroupsList}, {"group_members", e.GroupMembers},
		{"user_get", e.UserGet}, {"timestamp", e.Timestamp},
	} {
		switch {
		case ep.val == "":
			v.required(p + ".endpoints." + ep.key)
		case !strings.HasPrefix(ep.val, "/") || strings.ContainsAny(ep.val, "?# \t\r\n"):
			v.add(p+".endpoints."+ep.key, fmt.Sprintf("%q must be a path starting with /", truncate(ep.val, 60)), ErrInvalid)
		}
	}
	v.positive(p+".timeout", m.Timeout)
	v.rateLimit(p+".rate_limit", m.RateLimit)
}

func (v *validator) scimPull(p string, s *SCIMPullConfig) {
	v.url(p+".base_url", s.BaseURL)
	if s.Token == "" {
		v.add(p+".token", "required (inline, token_file, or ${VAR})", ErrRequired)
	}
	v.pageSize(p+".page_size", s.PageSize)
	v.positive(p+".timeout", s.Timeout)
	v.rateLimit(p+".rate_limit", s.RateLimit)
}

func (v *validator) push(p string, s *SourceConfig, c *Config, tokens map[string]string) {
	pu := s.Push
	if s.Type == SourceSCIM && !pu.Enabled {
		v.add(p+".enabled", "a push-only source (type scim) cannot disable push", ErrInvalid)
	}
	if !pu.Enabled {
		return
	}
	switch {
	case pu.Token == "":
		v.add(p+".token", "required (inline, token_file, or ${VAR})", ErrRequired)
	case pu.Token == c.AdminToken:
		v.add(p+".token", "must differ from admin_token: a SCIM token must never open the admin API", ErrDuplicate)
	default:
		if other, dup := tokens[pu.Token.Value()]; dup {
			v.add(p+".token", fmt.Sprintf("same token as %s: each source needs its own", other), ErrDuplicate)
		} else {
			tokens[pu.Token.Value()] = p + ".token"
		}
	}
	switch prev := pu.PreviousToken; {
	case prev == "":
	case prev == pu.Token:
		v.add(p+".previous_token", "same as token: set it to the token being retired, or leave it out", ErrDuplicate)
	case prev == c.AdminToken:
		v.add(p+".previous_token", "must differ from admin_token: a SCIM token must never open the admin API", ErrDuplicate)
	default:
		if other, dup := tokens[prev.Value()]; dup {
			v.add(p+".previous_token", fmt.Sprintf("same token as %s: each source needs its own", other), ErrDuplicate)
		} else {
			tokens[prev.Value()] = p + ".previous_token"
		}
	}
	if pu.Debounce < 0 {
		v.add(p+".debounce", fmt.Sprintf("must not be negative, got %s", pu.Debounce), ErrInvalid)
	}
	v.rateLimit(p+".rate_limit", pu.RateLimit)
}
