package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/google"
	"github.com/idsync/idsync/sources/google/googletest"
)

// The pass scenarios with a Google Workspace source instead of miniOrange (RunGoogle): the
// same Jira site, mapping and goals, the source read through the Directory API simulator.

// GoogleShape is what the fewest Directory API calls of one complete read depend on.
type GoogleShape struct {
	// PageSize is sources[].google.page_size; the caps are min(page_size, 500) for users and
	// min(page_size, 200) for groups and members (the documented maximums).
	PageSize int
	// ServerCap is a page cap of the server below the documented ones (0: none), as
	// Options.SourceBatchCap sets on the simulator.
	ServerCap int
	Users     int
	// GroupMembers holds, for every group the groups listing returns, the entries of its
	// member listing (users and nested groups, direct members only).
	GroupMembers []int
	// NestedOutside counts the member listings of nested groups outside the groups listing
	// (read once each when idsync expands nested groups).
	NestedOutside []int
}

// MinSourceReads is the fewest Google calls a complete read takes:
//
//	1                                        the service account's token exchange
//	+ pages(users, min(page_size, 500))      users.list
//	+ pages(groups, min(page_size, 200))     groups.list
//	+ Σ over listed and nested-outside groups pages(members, min(page_size, 200))
//
// with pages(n) = max(1, ceil(n / cap)): an empty listing still takes one call; a server cap
// below these lowers every cap to it.
func (s GoogleShape) MinSourceReads() int {
	ps := s.PageSize
	if ps <= 0 {
		ps = google.DefaultPageSize
	}
	small, users := min(ps, google.GroupsPageCap), min(ps, google.UsersPageCap)
	if s.ServerCap > 0 {
		small, users = min(small, s.ServerCap), min(users, s.ServerCap)
	}
	n := 1 + pages(s.Users, users) + pages(len(s.GroupMembers), small)
	for _, m := range s.GroupMembers {
		n += pages(m, small)
	}
	for _, m := range s.NestedOutside {
		n += pages(m, small)
	}
	return n
}

// googleOrg is the bench org in Google's shape: Options.Users users, Options.Groups groups,
// Options.MembershipsPerUser direct memberships each, Options.Disabled suspended users, and a
// few nested groups.
func (o Options) googleOrg() googletest.Org {
	return googletest.GenerateOrg(googletest.OrgSpec{
		Users: o.Users, Groups: o.Groups, MembershipsPerUser: o.MembershipsPerUser,
		Suspended: o.Disabled, Nested: min(3, o.Groups/2), Seed: o.Seed,
	})
}

// orgFromGoogle is the org as the Jira minimums see it: each user's groups are its groups with
// nested groups expanded (what idsync maps).
func orgFromGoogle(g *googletest.Sim) Org {
	var o Org
	member := map[string][]string{}
	for _, gr := range g.Groups() {
		o.Groups = append(o.Groups, gr.Name)
		for _, m := range g.EffectiveMembers(gr.Email) {
			member[strings.ToLower(m)] = append(member[strings.ToLower(m)], gr.Name)
		}
	}
	for _, u := range g.Users() {
		o.Users = append(o.Users, OrgUser{Name: u.PrimaryEmail, Email: u.PrimaryEmail, Disabled: u.Suspended || u.Archived,
			Groups: member[strings.ToLower(u.PrimaryEmail)]})
	}
	return o
}

func googleShapeOf(g *googletest.Sim, pageSize, serverCap int) GoogleShape {
	s := GoogleShape{PageSize: pageSize, ServerCap: serverCap, Users: len(g.Users())}
	for _, gr := range g.Groups() {
		s.GroupMembers = append(s.GroupMembers, len(gr.Members))
	}
	return s
}

// RunGoogle runs the initial or noop scenario with a Google Workspace source: the Jira side is
// the one of Run (same site, mapping, pacing, counters and goals); source_reads are the
// Directory API simulator's served calls, the token exchange included, and min_source_reads
// is GoogleShape.MinSourceReads. Options.SourcePageSize is sources[].google.page_size
// (default 500); Options.SourceBatchCap caps every Google listing's pages below the
// documented maximums.
func RunGoogle(ctx context.Context, o Options) (*Result, error) {
	if err := o.normalizeGoogle(); err != nil {
		return nil, err
	}
	if o.StateDir == "" {
		dir, err := os.MkdirTemp("", "idsync-bench-")
		if err != nil {
			return nil, fmt.Errorf("creating the state folder: %w", err)
		}
		o.StateDir = dir
		defer os.RemoveAll(dir)
	}
	w, err := o.startGoogleWorld()
	if err != nil {
		return nil, err
	}
	defer w.close()

	borg := orgFromGoogle(w.google)
	res := o.newResult("in-process", "simulator")
	res.Users, res.Groups, res.Memberships = len(borg.Users), len(borg.Groups), borg.Memberships()
	var before *Org
	if o.Scenario == ScenarioNoop {
		if err := o.setupGoogle(ctx, w); err != nil {
			return nil, err
		}
		b := borg
		before = &b
	}
	shape := ShapeOf(before, borg, o.caps())
	gshape := googleShapeOf(w.google, o.SourcePageSize, o.SourceBatchCap)
	res.setMinimums(gshape.MinSourceReads(), shape.MinJiraReads(), shape.MinWrites(), o)

	cfg, err := o.googleConfig(w, true)
	if err != nil {
		return nil, err
	}
	w.jira.Reset()
	w.google.Reset()
	out, err := o.runPass(ctx, cfg, nil)
	res.countGoogle(w.jira, w.google)
	res.setPass(out)
	res.finish()
	res.PeakRSSBytes = PeakRSS()
	res.Goals = goals(res)
	return res, err
}

// normalizeGoogle defaults and checks the options of RunGoogle.
func (o *Options) normalizeGoogle() error {
	if o.SourcePageSize == 0 {
		o.SourcePageSize = google.DefaultPageSize
	}
	if err := o.normalize(); err != nil {
		return err
	}
	if o.Scenario != ScenarioInitial && o.Scenario != ScenarioNoop {
		return fmt.Errorf("%w: --scenario %q: a Google source runs initial or noop", ErrUsage, o.Scenario)
	}
	if o.JiraURL != "" || o.MiniOrangeURL != "" {
		return fmt.Errorf("%w: a Google source runs in-process only", ErrUsage)
	}
	if o.SourcePageSize > google.UsersPageCap {
		return fmt.Errorf("%w: --page-size for Google is at most %d", ErrUsage, google.UsersPageCap)
	}
	return nil
}

// googleWorld is what RunGoogle runs against: a Directory API simulator and a Jira site, each
// on a loopback server, and a service account key file (in the state folder) whose token_uri
// is the simulator's token endpoint.
type googleWorld struct {
	google    *googletest.Sim
	jira      *jiratest.Sim
	googleURL string
	jiraURL   string
	creds     string
	close     func()
}

// startGoogleWorld serves the simulators with the generated org.
func (o Options) startGoogleWorld() (*googleWorld, error) {
	org := o.googleOrg()
	gs := googletest.New(googletest.Options{Org: &org, Seed: o.Seed, Latency: o.Latency})
	if c := o.SourceBatchCap; c > 0 {
		gs.SetPageCaps(c, c, c)
	}
	gsrv := httptest.NewServer(gs.Handler())
	gs.SetTokenURL(gsrv.URL + googletest.PathToken)
	creds := filepath.Join(o.StateDir, "google-service-account.json")
	if err := os.WriteFile(creds, googletest.ServiceAccountJSON(gsrv.URL+googletest.PathToken), 0o600); err != nil {
		gsrv.Close()
		return nil, fmt.Errorf("writing the service account key: %w", err)
	}
	js := jiratest.New(jiratest.Options{Seed: uint64(o.Seed), Latency: o.Latency, Rate: jiratest.Limit{RPS: o.Rate, Burst: o.Burst}})
	jsrv := httptest.NewServer(js.Handler())
	return &googleWorld{
		google: gs, jira: js, googleURL: gsrv.URL, jiraURL: jsrv.URL, creds: creds,
		close: func() {
			jsrv.Close()
			gsrv.Close()
		},
	}, nil
}

// googleConfig is the bench config with the Google source of w, paced or not.
func (o Options) googleConfig(w *googleWorld, paced bool) (*configs.Config, error) {
	cfg, err := o.config(w.jiraURL, "http://127.0.0.1:1", paced)
	if err != nil {
		return nil, err
	}
	cfg.Sources = []configs.SourceConfig{{
		Name: sourceName, Type: configs.SourceGoogle, Priority: 10,
		Google: &configs.GoogleConfig{
			AdminEmail: googletest.DefaultAdminEmail, CredentialsFile: w.creds, BaseURL: w.googleURL,
			PageSize: o.SourcePageSize, RateLimit: configs.RateLimit{Concurrency: 4},
		},
	}}
	cfg.ApplyDefaults()
	// Unpaced: the bench measures the Jira budget, not the Admin SDK quota.
	cfg.Sources[0].Google.RateLimit = configs.RateLimit{Concurrency: 4}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench config: %w", err)
	}
	return cfg, nil
}

// setupGoogle runs the first sync at full speed: latency and rate limit off, sink unpaced.
func (o Options) setupGoogle(ctx context.Context, w *googleWorld) error {
	defer o.fullSpeed(w.jira, w.google)()
	cfg, err := o.googleConfig(w, false)
	if err != nil {
		return err
	}
	return o.setupPass(ctx, cfg)
}

// countGoogle fills the counters of the measured pass: Jira's, and the Directory API calls
// as source reads and as "google <endpoint>" rows of the call table.
func (r *Result) countGoogle(js *jiratest.Sim, gs *googletest.Sim) {
	r.countJira(js)
	calls := gs.Calls()
	for _, n := range calls {
		r.SourceReads += int64(n)
	}
	r.Calls = callTable(js.Calls(), nil)
	for ep, n := range calls {
		r.Calls["google "+ep] += int64(n)
	}
	r.WastedWrites = wastedWrites(r.Calls)
}
