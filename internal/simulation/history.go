package simulation

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// A history is drawn from the seed before anything runs: the initial org and every step.
// It depends on the IdP model only, never on what idsync did, so the faulty run and its
// fault-free twin live through exactly the same events.

type eventKind string

const (
	evHire        eventKind = "hire"
	evLeave       eventKind = "leave"
	evMassLeave   eventKind = "mass-leave"
	evMove        eventKind = "move"
	evRename      eventKind = "rename"
	evEmail       eventKind = "email"
	evDisable     eventKind = "disable"
	evEnable      eventKind = "enable"
	evGroupCreate eventKind = "group-create"
	evGroupDelete eventKind = "group-delete"
	evAdmin       eventKind = "admin"
	evApprove     eventKind = "approve"
	evReconfigure eventKind = "reconfigure"
	evIdle        eventKind = "idle"
	// Scenario steps: several people at once, drawn as part of a chain (see scenario).
	evMassDisable eventKind = "mass-disable"
	evSwap        eventKind = "swap" // some disabled people come back, as many others go
)

// via says how the IdP tells idsync about a change.
type via int

const (
	viaPull via = iota // only the next pull sees it
	viaPush            // pushed over SCIM at once (and listed by the next pull)
	viaRace            // pushed while the next full pass reads the users listing
)

func (v via) String() string { return [...]string{"pull", "push", "race"}[v] }

// passMode says which passes follow a step.
type passMode int

const (
	passFull     passMode = iota // the targeted passes of any pushes, then a full pass
	passPushOnly                 // only the targeted passes of pushes
	passNone                     // nothing: the next step's change lands first
)

// adminKind is an edit an admin makes in Jira by hand.
type adminKind string

const (
	adminUnowned       adminKind = "create-unowned"     // an account no source knows
	adminContractor    adminKind = "add-contractor"     // an unmanaged group membership
	adminServiceDesk   adminKind = "grant-servicedesk"  // product access granted by hand
	adminRemoveManaged adminKind = "remove-managed"     // a managed membership taken away
	adminUnownedMapped adminKind = "unowned-to-mapped"  // an unowned account in a mapped group
	adminDeleteAccount adminKind = "delete-account"     // an account removed from the site
	adminDeleteUnowned adminKind = "delete-unowned"     // an unowned account removed
	adminMisc          adminKind = "add-unowned-access" // an unowned account gets product access
)

type adminAction struct {
	Kind   adminKind
	Person string // person id, for actions on a person's account
	Email  string // the unowned account's email
	Group  string // Jira group
}

// Step is one event of a history and the passes that follow it.
type Step struct {
	N      int
	Kind   eventKind
	Via    via
	People []string
	Hire   *person
	From   string // move: IdP group left
	To     string // move: IdP group joined
	Group  string // group create and delete
	First  string // rename
	Last   string
	Email  string // email change
	Params *Params
	Admin  *adminAction
	Pass   passMode
	// RaceAfter fires a race push just after the users listing's first page is served
	// (else just before the pass's first miniOrange request).
	RaceAfter bool
	// Back are the people a swap enables again (People are those it disables).
	Back []string
}

func (s Step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "step %d %s", s.N, s.Kind)
	switch s.Kind {
	case evHire:
		fmt.Fprintf(&b, " %s %v", s.Hire.UserName, s.Hire.groupList())
	case evMove:
		fmt.Fprintf(&b, " %v %q->%q", s.People, s.From, s.To)
	case evGroupCreate, evGroupDelete:
		fmt.Fprintf(&b, " %q", s.Group)
	case evRename:
		fmt.Fprintf(&b, " %v %s %s", s.People, s.First, s.Last)
	case evEmail:
		fmt.Fprintf(&b, " %v %s", s.People, s.Email)
	case evReconfigure:
		fmt.Fprintf(&b, " %s", s.Params)
	case evSwap:
		fmt.Fprintf(&b, " back %v, out %v", s.Back, s.People)
	case evAdmin:
		fmt.Fprintf(&b, " %s person=%s email=%s group=%s", s.Admin.Kind, s.Admin.Person, s.Admin.Email, s.Admin.Group)
	default:
		if len(s.People) > 0 {
			fmt.Fprintf(&b, " %v", s.People)
		}
	}
	switch s.Kind {
	case evHire, evLeave, evMassLeave, evMove, evRename, evEmail, evDisable, evEnable, evGroupCreate, evGroupDelete, evMassDisable, evSwap:
		fmt.Fprintf(&b, " via %s", s.Via)
	}
	fmt.Fprintf(&b, " pass=%d", s.Pass)
	return b.String()
}

// History is an initial org and its steps, drawn for one IdP.
type History struct {
	IdP     IdP
	Initial *model
	// Unowned are the emails of accounts no source knows, seeded in Jira.
	Unowned []string
	// Locked is a managed Jira group whose members idsync may not remove (Jira answers 403,
	// as for a group another system manages); "" for none. It is part of the world, in both
	// runs: a deactivation must still take every other group, product access first.
	Locked string
	Steps  []Step
}

// Sizes bound a history.
type Sizes struct {
	MinUsers, MaxUsers int
	Steps              int
}

var (
	firstNames = []string{"Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea",
		"Mo", "Nia", "Oto", "Pia", "Quinn", "Rui", "Sol", "Tess", "Uma", "Vic", "Wes", "Xia", "Yan", "Zoe"}
	lastNames = []string{"Abe", "Berg", "Cruz", "Diaz", "Eng", "Fox", "Gray", "Holm", "Ito", "Jain", "Koch",
		"Lund", "Moss", "Nair", "Ortiz", "Park", "Qu", "Ruiz", "Shah", "Tan", "Ueda", "Vogel", "Wu", "Xu", "Yoon", "Zhou"}
	baseGroups = []string{"Engineering", "Sales", "Support", "Marketing", "Finance", "HR", "Legal", "Operations"}
)

// Jira groups of every world.
const (
	defaultGroup     = "jira-software-users"    // product access, default group of new accounts
	serviceDeskGroup = "jira-servicedesk-users" // product access of a second product
	contractorsGroup = "contractors"            // a group idsync never manages
)

// initialParams is the mapping every history starts from; thresholds are drawn.
func initialParams(r *rand.Rand) Params {
	return Params{
		Mappings: map[string][]string{
			"Engineering": {"engineering", "developers"},
			"Sales":       {"sales"},
			// A mapping onto a product-access group: leaving Support takes that access away
			// by a removal, not a deactivation.
			"Support": {"support", serviceDeskGroup},
		},
		Grace:       r.IntN(3),
		MaxDeact:    pick(r, []int{0, 2, 3, 5, 25}),
		MaxPercent:  pick(r, []float64{0, 10, 25, 50, 100}),
		MaxRemovals: pick(r, []int{0, 3, 6, 20, 250}),
	}
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// IdP names the identity provider a simulated world runs.
type IdP string

// The identity providers a world can run.
const (
	// IdPMiniOrange is miniOrange through its admin REST API (miniorangetest), pulled and
	// pushing over SCIM to idsync's listener.
	IdPMiniOrange IdP = "miniorange"
	// IdPGoogle is Google Workspace through the Admin SDK Directory API (googletest),
	// pulled only: Google cannot push SCIM to a custom endpoint.
	IdPGoogle IdP = "google"
	// IdPLDAP is an LDAP directory: a real slapd (ldaptest), pulled only.
	IdPLDAP IdP = "ldap"
)

// IdPs lists every IdP a world can run.
var IdPs = []IdP{IdPMiniOrange, IdPGoogle, IdPLDAP}

// IdPFor is the IdP a seed's world runs: miniOrange for about three seeds in four, Google
// Workspace for about one in six, LDAP for the rest (about one in ten: each LDAP world loads
// its org into the shared slapd over LDAP). It is drawn from a stream of its own, so a seed's
// history and faults are drawn from the same streams whichever IdP it runs.
func IdPFor(seed uint64) IdP {
	switch x := rand.New(rand.NewPCG(seed, 0x1d9)).IntN(100); {
	case x < 74:
		return IdPMiniOrange
	case x < 90:
		return IdPGoogle
	default:
		return IdPLDAP
	}
}

// capabilities are the changes an IdP's simulator can make through its control API and how
// it tells idsync about them; the generator draws only those.
type capabilities struct {
	push        bool // pushes over SCIM (else every change waits for the next pull)
	rename      bool // a person's name changes
	email       bool // a person's email changes (their userName stays)
	groupDelete bool
}

// caps are what the IdP's simulator can do. At Google the primary email is also the
// userName, which the model keeps fixed: Google worlds draw no email change.
func (k IdP) caps() capabilities {
	switch k {
	case IdPGoogle:
		return capabilities{rename: true, groupDelete: true}
	case IdPLDAP:
		return capabilities{rename: true, email: true, groupDelete: true}
	}
	return capabilities{push: true, rename: true, email: true, groupDelete: true}
}

// can reports whether a step of kind k can happen at the IdP.
func (c capabilities) can(k eventKind) bool {
	switch k {
	case evRename:
		return c.rename
	case evEmail:
		return c.email
	case evGroupDelete:
		return c.groupDelete
	}
	return true
}

// Generate draws a history from r for a world running idp.
func Generate(r *rand.Rand, sz Sizes, idp IdP) History {
	m := &model{people: map[string]*person{}, groups: map[string]bool{}, pushGroups: map[string]bool{}, params: initialParams(r)}
	ng := 5 + r.IntN(len(baseGroups)-4)
	for _, g := range baseGroups[:ng] {
		m.groups[g] = true
	}
	// The SCIM client pushes some groups; the others only the pull knows (so a push about a
	// person never says everything about them).
	m.pushGroups["Engineering"] = true
	m.pushGroups["Support"] = true
	nu := sz.MinUsers + r.IntN(sz.MaxUsers-sz.MinUsers+1)
	for range nu {
		p := m.newPerson(r)
		if r.IntN(20) == 0 {
			p.Status = disabled
		}
		m.add(p)
	}
	// A few people had Jira accounts before idsync: matched by email, not created.
	for _, id := range m.ids(active) {
		if r.IntN(10) == 0 {
			m.people[id].Seeded = true
		}
	}
	h := History{IdP: idp, Initial: m.clone()}
	for i := range 2 + r.IntN(3) {
		h.Unowned = append(h.Unowned, fmt.Sprintf("ext-%d@partner.example", i+1))
	}
	if r.IntN(3) == 0 {
		h.Locked = pick(r, []string{"developers", "engineering", "support", "sales"})
	}
	g := &generator{r: r, m: m, caps: idp.caps(), unowned: append([]string(nil), h.Unowned...)}
	for n := range sz.Steps {
		h.Steps = append(h.Steps, g.step(n))
	}
	return h
}
