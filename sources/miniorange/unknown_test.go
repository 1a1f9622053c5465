package miniorange

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// Unknown means no: a user record whose status is missing, renamed or not one idsync knows is
// never taken as active. The read fails as incomplete and says which records and which field.

func TestSnapshotUserWithoutStatusIsIncomplete(t *testing.T) {
	srv := startSim(t, nil)
	users := srv.Users()
	victim := users[3].UserName
	srv.SetUserHook(func(endpoint, userName string, u map[string]any) {
		if endpoint == miniorangetest.PathUsersList && userName == victim {
			delete(u, "status")
		}
	})
	dir, err := newSource(t, srv.URL, nil).Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Snapshot error = %v, want ErrIncomplete", err)
	}
	want := fmt.Sprintf("users listing: 1 of 50 user records have no known status, and a user whose status is missing or unknown is never taken as active: %q (field status is missing)", victim)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\ndoes not contain %q", err, want)
	}
	if dir.Users != nil {
		t.Error("a failed read returned users")
	}
}

func TestSnapshotRenamedStatusFieldIsIncomplete(t *testing.T) {
	srv := startSim(t, nil)
	users := srv.Users()
	// A tenant that calls the field "state": no record has a status any more.
	srv.SetUserHook(func(endpoint, _ string, u map[string]any) {
		if endpoint == miniorangetest.PathUsersList {
			u["state"] = u["status"]
			delete(u, "status")
		}
	})
	_, err := newSource(t, srv.URL, nil).Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Snapshot error = %v, want ErrIncomplete", err)
	}
	msg := err.Error()
	// The first five records are named (in listing order), the rest counted.
	for _, u := range users[:5] {
		if !strings.Contains(msg, fmt.Sprintf("%q (field status is missing)", u.UserName)) {
			t.Errorf("error does not name %q: %s", u.UserName, msg)
		}
	}
	if strings.Contains(msg, users[5].UserName) {
		t.Errorf("error names more than five records: %s", msg)
	}
	if !strings.Contains(msg, "50 of 50 user records have no known status") || !strings.Contains(msg, "and 45 more") {
		t.Errorf("error does not count the records: %s", msg)
	}
}

func TestSnapshotUnknownStatusValuesAreNamed(t *testing.T) {
	srv := startSim(t, nil)
	users := srv.Users()
	a, b := users[0].UserName, users[7].UserName
	srv.SetUserHook(func(endpoint, userName string, u map[string]any) {
		switch userName {
		case a:
			u["status"] = "PENDING_APPROVAL"
		case b:
			u["status"] = ""
		}
	})
	_, err := newSource(t, srv.URL, nil).Snapshot(context.Background())
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Snapshot error = %v, want ErrIncomplete", err)
	}
	for _, want := range []string{
		"2 of 50 user records",
		fmt.Sprintf(`%q (unknown user status "PENDING_APPROVAL" in field status)`, a),
		fmt.Sprintf("%q (field status is missing)", b),
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}
}

// A record that answers like users/get (userStatus, no status) is read by that field, and
// named by it when its value is unknown.
func TestSnapshotListedUserStatusField(t *testing.T) {
	srv := startSim(t, nil)
	users := srv.Users()
	odd := users[2].UserName
	srv.SetUserHook(func(endpoint, userName string, u map[string]any) {
		u["userStatus"] = u["status"]
		delete(u, "status")
		if userName == odd {
			u["userStatus"] = "ARCHIVED"
		}
	})
	_, err := newSource(t, srv.URL, nil).Snapshot(context.Background())
	want := fmt.Sprintf(`%q (unknown user status "ARCHIVED" in field userStatus)`, odd)
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Snapshot error = %v, want ErrIncomplete naming %s", err, want)
	}
	srv.SetUserHook(func(endpoint, userName string, u map[string]any) {
		u["userStatus"] = u["status"]
		delete(u, "status")
	})
	dir, err := newSource(t, srv.URL, nil).Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	for i, u := range dir.Users {
		if u.Active == users[i].Disabled {
			t.Errorf("user %q active = %v, simulator disabled = %v", u.UserName, u.Active, users[i].Disabled)
		}
	}
}

func TestUserWithoutUserStatusIsAnError(t *testing.T) {
	srv := startSim(t, nil)
	var active miniorangetest.User
	for _, u := range srv.Users() {
		if !u.Disabled {
			active = u
			break
		}
	}
	for _, tc := range []struct {
		name string
		edit func(u map[string]any)
		want string
	}{
		{"missing", func(u map[string]any) { delete(u, "userStatus") }, "field userStatus is missing"},
		{"renamed", func(u map[string]any) { u["state"] = u["userStatus"]; delete(u, "userStatus") }, "field userStatus is missing"},
		{"unknown", func(u map[string]any) { u["userStatus"] = "PENDING" }, `unknown user status "PENDING" in field userStatus`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.SetUserHook(func(endpoint, _ string, u map[string]any) {
				if endpoint == miniorangetest.PathUserGet {
					tc.edit(u)
				}
			})
			t.Cleanup(func() { srv.SetUserHook(nil) })
			u, err := newSource(t, srv.URL, nil).User(context.Background(), active.UserName)
			if err == nil {
				t.Fatalf("User = %+v, want an error", u)
			}
			if errors.Is(err, reconcile.ErrUserNotFound) || !errors.Is(err, ErrIncomplete) {
				t.Errorf("error = %v, want ErrIncomplete and not ErrUserNotFound", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), active.UserName) {
				t.Errorf("error %q does not name the user and %q", err, tc.want)
			}
			if u.Active || u.UserName != "" {
				t.Errorf("User returned %+v with the error", u)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	for _, s := range []string{"ACTIVE", "active", " Enabled ", "TRUE"} {
		if active, err := parseStatus(s); err != nil || !active {
			t.Errorf("parseStatus(%q) = %v, %v; want active", s, active, err)
		}
	}
	for _, s := range []string{"DISABLED", "inactive", "Suspended", "LOCKED", "BLOCKED", "DEACTIVATED", "false"} {
		if active, err := parseStatus(s); err != nil || active {
			t.Errorf("parseStatus(%q) = %v, %v; want inactive", s, active, err)
		}
	}
	for _, s := range []string{"", "  ", "PENDING", "1", "yes", "null"} {
		if active, err := parseStatus(s); err == nil || active {
			t.Errorf("parseStatus(%q) = %v, %v; want an error and never active", s, active, err)
		}
	}
}
