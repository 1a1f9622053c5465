package googletest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// User is one Google Workspace user as the simulator stores it.
type User struct {
	// ID is Google's immutable user id (generated when empty).
	ID           string
	PrimaryEmail string
	GivenName    string
	FamilyName   string
	// OrgUnitPath is the user's organizational unit ("/" when empty).
	OrgUnitPath string
	Suspended   bool
	Archived    bool
	IsAdmin     bool
	Aliases     []string
}

// Group is one Google group. Members are email addresses of users or groups (nested), or
// CustomerMember for "every user of the account".
type Group struct {
	// ID is Google's immutable group id (generated when empty).
	ID          string
	Email       string
	Name        string
	Description string
	Members     []string
}

// CustomerMember as a group member is the whole account (members.list type CUSTOMER).
const CustomerMember = "*"

// Org is a directory to load into the simulator.
type Org struct {
	Users  []User
	Groups []Group
}

// OrgSpec describes a generated org. GenerateOrg is deterministic for a given spec.
type OrgSpec struct {
	Users  int
	Groups int
	// MembershipsPerUser is how many distinct groups each user joins directly.
	MembershipsPerUser int
	// Suspended and Archived users (distinct users, taken from the end of the list).
	Suspended int
	Archived  int
	// Nested is how many group-in-group memberships to add (Engineering > QA, Operations >
	// IT, IT > Security, Sales > Marketing, ...), as many as the groups allow.
	Nested int
	Seed   int64
	// Domain of the addresses (default example.com).
	Domain string
}

// DefaultOrgSpec is the demo-sized org: 200 users, 15 groups, three of them nested (a chain
// of two levels among them), 3 suspended and 2 archived users.
var DefaultOrgSpec = OrgSpec{Users: 200, Groups: 15, MembershipsPerUser: 2, Suspended: 3, Archived: 2, Nested: 3, Seed: 1, Domain: DefaultDomain}

// DefaultOrg is GenerateOrg(DefaultOrgSpec).
func DefaultOrg() Org { return GenerateOrg(DefaultOrgSpec) }

var baseGroups = []string{
	"Engineering", "Sales", "Support", "Marketing", "Finance", "HR", "Legal", "Operations",
	"Product", "Design", "QA", "IT", "Security", "Executives", "Jira-Service-group",
}

// nestedPairs are parent > child, in the order GenerateOrg adds them.
var nestedPairs = [][2]string{
	{"Engineering", "QA"}, {"Operations", "IT"}, {"IT", "Security"}, {"Sales", "Marketing"},
	{"Executives", "Finance"}, {"Product", "Design"},
}

var orgUnits = []string{"/", "/Staff", "/Staff/Engineering", "/Staff/Sales", "/Contractors"}

var firstNames = []string{
	"Olivia", "Liam", "Emma", "Noah", "Ava", "Oliver", "Sophia", "Elijah", "Isabella", "James",
	"Mia", "William", "Amelia", "Benjamin", "Harper", "Lucas", "Evelyn", "Henry", "Abigail", "Theodore",
	"Priya", "Arjun", "Aisha", "Wei", "Mei", "Hiroshi", "Yuki", "Fatima", "Omar", "Chen",
	"Ingrid", "Lars", "Søren", "Zoë", "José", "Chloé", "Malik", "Amara", "Dmitri", "Élodie",
}

var lastNames = []string{
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
	"Lee", "Perez", "Thompson", "White", "Harris", "Patel", "Shah", "Kumar", "Singh", "Wang",
	"Tanaka", "Kim", "Müller", "Schmidt", "Dubois", "Rossi", "Novak", "O'Brien", "Okafor", "Van der Berg",
}

var asciiFold = strings.NewReplacer("ø", "o", "ö", "o", "ü", "u", "é", "e", "ë", "e", "'", "", " ", "")

func emailLocal(s string) string { return asciiFold.Replace(strings.ToLower(s)) }

// GenerateOrg builds an org from spec.
func GenerateOrg(spec OrgSpec) Org {
	domain := spec.Domain
	if domain == "" {
		domain = DefaultDomain
	}
	rng := rand.New(rand.NewPCG(uint64(spec.Seed), 0x676f6f67))
	var org Org
	for i := range spec.Groups {
		name := fmt.Sprintf("Team-%03d", i)
		if i < len(baseGroups) {
			name = baseGroups[i]
		}
		org.Groups = append(org.Groups, Group{
			ID: fmt.Sprintf("grp%06d", i+1), Email: strings.ToLower(name) + "@" + domain, Name: name,
			Description: "The " + name + " group",
		})
	}
	used := map[string]int{}
	for i := range spec.Users {
		first := firstNames[rng.IntN(len(firstNames))]
		last := lastNames[rng.IntN(len(lastNames))]
		local := emailLocal(first) + "." + emailLocal(last)
		used[local]++
		if n := used[local]; n > 1 {
			local = fmt.Sprintf("%s%d", local, n)
		}
		u := User{
			ID: fmt.Sprintf("1%020d", i+1), PrimaryEmail: local + "@" + domain, GivenName: first, FamilyName: last,
			OrgUnitPath: orgUnits[rng.IntN(len(orgUnits))],
		}
		if i%7 == 3 {
			u.Aliases = []string{local + "@alias." + domain}
		}
		org.Users = append(org.Users, u)
		if len(org.Groups) == 0 {
			continue
		}
		k := min(spec.MembershipsPerUser, len(org.Groups))
		for _, gi := range rng.Perm(len(org.Groups))[:k] {
			org.Groups[gi].Members = append(org.Groups[gi].Members, u.PrimaryEmail)
		}
	}
	for j := 0; j < spec.Suspended && j < len(org.Users); j++ {
		org.Users[len(org.Users)-1-j].Suspended = true
	}
	for j := 0; j < spec.Archived && spec.Suspended+j < len(org.Users); j++ {
		org.Users[len(org.Users)-1-spec.Suspended-j].Archived = true
	}
	byName := map[string]int{}
	for i, g := range org.Groups {
		byName[g.Name] = i
	}
	added := 0
	for _, p := range nestedPairs {
		if added >= spec.Nested {
			break
		}
		pi, ok1 := byName[p[0]]
		ci, ok2 := byName[p[1]]
		if !ok1 || !ok2 {
			continue
		}
		org.Groups[pi].Members = append(org.Groups[pi].Members, org.Groups[ci].Email)
		added++
	}
	return org
}
