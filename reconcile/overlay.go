package reconcile

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// HashDirectory is the sha256 of the directory's canonical JSON (users by key, groups by key,
// each user's groups sorted), so an unchanged source hashes the same whatever its order.
// The JSON is written to the hash one record at a time, in an order sorted by index: a copy
// of a big directory would cost as much memory as the directory.
func HashDirectory(d Directory) string {
	h := sha256.New()
	w := bufio.NewWriterSize(h, 64<<10)
	src, _ := json.Marshal(d.Source)
	_, _ = w.WriteString(`{"source":`)
	_, _ = w.Write(src)
	_, _ = w.WriteString(`,"users":`)
	writeSorted(w, d.Users, func(a, b User) int { return cmpPair(a.Key, a.UserName, b.Key, b.UserName) },
		func(u User) User {
			u.Groups = slices.Clone(u.Groups)
			slices.Sort(u.Groups)
			return u
		})
	_, _ = w.WriteString(`,"groups":`)
	writeSorted(w, d.Groups, func(a, b Group) int { return cmpPair(a.Key, a.Name, b.Key, b.Name) }, nil)
	_, _ = w.WriteString("}\n")
	_ = w.Flush()
	return hex.EncodeToString(h.Sum(nil))
}

// writeSorted writes list as a JSON array in cmp's order (null when nil), each element
// passed through canon first when set.
func writeSorted[T any](w *bufio.Writer, list []T, cmp func(a, b T) int, canon func(T) T) {
	if list == nil {
		_, _ = w.WriteString("null")
		return
	}
	order := make([]int32, len(list))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp(list[a], list[b]) })
	_ = w.WriteByte('[')
	for n, i := range order {
		if n > 0 {
			_ = w.WriteByte(',')
		}
		v := list[i]
		if canon != nil {
			v = canon(v)
		}
		b, _ := json.Marshal(v) // maps (Attributes) encode with sorted keys
		_, _ = w.Write(b)
	}
	_ = w.WriteByte(']')
}

// cmpPair orders (a1, a2) against (b1, b2) as the strings a1+"\x00"+a2 and b1+"\x00"+b2
// compare, without building them.
func cmpPair(a1, a2, b1, b2 string) int {
	if a1 == b1 {
		return strings.Compare(a2, b2)
	}
	n := min(len(a1), len(b1))
	if c := strings.Compare(a1[:n], b1[:n]); c != 0 {
		return c
	}
	// One is a prefix of the other: the shorter continues with NUL then its second part.
	if len(a1) < len(b1) {
		return strings.Compare("\x00"+a2, b1[n:]+"\x00"+b2)
	}
	return strings.Compare(a1[n:]+"\x00"+a2, "\x00"+b2)
}

// Overlay merges a push source's users over the last complete pull of the same source, taken
// at taken. Pushed users join pulled ones by userName (case-insensitive), then by email; a
// push newer than the pull is laid over the pulled record field by field (overlayUser: what
// SCIM does not carry stays as pulled, and the pulled key, which links use, stays); an older
// push that disagrees with the pull loses, with a warning naming the user.
// Either way the joined user carries the pushed record's key as an alias: it is one person,
// and a link made under the SCIM id (by a push-triggered pass) must keep finding them after
// the pull lists them under its own key. Pushed users the pull does not know are added when
// newer than the pull.
func Overlay(pull Directory, taken time.Time, push Directory) (Directory, []Warning) {
	out := Directory{Source: pull.Source, Users: slices.Clone(pull.Users), Groups: slices.Clone(pull.Groups)}
	byName := make(map[string]int, len(out.Users))
	byEmail := make(map[string]int, len(out.Users))
	index := func(i int) {
		u := &out.Users[i]
		byName[lower(strings.TrimSpace(u.UserName))] = i
		if u.Email != "" {
			if _, dup := byEmail[lower(strings.TrimSpace(u.Email))]; !dup {
				byEmail[lower(strings.TrimSpace(u.Email))] = i
			}
		}
	}
	for i := range out.Users {
		index(i)
	}
	pushed := make(map[string]bool, len(push.Groups))
	for _, g := range push.Groups {
		pushed[lower(strings.TrimSpace(g.Name))] = true
	}
	var warns []Warning
	for _, u := range push.Users {
		j, ok := byName[lower(strings.TrimSpace(u.UserName))]
		if !ok && u.Email != "" {
			j, ok = byEmail[lower(strings.TrimSpace(u.Email))]
		}
		newer := u.Modified.After(taken)
		switch {
		case newer && ok:
			out.Users[j] = overlayUser(out.Users[j], u, pushed)
		case newer:
			out.Users = append(out.Users, u)
			index(len(out.Users) - 1)
		case ok:
			if disagree(out.Users[j], u, pushed) {
				warns = append(warns, Warning{Source: pull.Source, Key: out.Users[j].Key, UserName: u.UserName,
					Message: "the complete pull of " + taken.UTC().Format(time.RFC3339) + " disagrees with an older push; the pull wins"})
			}
			out.Users[j].Aliases = WithKeys(out.Users[j].Aliases, out.Users[j].Key, u.Key, u.Aliases)
		case u.Active:
			warns = append(warns, Warning{Source: pull.Source, UserName: u.UserName,
				Message: "pushed before the complete pull of " + taken.UTC().Format(time.RFC3339) + ", which does not list the user; the pull wins"})
		}
	}
	have := make(map[string]bool, len(out.Groups))
	for _, g := range out.Groups {
		have[lower(g.Name)] = true
	}
	for _, g := range push.Groups {
		if !have[lower(g.Name)] {
			have[lower(g.Name)] = true
			out.Groups = append(out.Groups, g)
		}
	}
	return out, warns
}

// overlayUser lays a newer push over a pulled record field by field: a push changes only
// what SCIM carries (names, email, active, attributes it sends, and the memberships of the
// groups the SCIM client pushes, named in pushed); the groups and attributes only the pull
// knows stay as pulled. The pulled key stays (links use it) and the pushed key becomes an
// alias.
func overlayUser(pulled, push User, pushed map[string]bool) User {
	m := pulled
	m.Aliases = WithKeys(pulled.Aliases, pulled.Key, push.Key, push.Aliases)
	m.Email = cmp.Or(push.Email, pulled.Email)
	m.DisplayName = cmp.Or(push.DisplayName, pulled.DisplayName)
	m.GivenName = cmp.Or(push.GivenName, pulled.GivenName)
	m.FamilyName = cmp.Or(push.FamilyName, pulled.FamilyName)
	m.Active = push.Active
	m.Modified = push.Modified
	groups := make([]string, 0, len(pulled.Groups)+len(push.Groups))
	for _, g := range pulled.Groups {
		if !pushed[lower(strings.TrimSpace(g))] {
			groups = append(groups, g)
		}
	}
	m.Groups = append(groups, push.Groups...)
	if len(push.Attributes) > 0 {
		m.Attributes = maps.Clone(pulled.Attributes)
		if m.Attributes == nil {
			m.Attributes = make(map[string]string, len(push.Attributes))
		}
		maps.Copy(m.Attributes, push.Attributes)
	}
	return m
}

// WithKeys returns a new alias list: aliases plus key and more, without main (the user's own
// key), empty keys or repeats. It never appends into the caller's slice, which a cloned
// directory shares with its original.
func WithKeys(aliases []string, main, key string, more []string) []string {
	out := make([]string, 0, len(aliases)+1+len(more))
	add := func(k string) {
		if k = strings.TrimSpace(k); k != "" && k != main && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	for _, k := range aliases {
		add(k)
	}
	add(key)
	for _, k := range more {
		add(k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// disagree reports whether an older push b differs from the pulled a in what SCIM carries:
// names, email, active, and the memberships of the pushed groups.
func disagree(a, b User, pushed map[string]bool) bool {
	if a.Active != b.Active || !strings.EqualFold(strings.TrimSpace(a.Email), strings.TrimSpace(b.Email)) ||
		(b.DisplayName != "" && a.DisplayName != b.DisplayName) {
		return true
	}
	ga, gb := foldedSet(a.Groups), foldedSet(b.Groups)
	for g := range ga {
		if pushed[g] && !gb[g] {
			return true
		}
	}
	for g := range gb {
		if !ga[g] {
			return true
		}
	}
	return false
}

func foldedSet(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[lower(strings.TrimSpace(s))] = true
	}
	return m
}
