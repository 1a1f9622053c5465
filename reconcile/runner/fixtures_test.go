package runner_test

import (
	"strings"
	"testing"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
)

// Plan fixtures: the domain tests in package reconcile build the same ones; each test package
// keeps its own so it stands alone.

func desired(t *testing.T, m configs.MappingConfig, users ...reconcile.User) reconcile.Desired {
	t.Helper()
	d, _, err := reconcile.Map([]reconcile.SourceData{{Directory: reconcile.Directory{Source: "corp", Users: users}, Priority: 1}}, m)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func acc(id, email string) reconcile.Account {
	return reconcile.Account{AccountID: id, AccountType: reconcile.AccountAtlassian, Email: email, DisplayName: strings.Split(email, "@")[0], Active: true}
}

func grp(id, name string, members ...string) reconcile.LiveGroup {
	return reconcile.LiveGroup{ID: id, Name: name, Members: members, MembersRead: true}
}

func link(key, name, accountID string) reconcile.Link {
	return reconcile.Link{Source: "corp", Key: key, UserName: name, Email: name + "@example.com", AccountID: accountID, LinkedAt: t0}
}

func ownM(groupID, name, accountID string) reconcile.Owned {
	return reconcile.Owned{Kind: reconcile.OwnedMembership, Container: groupID, ContainerName: name, AccountID: accountID}
}

func simpleMapping() configs.MappingConfig {
	return configs.MappingConfig{ImportUsers: true, ImportGroups: true, DefaultGroups: []string{"jira-software-users"},
		Customers: []configs.CustomerMapping{{IdP: "Customers", ServiceDesks: []string{"DEMO"}, Organizations: []string{"Acme"}}}}
}
func wantLen[T any](t *testing.T, what string, s []T, n int) {
	t.Helper()
	if len(s) != n {
		t.Errorf("%s: %d items, want %d: %+v", what, len(s), n, s)
	}
}

func ch(k reconcile.Kind, account string) reconcile.Change {
	c := reconcile.Change{Kind: k, Source: "corp", UserKey: "k-" + account, UserName: account, AccountID: account, Reason: "test"}
	switch k {
	case reconcile.KindAddMember, reconcile.KindRemoveMember, reconcile.KindCreateGroup:
		c.Group = &reconcile.GroupRef{ID: "g1", Name: "eng"}
	case reconcile.KindAddCustomer, reconcile.KindRemoveCustomer:
		c.ServiceDesk = "10"
	case reconcile.KindAddOrganizationMember, reconcile.KindRemoveOrganizationMember:
		c.Organization, c.OrganizationID = "Acme", "o1"
	}
	return c
}

func plan(items ...reconcile.Change) reconcile.Changes {
	var c reconcile.Changes
	for _, it := range items {
		l := c.List(it.Kind)
		*l = append(*l, it)
	}
	return c
}
