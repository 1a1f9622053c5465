package simulation

import (
	"os"
	"testing"
)

// TestMain stops the slapd the LDAP worlds share once every test is done.
func TestMain(m *testing.M) {
	code := m.Run()
	StopLDAP()
	os.Exit(code)
}
