package google

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/idsync/idsync/sources/google/googletest"
)

func TestStateFromRawRecord(t *testing.T) {
	for raw, want := range map[string]userState{
		`{"id":"1","suspended":false,"archived":false}`:   stateActive,
		`{"id":"1","suspended":true,"archived":false}`:    stateInactive,
		`{"id":"1","suspended":false,"archived":true}`:    stateInactive,
		`{"id":"1","archived":true}`:                      stateInactive, // known inactive whatever the other says
		`{"id":"1","suspended":false}`:                    stateUnknown,
		`{"id":"1"}`:                                      stateUnknown,
		`{"id":"1","suspended":null,"archived":false}`:    stateUnknown,
		`{"id":"1","suspended":"false","archived":false}`: stateUnknown,
		`{"id":"1","suspended":0,"archived":false}`:       stateUnknown,
	} {
		var r statusRecord
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			t.Fatal(err)
		}
		if got, why := r.state(); got != want {
			t.Errorf("%s: state %d (%s), want %d", raw, got, why, want)
		}
	}
}

// The Go client decodes a record without suspended exactly like an active one: the source
// must not trust the client's struct for the state.
func TestUnknownMeansNo(t *testing.T) {
	cases := []struct {
		name string
		hook googletest.UserHook
		want []string
	}{
		{"both fields missing", func(email string, rec map[string]any) {
			if strings.HasPrefix(email, "ann") || strings.HasPrefix(email, "cy") {
				delete(rec, "suspended")
				delete(rec, "archived")
			}
		}, []string{"2 of 3 user records have no known state", `"ann@example.com" (field suspended is missing, field archived is missing)`, `"cy@example.com"`}},
		{"archived missing", func(email string, rec map[string]any) {
			if strings.HasPrefix(email, "ann") {
				delete(rec, "archived")
			}
		}, []string{`"ann@example.com" (field archived is missing)`}},
		{"null", func(email string, rec map[string]any) {
			if strings.HasPrefix(email, "ann") {
				rec["suspended"] = nil // the client's bool decodes null as false
			}
		}, []string{`"ann@example.com" (field suspended is not true or false)`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, googletest.Options{Org: smallOrg()}, nil)
			e.sim.SetUserHook(tc.hook)
			_, err := e.src.Snapshot(context.Background())
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("err = %v, want an incomplete read", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant %q", err, w)
				}
			}
			// users.get: the same record is an error too, for a targeted run.
			_, err = e.src.User(context.Background(), "ann@example.com")
			if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "no known state") {
				t.Errorf("User: %v", err)
			}
		})
	}
}

func TestASuspendedUserWithoutArchivedIsKnown(t *testing.T) {
	e := newEnv(t, googletest.Options{Org: smallOrg()}, nil)
	e.sim.SetUserHook(func(email string, rec map[string]any) {
		if strings.HasPrefix(email, "bob") {
			delete(rec, "archived")
		}
	})
	dir, err := e.src.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := userByName(dir, "bob@example.com"); b.Active {
		t.Error("a suspended user is active")
	}
}

func TestRawAndDecodedAnswersMustAgree(t *testing.T) {
	if _, err := usersStatus([]byte(`{"users":[{"id":"1"}]`)); err == nil {
		t.Error("a cut body decoded")
	}
	recs, err := usersStatus([]byte(`{"kind":"admin#directory#users"}`))
	if err != nil || len(recs) != 0 {
		t.Errorf("an empty page: %v %v", recs, err)
	}
}
