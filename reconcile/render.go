package reconcile

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// sortChanges orders every list deterministically (container, then person), so plans diff
// cleanly and tests can compare them. Nil lists become empty, so JSON shows [] not null.
func sortChanges(c *Changes) {
	for _, k := range Kinds {
		l := c.List(k)
		if *l == nil {
			*l = []Change{}
		}
		slices.SortFunc(*l, compareChanges)
	}
	slices.SortFunc(c.Links, func(a, b Link) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Key, b.Key))
	})
	slices.SortFunc(c.Forget, func(a, b Owned) int { return cmp.Compare(a.OwnedKey(), b.OwnedKey()) })
}

func compareChanges(a, b Change) int {
	return cmp.Or(
		cmp.Compare(a.Target(), b.Target()),
		cmp.Compare(a.UserName, b.UserName),
		cmp.Compare(a.AccountID, b.AccountID),
		cmp.Compare(a.UserKey, b.UserKey),
	)
}

// Target names the container of a change: group, desk or organization ("" for user changes).
func (c Change) Target() string {
	switch {
	case c.Group != nil:
		return c.Group.Name
	case c.ServiceDesk != "":
		return cmp.Or(c.ServiceDeskKey, c.ServiceDesk)
	case c.Organization != "":
		return c.Organization
	}
	return c.OrganizationID
}

// Who names the person or account of a change for people.
func (c Change) Who() string {
	switch {
	case c.UserName != "" && c.Email != "" && !strings.EqualFold(c.UserName, c.Email):
		return c.UserName + " <" + c.Email + ">"
	case c.UserName != "":
		return c.UserName
	case c.Email != "":
		return c.Email
	case c.AccountID != "":
		return c.AccountID
	}
	return "-"
}

// What says what a change does to its target, by name where one is known (the WHO column
// already names the person; ids stay in the JSON plan, which is what is applied).
func (c Change) What() string {
	switch c.Kind {
	case KindCreateGroup:
		return "group " + c.Group.Name
	case KindCreateUser:
		return "licensed account " + orDash(c.Email)
	case KindCreateCustomer:
		return "portal-only customer " + orDash(c.Email)
	case KindReactivateUser:
		if len(c.Groups) > 0 {
			return "reactivate, restore " + GroupNames(c.Groups)
		}
		return "reactivate " + c.account()
	case KindUpdateUser:
		var parts []string
		for _, f := range c.Fields {
			parts = append(parts, fmt.Sprintf("%s %q -> %q", f.Field, f.Old, f.New))
		}
		return strings.Join(parts, ", ")
	case KindAddMember, KindRemoveMember:
		return "group " + c.Group.Name
	case KindAddCustomer, KindRemoveCustomer:
		return "service desk " + cmp.Or(c.ServiceDeskKey, c.ServiceDesk)
	case KindAddOrganizationMember, KindRemoveOrganizationMember:
		return "organization " + cmp.Or(c.Organization, c.OrganizationID)
	case KindDeactivateUser:
		if len(c.Groups) > 0 && c.Unlisted {
			return "deactivate " + c.account() + ": remove from " + GroupNames(c.Groups) + " (no member listing shows the account)"
		}
		if len(c.Groups) > 0 {
			return "deactivate " + c.account() + ": remove from " + GroupNames(c.Groups)
		}
		return "deactivate " + c.account()
	}
	return ""
}

// account names the account of a change in What: "account" when WHO already names the
// person, else its id.
func (c Change) account() string {
	if c.UserName != "" || c.Email != "" || c.AccountID == "" {
		return "account"
	}
	return "account " + c.AccountID
}

// GroupNames lists the names of gs, comma-separated.
func GroupNames(gs []GroupRef) string {
	names := make([]string, len(gs))
	for i, g := range gs {
		names[i] = g.Name
	}
	return strings.Join(names, ", ")
}

// RenderOptions tune the plan table.
type RenderOptions struct {
	// Held are the items guards kept back; they are listed after the plan with their guard
	// (ownership drops only counted: by design they are not idsync's to take).
	Held []Held
	// HeldCounts, when set, are the exact counts per guard (Run.HeldByGuard) for a Held
	// list that was capped.
	HeldCounts map[string]int
	// MaxRows caps the rows listed per kind (0: no cap); the summary still counts all.
	MaxRows int
	// Links lists the links the pass would record (email matches) too.
	Links bool
}

// Render writes the plan as a table an admin reads: kind, who, what, reason; then a summary
// with counts per kind; unsupported items are marked and not counted as writes.
func Render(w io.Writer, c Changes, o RenderOptions) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tWHO\tWHAT\tREASON")
	for _, k := range Kinds {
		l := *c.List(k)
		for i, ch := range l {
			if o.MaxRows > 0 && i == o.MaxRows {
				fmt.Fprintf(tw, "%s\t... %d more\t\t\n", k, len(l)-i)
				break
			}
			kind := string(k)
			if ch.Unsupported != "" {
				kind += " (unsupported: " + ch.Unsupported + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", kind, clean(ch.Who()), clean(ch.What()), clean(ch.Reason))
		}
	}
	if o.Links {
		for _, l := range c.Links {
			fmt.Fprintf(tw, "link\t%s\taccount %s\tsource record %s/%s\n", clean(cmp.Or(l.UserName, l.Email)), l.AccountID, clean(l.Source), clean(l.Key))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing plan: %w", err)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Summary:")
	total, writes := 0, 0
	for _, k := range Kinds {
		l := *c.List(k)
		if len(l) == 0 {
			continue
		}
		uns := 0
		for _, ch := range l {
			if ch.Unsupported != "" {
				uns++
			}
		}
		total += len(l)
		writes += len(l) - uns
		if uns > 0 {
			fmt.Fprintf(w, "  %-28s %6d  (%d unsupported)\n", k, len(l), uns)
		} else {
			fmt.Fprintf(w, "  %-28s %6d\n", k, len(l))
		}
	}
	if len(c.Links) > 0 {
		fmt.Fprintf(w, "  %-28s %6d  (no Jira write)\n", "new or updated links", len(c.Links))
	}
	fmt.Fprintf(w, "  %-28s %6d  (%d to apply)\n", "total", total, writes)
	if len(o.Held) > 0 || len(o.HeldCounts) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Held back:")
		byGuard := o.HeldCounts
		if byGuard == nil {
			byGuard = map[string]int{}
			for _, h := range o.Held {
				byGuard[h.Guard]++
			}
		}
		for _, g := range guardOrder {
			if byGuard[g] > 0 {
				what := "dropped"
				if (Held{Guard: g}).Waiting() {
					what = "held for a later pass"
				}
				fmt.Fprintf(w, "  %-28s %6d  (%s)\n", g, byGuard[g], what)
			}
		}
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		// Ownership drops are counted above but not listed, so the table may have no rows.
		if len(o.Held) > 0 && slices.ContainsFunc(guardOrder, func(g string) bool { return g != GuardOwnership && byGuard[g] > 0 }) {
			fmt.Fprintln(tw, "GUARD\tKIND\tWHO\tWHAT\tWHY")
		}
		printed := map[string]int{}
		for _, h := range o.Held {
			if h.Guard == GuardOwnership || (o.MaxRows > 0 && printed[h.Guard] == o.MaxRows) {
				continue // ownership drops: by design not idsync's to take; counted above
			}
			printed[h.Guard]++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Guard, h.Change.Kind, clean(h.Change.Who()), clean(h.Change.What()), clean(h.Reason))
		}
		for _, g := range guardOrder {
			if more := byGuard[g] - printed[g]; g != GuardOwnership && more > 0 {
				fmt.Fprintf(tw, "%s\t... %d more\t\t\t\n", g, more)
			}
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("writing plan: %w", err)
		}
	}
	if len(c.Notes) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Notes:")
		for _, n := range c.Notes {
			fmt.Fprintln(w, "  - "+clean(n))
		}
	}
	return nil
}

// guardOrder is the order guards run in (and are listed in).
var guardOrder = []string{GuardIdentity, GuardPolicy, GuardOwnership, GuardIncomplete, GuardGrace, GuardBreaker}

// RenderRun renders a run record's plan (Run.Changes) with what its guards held back
// (Run.HeldItems, counted exactly by Run.HeldByGuard): what `idsync plan`, the demo and
// anyone showing a stored run print.
func RenderRun(w io.Writer, run Run, o RenderOptions) error {
	var c Changes
	if run.Changes != nil {
		c = *run.Changes
	}
	o.Held, o.HeldCounts = run.HeldItems, run.HeldByGuard
	return Render(w, c, o)
}

// clean keeps source-controlled text from breaking the table (tabs, newlines, escapes).
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
