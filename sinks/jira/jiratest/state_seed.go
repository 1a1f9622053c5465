package jiratest

// Seed is data to load into the site.
type Seed struct {
	Groups []SeedGroup
	Roles  []Role
	Users  []User
	Desks  []Desk
	Orgs   []Org
}

// SeedGroup is a group to create; AccessType is "", AccessSiteAdmin or AccessAdmin (product
// access comes from Roles).
type SeedGroup struct {
	Name       string
	AccessType string
}

// Role is a product (ApplicationRole). Groups are every group that grants the product's
// access; DefaultGroups are the ones POST /rest/api/3/user puts a new account into. As in
// Jira, a default group is always also one of Groups: a default group missing from Groups is
// added to it, so a seed may list only the groups beyond the defaults in Groups.
//
// A seed Role whose Key is already a role of the site (the default seed's jira-software, for
// example) extends that role instead of adding a second one: its Groups and DefaultGroups are
// added to the role's, and a non-empty Name replaces the role's. So Options.Data can give the
// default product more access groups than its default group, as real sites often have:
//
//	Data: jiratest.Seed{Roles: []jiratest.Role{{Key: "jira-software",
//		Groups: []string{"jira-software-admins-legacy", "engineering-access"}}}}
//
// serves /rest/api/3/applicationrole with defaultGroups [jira-software-users] and groups
// [jira-software-users, jira-software-admins-legacy, engineering-access]. Every group of a
// role grants product access: group/bulk?accessType=user and ?applicationKey=, the
// licensed-seat count and GET /user?expand=applicationRoles all go by Groups.
type Role struct {
	Key           string
	Name          string
	Groups        []string
	DefaultGroups []string
}

// User is an account to seed. AccountID is generated when empty. Groups are group names.
type User struct {
	AccountID   string
	Type        string // atlassian (default), app or customer
	Email       string
	DisplayName string
	HideEmail   bool
	Inactive    bool
	Groups      []string
}

// Desk is a service desk. ID and ProjectID are generated when empty. Customers are accountIds.
type Desk struct {
	ID         string
	ProjectID  string
	Key        string
	Name       string
	OpenAccess bool // removing customers then fails with 400, as in JSM
	Customers  []string
}

// Org is a JSM organization; Members are accountIds.
type Org struct {
	Name    string
	Members []string
}

// Seeded account ids of the default site.
const (
	SiteAdminID = "712020:00000000-0000-4000-8000-00000000ad01"
	AppID       = "557058:00000000-0000-4000-8000-0000000a9901"
)

// DefaultSeed is the site `idsync sim`, demo and tests start from: a site admin (adminEmail),
// an app account, the product-access group jira-software-users and the service desk DEMO.
func DefaultSeed(adminEmail string) Seed {
	return Seed{
		Groups: []SeedGroup{
			{Name: "site-admins", AccessType: AccessSiteAdmin},
			{Name: "jira-admins", AccessType: AccessAdmin},
			{Name: "jira-software-users"},
		},
		Roles: []Role{{
			Key: "jira-software", Name: "Jira Software",
			Groups: []string{"jira-software-users"}, DefaultGroups: []string{"jira-software-users"},
		}},
		Users: []User{
			{AccountID: SiteAdminID, Email: adminEmail, DisplayName: "Site Admin",
				Groups: []string{"site-admins", "jira-admins", "jira-software-users"}},
			{AccountID: AppID, Type: TypeApp, Email: "", DisplayName: "Automation for Jira"},
		},
		Desks: []Desk{{ID: "1", ProjectID: "10000", Key: "DEMO", Name: "Demo service project"}},
	}
}

func (s *Sim) mustSeed(sd Seed) {
	if err := s.LoadSeed(sd); err != nil {
		panic("jiratest: bad seed: " + err.Error())
	}
}

// LoadSeed adds sd to the site.
func (s *Sim) LoadSeed(sd Seed) error {
	for _, g := range sd.Groups {
		if _, err := s.AddGroup(g.Name, g.AccessType); err != nil {
			return err
		}
	}
	s.mu.Lock()
	for _, r := range sd.Roles {
		if err := s.st.addRole(r); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.mu.Unlock()
	for _, u := range sd.Users {
		if _, err := s.AddUser(u); err != nil {
			return err
		}
	}
	for _, d := range sd.Desks {
		if _, err := s.AddDesk(d); err != nil {
			return err
		}
	}
	for _, o := range sd.Orgs {
		id := s.AddOrg(o.Name)
		for _, m := range o.Members {
			if err := s.AddOrgMember(id, m); err != nil {
				return err
			}
		}
	}
	return nil
}
