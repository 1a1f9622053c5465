package e2e

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/scimpull"
)

// TestSCIMPullReadsOwnListener reads idsync's own SCIM listener with the generic SCIM pull
// source, over more pages than one, and checks users, groups, memberships and deprovisions.
func TestSCIMPullReadsOwnListener(t *testing.T) {
	e := newPushEnv(t)
	ids := map[string]string{}
	names := []string{"dan", "eve", "fay", "gus", "hal", "ida", "jon"}
	for _, n := range names {
		ids[n] = e.call(t, http.MethodPost, "/Users", scimUser(n), http.StatusCreated)["id"].(string)
	}
	e.call(t, http.MethodPost, "/Groups", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": "Sales",
		"members": []map[string]string{{"value": ids["dan"]}, {"value": ids["eve"]}},
	}, http.StatusCreated)
	e.call(t, http.MethodPatch, "/Users/"+ids["jon"], map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []map[string]any{{"op": "replace", "value": map[string]any{"active": false}}},
	}, http.StatusOK, http.StatusNoContent)

	src, err := scimpull.New("mirror", configs.SCIMPullConfig{BaseURL: e.scim, Token: pushToken, PageSize: 3},
		scimpull.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dir, err := src.Snapshot(context.Background())
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if len(dir.Users) != len(names) {
		t.Fatalf("read %d users over pages of 3, want %d", len(dir.Users), len(names))
	}
	byName := map[string]reconcile.User{}
	for _, u := range dir.Users {
		byName[strings.TrimSuffix(u.UserName, "@example.com")] = u
	}
	if !slices.Contains(byName["dan"].Groups, "Sales") || !slices.Contains(byName["eve"].Groups, "Sales") || len(byName["fay"].Groups) != 0 {
		t.Fatalf("memberships: dan %v eve %v fay %v", byName["dan"].Groups, byName["eve"].Groups, byName["fay"].Groups)
	}
	if byName["jon"].Active || !byName["dan"].Active || byName["dan"].Email != "dan@example.com" || byName["dan"].Key != ids["dan"] {
		t.Fatalf("conversion: jon %+v dan %+v", byName["jon"], byName["dan"])
	}
	u, err := src.User(context.Background(), "EVE@example.com")
	if err != nil || u.Key != ids["eve"] {
		t.Fatalf("User(eve) = %+v, %v", u, err)
	}
	if _, err := src.User(context.Background(), "nobody@example.com"); !errors.Is(err, reconcile.ErrUserNotFound) {
		t.Fatalf("User(nobody) err = %v, want ErrUserNotFound", err)
	}
	bad, _ := scimpull.New("mirror", configs.SCIMPullConfig{BaseURL: e.scim, Token: "wrong-token-0123456789", PageSize: 3},
		scimpull.Options{Logger: zerolog.Nop(), RetryMax: 1})
	defer bad.Close()
	if _, err := bad.Snapshot(context.Background()); err == nil {
		t.Fatal("Snapshot with a wrong token succeeded")
	}
}
