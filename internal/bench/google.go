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
	if o.SourcePageSize == 0 {
		o.SourcePageSize = google.DefaultPageSize
	}
	if err := o.normalize(); err != nil {
		return nil, err
	}
	if o.Scenario != ScenarioInitial && o.Scenario != ScenarioNoop {
		return nil, fmt.Errorf("%w: --scenario %q: a Google source runs initial or noop", ErrUsage, o.Scenario)
	}
	if o.JiraURL != "" || o.MiniOrangeURL != "" {
		return nil, fmt.Errorf("%w: a Google source runs in-process only", ErrUsage)
	}
	if o.SourcePageSize > google.UsersPageCap {
		return nil, fmt.Errorf("%w: --page-size for Google is at most %d", ErrUsage, google.UsersPageCap)
	}
	if o.StateDir == "" {
		dir, err := os.MkdirTemp("", "idsync-bench-")
		if err != nil {
			return nil, fmt.Errorf("creating the state folder: %w", err)
		}
		o.StateDir = dir
		defer os.RemoveAll(dir)
	}

	org := o.googleOrg()
	gs := googletest.New(googletest.Options{Org: &org, Seed: o.Seed, Latency: o.Latency})
	if c := o.SourceBatchCap; c > 0 {
		gs.SetPageCaps(c, c, c)
	}
	gsrv := httptest.NewServer(gs.Handler())
	defer gsrv.Close()
	gs.SetTokenURL(gsrv.URL + googletest.PathToken)
	creds := filepath.Join(o.StateDir, "google-service-account.json")
	if err := os.WriteFile(creds, googletest.ServiceAccountJSON(gsrv.URL+googletest.PathToken), 0o600); err != nil {
		return nil, fmt.Errorf("writing the service account key: %w", err)
	}
	js := jiratest.New(jiratest.Options{Seed: uint64(o.Seed), Latency: o.Latency, Rate: jiratest.Limit{RPS: o.Rate, Burst: o.Burst}})
	jsrv := httptest.NewServer(js.Handler())
	defer jsrv.Close()

	config := func(paced bool) (*configs.Config, error) {
		cfg, err := o.config(jsrv.URL, "http://127.0.0.1:1", paced)
		if err != nil {
			return nil, err
		}
		cfg.Sources = []configs.SourceConfig{{
			Name: sourceName, Type: configs.SourceGoogle, Priority: 10,
			Google: &configs.GoogleConfig{
				AdminEmail: googletest.DefaultAdminEmail, CredentialsFile: creds, BaseURL: gsrv.URL,
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

	borg := orgFromGoogle(gs)
	res := o.newResult("in-process", "simulator")
	res.Users, res.Groups, res.Memberships = len(borg.Users), len(borg.Groups), borg.Memberships()
	var before *Org
	if o.Scenario == ScenarioNoop {
		js.SetLatency(0, 0)
		js.SetRate(jiratest.Limit{})
		gs.SetLatency(0, 0)
		cfg, err := config(false)
		if err != nil {
			return nil, err
		}
		out, err := o.runPass(ctx, cfg, nil)
		if err != nil {
			return nil, fmt.Errorf("setup pass: %w", err)
		}
		if err := setupOK(out); err != nil {
			return nil, err
		}
		js.SetLatency(o.Latency, 0)
		js.SetRate(jiratest.Limit{RPS: o.Rate, Burst: o.Burst})
		gs.SetLatency(o.Latency, 0)
		b := borg
		before = &b
	}
	shape := ShapeOf(before, borg, o.caps())
	gshape := googleShapeOf(gs, o.SourcePageSize, o.SourceBatchCap)
	res.MinSourceReads = gshape.MinSourceReads()
	res.MinJiraReads = shape.MinJiraReads()
	res.MinReads = res.MinSourceReads + res.MinJiraReads
	res.MinWrites = shape.MinWrites()
	res.FloorSeconds = FloorSeconds(res.MinJiraReads+res.MinWrites, res.MinReads+res.MinWrites, o.Rate, o.Latency, o.Concurrency)

	cfg, err := config(true)
	if err != nil {
		return nil, err
	}
	js.Reset()
	gs.Reset()
	out, err := o.runPass(ctx, cfg, nil)
	res.Reads, res.Writes, res.Throttled = js.Reads(), js.Writes(), js.Throttled()
	res.EarlyRetries = js.EarlyRetries()
	calls := gs.Calls()
	for _, n := range calls {
		res.SourceReads += int64(n)
	}
	res.Calls = callTable(js.Calls(), nil)
	for ep, n := range calls {
		res.Calls["google "+ep] += int64(n)
	}
	res.WastedWrites = wastedWrites(res.Calls)
	res.setPass(out)
	res.finish()
	res.PeakRSSBytes = PeakRSS()
	res.Goals = goals(res)
	return res, err
}
