package main

// The README and the pages in docs/ are kept true by the tests of this file, which `make test`
// runs like every other:
//
//   - TestDocsCommandsExist: every idsync command of a shell code block (```sh, shell, bash,
//     console; written idsync, bin/idsync or go run ./cmd/idsync, also inside $(...) and
//     <(...)) and every `idsync ...` in inline code names a command of the real cobra tree,
//     and its flags parse with that command's FlagSet. The commands of code blocks must also
//     have the positional arguments the command takes; placeholders (FILE, OUT, RUN_ID, URL,
//     NAME) are fine there, and are replaced when the command is run. Inline code may show
//     a usage with [optional] parts and a|b choices: the brackets are dropped, the first
//     choice is taken.
//   - TestDocsCommandsRun runs the idsync commands of code blocks against in-process
//     simulators, as written except for the values docsRun.args replaces (the config, the
//     state file, OUT, RUN_ID, --addr, user and source names, bench sizes):
//
//       command                         run how
//       version, completion SHELL       as written
//       validate                        -c with a file of this repository (configs/...) as is,
//                                       any other -c with the test's config
//       bench                           with small sizes (--users, --groups, --latency,
//                                       --rate replaced) so a scenario takes about a
//                                       second under -race; the full sizes are what
//                                       docs/figures.md reports
//       plan, reconcile --dry-run       before the first pass
//       reconcile, status, audit,       after a full pass; OUT of state backup and
//       state inspect, backup, compact  compact is a file in the test's folder
//       approve RUN_ID                  after the test trips the circuit breaker; RUN_ID
//                                       is the held run
//       any of these with --addr URL    against a daemon the test starts (idsync run)
//
//     Only checked, not run here:
//
//       command     why
//       run, sim    they serve until stopped; TestDocsByHand runs the README's pair, and the
//                   daemon tests of this package run `idsync run` throughout
//       demo        internal/demo's TestDemo runs the whole demo (what `make demo` runs)
//
//     A command of a kind no rule covers fails the test: add a rule to phaseOf.
//   - TestDocsByHand replays the README's "try the daemon by hand" block: idsync sim, then
//     idsync run -c configs/demo.yaml, then its curl calls and its kill -USR1. It skips when
//     the simulators' fixed ports (127.0.0.1:18081, :18082) are taken.
//   - TestDocsMakeTargets: every `make TARGET` named exists in the Makefile; the README names
//     `make demo` and `make test`. `make demo` itself is run by internal/demo's TestDemo.
//   - TestDocsGoTestCommands: every `go test` command names packages that exist, and its -run
//     and -bench patterns match tests and benchmarks of those packages; `go build` and `go
//     run` name packages that exist.
//   - TestDocsLinks: every relative link points to an existing file, and every #anchor to a
//     heading of its page; docs/README.md links every page of docs/.
//
// Other shell commands (curl outside the README block, systemctl, cp, kubectl) are not run.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/idsync/idsync/internal/proctest"
	"github.com/idsync/idsync/internal/sim"
	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

// repoRoot is the module's root as seen from this package's folder (go test's working dir).
const repoRoot = "../.."

// docPages are README.md and every page under docs/, relative to the repository's root.
func docPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(repoRoot, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(repoRoot, p)
			if err != nil {
				return err
			}
			pages = append(pages, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(pages[1:])
	return pages
}

// shellCmd is one simple command found in the docs.
type shellCmd struct {
	page   string
	line   int
	block  int  // the page's code block it is in, counted from 1; 0 for inline code
	inline bool // from inline code, not a code block
	words  []string
}

func (c shellCmd) String() string {
	return fmt.Sprintf("%s:%d: %s", c.page, c.line, strings.Join(c.words, " "))
}

// docLink is one [text](target) outside code.
type docLink struct {
	page   string
	line   int
	target string
}

// docPage is what scanPage finds in one page.
type docPage struct {
	cmds     []shellCmd
	links    []docLink
	headings []string // anchors, as GitHub makes them
}

var (
	fenceRE    = regexp.MustCompile("^\\s*(```+|~~~+)\\s*([A-Za-z0-9_+-]*)")
	inlineRE   = regexp.MustCompile("`([^`]+)`")
	linkRE     = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)
	headingRE  = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	choiceRE   = regexp.MustCompile(`([A-Za-z0-9_.-]+)(\|[A-Za-z0-9_.-]+)+`)
	assignRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)
	schemeRE   = regexp.MustCompile(`^[a-z]+:`)
	shellLangs = map[string]bool{"sh": true, "shell": true, "bash": true, "console": true, "zsh": true}
)

// scanPage reads one page: the simple commands of its shell code blocks and of the inline
// code that starts like a command, its links and its headings.
func scanPage(t *testing.T, page string) docPage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, page))
	if err != nil {
		t.Fatal(err)
	}
	var p docPage
	lines := strings.Split(string(b), "\n")
	var fence, lang string
	block := 0
	seen := map[string]int{}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if fence != "" {
			if l := strings.TrimSpace(line); len(l) >= len(fence) && strings.Trim(l, fence[:1]) == "" {
				fence = ""
				continue
			}
			if !shellLangs[lang] {
				continue
			}
			start := i + 1
			text := strings.TrimSpace(line)
			for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
				i++
				text = strings.TrimSuffix(text, `\`) + " " + strings.TrimSpace(lines[i])
			}
			if lang == "console" {
				if !strings.HasPrefix(text, "$ ") {
					continue
				}
				text = text[2:]
			}
			for _, w := range parseShell(text) {
				p.cmds = append(p.cmds, shellCmd{page: page, line: start, block: block, words: w})
			}
			continue
		}
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			fence, lang = m[1], m[2]
			block++
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			a := anchor(m[2])
			if n := seen[a]; n > 0 {
				p.headings = append(p.headings, fmt.Sprintf("%s-%d", a, n))
			} else {
				p.headings = append(p.headings, a)
			}
			seen[a]++
		}
		for _, m := range inlineRE.FindAllStringSubmatch(line, -1) {
			if text, ok := inlineCommand(m[1]); ok {
				for _, w := range parseShell(text) {
					p.cmds = append(p.cmds, shellCmd{page: page, line: i + 1, inline: true, words: w})
				}
			}
		}
		for _, m := range linkRE.FindAllStringSubmatch(inlineRE.ReplaceAllString(line, ""), -1) {
			p.links = append(p.links, docLink{page: page, line: i + 1, target: m[1]})
		}
	}
	if fence != "" {
		t.Errorf("%s: a code block is never closed", page)
	}
	return p
}

// inlineCommand is the command an inline code span shows, if it starts like one: usage
// brackets dropped, the first of a|b choices taken, a table's \| read as |.
func inlineCommand(span string) (string, bool) {
	span = strings.ReplaceAll(span, `\|`, "|")
	ok := false
	for _, p := range []string{"idsync ", "bin/idsync ", "go run ./cmd/idsync", "go test ", "go build ", "make "} {
		ok = ok || strings.HasPrefix(span, p)
	}
	if !ok {
		return "", false
	}
	span = strings.NewReplacer("[", " ", "]", " ").Replace(span)
	return choiceRE.ReplaceAllString(span, "$1"), true
}

// anchor is the fragment GitHub gives a heading.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// parseShell splits one shell line into its simple commands, as words with quotes removed.
// The commands inside $(...) and <(...) are commands of their own (the word keeps SUBST in
// their place); a redirection's target is dropped; # starts a comment.
func parseShell(s string) [][]string {
	var out [][]string
	var cur []string
	var w strings.Builder
	inWord, redirect := false, false
	flushWord := func() {
		if !inWord {
			return
		}
		if redirect {
			redirect = false
		} else {
			cur = append(cur, w.String())
		}
		w.Reset()
		inWord = false
	}
	flushCmd := func() {
		flushWord()
		if len(cur) > 0 {
			out = append(out, cur)
			cur = nil
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			w.WriteByte(s[i+1])
			i++
			inWord = true
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				j = len(s) - i - 1
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case (c == '$' || c == '<') && i+1 < len(s) && s[i+1] == '(':
			depth, j := 0, i+1
			for ; j < len(s); j++ {
				if s[j] == '(' {
					depth++
				} else if s[j] == ')' {
					if depth--; depth == 0 {
						break
					}
				}
			}
			out = append(out, parseShell(s[i+2:min(j, len(s))])...)
			w.WriteString("SUBST")
			inWord = true
			i = j
		case c == ' ' || c == '\t':
			flushWord()
		case c == '#' && !inWord:
			i = len(s)
		case c == '|' || c == ';' || c == '&':
			flushCmd()
		case (c == '>' || c == '<') && inWord && strings.Trim(w.String(), "0123456789") != "":
			w.WriteByte(c) // <userName> inside a URL is a placeholder, not a redirection
		case c == '>' || c == '<':
			w.Reset() // 2>file: the fd number is no argument
			inWord = false
			for i+1 < len(s) && (s[i+1] == '>' || s[i+1] == '&') {
				i++
			}
			redirect = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flushCmd()
	return out
}

// commandWords drops leading NAME=value assignments and sudo.
func commandWords(words []string) []string {
	for len(words) > 0 && (words[0] == "sudo" || assignRE.MatchString(words[0])) {
		words = words[1:]
	}
	return words
}

// idsyncArgs are the arguments of an idsync command, and whether words is one.
func idsyncArgs(words []string) ([]string, bool) {
	words = commandWords(words)
	switch {
	case len(words) > 0 && path.Base(words[0]) == "idsync":
		return words[1:], true
	case len(words) >= 3 && words[0] == "go" && words[1] == "run" &&
		(words[2] == "./cmd/idsync" || strings.HasPrefix(words[2], "github.com/idsync/idsync/cmd/idsync")):
		return words[3:], true
	}
	return nil, false
}

func scanAll(t *testing.T) (pages []string, byPage map[string]docPage) {
	t.Helper()
	pages = docPages(t)
	byPage = map[string]docPage{}
	for _, p := range pages {
		byPage[p] = scanPage(t, p)
	}
	return pages, byPage
}

// docsIdsync is one idsync command of the docs, resolved in the command tree.
type docsIdsync struct {
	shellCmd
	cmd  *cobra.Command // parsed: its flags hold the values written
	path string         // "idsync state backup"
	args []string       // positional arguments
}

// resolve finds args' command in a fresh command tree and parses its flags.
func resolve(args []string) (*cobra.Command, []string, error) {
	root := newRoot(io.Discard, io.Discard)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cmd.CommandPath(), err)
	}
	pos := cmd.Flags().Args()
	if !cmd.Runnable() && (cmd != root || len(pos) > 0) {
		return nil, nil, fmt.Errorf("%q does not run by itself (its subcommands: %s)", cmd.CommandPath(), subcommands(cmd))
	}
	return cmd, pos, nil
}

func subcommands(c *cobra.Command) string {
	var names []string
	for _, s := range c.Commands() {
		names = append(names, s.Name())
	}
	return strings.Join(names, ", ")
}

// docsCommands are the idsync commands of every page, each resolved, and what is wrong with
// those that do not resolve or whose flags or arguments are wrong.
func docsCommands(t *testing.T) (cmds []docsIdsync, problems []string) {
	t.Helper()
	pages, byPage := scanAll(t)
	for _, p := range pages {
		for _, c := range byPage[p].cmds {
			args, ok := idsyncArgs(c.words)
			if !ok {
				continue
			}
			cmd, pos, err := resolve(args)
			if err == nil && !c.inline {
				if err = cmd.ValidateArgs(pos); err != nil {
					err = fmt.Errorf("%s: %w", cmd.CommandPath(), err)
				}
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("%v\n\t%v", c, err))
				continue
			}
			cmds = append(cmds, docsIdsync{shellCmd: c, cmd: cmd, path: cmd.CommandPath(), args: pos})
		}
	}
	return cmds, problems
}

func TestDocsCommandsExist(t *testing.T) {
	t.Parallel()
	cmds, problems := docsCommands(t)
	for _, p := range problems {
		t.Error(p)
	}
	blocks, inline := 0, 0
	for _, c := range cmds {
		t.Logf("%v -> %s %q", c, c.path, c.args)
		if c.inline {
			inline++
		} else {
			blocks++
		}
	}
	// The docs show dozens of commands; a handful means the scanner went blind.
	if blocks < 30 || inline < 30 {
		t.Errorf("found %d idsync commands in code blocks and %d in inline code; the scanner misses some", blocks, inline)
	}
}

// The resolver must refuse what does not exist, or TestDocsCommandsExist proves nothing.
func TestDocsResolverRefuses(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"plna -c FILE", "plan --dryrun", "state", "state inspekt", "audit --since DURATION",
		"reconcile --user", "completion tcsh",
	} {
		if _, _, err := resolve(strings.Fields(bad)); err == nil {
			t.Errorf("idsync %s resolved", bad)
		}
	}
	if _, pos, err := resolve(strings.Fields("approve --addr URL RUN_ID")); err != nil || len(pos) != 1 {
		t.Errorf("approve --addr URL RUN_ID: %v %v", pos, err)
	}
	got := parseShell(`source <(idsync completion bash) && curl -H "a b" x | grep ^y > out # idsync c`)
	want := [][]string{{"idsync", "completion", "bash"}, {"source", "SUBST"}, {"curl", "-H", "a b", "x"}, {"grep", "^y"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseShell = %q, want %q", got, want)
	}
	if s, _ := inlineCommand(`idsync audit [--since 24h] [-o table\|json] [--addr URL]`); strings.Join(strings.Fields(s), " ") != "idsync audit --since 24h -o table --addr URL" {
		t.Errorf("inlineCommand = %q", s)
	}
}

// docsPhase is when TestDocsCommandsRun runs a command.
type docsPhase int

const (
	phaseFresh      docsPhase = iota // before the first pass
	phaseSynced                      // after a full pass, no daemon
	phaseHeld                        // a held run, no daemon
	phaseDaemon                      // a daemon runs
	phaseDaemonHeld                  // a daemon runs and holds a run
	phaseNotRun
)

func phaseOf(c docsIdsync) (docsPhase, string) {
	addr := flagValue(c.cmd, "addr") != ""
	switch c.path {
	case "idsync", "idsync version", "idsync validate", "idsync bench",
		"idsync completion bash", "idsync completion zsh", "idsync completion fish", "idsync completion powershell":
		return phaseFresh, ""
	case "idsync plan", "idsync reconcile", "idsync status", "idsync audit", "idsync state inspect",
		"idsync state backup", "idsync state compact":
		switch {
		case addr:
			return phaseDaemon, ""
		case c.path == "idsync plan" || flagValue(c.cmd, "dry-run") == "true":
			return phaseFresh, ""
		}
		return phaseSynced, ""
	case "idsync approve":
		if addr {
			return phaseDaemonHeld, ""
		}
		return phaseHeld, ""
	case "idsync run", "idsync sim":
		return phaseNotRun, "serves until stopped: TestDocsByHand runs the README's pair, the daemon tests run `idsync run`"
	case "idsync demo":
		return phaseNotRun, "internal/demo's TestDemo runs the whole demo in make test"
	}
	return phaseNotRun, ""
}

func flagValue(c *cobra.Command, name string) string {
	if f := c.Flags().Lookup(name); f != nil && f.Changed {
		return f.Value.String()
	}
	return ""
}

// noExitSleep drops the second a race-built binary sleeps before it exits; this test runs it
// some forty times.
var noExitSleep = "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")

// docsRun is the state TestDocsCommandsRun keeps while it runs the docs' commands.
type docsRun struct {
	t      *testing.T
	e      *env
	daemon *daemonProc
	user   string // stays in the IdP: --user NAME
	held   string // the held run: RUN_ID
	n      int    // numbers output files
}

// args rebuilds c's command line with the values that make it run here.
func (r *docsRun) args(c docsIdsync) []string {
	t, e := r.t, r.e
	out := strings.Fields(strings.TrimPrefix(c.path, "idsync"))
	var bench []string
	if c.path == "idsync bench" {
		switch flagValue(c.cmd, "scenario") {
		case "plan":
			bench = []string{"--users=1000", "--groups=50", "--memberships-per-user=5"}
		case "scim":
			bench = []string{"--users=50"}
		default:
			bench = []string{"--users=100", "--groups=5", "--memberships-per-user=2", "--latency=0", "--rate=0"}
		}
	}
	c.cmd.Flags().Visit(func(f *pflag.Flag) {
		v := f.Value.String()
		switch f.Name {
		case "config":
			if c.path == "idsync validate" {
				if _, err := os.Stat(filepath.Join(repoRoot, v)); err == nil && !filepath.IsAbs(v) {
					abs, err := filepath.Abs(filepath.Join(repoRoot, v))
					if err != nil {
						t.Fatal(err)
					}
					v = abs
					break
				}
			}
			v = e.configPath()
		case "addr":
			v = r.daemon.url("")
		case "token-file":
			v = filepath.Join(e.dir, "admin-token")
			if err := os.WriteFile(v, []byte(e.adminToken+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		case "state":
			if c.path != "idsync state inspect" {
				v = e.statePath()
				break
			}
			v = filepath.Join(e.dir, "copy-"+filepath.Base(v))
			if _, err := os.Stat(v); err != nil {
				if res := r.idsync("state", "backup", v); res.code != 0 {
					t.Fatalf("a copy for %v: exit %d\n%s", c, res.code, res.stderr)
				}
			}
		case "state-dir":
			v = t.TempDir()
		case "user":
			v = r.user
		case "source":
			v = "corp"
		case "listen":
			v = "127.0.0.1:0"
		case "users", "groups", "memberships-per-user", "latency", "rate":
			if bench != nil {
				return
			}
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok && f.Name != "user" {
			for _, s := range sv.GetSlice() {
				out = append(out, "--"+f.Name+"="+s)
			}
			return
		}
		out = append(out, "--"+f.Name+"="+v)
	})
	out = append(out, bench...)
	for _, a := range c.args {
		switch c.path {
		case "idsync state backup", "idsync state compact":
			r.n++
			a = filepath.Join(e.dir, fmt.Sprintf("out-%d.db", r.n))
		case "idsync approve":
			a = r.held
		}
		out = append(out, a)
	}
	return out
}

// run runs one command of the docs and checks that it went well.
func (r *docsRun) run(c docsIdsync) {
	t := r.t
	t.Helper()
	args := r.args(c)
	start := time.Now()
	res := r.idsync(args...)
	t.Logf("%v\n\tran as: idsync %s (%s)", c, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if res.code != 0 {
		t.Errorf("%v\n\tran as: idsync %s\n\texit %d\n%s%s", c, strings.Join(args, " "), res.code, proctest.Tail(res.stdout, 2000), proctest.Tail(res.stderr, 2000))
		return
	}
	switch {
	case flagValue(c.cmd, "output") == "json" && !json.Valid([]byte(res.stdout)):
		t.Errorf("%v: -o json printed no JSON:\n%.500s", c, res.stdout)
	case c.path == "idsync bench" && flagValue(c.cmd, "json") == "true":
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		if !json.Valid([]byte(lines[len(lines)-1])) {
			t.Errorf("%v: --json printed no JSON on the last line:\n%.500s", c, res.stdout)
		}
	case strings.TrimSpace(res.stdout) == "" && c.path != "idsync reconcile":
		t.Errorf("%v: printed nothing", c)
	}
}

// idsync runs the binary with the test's config as $IDSYNC_CONFIG.
func (r *docsRun) idsync(args ...string) cmdResult {
	r.t.Helper()
	return r.e.idsyncEnv([]string{"IDSYNC_CONFIG=" + r.e.configPath(), noExitSleep}, args...)
}

// leave takes n active people out of the IdP, never r.user.
func (r *docsRun) leave(n int) {
	r.t.Helper()
	for _, u := range r.e.sims.MiniOrange.Users() {
		if n == 0 {
			return
		}
		if u.Disabled || u.UserName == r.user {
			continue
		}
		if err := r.e.sims.MiniOrange.Leave(u.UserName); err != nil {
			r.t.Fatal(err)
		}
		n--
	}
	if n > 0 {
		r.t.Fatalf("the test org is too small for another %d leavers", n)
	}
}

// hold trips the circuit breaker with a pass that must hold, and returns the held run.
func (r *docsRun) hold() string {
	t, e := r.t, r.e
	t.Helper()
	r.leave(3)
	if r.daemon != nil {
		if code, body := r.daemon.do("POST", "/api/v1/reconcile?wait=true", e.adminToken); code != http.StatusOK {
			t.Fatalf("a pass through the daemon: %d %s", code, body)
		}
		code, body := r.daemon.do("GET", "/api/v1/held", e.adminToken)
		var h reconcile.HeldPlan
		if code != http.StatusOK || json.Unmarshal(body, &h) != nil || h.RunID == "" {
			t.Fatalf("no held run after 3 leavers: %d %s", code, body)
		}
		return h.RunID
	}
	res := r.idsync("reconcile", "-o", "json")
	var run reconcile.Run
	if res.code != exitHeld || json.Unmarshal([]byte(res.stdout), &run) != nil || run.ID == "" {
		t.Fatalf("3 leavers: exit %d, want %d (held)\n%s", res.code, exitHeld, res.stderr)
	}
	return run.ID
}

func TestDocsCommandsRun(t *testing.T) {
	t.Parallel()
	cmds, _ := docsCommands(t) // TestDocsCommandsExist reports those that do not resolve
	byPhase := map[docsPhase][]docsIdsync{}
	for _, c := range cmds {
		if c.inline {
			continue
		}
		p, why := phaseOf(c)
		if p == phaseNotRun && why == "" {
			t.Errorf("%v: no rule says how to run %q: add one to phaseOf (or say why it is not run)", c, c.path)
		}
		byPhase[p] = append(byPhase[p], c)
	}
	for _, p := range []docsPhase{phaseFresh, phaseSynced, phaseHeld, phaseDaemon, phaseDaemonHeld} {
		if len(byPhase[p]) == 0 {
			t.Errorf("no command of the docs runs in phase %d: is the scanner blind?", p)
		}
	}

	e := newEnv(t, sim.Options{})
	e.cfg.GracePasses = 0
	e.writeConfig(e.cfg)
	r := &docsRun{t: t, e: e, user: e.sims.MiniOrange.Users()[3].UserName}
	// Commands that do not open the state file run side by side; the others one at a time.
	var wg sync.WaitGroup
	for _, c := range byPhase[phaseFresh] {
		if c.path == "idsync plan" || c.path == "idsync reconcile" {
			r.run(c)
			continue
		}
		wg.Go(func() { r.run(c) })
	}
	wg.Wait()
	if res := r.idsync("reconcile"); res.code != 0 {
		t.Fatalf("the first pass: exit %d\n%s", res.code, res.stderr)
	}
	for _, c := range byPhase[phaseSynced] {
		r.run(c)
	}
	for _, c := range byPhase[phaseHeld] {
		r.held = r.hold()
		r.run(c)
		if res := r.idsync("reconcile"); res.code != 0 {
			t.Fatalf("the pass after %v: exit %d\n%s", c, res.code, res.stderr)
		}
	}
	r.daemon = e.startDaemon("--no-initial-pass")
	for _, c := range byPhase[phaseDaemon] {
		r.run(c)
	}
	for _, c := range byPhase[phaseDaemonHeld] {
		r.held = r.hold()
		r.run(c)
	}
	// The daemon is stopped when the test ends.
}

// TestDocsByHand replays the README's "try the daemon by hand" block.
func TestDocsByHand(t *testing.T) {
	t.Parallel()
	_, byPage := scanAll(t)
	var block []shellCmd
	for _, c := range byPage["README.md"].cmds {
		if args, ok := idsyncArgs(c.words); ok && !c.inline && len(args) > 0 && args[0] == "sim" {
			for _, d := range byPage["README.md"].cmds {
				if d.block == c.block && !d.inline {
					block = append(block, d)
				}
			}
			break
		}
	}
	if len(block) == 0 {
		t.Fatal("README.md has no code block that starts the simulators (idsync sim)")
	}
	var users []string
	for _, u := range miniorangetest.DefaultOrg().Users {
		if !u.Disabled {
			users = append(users, u.UserName)
		}
	}
	var daemon *handProc
	var last []byte // the answer of the last curl, for a grep it pipes into
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	dir := t.TempDir()
	for _, c := range block {
		words := commandWords(c.words)
		if args, ok := idsyncArgs(words); ok {
			cmd, pos, err := resolve(args)
			if err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			switch cmd.CommandPath() {
			case "idsync sim":
				p := startHand(t, dir, nil, args...)
				if !p.waitFor("miniOrange simulator:", 60*time.Second) {
					if strings.Contains(p.output(), "address already in use") {
						t.Skipf("the simulators' ports are taken (is an idsync sim running?):\n%s", p.output())
					}
					t.Fatalf("%v: the simulators did not start:\n%s", c, p.output())
				}
			case "idsync run":
				cfg := flagValue(cmd, "config")
				abs, err := filepath.Abs(filepath.Join(repoRoot, cfg))
				if err != nil || len(pos) != 0 {
					t.Fatalf("%v: %v %v", c, err, pos)
				}
				// The listener on a free port rather than 18080; the state in a temporary
				// folder, through the variable the README names.
				daemon = startHand(t, dir, []string{"IDSYNC_STATE_PATH=" + filepath.Join(dir, "idsync-demo.db")},
					"run", "-c", abs, "--listen", "127.0.0.1:0")
				if !daemon.waitFor(`"message":"listening"`, 60*time.Second) {
					t.Fatalf("%v: the daemon did not listen:\n%s", c, daemon.output())
				}
				daemon.addr = daemon.field("listening", "listen")
			default:
				t.Fatalf("%v: no replay rule for %s", c, cmd.CommandPath())
			}
			continue
		}
		if daemon == nil {
			t.Fatalf("%v: comes before the daemon starts", c)
		}
		switch words[0] {
		case "curl":
			method, token, target := "GET", "", ""
			for i := 1; i < len(words); i++ {
				switch w := words[i]; {
				case w == "-XPOST" || w == "-X" && i+1 < len(words) && words[i+1] == "POST":
					method = "POST"
				case w == "-H" && i+1 < len(words):
					token = strings.TrimPrefix(words[i+1], "Authorization: Bearer ")
					i++
				case strings.HasPrefix(w, "127.0.0.1:18080/"):
					target = "http://" + daemon.addr + strings.TrimPrefix(w, "127.0.0.1:18080")
				}
			}
			if target == "" {
				t.Fatalf("%v: no URL on 127.0.0.1:18080", c)
			}
			target = strings.ReplaceAll(target, "<userName>", users[7])
			req, err := http.NewRequest(method, target, nil)
			if err != nil {
				t.Fatal(err)
			}
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%v: %v", c, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Errorf("%v: %s\n%.500s", c, resp.Status, body)
			}
			last = body
		case "grep":
			if len(words) != 2 {
				t.Fatalf("%v: no replay rule for this grep", c)
			}
			if !regexp.MustCompile("(?m)" + words[1]).Match(last) {
				t.Errorf("%v: nothing matches in the answer piped to it:\n%.500s", c, last)
			}
		case "pgrep":
			// $(pgrep -f 'idsync run') finds the daemon's pid for the kill that follows.
			if !slices.Contains(words, "idsync run") {
				t.Fatalf("%v: no replay rule for this pgrep", c)
			}
		case "kill":
			if len(words) < 2 || words[1] != "-USR1" {
				t.Fatalf("%v: no replay rule for this kill", c)
			}
			if err := daemon.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			if !daemon.waitFor(`"trigger":"signal"`, 60*time.Second) {
				t.Errorf("%v: no pass triggered by the signal:\n%s", c, proctest.Tail(daemon.output(), 4000))
			}
		default:
			t.Fatalf("%v: no replay rule for %s", c, words[0])
		}
	}
	if daemon == nil {
		t.Fatal("the block never starts the daemon")
	}
	proctest.NoSecrets(t, "the demo daemon's log", daemon.output(),
		[]string{"sim-jira-token", "sim-mo-api-key", "sim-org-key", "demo-admin-token", "demo-scim-token", "demo-customers-token"})
}

// handProc is a process of the by-hand replay, its output kept.
type handProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string

	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

// startHand starts the binary in dir; it is stopped (SIGTERM, then SIGKILL) when the test ends.
func startHand(t *testing.T, dir string, env []string, args ...string) *handProc {
	t.Helper()
	p := &handProc{t: t, cmd: exec.Command(binPath, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = proctest.CleanEnv(append(env, noExitSleep)...)
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		proctest.NoRace(t, p.output())
		if t.Failed() {
			t.Logf("idsync %s:\n%s", strings.Join(args, " "), proctest.Tail(p.output(), 6000))
		}
	})
	return p
}

func (p *handProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the output holds s; false when the process ended or time ran out.
func (p *handProc) waitFor(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(p.output(), s) {
			return true
		}
		select {
		case <-p.done:
			return strings.Contains(p.output(), s)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// field is a string field of the first JSON log line with that message.
func (p *handProc) field(message, name string) string {
	for _, l := range strings.Split(p.output(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == message {
			s, _ := m[name].(string)
			return s
		}
	}
	p.t.Fatalf("no log line %q with %s", message, name)
	return ""
}

func TestDocsMakeTargets(t *testing.T) {
	t.Parallel()
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Za-z0-9_.-]+)\s*:([^=]|$)`).FindAllStringSubmatch(string(mk), -1) {
		targets[m[1]] = true
	}
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"make demo", "make test"} {
		if !strings.Contains(string(readme), want) {
			t.Errorf("README.md does not name %q", want)
		}
	}
	pages, byPage := scanAll(t)
	named := 0
	for _, p := range pages {
		for _, c := range byPage[p].cmds {
			words := commandWords(c.words)
			if len(words) == 0 || words[0] != "make" {
				continue
			}
			for _, w := range words[1:] {
				if strings.Contains(w, "=") || strings.HasPrefix(w, "-") {
					continue
				}
				named++
				if !targets[w] {
					t.Errorf("%v: the Makefile has no target %q", c, w)
				}
			}
		}
	}
	if named < 10 {
		t.Errorf("only %d make targets named in the docs; the scanner misses some", named)
	}
}

// goValueFlags are the go test flags that take a value.
var goValueFlags = map[string]bool{
	"run": true, "bench": true, "count": true, "benchtime": true, "cpu": true, "timeout": true,
	"fuzz": true, "fuzztime": true, "fuzzminimizetime": true, "tags": true, "parallel": true,
	"p": true, "o": true, "ldflags": true, "coverprofile": true, "skip": true,
}

func TestDocsGoTestCommands(t *testing.T) {
	t.Parallel()
	pages, byPage := scanAll(t)
	seen := 0
	for _, p := range pages {
		for _, c := range byPage[p].cmds {
			words := commandWords(c.words)
			if len(words) < 2 || words[0] != "go" || !slices.Contains([]string{"test", "build", "run"}, words[1]) {
				continue
			}
			seen++
			flags := map[string]string{}
			var pkgs []string
			for i := 2; i < len(words); i++ {
				w := words[i]
				if !strings.HasPrefix(w, "-") {
					pkgs = append(pkgs, w)
					if words[1] == "run" {
						break // the program's own arguments follow
					}
					continue
				}
				name, val, hasVal := strings.Cut(strings.TrimLeft(w, "-"), "=")
				if goValueFlags[name] && !hasVal && i+1 < len(words) {
					i++
					val = words[i]
				}
				flags[name] = val
			}
			if len(pkgs) == 0 {
				t.Errorf("%v: names no package", c)
				continue
			}
			var funcs []string
			for _, pkg := range pkgs {
				fs, err := goFuncs(pkg)
				if err != nil {
					t.Errorf("%v: %v", c, err)
				}
				funcs = append(funcs, fs...)
			}
			for flag, prefix := range map[string]string{"run": "Test", "bench": "Benchmark"} {
				pat, ok := flags[flag]
				if !ok || pat == "^$" {
					continue
				}
				first, _, _ := strings.Cut(pat, "/")
				re, err := regexp.Compile(first)
				if err != nil {
					t.Errorf("%v: -%s %q: %v", c, flag, pat, err)
					continue
				}
				if !slices.ContainsFunc(funcs, func(f string) bool { return strings.HasPrefix(f, prefix) && re.MatchString(f) }) {
					t.Errorf("%v: -%s %q matches no %s function of %v", c, flag, pat, prefix, pkgs)
				}
			}
		}
	}
	if seen < 10 {
		t.Errorf("only %d go commands in the docs; the scanner misses some", seen)
	}
}

var goFuncRE = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz|Example)\w*)\(`)

// goFuncs are the test, benchmark and fuzz functions of a package pattern (./x/ or ./x/...).
func goFuncs(pkg string) ([]string, error) {
	if !strings.HasPrefix(pkg, "./") {
		return nil, fmt.Errorf("package %q: write packages as ./path", pkg)
	}
	dir, recursive := strings.CutSuffix(strings.TrimSuffix(pkg, "/"), "/...")
	dir = filepath.Join(repoRoot, filepath.FromSlash(dir))
	info, err := os.Stat(dir)
	if err != nil || !info.IsDir() {
		return nil, fmt.Errorf("package %q: no such folder", pkg)
	}
	var funcs []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && !recursive {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, "_test.go") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range goFuncRE.FindAllStringSubmatch(string(b), -1) {
				funcs = append(funcs, m[1])
			}
		}
		return nil
	})
	return funcs, err
}

func TestDocsLinks(t *testing.T) {
	t.Parallel()
	pages, byPage := scanAll(t)
	anchors := func(page string) ([]string, error) {
		if dp, ok := byPage[page]; ok {
			return dp.headings, nil
		}
		if _, err := os.Stat(filepath.Join(repoRoot, page)); err != nil {
			return nil, err
		}
		return scanPage(t, page).headings, nil
	}
	checked := 0
	for _, p := range pages {
		for _, l := range byPage[p].links {
			if schemeRE.MatchString(l.target) {
				continue // http:, https:, mailto:
			}
			checked++
			file, frag, _ := strings.Cut(l.target, "#")
			target := p
			if file != "" {
				target = path.Clean(path.Join(path.Dir(p), file))
				if strings.HasPrefix(target, "../") {
					t.Errorf("%s:%d: %s points outside the repository", l.page, l.line, l.target)
					continue
				}
				if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(target))); err != nil {
					t.Errorf("%s:%d: %s: no such file (%s)", l.page, l.line, l.target, target)
					continue
				}
			}
			if frag == "" {
				continue
			}
			if !strings.HasSuffix(target, ".md") {
				t.Errorf("%s:%d: %s: an anchor into a file that is not a page", l.page, l.line, l.target)
				continue
			}
			hs, err := anchors(target)
			if err != nil {
				t.Errorf("%s:%d: %s: %v", l.page, l.line, l.target, err)
				continue
			}
			if !slices.Contains(hs, frag) {
				t.Errorf("%s:%d: %s: %s has no heading #%s (it has %s)", l.page, l.line, l.target, target, frag, strings.Join(hs, ", "))
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links checked; the scanner misses some", checked)
	}
	// Every page of docs/ is reachable from the index.
	index := byPage["docs/README.md"]
	for _, p := range pages {
		if p == "README.md" || p == "docs/README.md" {
			continue
		}
		if !slices.ContainsFunc(index.links, func(l docLink) bool {
			file, _, _ := strings.Cut(l.target, "#")
			return path.Clean(path.Join("docs", file)) == p
		}) {
			t.Errorf("docs/README.md does not link %s", p)
		}
	}
}
