package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/idsync/idsync/reconcile"
	"github.com/idsync/idsync/reconcile/runner"
)

// Status is read by the admin API and `idsync status` while a pass runs: what it returns must
// share nothing the pass still writes (run under -race), and it shows the running pass's
// counts as items settle.
func TestStatusWhileAPassApplies(t *testing.T) {
	var users []reconcile.User
	for i := range 30 {
		users = append(users, user(fmt.Sprint(i), fmt.Sprintf("u%02d", i), fmt.Sprintf("u%02d@example.com", i), "Engineering", "Sales"))
	}
	e := newEnv(t, users, baseMapping(), openSafety())

	// The 10th add waits until the test has looked at the status.
	atAdd, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	adds := 0
	var mu sync.Mutex
	e.sink.Fail = func(c reconcile.Change, _ int) error {
		if c.Kind != reconcile.KindAddMember {
			return nil
		}
		mu.Lock()
		adds++
		n := adds
		mu.Unlock()
		if n == 10 {
			once.Do(func() { close(atAdd) })
			<-release
		}
		return nil
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st := e.r.Status()
				if _, err := json.Marshal(st); err != nil {
					t.Error(err)
					return
				}
				if st.Current != nil {
					// Mutating the copy must not reach the pass (nor race with it).
					st.Current.Counts[reconcile.KindCreateUser] = nil
					st.Current.Errors = append(st.Current.Errors, "reader")
				}
			}
		}()
	}

	done := make(chan reconcile.Run)
	go func() {
		run, err := e.r.RunOnce(context.Background(), runner.RunOptions{Trigger: reconcile.TriggerAPI})
		if err != nil {
			t.Error(err)
		}
		done <- run
	}()
	<-atAdd
	st := e.r.Status()
	if !st.Running || st.Current == nil {
		t.Fatalf("status during the pass: %+v", st)
	}
	cur := st.Current
	if cur.Counts[reconcile.KindCreateUser][reconcile.ItemOK] != 30 || cur.Counts[reconcile.KindCreateGroup][reconcile.ItemOK] != 2 {
		t.Errorf("the running pass's counts do not show the items applied so far: %v", cur.Counts)
	}
	if st.Total == 0 || st.Done < 32 || st.Done >= st.Total {
		t.Errorf("progress %d of %d", st.Done, st.Total)
	}
	if cur.Changes != nil || cur.HeldItems != nil {
		t.Errorf("status carries the plan")
	}
	close(release)
	run := <-done
	close(stop)
	readers.Wait()

	if run.Counts[reconcile.KindCreateUser][reconcile.ItemOK] != 30 || len(run.Errors) != 0 {
		t.Errorf("a reader's change reached the run: %v %v", run.Counts, run.Errors)
	}
	st = e.r.Status()
	if st.Running || st.Current != nil || st.Last == nil || st.Last.ID != run.ID || st.Last.Changes != nil {
		t.Fatalf("status after the pass: %+v", st)
	}
	st.Last.Counts[reconcile.KindAddMember][reconcile.ItemOK] = -1
	if run.Counts[reconcile.KindAddMember][reconcile.ItemOK] == -1 || e.r.Status().Last.Counts[reconcile.KindAddMember][reconcile.ItemOK] == -1 {
		t.Errorf("Status().Last shares its counts")
	}
}
