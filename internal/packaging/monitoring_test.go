package packaging

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/idsync/idsync/internal/metrics"
)

var (
	rulesFile     = filepath.Join(repoRoot, "configs", "prometheus", "idsync.rules.yml")
	dashboardFile = filepath.Join(repoRoot, "configs", "grafana", "idsync.json")
)

// exportedNames is every series name the daemon's registry (internal/metrics) can expose:
// each collector field of metrics.Metrics described (a vector without children yet is not in
// Gather), with _bucket/_sum/_count for histograms and _sum/_count for summaries, plus what
// Gather returns (the Go and process collectors).
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	m := metrics.New()
	names := map[string]bool{}
	add := func(name string, typ dto.MetricType) {
		names[name] = true
		switch typ {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	collectorType := reflect.TypeFor[prometheus.Collector]()
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.CanInterface() || !f.Type().Implements(collectorType) || f.IsNil() {
			continue
		}
		c := f.Interface().(prometheus.Collector)
		// A single metric is in Gather below with its type; a vector needs its type here.
		typ := dto.MetricType_UNTYPED
		switch c.(type) {
		case *prometheus.HistogramVec:
			typ = dto.MetricType_HISTOGRAM
		case *prometheus.SummaryVec:
			typ = dto.MetricType_SUMMARY
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if mm := fqName.FindStringSubmatch(d.String()); mm != nil {
				add(mm[1], typ)
			}
		}
	}
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		add(mf.GetName(), mf.GetType())
	}
	for _, must := range []string{"idsync_passes_total", "idsync_held_changes", "idsync_pass_duration_seconds_bucket", "process_start_time_seconds"} {
		if !names[must] {
			t.Fatalf("the registry does not export %s: the name collection is broken (%d names)", must, len(names))
		}
	}
	return names
}

func promParser() parser.Parser {
	return parser.NewParser(parser.Options{})
}

// seriesNames parses a PromQL expression and returns the metric names of its selectors.
func seriesNames(t *testing.T, p parser.Parser, expr string) []string {
	t.Helper()
	node, err := p.ParseExpr(expr)
	if err != nil {
		t.Errorf("PromQL %q: %v", expr, err)
		return nil
	}
	var out []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, lm := range vs.LabelMatchers {
			if lm.Name == model.MetricNameLabel && lm.Type == labels.MatchEqual {
				name = lm.Value
			}
		}
		if name == "" {
			t.Errorf("PromQL %q selects series without a metric name", expr)
			return nil
		}
		out = append(out, name)
		return nil
	})
	return out
}

func TestPrometheusRules(t *testing.T) {
	exported := exportedNames(t)
	p := promParser()
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Error(err)
	}
	if groups == nil {
		t.FailNow()
	}
	alerts := map[string]rulefmt.Rule{}
	used := map[string][]string{} // metric -> alerts using it
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("recording rule %s: the file holds alerts only", r.Record)
				continue
			}
			alerts[r.Alert] = r
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s lacks a severity label, a summary or a description", r.Alert)
			}
			for _, n := range seriesNames(t, p, r.Expr) {
				if !exported[n] {
					t.Errorf("alert %s uses %s, which idsync does not export", r.Alert, n)
				}
				used[n] = append(used[n], r.Alert)
			}
		}
	}
	// The alerts operators were promised (README: suggested alerts; configs/kubernetes:
	// /readyz's conditions as alerts).
	for metric, forAtLeast := range map[string]time.Duration{
		"idsync_held_changes":                   time.Minute,
		"idsync_last_success_timestamp_seconds": 0,
		"idsync_source_read_complete":           30 * time.Minute,
		"idsync_scim_requests_total":            time.Minute,
		"idsync_api_requests_total":             time.Minute,
	} {
		names := used[metric]
		if len(names) == 0 {
			t.Errorf("no alert on %s", metric)
			continue
		}
		if f := time.Duration(alerts[names[0]].For); f < forAtLeast {
			t.Errorf("alert %s on %s fires after %v, want at least %v", names[0], metric, f, forAtLeast)
		}
	}
	if r := alerts[used["idsync_scim_requests_total"][0]]; !strings.Contains(r.Expr, `code=~"5.."`) {
		t.Errorf("SCIM alert %q does not look at 5xx answers", r.Expr)
	}
	if r := alerts[used["idsync_api_requests_total"][0]]; !strings.Contains(r.Expr, `code="429"`) {
		t.Errorf("throttling alert %q does not look at 429 answers", r.Expr)
	}
	if r := alerts[used["idsync_last_success_timestamp_seconds"][0]]; !strings.Contains(r.Expr, "3 * 900") {
		t.Errorf("no-success alert %q: want three default intervals (3 * 900 s) spelled out", r.Expr)
	}
}

// TestRulesParserCatchesMistakes: the checks above can fail.
func TestRulesParserCatchesMistakes(t *testing.T) {
	p := promParser()
	bad := "groups:\n- name: x\n  rules:\n  - alert: A\n    expr: rate(idsync_passes_total[5m] > 0\n"
	if _, errs := rulefmt.Parse([]byte(bad), false, model.UTF8Validation, p, slog.New(slog.NewTextHandler(io.Discard, nil))); len(errs) == 0 {
		t.Error("a broken expression parsed")
	}
	exported := exportedNames(t)
	for _, n := range seriesNames(t, p, `sum(rate(idsync_pases_total[5m])) + idsync_held_changes`) {
		if n == "idsync_pases_total" && exported[n] {
			t.Error("a misspelt metric counts as exported")
		}
	}
	if exported["idsync_held_changes_bucket"] {
		t.Error("a gauge got histogram series")
	}
}

// grafanaVars stand in for Grafana's interval variables, which PromQL cannot parse.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	ID      int     `json:"id"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
}

func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Error("the dashboard has no title or uid")
	}
	exported := exportedNames(t)
	p := promParser()
	var all []panel
	for _, pn := range d.Panels {
		all = append(all, pn)
		all = append(all, pn.Panels...)
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	for _, pn := range all {
		if ids[pn.ID] {
			t.Errorf("panel id %d repeats", pn.ID)
		}
		ids[pn.ID] = true
		if pn.Type == "row" {
			continue
		}
		if len(pn.Targets) == 0 {
			t.Errorf("panel %q has no query", pn.Title)
		}
		if pn.Datasource == nil || pn.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the dashboard's data source variable", pn.Title)
		}
		for _, tg := range pn.Targets {
			for _, n := range seriesNames(t, p, grafanaVars.Replace(tg.Expr)) {
				if !exported[n] {
					t.Errorf("panel %q uses %s, which idsync does not export", pn.Title, n)
				}
				used[n] = true
			}
		}
	}
	// Template variables: label_values(METRIC..., label) names an exported metric.
	lv := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := lv.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, v.Definition)
			continue
		}
		for _, n := range seriesNames(t, p, m[1]) {
			if !exported[n] {
				t.Errorf("variable %s uses %s, which idsync does not export", v.Name, n)
			}
		}
	}
	// What the dashboard is for: passes by result, changes by kind, source completeness,
	// API requests and throttling, SCIM traffic, held changes; and which build runs.
	var missing []string
	for _, n := range []string{
		"idsync_passes_total", "idsync_changes_total", "idsync_source_read_complete",
		"idsync_api_requests_total", "idsync_ratelimit_throttled_total", "idsync_scim_requests_total",
		"idsync_held_changes", "idsync_last_success_timestamp_seconds", "idsync_build_info",
	} {
		if !used[n] {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard shows nothing of %v", missing)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct {
		Name       string `json:"name"`
		Type       string `json:"type"`
		Definition string `json:"definition"`
	}) bool {
		return v.Type == "datasource" && v.Name == "datasource"
	}) {
		t.Error("no datasource variable")
	}
}
