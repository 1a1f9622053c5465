package scim

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/state"
)

// crashChildEnv names the state file a child process serves; see TestCrashGroupCommitAck.
const crashChildEnv = "IDSYNC_SCIM_CRASH_STATE"

// TestCrashGroupCommitAck kills a listener (a child process on the bbolt store) while 16
// clients add members to one group, as soon as half of their PATCHes are answered (the others
// are waiting or being stored), restarts it, and reads the group back: every member a 2xx
// acknowledged is there, though the PATCHes were stored in shared transactions.
func TestCrashGroupCommitAck(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		serveCrashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes")
	}
	path := filepath.Join(t.TempDir(), "idsync.db")
	child := startCrashChild(t, path)
	c := newHotClient("http://"+child.addr+"/scim/v2/corp", 16)
	defer c.close()
	ctx := context.Background()
	const rounds, clients = 3, 16
	users := make([]string, rounds*clients)
	for i := range users {
		var out struct{ ID string }
		if err := c.do(ctx, http.MethodPost, "/Users", fmt.Sprintf(`{"userName":"crash-%03d@example.com","active":true}`, i), http.StatusCreated, &out); err != nil {
			t.Fatal(err)
		}
		users[i] = out.ID
	}
	var g struct{ ID string }
	if err := c.do(ctx, http.MethodPost, "/Groups", `{"displayName":"Crash"}`, http.StatusCreated, &g); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	for round := range rounds {
		var (
			mu   sync.Mutex
			n    int
			half = make(chan struct{})
			wg   sync.WaitGroup
		)
		for k := range clients {
			id := users[round*clients+k]
			wg.Go(func() {
				if c.do(ctx, http.MethodPatch, "/Groups/"+g.ID, addMember(id), http.StatusNoContent, nil) != nil {
					return // not answered: no promise was made
				}
				mu.Lock()
				acked[id] = true
				if n++; n == clients/2 {
					close(half)
				}
				mu.Unlock()
			})
		}
		select {
		case <-half:
		case <-time.After(30 * time.Second):
			t.Fatal("half the PATCHes were not answered within 30s")
		}
		child.kill(t)
		wg.Wait()
		c.close()
		child = startCrashChild(t, path)
		c = newHotClient("http://"+child.addr+"/scim/v2/corp", 16)
		var got struct {
			Members []struct{ Value string }
		}
		if err := c.do(ctx, http.MethodGet, "/Groups/"+g.ID, "", http.StatusOK, &got); err != nil {
			t.Fatal(err)
		}
		present := map[string]bool{}
		for _, m := range got.Members {
			present[m.Value] = true
		}
		for id := range acked {
			if !present[id] {
				t.Errorf("round %d: member %s was acknowledged but is missing after the kill", round, id)
			}
		}
		t.Logf("round %d: %d members acknowledged so far, %d present after the kill", round, len(acked), len(present))
	}
	child.kill(t)
}

type crashChild struct {
	cmd  *exec.Cmd
	addr string
}

func startCrashChild(t *testing.T, path string) *crashChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashGroupCommitAck$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return &crashChild{cmd: cmd, addr: a}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("the listener did not start within 30s")
		return nil
	}
}

func (c *crashChild) kill(t *testing.T) {
	t.Helper()
	_ = c.cmd.Process.Kill() // SIGKILL: no shutdown, no last sync
	_ = c.cmd.Wait()
}

// serveCrashChild serves source corp from the state file at path until it is killed.
func serveCrashChild(path string) {
	st, err := state.Open(path, state.Options{Logger: zerolog.Nop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	h, err := NewHandler(HandlerOptions{Store: st, Sources: []SourceOptions{{Name: "corp", Token: configs.Secret(tokenA)}}, Logger: zerolog.Nop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("listening on " + ln.Addr().String())
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	_ = srv.Serve(ln)
	os.Exit(0)
}
