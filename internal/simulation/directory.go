package simulation

import (
	"strings"
	"sync"

	"github.com/idsync/idsync/sinks/jira/jiratest"
)

// directory ties Jira accounts to IdP people without asking idsync: every email and userName
// a person ever had names them (the history never reuses one), and an account is a person's
// when its email was one of theirs when the account was first seen. Accounts nobody's email
// names (site admin, app, customers, accounts made by hand) are protected: idsync must
// never change them.
type directory struct {
	mu        sync.Mutex
	byEmail   map[string]string // lower email -> person id
	byName    map[string]string // lower userName -> person id
	userName  map[string]string // person id -> userName
	accounts  map[string]string // accountId -> person id ("" for protected accounts)
	protected map[string]string // accountId -> why it is protected
}

func newDirectory() *directory {
	return &directory{byEmail: map[string]string{}, byName: map[string]string{}, userName: map[string]string{},
		accounts: map[string]string{}, protected: map[string]string{}}
}

func (d *directory) addPerson(p *person) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range p.Emails {
		d.byEmail[strings.ToLower(e)] = p.ID
	}
	d.byName[strings.ToLower(p.UserName)] = p.ID
	d.userName[p.ID] = p.UserName
}

func (d *directory) addEmail(id, email string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.byEmail[strings.ToLower(email)] = id
}

// seedAccount records an account that existed before idsync ran.
func (d *directory) seedAccount(a jiratest.Account) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok := d.byEmail[strings.ToLower(a.Email)]; ok && a.Email != "" && a.AccountType == jiratest.TypeAtlassian {
		d.accounts[a.AccountID] = id
		return
	}
	why := "account no source knows"
	switch {
	case a.AccountType == jiratest.TypeApp:
		why = "app account"
	case a.AccountType == jiratest.TypeCustomer:
		why = "customer account"
	case strings.EqualFold(a.Email, jiratest.DefaultEmail):
		why = "site admin"
	}
	d.accounts[a.AccountID] = ""
	d.protected[a.AccountID] = why
}

// learn ties an account to the person whose email it was created with (idsync's creates).
func (d *directory) learn(accountID, email string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, known := d.accounts[accountID]; known {
		return
	}
	if id, ok := d.byEmail[strings.ToLower(email)]; ok {
		d.accounts[accountID] = id
		return
	}
	d.accounts[accountID] = ""
	d.protected[accountID] = "account of " + email + ", whom no source knows"
}

// person returns the person an account belongs to ("" for protected or unknown accounts).
func (d *directory) person(accountID string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.accounts[accountID]
}

// protectedWhy says why an account must not be touched ("" when idsync may manage it).
func (d *directory) protectedWhy(accountID string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if why, ok := d.protected[accountID]; ok {
		return why
	}
	if _, ok := d.accounts[accountID]; !ok {
		return "account the simulation never saw created"
	}
	return ""
}

func (d *directory) byEmailID(email string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byEmail[strings.ToLower(email)]
}

func (d *directory) userNameOf(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.userName[id]
}
