package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// encoded is what WriteJSON wrote before it streamed: one indented encoding of the whole value.
func encoded(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func written(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	if err := WriteJSON(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// WriteJSON streams, byte for byte what one indented encoding writes, for every shape the
// commands print: run records with every kind of change, held items and maps, plans, empty
// and nil lists, secrets, times and HTML-like text.
func TestWriteJSONMatchesEncoding(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 1, 2, 3, 4, time.UTC)
	g := &reconcile.GroupRef{ID: "g-1", Name: "Eng <ops> & co"}
	var c reconcile.Changes
	for i, k := range reconcile.Kinds {
		l := c.List(k)
		for j := range i % 3 {
			*l = append(*l, reconcile.Change{Kind: k, UserName: fmt.Sprintf("u%d-%d", i, j), Group: g, Reason: "in IdP group \"x\"",
				Fields: []reconcile.FieldChange{{Field: "displayName", Old: "a", New: "b"}}, Groups: []reconcile.GroupRef{*g}})
		}
	}
	c.Links = []reconcile.Link{{Source: "corp", Key: "1", AccountID: "acc", LinkedAt: t0, RemovedGroups: []reconcile.GroupRef{}}}
	c.Notes = []string{"a note"}
	run := reconcile.Run{ID: "r1", Trigger: "cli", Started: t0, Finished: t0.Add(time.Second), Complete: true, Result: "ok",
		Counts: map[reconcile.Kind]map[string]int{reconcile.KindAddMember: {"ok": 2, "failed": 1}}, Errors: []string{"x"},
		Sources: []reconcile.SourceRun{{Name: "corp", Complete: true, Users: 3}}, Changes: &c,
		HeldItems: []reconcile.Held{{Change: c.AddMembers[0], Guard: "breaker"}}, HeldByGuard: map[string]int{"breaker": 1}}
	cases := map[string]any{
		"run":         run,
		"run pointer": &run,
		"plan":        &c,
		"empty plan":  &reconcile.Changes{},
		"empty run":   reconcile.Run{},
		"audit":       []reconcile.AuditRecord{{Time: t0, RunID: "r1", Action: "add_member", Result: "ok"}},
		"no audit":    []reconcile.AuditRecord{},
		"nil audit":   []reconcile.AuditRecord(nil),
		"map":         map[string]any{"secret": configs.Secret("hunter2"), "n": 1, "list": []int{1, 2}},
		"nil":         nil,
		"config":      configs.Default(),
	}
	for name, v := range cases {
		if got, want := written(t, v), encoded(t, v); got != want {
			t.Errorf("%s: WriteJSON wrote\n%s\nencoding/json writes\n%s", name, got, want)
		}
	}
}
