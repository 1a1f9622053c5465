package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sinks/jira/jiratest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
	"github.com/idsync/idsync/state"
)

// The process scenario measures the daemon's own memory, apart from the simulators: the
// simulators run in this process, and the measured pass is the start-up pass (a full one,
// with nothing to do) of `idsync run` in a child process. Its peak RSS is the VmHWM of that
// process (anonymous memory and the state file's mapped pages alike), read from /proc while it
// runs; the daemon is stopped once the pass has finished.
//
// The site and the state file start where a complete first sync of the org leaves them,
// seeded directly: at 100,000 users that sync is 1,210,000 calls and some ten minutes, none of
// it measured. The Jira simulator gets every active user's account (with the display name the
// mapping wants), every IdP group with its members and the default group with every account;
// the state file gets a link per account and the ownership records the sync would have
// journaled: each group it created and each membership it added. The measured pass must then
// change nothing: a write, or a plan with any item, fails the run.

// MaxProcessRSS is the goal for the measured process's peak RSS (600 MB).
const MaxProcessRSS = 600_000_000

// maxDaemonPass bounds the wait for the daemon's start-up pass (some 90 s at 100,000 users).
const maxDaemonPass = 30 * time.Minute

// seedChunk is how many records one journal entry of the seeding writes.
const seedChunk = 50_000

// runProcess runs the process scenario.
func runProcess(ctx context.Context, o Options) (*Result, error) {
	if o.Binary == "" {
		return nil, fmt.Errorf("%w: the process scenario needs the idsync binary to run the measured pass", ErrUsage)
	}
	sims, org, res, err := o.startInProcess()
	if err != nil {
		return nil, err
	}
	defer sims.Close()
	res.Mode = "process"
	o.fullSpeed(sims.Jira, sims.MiniOrange) // memory is measured, not time
	res.LatencyMS, res.Rate = 0, 0

	cfg, err := o.config(sims.JiraURL, sims.MiniOrangeURL, false)
	if err != nil {
		return nil, err
	}
	if err := seedSynced(sims.Jira, sims.MiniOrange.Users(), cfg.State.Path); err != nil {
		return nil, fmt.Errorf("seeding a synced site: %w", err)
	}
	shape := ShapeOf(&org, org, o.caps())
	res.setShape(shape, o)
	res.FloorSeconds = 0 // no rate and no latency: nothing bounds the pass from below
	cfgPath := filepath.Join(o.StateDir, "idsync.yaml")
	if err := os.WriteFile(cfgPath, []byte(processConfig(cfg.State.Path, sims.JiraURL, sims.MiniOrangeURL, o)), 0o600); err != nil {
		return nil, fmt.Errorf("writing the config: %w", err)
	}

	sims.Jira.Reset()
	sims.MiniOrange.Reset()
	start := time.Now()
	run, peak, err := daemonProcess(ctx, o.Binary, cfgPath, cfg.State.Path)
	res.WallSeconds = time.Since(start).Seconds()
	res.countJira(sims.Jira)
	res.SourceReads = int64(sims.MiniOrange.TotalCalls())
	res.ProcessPeakRSSBytes = peak
	if err != nil {
		return res, err
	}
	full := run.JiraRead == reconcile.ReadFull
	res.FullRead = &full
	res.PassResult = run.Result
	res.Errors = run.Errors
	items := 0
	for _, m := range run.Counts {
		for _, n := range m {
			items += n
		}
	}
	if items > 0 || run.Result != reconcile.ResultOK || !full {
		return res, fmt.Errorf("the measured pass was not a full pass with nothing to do: result %s, counts %v", run.Result, run.Counts)
	}
	return res, nil
}

// daemonProcess starts `idsync run` on cfgPath, waits for its start-up pass (a full one) to
// finish, stops it, and returns that pass's run record (from the state file) and the
// daemon's peak RSS in bytes up to then.
func daemonProcess(ctx context.Context, binary, cfgPath, statePath string) (reconcile.Run, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, maxDaemonPass)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "run", "-c", cfgPath, "--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "info")
	out, w := io.Pipe()
	cmd.Stdout, cmd.Stderr, cmd.Env = w, w, childEnv()
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := cmd.Start(); err != nil {
		return reconcile.Run{}, 0, fmt.Errorf("starting idsync run: %w", err)
	}
	stop, peakc := make(chan struct{}), make(chan uint64, 1)
	go func() { peakc <- watchPeak(cmd.Process.Pid, stop) }()
	finished := make(chan struct{})
	var tail []string // the last lines it wrote, for errors
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			tail = append(tail[max(0, len(tail)-4):], sc.Text())
			mu.Unlock()
			if strings.Contains(sc.Text(), `"message":"pass finished"`) {
				once.Do(func() { close(finished) })
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); _ = w.Close() }()

	var err error
	select {
	case <-finished:
		close(stop)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err = <-exited
	case err = <-exited:
		close(stop)
		mu.Lock()
		err = fmt.Errorf("idsync run stopped before its first pass finished (%v): %s", err, strings.Join(tail, "\n"))
		mu.Unlock()
	}
	peak := <-peakc
	if err != nil {
		return reconcile.Run{}, peak, err
	}
	st, err := state.Open(statePath, state.Options{ReadOnly: true})
	if err != nil {
		return reconcile.Run{}, peak, err
	}
	defer func() { _ = st.Close() }()
	runs, err := st.Runs(1)
	if err != nil || len(runs) == 0 {
		return reconcile.Run{}, peak, fmt.Errorf("reading the daemon's run record: %v (%d runs)", err, len(runs))
	}
	return runs[0], peak, nil
}

// childEnv is this environment without IDSYNC_* settings, which would change the config.
func childEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IDSYNC_") {
			out = append(out, kv)
		}
	}
	return out
}

// processConfig is the child's config: the bench config's keys, as YAML.
func processConfig(statePath, jiraURL, moURL string, o Options) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // JSON strings are YAML
	return fmt.Sprintf(`admin_token: %s
state:
  path: %s
log:
  level: warn
sources:
  - name: %s
    type: miniorange
    miniorange:
      base_url: %s
      customer_key: %s
      api_key: %s
      page_size: %d
sink:
  type: jira
  jira:
    base_url: %s
    email: %s
    api_token: %s
    products: [jira-software]
    rate_limit: {requests_per_second: 0, concurrency: %d}
mapping:
  import_users: true
  import_groups: true
  default_groups: [%s]
`, q(randomToken()), q(statePath), sourceName, q(moURL), q(miniorangetest.DefaultCustomerKey), q(miniorangetest.DefaultAPIKey),
		o.SourcePageSize, q(jiraURL), q(jiratest.DefaultEmail), q(jiratest.DefaultAPIToken), o.Concurrency, q(defaultGroup))
}

// seedSynced puts the Jira simulator and a new state file at statePath where a complete
// first sync of users leaves them (see the comment at the top of this file).
func seedSynced(js *jiratest.Sim, users []miniorangetest.User, statePath string) error {
	def, ok := js.Group(defaultGroup)
	if !ok {
		return fmt.Errorf("the simulator has no %s group", defaultGroup)
	}
	groupIDs := map[string]string{}
	var entry reconcile.JournalEntry
	for _, u := range users {
		if u.Disabled {
			continue // no account: the first sync never created one
		}
		for _, g := range u.Groups {
			if _, ok := groupIDs[g]; ok {
				continue
			}
			id, err := js.AddGroup(g, "")
			if err != nil {
				return fmt.Errorf("group %s: %w", g, err)
			}
			groupIDs[g] = id
			entry.Own = append(entry.Own, reconcile.Owned{Kind: reconcile.OwnedGroup, Container: id, ContainerName: g})
		}
	}
	st, err := state.Open(statePath, state.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	flush := func(force bool) error {
		if !force && len(entry.Own)+len(entry.Links) < seedChunk {
			return nil
		}
		err := st.Journal(entry)
		entry = reconcile.JournalEntry{}
		return err
	}
	for _, u := range users {
		if u.Disabled {
			continue
		}
		display := strings.TrimSpace(strings.TrimSpace(u.FirstName) + " " + strings.TrimSpace(u.LastName))
		if display == "" {
			display = u.UserName
		}
		groups := append([]string{defaultGroup}, u.Groups...)
		id, err := js.AddUser(jiratest.User{Email: u.Email, DisplayName: display, Groups: groups})
		if err != nil {
			return fmt.Errorf("account of %s: %w", u.UserName, err)
		}
		entry.Links = append(entry.Links, reconcile.Link{Source: sourceName, Key: cmp.Or(u.ID, u.UserName), UserName: u.UserName,
			Email: u.Email, AccountID: id, Created: true})
		entry.Own = append(entry.Own, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: def.ID, ContainerName: def.Name, AccountID: id})
		for _, g := range u.Groups {
			entry.Own = append(entry.Own, reconcile.Owned{Kind: reconcile.OwnedMembership, Container: groupIDs[g], ContainerName: g, AccountID: id})
		}
		if err := flush(false); err != nil {
			return err
		}
	}
	if err := flush(true); err != nil {
		return err
	}
	if len(users) == 0 {
		return errors.New("the org has no users")
	}
	return nil
}
