package app

import (
	"errors"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/ldap"
)

// The ldap source type (LDAPv3 directories and Active Directory) registers itself here, so
// the factory map in app.go stays the one list of pull source types. LDAP runs over its own
// connections: Options.HTTPClient and SourceRetry do not apply (a failed read is retried by
// the next pass, as the complete-or-fail rule wants).
func init() {
	sourceFactories[configs.SourceLDAP] = func(a *App, sc configs.SourceConfig, opts Options) (reconcile.Source, error) {
		if sc.LDAP == nil {
			return nil, errors.New("type ldap without an ldap block")
		}
		return ldap.New(sc.Name, *sc.LDAP, ldap.Options{Metrics: a.Metrics, Logger: a.Log})
	}
}
