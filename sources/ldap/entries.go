package ldap

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
)

// Entries to values: reading attributes (ranged ones too), ids as text (GUIDs, SIDs), and
// distinguished names in canonical form for comparison.

// rangedValues returns the values of attr, including those of an Active Directory ranged
// attribute ("member;range=0-1499"), and the index the next range starts at ("" when the
// entry holds the last one).
func rangedValues(e *goldap.Entry, attr string) (vals []string, next string, err error) {
	prefix := strings.ToLower(attr) + ";range="
	for _, a := range e.Attributes {
		name := strings.ToLower(a.Name)
		switch {
		case name == strings.ToLower(attr):
			vals = append(vals, a.Values...)
		case strings.HasPrefix(name, prefix):
			vals = append(vals, a.Values...)
			n, err := nextRange(name[len(prefix):])
			if err != nil {
				return nil, "", fmt.Errorf("attribute %s: %w", a.Name, err)
			}
			next = n
		}
	}
	return vals, next, nil
}

// nextRange reads "low-high" of a ranged attribute: "" after the last range ("low-*"), else
// high+1.
func nextRange(r string) (string, error) {
	lo, hi, ok := strings.Cut(r, "-")
	if !ok {
		return "", fmt.Errorf("range %q is not low-high", r)
	}
	l, err := strconv.Atoi(lo)
	if err != nil || l < 0 {
		return "", fmt.Errorf("range %q is not low-high", r)
	}
	if hi == "*" {
		return "", nil
	}
	h, err := strconv.Atoi(hi)
	if err != nil || h < l {
		return "", fmt.Errorf("range %q is not low-high", r)
	}
	return strconv.Itoa(h + 1), nil
}

// readRanges reads the rest of the member values Active Directory hands out in ranges (1,500
// values an entry by default), one base search per range, bounded by max_objects.
func (s *Source) readRanges(ctx context.Context, c *conn, g *rawGroup) error {
	for g.rangeNext != "" {
		if len(g.members) > s.maxObjects {
			return fmt.Errorf("%w: group %q: more than max_objects (%d) members", ErrIncomplete, g.dn, s.maxObjects)
		}
		from := g.rangeNext
		g.rangeNext = ""
		progressed := false
		_, err := c.run(ctx, search{
			what: "group members", base: g.dn, scope: goldap.ScopeBaseObject, filter: "(objectClass=*)",
			attrs: []string{"member;range=" + from + "-*"}, limit: 1,
			each: func(e *goldap.Entry) error {
				vals, next, err := rangedValues(e, "member")
				if err != nil {
					return err
				}
				progressed = len(vals) > 0 || next == ""
				g.members = append(g.members, vals...)
				g.rangeNext = next
				return nil
			},
		})
		if err != nil {
			return fmt.Errorf("%w: members of group %q from %s: %w", ErrIncomplete, g.dn, from, err)
		}
		if !progressed {
			return fmt.Errorf("%w: members of group %q: the range from %s returned nothing", ErrIncomplete, g.dn, from)
		}
	}
	return nil
}

// idText writes an id attribute's value as text: objectGUID (and mS-DS-ConsistencyGuid) in
// GUID form, objectSid as S-1-..., UTF-8 as it is, other binary values as hex.
func idText(attr string, raw []byte) string {
	switch {
	case len(raw) == 0:
		return ""
	case (strings.EqualFold(attr, "objectGUID") || strings.EqualFold(attr, "mS-DS-ConsistencyGuid")) && len(raw) == 16:
		return FormatGUID(raw)
	case strings.EqualFold(attr, "objectSid"):
		if sid, ok := FormatSID(raw); ok {
			return sid
		}
	}
	if utf8.Valid(raw) {
		return strings.TrimSpace(string(raw))
	}
	return hex.EncodeToString(raw)
}

// FormatGUID writes a 16-byte GUID as Windows shows it: the first three fields are stored
// little-endian (objectGUID 0x78 0x56 0x34 0x12 ... reads 12345678-...).
func FormatGUID(b []byte) string {
	if len(b) != 16 {
		return hex.EncodeToString(b)
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// FormatSID writes a binary security identifier as S-R-A-S1-S2-...
func FormatSID(b []byte) (string, bool) {
	if len(b) < 8 || int(b[1])*4+8 != len(b) {
		return "", false
	}
	var auth uint64
	for _, x := range b[2:8] {
		auth = auth<<8 | uint64(x)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "S-%d-%d", b[0], auth)
	for i := range int(b[1]) {
		fmt.Fprintf(&sb, "-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return sb.String(), true
}

// canonDN normalises a DN for comparison: attribute types and values case-folded, escapes
// decoded (and written back one way), the values of a multi-valued RDN sorted.
func canonDN(dn string) (string, error) {
	p, err := goldap.ParseDN(dn)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for i, r := range p.RDNs {
		if i > 0 {
			sb.WriteByte(',')
		}
		parts := make([]string, 0, len(r.Attributes))
		for _, a := range r.Attributes {
			parts = append(parts, strings.ToLower(strings.TrimSpace(a.Type))+"="+escapeCanon(strings.ToLower(strings.Join(strings.Fields(a.Value), " "))))
		}
		sort.Strings(parts)
		sb.WriteString(strings.Join(parts, "+"))
	}
	return sb.String(), nil
}

func escapeCanon(s string) string { return canonEscaper.Replace(s) }

// canonAll normalises DNs, skipping (and counting) those that do not parse.
func canonAll(dns []string, bad *int) []string {
	out := make([]string, 0, len(dns))
	for _, d := range dns {
		c, err := canonDN(d)
		if err != nil {
			*bad++
			continue
		}
		out = append(out, c)
	}
	return out
}
