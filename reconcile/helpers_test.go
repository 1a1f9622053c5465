package reconcile_test

import "github.com/idsync/idsync/reconcile"

// user is an active source record (the runner tests in reconcile/runner have the same).
func user(key, name, email string, groups ...string) reconcile.User {
	return reconcile.User{Key: key, UserName: name, Email: email, DisplayName: name, Active: true, Groups: groups}
}

func disabled(u reconcile.User) reconcile.User {
	u.Active = false
	return u
}
