package miniorangetest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// DefaultGroup is miniOrange's automatic group: every user is in it. The simulator adds it to
// every org; an Org never lists it.
const DefaultGroup = "DEFAULT"

// User is one miniOrange user as the simulator stores it.
type User struct {
	ID        string
	UserName  string
	Email     string
	FirstName string
	LastName  string
	Phone     string
	Disabled  bool
	// Groups are the user's group names, without DEFAULT (implied for everyone).
	Groups []string
	// Attributes are miniOrange custom attributes.
	Attributes map[string]string
}

// Group is one miniOrange group.
type Group struct {
	ID          string
	Name        string
	Description string
}

// Org is a directory to load into the simulator.
type Org struct {
	Users  []User
	Groups []Group
}

// OrgSpec describes a generated org. GenerateOrg is deterministic for a given spec.
type OrgSpec struct {
	Users  int
	Groups int
	// MembershipsPerUser is how many distinct groups each user joins (capped at Groups),
	// chosen uniformly so every group gets about Users*MembershipsPerUser/Groups members.
	MembershipsPerUser int
	// DisabledCount users are disabled; when zero, DisabledFraction of them are.
	DisabledCount    int
	DisabledFraction float64
	CustomAttributes bool
	Seed             int64
	// EmailDomain defaults to example.com.
	EmailDomain string
}

// DefaultOrgSpec is the org `idsync sim`, the demo and most tests start from.
var DefaultOrgSpec = OrgSpec{
	Users: 200, Groups: 15, MembershipsPerUser: 2, DisabledCount: 5,
	CustomAttributes: true, Seed: 1, EmailDomain: "example.com",
}

// DefaultOrg is GenerateOrg(DefaultOrgSpec): 200 users, 15 groups (Engineering, Sales,
// Support, ... and Jira-Service-group), 5 of the users disabled.
func DefaultOrg() Org { return GenerateOrg(DefaultOrgSpec) }

// baseGroups are the first group names of every generated org, in order; the fifteenth is the
// group the demo maps to JSM customer access.
var baseGroups = []string{
	"Engineering", "Sales", "Support", "Marketing", "Finance", "HR", "Legal", "Operations",
	"Product", "Design", "QA", "IT", "Security", "Executives", "Jira-Service-group",
}

var teamSuffixes = []string{
	"Platform", "Mobile", "Web", "Data", "EMEA", "APAC", "Americas", "Tier1", "Tier2", "Onboarding",
	"Payroll", "Recruiting", "Compliance", "Infra", "Research", "Growth", "Partners", "Training",
}

var firstNames = []string{
	"Olivia", "Liam", "Emma", "Noah", "Ava", "Oliver", "Sophia", "Elijah", "Isabella", "James",
	"Mia", "William", "Amelia", "Benjamin", "Harper", "Lucas", "Evelyn", "Henry", "Abigail", "Theodore",
	"Emily", "Jack", "Ella", "Levi", "Elizabeth", "Alexander", "Camila", "Jackson", "Luna", "Mateo",
	"Sofia", "Daniel", "Avery", "Michael", "Mila", "Mason", "Aria", "Sebastian", "Scarlett", "Ethan",
	"Penelope", "Logan", "Layla", "Owen", "Chloe", "Samuel", "Victoria", "Jacob", "Madison", "Asher",
	"Eleanor", "Aiden", "Grace", "John", "Nora", "Joseph", "Riley", "Wyatt", "Zoey", "David",
	"Hannah", "Leo", "Hazel", "Luke", "Lily", "Julian", "Ellie", "Hudson", "Violet", "Grayson",
	"Priya", "Arjun", "Aisha", "Wei", "Mei", "Hiroshi", "Yuki", "Fatima", "Omar", "Chen",
	"Ingrid", "Lars", "Sven", "Astrid", "Björn", "Zoë", "José", "Chloé", "Renée", "Søren",
	"Malik", "Amara", "Kwame", "Nia", "Dmitri", "Olga", "Pavel", "Katarzyna", "Mateusz", "Élodie",
}

var lastNames = []string{
	"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
	"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
	"Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson",
	"Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
	"Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts",
	"Patel", "Shah", "Kumar", "Singh", "Wang", "Zhang", "Li", "Liu", "Tanaka", "Suzuki",
	"Sato", "Kim", "Park", "Choi", "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer",
	"Dubois", "Lefèvre", "Moreau", "Rossi", "Russo", "Bianchi", "Novak", "Kowalski", "Nowak", "Ivanov",
	"O'Brien", "O'Connor", "McCarthy", "Murphy", "Kelly", "Byrne", "Larsen", "Hansen", "Johansson", "Nielsen",
	"Okafor", "Mensah", "Diallo", "Haddad", "Khan", "Ali", "Costa", "Silva", "Santos", "Van der Berg",
}

var locations = []string{"Berlin", "London", "New York", "Bangalore", "Singapore", "São Paulo", "Sydney", "Toronto"}

// asciiFold maps the accented letters the name lists use to plain ASCII for email addresses.
var asciiFold = strings.NewReplacer(
	"ö", "o", "ü", "u", "ä", "a", "é", "e", "è", "e", "ë", "e", "ø", "o", "å", "a", "ç", "c",
	"ã", "a", "ñ", "n",
)

// emailLocal turns a name into the lowercase letters an address can carry.
func emailLocal(s string) string {
	s = asciiFold.Replace(strings.ToLower(s))
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// GroupName is the name of the i-th (0-based) group of a generated org.
func GroupName(i int) string {
	if i < len(baseGroups) {
		return baseGroups[i]
	}
	j := i - len(baseGroups)
	combos := (len(baseGroups) - 1) * len(teamSuffixes)
	if j < combos {
		return baseGroups[j/len(teamSuffixes)] + "-" + teamSuffixes[j%len(teamSuffixes)]
	}
	return fmt.Sprintf("Team-%05d", j-combos+1)
}

// GenerateOrg builds a deterministic org: realistic names, unique lowercase emails (also the
// usernames), uniformly spread memberships, optional custom attributes and phone numbers.
// 100,000 users with 1,000,000 memberships take well under a few seconds.
func GenerateOrg(spec OrgSpec) Org {
	domain := spec.EmailDomain
	if domain == "" {
		domain = "example.com"
	}
	rng := rand.New(rand.NewPCG(uint64(spec.Seed), 0x6d696e696f72616e))

	org := Org{Groups: make([]Group, max(spec.Groups, 0))}
	for i := range org.Groups {
		name := GroupName(i)
		org.Groups[i] = Group{ID: strconv.Itoa(500000 + i + 1), Name: name, Description: name + " team"}
	}

	n := max(spec.Users, 0)
	org.Users = make([]User, n)
	seen := make(map[string]int, n)
	k := min(max(spec.MembershipsPerUser, 0), len(org.Groups))
	// One backing array for every membership list keeps a 1M-membership org to one allocation.
	memberships := make([]string, n*k)
	picked := make([]int, 0, k)
	for i := range org.Users {
		first := firstNames[rng.IntN(len(firstNames))]
		last := lastNames[rng.IntN(len(lastNames))]
		local := emailLocal(first) + "." + emailLocal(last)
		seen[local]++
		if c := seen[local]; c > 1 {
			local += strconv.Itoa(c)
		}
		email := local + "@" + domain
		u := User{
			ID:        strconv.Itoa(1000000 + i + 1),
			UserName:  email,
			Email:     email,
			FirstName: first,
			LastName:  last,
			Phone:     fmt.Sprintf("+1-555-%03d-%04d", rng.IntN(1000), rng.IntN(10000)),
		}
		groups := memberships[i*k : i*k : (i+1)*k]
		picked = picked[:0]
		for len(picked) < k {
			g := rng.IntN(len(org.Groups))
			dup := false
			for _, p := range picked {
				if p == g {
					dup = true
					break
				}
			}
			if !dup {
				picked = append(picked, g)
				groups = append(groups, org.Groups[g].Name)
			}
		}
		u.Groups = groups
		if spec.CustomAttributes {
			u.Attributes = map[string]string{
				"employeeId": fmt.Sprintf("E%06d", i+1),
				"department": baseGroups[rng.IntN(len(baseGroups)-1)],
				"location":   locations[rng.IntN(len(locations))],
				"costCenter": fmt.Sprintf("CC-%03d", rng.IntN(200)),
			}
		}
		org.Users[i] = u
	}

	disabled := spec.DisabledCount
	if disabled == 0 && spec.DisabledFraction > 0 {
		disabled = int(spec.DisabledFraction*float64(n) + 0.5)
	}
	disabled = min(max(disabled, 0), n)
	// A partial Fisher-Yates draw picks distinct users without building a full permutation.
	if disabled > 0 {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		for i := 0; i < disabled; i++ {
			j := i + rng.IntN(n-i)
			idx[i], idx[j] = idx[j], idx[i]
			org.Users[idx[i]].Disabled = true
		}
	}
	return org
}
