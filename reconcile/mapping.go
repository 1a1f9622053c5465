package reconcile

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/idsync/idsync/configs"
)

// SourceData is one source's directory as the mapping reads it, with the source's priority
// (configs.SourceConfig.Priority). The order of a []SourceData is the config order, which
// breaks priority ties.
type SourceData struct {
	Directory Directory
	Priority  int
	// CustomersOnly marks a customers_only source: its records grant customer access only
	// (mapping.customers), never a Jira group, a default group or a licensed account.
	CustomersOnly bool
}

// Warning is a problem with source data that the mapping worked around (a person skipped, an
// email dropped). The caller logs it; Map never fails on bad data.
type Warning struct {
	Source   string `json:"source"`
	Key      string `json:"key,omitempty"`
	UserName string `json:"userName,omitempty"`
	Message  string `json:"message"`
}

func (w Warning) String() string {
	who := w.UserName
	if who == "" {
		who = w.Key
	}
	if who == "" {
		return w.Source + ": " + w.Message
	}
	return w.Source + "/" + who + ": " + w.Message
}

// defaultIdPGroup is the group miniOrange puts every user in; it carries no meaning and is
// ignored unless a mapping names it.
const defaultIdPGroup = "default"

// Mapper turns source directories into the desired Jira state per mapping config. Build it once
// per config (it compiles the transforms); Map is safe for concurrent use.
type Mapper struct {
	cfg           configs.MappingConfig
	userRe        *regexp.Regexp
	emailRe       *regexp.Regexp
	explicit      map[string][]int32 // lower IdP group -> base group indexes
	customers     map[string]custTargets
	bySource      map[string]custTargets // mapping.customers entries by source name
	include       map[string]bool
	excludeUsers  map[string]bool
	excludeGroups map[string]bool
	baseGroups    []DesiredGroup
	baseIdx       map[string]int32 // lower Jira group name -> base group index
	defaults      []int32
	desks         []string
	orgs          []string
}

type custTargets struct{ desks, orgs []int32 }

// NewMapper validates and compiles a mapping config.
func NewMapper(cfg configs.MappingConfig) (*Mapper, error) {
	m := &Mapper{
		cfg:           cfg,
		explicit:      map[string][]int32{},
		customers:     map[string]custTargets{},
		bySource:      map[string]custTargets{},
		include:       lowerSet(cfg.IncludeGroups),
		excludeUsers:  lowerSet(cfg.ExcludeUsers),
		excludeGroups: lowerSet(cfg.ExcludeGroups),
		baseIdx:       map[string]int32{},
	}
	if err := m.compileTransforms(cfg); err != nil {
		return nil, err
	}
	if err := checkDisplayName(cfg.DisplayName); err != nil {
		return nil, err
	}
	if err := m.addGroupMappings(cfg.Groups); err != nil {
		return nil, err
	}
	if err := m.addDefaultGroups(cfg.DefaultGroups); err != nil {
		return nil, err
	}
	if err := m.addCustomerMappings(cfg.Customers); err != nil {
		return nil, err
	}
	return m, nil
}

// compileTransforms compiles the username and email patterns.
func (m *Mapper) compileTransforms(cfg configs.MappingConfig) error {
	var err error
	if m.userRe, err = compileTransform(cfg.UserName); err != nil {
		return fmt.Errorf("mapping.username.pattern: %w", err)
	}
	if m.emailRe, err = compileTransform(cfg.Email); err != nil {
		return fmt.Errorf("mapping.email.pattern: %w", err)
	}
	return nil
}

// checkDisplayName accepts the display_name forms Map knows how to read.
func checkDisplayName(dn string) error {
	switch {
	case dn == "", dn == "displayName", dn == "name", dn == "userName":
	case strings.HasPrefix(dn, "attribute:") && len(dn) > len("attribute:"):
	default:
		return fmt.Errorf("mapping.display_name %q: want displayName, name, userName or attribute:<key>", dn)
	}
	return nil
}

// addGroupMappings records mapping.groups: each IdP group's explicit Jira targets.
func (m *Mapper) addGroupMappings(groups []configs.GroupMapping) error {
	for i, gm := range groups {
		if strings.TrimSpace(gm.IdP) == "" {
			return fmt.Errorf("mapping.groups[%d].idp: empty", i)
		}
		k := lower(strings.TrimSpace(gm.IdP))
		for j, jg := range gm.Jira {
			if strings.TrimSpace(jg) == "" {
				return fmt.Errorf("mapping.groups[%d].jira[%d]: empty", i, j)
			}
			gi := m.baseGroup(jg)
			m.baseGroups[gi].Explicit = true
			if gm.Authoritative {
				m.baseGroups[gi].Authoritative = true
			}
			m.explicit[k] = appendIndex(m.explicit[k], gi)
		}
		if _, ok := m.explicit[k]; !ok {
			// A mapping with no Jira group still counts as explicit: it names the group so
			// that on-the-fly import and the DEFAULT rule leave it alone.
			m.explicit[k] = nil
		}
	}
	return nil
}

// addDefaultGroups records mapping.default_groups, the groups every licensed person joins.
func (m *Mapper) addDefaultGroups(names []string) error {
	for i, dg := range names {
		if strings.TrimSpace(dg) == "" {
			return fmt.Errorf("mapping.default_groups[%d]: empty", i)
		}
		gi := m.baseGroup(dg)
		m.baseGroups[gi].Default = true
		m.defaults = appendIndex(m.defaults, gi)
	}
	return nil
}

// addCustomerMappings records mapping.customers: the service desks and organizations an IdP
// group (or, with source, every person of a source) is a customer of.
func (m *Mapper) addCustomerMappings(customers []configs.CustomerMapping) error {
	deskIdx, orgIdx := map[string]int32{}, map[string]int32{}
	for i, cm := range customers {
		table, k := m.customers, lower(strings.TrimSpace(cm.IdP))
		if src := strings.TrimSpace(cm.Source); src != "" {
			table, k = m.bySource, src
		} else if k == "" {
			return fmt.Errorf("mapping.customers[%d].idp: empty", i)
		}
		t := table[k]
		for _, d := range cm.ServiceDesks {
			t.desks = appendIndex(t.desks, nameIndex(&m.desks, deskIdx, strings.TrimSpace(d)))
		}
		for _, o := range cm.Organizations {
			t.orgs = appendIndex(t.orgs, nameIndex(&m.orgs, orgIdx, strings.TrimSpace(o)))
		}
		table[k] = t
	}
	return nil
}

// baseGroup returns the index of the base group named name (any case), adding it when new.
func (m *Mapper) baseGroup(name string) int32 {
	k := lower(strings.TrimSpace(name))
	if i, ok := m.baseIdx[k]; ok {
		return i
	}
	i := int32(len(m.baseGroups))
	m.baseGroups = append(m.baseGroups, DesiredGroup{Name: strings.TrimSpace(name)})
	m.baseIdx[k] = i
	return i
}

// nameIndex returns the index of name (any case) in *names, appending it when new; idx maps
// lower-case names to their index.
func nameIndex(names *[]string, idx map[string]int32, name string) int32 {
	if i, ok := idx[lower(name)]; ok {
		return i
	}
	i := int32(len(*names))
	*names = append(*names, name)
	idx[lower(name)] = i
	return i
}

// appendIndex appends i to list unless it is there already.
func appendIndex(list []int32, i int32) []int32 {
	if slices.Contains(list, i) {
		return list
	}
	return append(list, i)
}

// Map is NewMapper followed by Mapper.Map.
func Map(srcs []SourceData, cfg configs.MappingConfig) (Desired, []Warning, error) {
	m, err := NewMapper(cfg)
	if err != nil {
		return Desired{}, nil, err
	}
	d, w := m.Map(srcs)
	return d, w, nil
}

func compileTransform(t configs.Transform) (*regexp.Regexp, error) {
	if t.Pattern == "" {
		return nil, nil
	}
	return regexp.Compile(t.Pattern)
}

func lowerSet(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			m[lower(s)] = true
		}
	}
	return m
}

// resolved caches what one IdP group name (exact spelling) maps to, so the million group
// memberships of a large org cost one map lookup each, without lowercasing.
type resolved struct {
	via      int32
	included bool
	groups   []int32 // explicit Jira targets
	desks    []int32
	orgs     []int32
	otf      int32 // on-the-fly Jira group: -1 none, -2 not created yet
	otfName  string
}

type mapRun struct {
	m *Mapper
	d Desired
	// stamp, deskStamp and orgStamp hold, per grant target, the index + 1 of the last person
	// granted it: grants are deduplicated without a map per person. otf is one person's
	// on-the-fly grants, reused.
	stamp, deskStamp, orgStamp []int32
	otf                        []Grant
	groupIdx                   map[string]int32 // lower Jira group name -> Desired.Groups index
	viaIdx                     map[string]int32
	res                        map[string]*resolved
}

// Map builds the desired state. It never fails on bad data: affected people are skipped (and
// listed in Desired.Ignored so they are not mistaken for missing) and a Warning says why.
//
// A Jira group a person gets both through mapping.groups or default_groups and through
// same-name import (import_groups) is held as the explicit or default grant, whatever the
// order of the person's IdP groups: the planner refuses on-the-fly grants of groups that grant
// admin rights or product access (Map cannot: only Live knows them), never the others.
// Desired.OnTheFly says which IdP groups import on the fly.
func (m *Mapper) Map(srcs []SourceData) (Desired, []Warning) {
	r := &mapRun{
		m:        m,
		groupIdx: make(map[string]int32, len(m.baseIdx)),
		viaIdx:   map[string]int32{},
		res:      map[string]*resolved{},
	}
	r.d.ImportUsers = m.cfg.ImportUsers
	r.d.Groups = slices.Clone(m.baseGroups)
	for k, v := range m.baseIdx {
		r.groupIdx[k] = v
	}
	r.d.Desks = slices.Clone(m.desks)
	r.d.Orgs = slices.Clone(m.orgs)
	var warns []Warning

	total := 0
	for _, s := range srcs {
		total += len(s.Directory.Users)
	}
	recs := make([]rec, 0, total)
	for si, s := range srcs {
		recs, warns = r.validateSource(si, s, recs, warns)
	}

	// Merge records into people: by email first, then records without an email by user name.
	type pb struct{ recs []int32 }
	people := make([]pb, 0, len(recs))
	byEmail := make(map[string]int32, len(recs))
	byUser := make(map[string]int32, len(recs))
	addToUser := func(ul string, pi int32) {
		if cur, ok := byUser[ul]; ok && cur != pi {
			byUser[ul] = -1 // ambiguous
			return
		}
		byUser[ul] = pi
	}
	for i := range recs {
		rc := &recs[i]
		if rc.bad != "" || rc.eLower == "" {
			continue
		}
		pi, ok := byEmail[rc.eLower]
		if !ok {
			pi = int32(len(people))
			people = append(people, pb{})
			byEmail[rc.eLower] = pi
		}
		people[pi].recs = append(people[pi].recs, int32(i))
		addToUser(rc.uLower, pi)
	}
	for i := range recs {
		rc := &recs[i]
		if rc.bad != "" || rc.eLower != "" {
			continue
		}
		pi, ok := byUser[rc.uLower]
		switch {
		case ok && pi < 0:
			rc.bad = "user name " + quote(rc.userName) + " matches several people of other sources and the record has no email to tell them apart"
			continue
		case !ok:
			pi = int32(len(people))
			people = append(people, pb{})
			byUser[rc.uLower] = pi
		}
		people[pi].recs = append(people[pi].recs, int32(i))
	}
	for i := range recs {
		if rc := &recs[i]; rc.bad != "" {
			// Every key of the record is left alone, so no link under any of them is missing.
			for _, k := range append([]string{rc.key}, rc.aliases...) {
				r.d.Ignored = append(r.d.Ignored, Ignored{
					Record:   Record{Source: srcs[rc.src].Directory.Source, Key: k},
					UserName: rc.userName, Email: rc.email, Reason: rc.bad,
				})
			}
			if !strings.HasPrefix(rc.bad, "excluded") {
				warns = append(warns, Warning{Source: srcs[rc.src].Directory.Source, Key: rc.key, UserName: rc.userName, Message: rc.bad + "; skipped"})
			}
		}
	}

	r.d.People = make([]Person, 0, len(people))
	r.deskStamp = make([]int32, len(r.d.Desks))
	r.orgStamp = make([]int32, len(r.d.Orgs))
	for pi := range people {
		r.d.People = append(r.d.People, r.person(srcs, recs, people[pi].recs))
	}
	return r.d, warns
}

func grow(s []int32, i int32) []int32 {
	for int(i) >= len(s) {
		s = append(s, 0)
	}
	return s
}

// person merges the records of one person (idx, into recs) into a Person: the winning record
// (highest priority, then config order) names them; grants are the union of what each
// record's source and groups give (a disabled record grants nothing while another is
// active); customers_only sources give customer access only.
func (r *mapRun) person(srcs []SourceData, recs []rec, idx []int32) Person {
	m := r.m
	slices.SortStableFunc(idx, func(a, b int32) int {
		if c := cmp.Compare(recs[b].prio, recs[a].prio); c != 0 {
			return c
		}
		return cmp.Compare(recs[a].src, recs[b].src)
	})
	w := &recs[idx[0]]
	p := Person{
		Source:   srcs[w.src].Directory.Source,
		Key:      w.key,
		UserName: w.userName,
		Email:    w.email,
		Active:   w.u.Active,
		Records:  make([]Record, 0, len(idx)),
	}
	anyActive := false
	for _, ri := range idx {
		rc := &recs[ri]
		p.Records = append(p.Records, Record{Source: srcs[rc.src].Directory.Source, Key: rc.key})
		for _, a := range rc.aliases {
			p.Records = append(p.Records, Record{Source: srcs[rc.src].Directory.Source, Key: a})
		}
		if p.Email == "" {
			p.Email = rc.email
		}
		if p.DisplayName == "" {
			p.DisplayName = m.displayName(rc)
		}
		anyActive = anyActive || rc.u.Active
	}
	pIdx := int32(len(r.d.People)) + 1
	// On-the-fly grants are stamped last, after explicit and default ones: a person who
	// gets a Jira group both ways holds the explicit or default grant, which the planner
	// never refuses (an on-the-fly grant of an admin or product-access group it does).
	r.otf = r.otf[:0]
	licensed := false // a record of a source that may give a licensed account
	for _, ri := range idx {
		rc := &recs[ri]
		if anyActive && !rc.u.Active {
			continue // a disabled record grants nothing while another record is active
		}
		custOnly := srcs[rc.src].CustomersOnly
		licensed = licensed || !custOnly
		if st, ok := m.bySource[srcs[rc.src].Directory.Source]; ok {
			via := r.via("source " + srcs[rc.src].Directory.Source)
			p.Desks = stampGrants(r.deskStamp, p.Desks, st.desks, via, pIdx)
			p.Orgs = stampGrants(r.orgStamp, p.Orgs, st.orgs, via, pIdx)
		}
		for _, g := range rc.u.Groups {
			rs := r.resolve(g)
			if custOnly {
				rs = rs.customerPart()
			}
			p.Groups = r.stampGroups(p.Groups, rs.groups, rs.via, pIdx)
			if rs.otf != -1 {
				r.otf = append(r.otf, Grant{Target: r.onTheFly(rs), Via: rs.via})
			}
			p.Desks = stampGrants(r.deskStamp, p.Desks, rs.desks, rs.via, pIdx)
			p.Orgs = stampGrants(r.orgStamp, p.Orgs, rs.orgs, rs.via, pIdx)
		}
	}
	// Only customer-only sources know the person: customer access or nothing, never a
	// licensed account (Person.CustomerOnly with no desk or organization gets no account).
	p.CustomerOnly = !licensed || len(p.Groups) == 0 && len(r.otf) == 0 && (len(p.Desks) > 0 || len(p.Orgs) > 0)
	if !p.CustomerOnly {
		p.Groups = r.stampGroups(p.Groups, m.defaults, ViaDefault, pIdx)
	}
	for _, g := range r.otf {
		p.Groups = r.stampGroups(p.Groups, []int32{g.Target}, g.Via, pIdx)
	}
	return p
}

// stampGroups adds a grant of each Jira group target not yet granted to person pIdx.
func (r *mapRun) stampGroups(gs []Grant, targets []int32, via, pIdx int32) []Grant {
	for _, t := range targets {
		r.stamp = grow(r.stamp, t)
		if r.stamp[t] != pIdx {
			r.stamp[t] = pIdx
			gs = append(gs, Grant{Target: t, Via: via})
		}
	}
	return gs
}

// stampGrants adds a grant of each desk or organization target not yet granted to pIdx.
func stampGrants(stamp []int32, gs []Grant, targets []int32, via, pIdx int32) []Grant {
	for _, t := range targets {
		if stamp[t] != pIdx {
			stamp[t] = pIdx
			gs = append(gs, Grant{Target: t, Via: via})
		}
	}
	return gs
}
