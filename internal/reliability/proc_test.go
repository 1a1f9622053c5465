package reliability

// Process-level harness: the idsync binary is built once, the first time a test needs it, and
// run as operators run it, against simulators served by the test process on loopback.
//
// The binary is built without -race even when the tests run with it: a -race binary spends
// about a second starting up, and these tests start it well over a hundred times (crash
// trials, every CLI command of the secrets check). After `go vet ./...` (make test) the build
// is a link of cached packages; cmd/idsync's own process tests run the binary with -race.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/proctest"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// idsyncBinary builds the binary on first use.
func idsyncBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "idsync-reliability-")
		if binErr == nil {
			binPath, binErr = proctest.Build(binDir, false)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func cleanupBinary() {
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// cmdResult is one finished command.
type cmdResult struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r cmdResult) String() string {
	return fmt.Sprintf("idsync %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, proctest.Tail(r.stdout, 4000), proctest.Tail(r.stderr, 4000))
}

// runIdsync runs the binary to completion; every output is checked for secrets and races.
func runIdsync(t testing.TB, secrets []string, env []string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, idsyncBinary(t), args...)
	cmd.Env = proctest.CleanEnv(env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := cmdResult{args: args, stdout: so.String(), stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("idsync %v: %v", args, err)
	}
	proctest.NoSecrets(t, "idsync "+strings.Join(args, " "), r.stdout+r.stderr, secrets)
	proctest.NoRace(t, r.stderr)
	return r
}

// proc is a running idsync process (reconcile or run) whose output is collected.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	code int
	addr string // run: the listener's address once it listens
}

// startIdsync starts the binary; stdout and stderr are collected together. listening makes
// it wait for the daemon's "listening" line.
func startIdsync(t testing.TB, secrets []string, listening bool, args ...string) *proc {
	t.Helper()
	return startIdsyncEnv(t, secrets, nil, listening, args...)
}

// startIdsyncEnv is startIdsync with extra environment variables.
func startIdsyncEnv(t testing.TB, secrets, env []string, listening bool, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(idsyncBinary(t), args...)
	cmd.Env = proctest.CleanEnv(env...)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	p := &proc{t: t, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.out.Write(line)
			p.out.WriteByte('\n')
			p.mu.Unlock()
			if listening && bytes.Contains(line, []byte(`"listening"`)) {
				var m struct {
					Listen string `json:"listen"`
				}
				if json.Unmarshal(line, &m) == nil && m.Listen != "" {
					select {
					case addr <- m.Listen:
					default:
					}
				}
			}
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				p.code = -int(ws.Signal())
			}
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		out := p.output()
		proctest.NoSecrets(t, "idsync "+strings.Join(args, " "), out, secrets)
		proctest.NoRace(t, out)
		if t.Failed() {
			t.Logf("output of idsync %s:\n%s", strings.Join(args, " "), proctest.Tail(out, 6000))
		}
	})
	if listening {
		select {
		case p.addr = <-addr:
		case <-p.done:
			t.Fatalf("idsync exited with %d before listening:\n%s", p.code, p.output())
		case <-time.After(60 * time.Second):
			t.Fatalf("idsync did not listen within 60s:\n%s", p.output())
		}
	}
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// kill sends SIGKILL (no chance to flush anything) and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// httpDo sends a request to the daemon with an optional bearer token and body.
func (p *proc) httpDo(method, path, token, body string) (int, string) {
	p.t.Helper()
	code, b, err := doHTTP(method, "http://"+p.addr+path, token, body)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	return code, b
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func doHTTP(method, url, token, body string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
