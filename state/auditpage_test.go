package state

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/idsync/idsync/reconcile"
)

// pageAll reads every page of q and the number of pages it took.
func pageAll(t *testing.T, s *Store, q AuditQuery) ([]reconcile.AuditRecord, int) {
	t.Helper()
	var out []reconcile.AuditRecord
	for pages := 1; ; pages++ {
		p, err := s.AuditPage(q)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Records) > max(q.Limit, 0) && q.Limit > 0 {
			t.Fatalf("page of %d records, limit %d", len(p.Records), q.Limit)
		}
		out = append(out, p.Records...)
		if p.Next == "" {
			return out, pages
		}
		q.Cursor = p.Next
	}
}

func TestAuditPages(t *testing.T) {
	s := newStore(t)
	var entry reconcile.JournalEntry
	for i := range 25 {
		user := "ann"
		if i%3 == 0 {
			user = "bob"
		}
		entry.Audit = append(entry.Audit, reconcile.AuditRecord{
			Time: t0.Add(time.Duration(i) * time.Minute), Action: fmt.Sprint("a", i), UserName: user, Result: "ok"})
	}
	if err := s.Journal(entry); err != nil {
		t.Fatal(err)
	}
	for _, q := range []AuditQuery{
		{Limit: 7},
		{Limit: 25},
		{Limit: 1},
		{Since: t0.Add(10 * time.Minute), Limit: 4},
		{User: "ANN", Limit: 5},
		{User: "bob", Since: t0.Add(4 * time.Minute), Limit: 2},
	} {
		got, pages := pageAll(t, s, q)
		want, err := s.Audit(q.Since, q.User)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, func(a, b reconcile.AuditRecord) bool { return a.Action == b.Action }) {
			t.Errorf("%+v: paged %d records, Audit %d", q, len(got), len(want))
		}
		if wantPages := max(1, (len(want)+q.Limit-1)/q.Limit); pages < wantPages || pages > wantPages+1 {
			t.Errorf("%+v: %d pages for %d records", q, pages, len(want))
		}
	}

	// A record appended between two pages comes on a later page, nothing repeats.
	p1, err := s.AuditPage(AuditQuery{Limit: 20})
	if err != nil || p1.Next == "" {
		t.Fatal(p1, err)
	}
	late := reconcile.AuditRecord{Time: t0.Add(time.Hour), Action: "late", UserName: "cy", Result: "ok"}
	if err := s.Journal(reconcile.JournalEntry{Audit: []reconcile.AuditRecord{late}}); err != nil {
		t.Fatal(err)
	}
	rest, _ := pageAll(t, s, AuditQuery{Limit: 20, Cursor: p1.Next})
	if len(rest) != 6 || rest[5].Action != "late" || rest[0].Action != "a20" {
		t.Errorf("second page after an append: %v", rest)
	}

	// A cursor of another query, or garbage, is refused.
	pu, _ := s.AuditPage(AuditQuery{User: "ann", Limit: 2})
	for _, q := range []AuditQuery{
		{Cursor: pu.Next},                  // a user cursor on the time index
		{User: "bob", Cursor: pu.Next},     // another user's cursor
		{Cursor: "not base64!"},            // damaged
		{User: "ann", Cursor: p1.Next[:1]}, // cut short
	} {
		if _, err := s.AuditPage(q); !errors.Is(err, ErrBadCursor) {
			t.Errorf("%+v: err %v, want ErrBadCursor", q, err)
		}
	}
}

func TestCollapseIntentsLooksAhead(t *testing.T) {
	recs := []reconcile.AuditRecord{
		{Action: "create", Result: reconcile.ItemStarted, Intent: "r/1"},
		{Action: "create", Result: "ok", Intent: "r/1"},
		{Action: "add", Result: reconcile.ItemStarted, Intent: "r/2"},
		{Action: "remove", Result: reconcile.ItemStarted, Intent: "r/3"},
	}
	later := []reconcile.AuditRecord{{Action: "add", Result: "failed", Intent: "r/2"}}
	got := CollapseIntents(recs, later)
	var results []string
	for _, r := range got {
		results = append(results, r.Action+":"+r.Result)
	}
	if want := []string{"create:ok", "remove:started"}; !slices.Equal(results, want) {
		t.Errorf("collapsed %v, want %v", results, want)
	}
	if len(recs) != 4 {
		t.Error("the input was changed")
	}
}
