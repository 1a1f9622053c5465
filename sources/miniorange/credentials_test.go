package miniorange

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/swaptest"
	"github.com/idsync/idsync/sources/miniorange/miniorangetest"
)

const rotatedKey = "rotated-mo-api-key-3f8a"

// After the key is regenerated on the server, calls fail as ErrAuth until SetAPIKey gives the
// new key; the clock offset learnt before is kept through the change.
func TestSetAPIKeyRotation(t *testing.T) {
	srv := startSim(t, nil)
	srv.SetClockSkew(10 * time.Minute)
	src := newSource(t, srv.URL, func(c *configs.MiniOrangeConfig, _ *Options) { c.SendAPIKeyHeader = true })
	userName := srv.Users()[0].UserName
	ctx := context.Background()
	if _, err := src.User(ctx, userName); err != nil {
		t.Fatalf("User with the first key: %v", err)
	}

	srv.SetAPIKey(rotatedKey)
	_, err := src.User(ctx, userName)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("User with the old key: err = %v, want ErrAuth", err)
	}
	_, snapErr := src.Snapshot(ctx)
	if !errors.Is(snapErr, ErrAuth) || !errors.Is(snapErr, ErrIncomplete) {
		t.Fatalf("Snapshot with the old key: err = %v, want ErrAuth and ErrIncomplete", snapErr)
	}
	for _, e := range []error{err, snapErr} {
		if strings.Contains(e.Error(), miniorangetest.DefaultAPIKey) || strings.Contains(e.Error(), rotatedKey) {
			t.Errorf("error holds a key: %v", e)
		}
	}

	if err := src.SetAPIKey(rotatedKey); err != nil {
		t.Fatalf("SetAPIKey: %v", err)
	}
	srv.Reset()
	if _, err := src.User(ctx, userName); err != nil {
		t.Fatalf("User with the new key: %v", err)
	}
	if calls := srv.Calls(); calls[miniorangetest.PathUserGet] != 1 || calls[miniorangetest.PathTimestamp] != 0 {
		t.Errorf("User with the new key: want one accepted call and no clock correction, calls = %v", calls)
	}
	if d := src.ClockOffset() - 10*time.Minute; d > 5*time.Second || d < -5*time.Second {
		t.Errorf("ClockOffset = %v after the change, want about 10m", src.ClockOffset())
	}
	if _, err := src.Snapshot(ctx); err != nil {
		t.Fatalf("Snapshot with the new key: %v", err)
	}
}

func TestSetAPIKeyRejectsBadInput(t *testing.T) {
	srv := startSim(t, nil)
	src := newSource(t, srv.URL, nil)
	for _, tc := range []struct{ name, key, want string }{
		{"empty", "", "is empty"},
		{"white space", " \t ", "is empty"},
		{"line break", rotatedKey + "\n", "control character"},
		{"surrounding space", " " + rotatedKey, "white space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := src.SetAPIKey(tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SetAPIKey error = %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), rotatedKey) {
				t.Errorf("error holds the key: %v", err)
			}
			srv.Reset()
			if _, err := src.User(context.Background(), srv.Users()[0].UserName); err != nil {
				t.Fatalf("User with the old key after a rejected SetAPIKey: %v", err)
			}
			if n := srv.Calls()[miniorangetest.PathUserGet]; n != 1 {
				t.Errorf("User took %d calls, want 1: the key in force changed", n)
			}
		})
	}
}

// A server that echoes keys: errors and logs hold neither the key in force nor the one it
// replaced, also where the text is cut to length.
func TestSetAPIKeyScrubsOldAndNewKeys(t *testing.T) {
	echo := miniorangetest.DefaultAPIKey + " / " + rotatedKey
	cases := map[string]func(*miniorangetest.Server) http.Handler{
		"error message": func(srv *miniorangetest.Server) http.Handler {
			return rewrite(srv.Handler(), miniorangetest.PathUsersList, func(b map[string]any) {
				b["status"] = "ERROR"
				b["message"] = "bad request for keys " + echo
			})
		},
		// The new key straddles the 200-byte cut of an answer that is not JSON.
		"non-JSON answer cut to length": func(srv *miniorangetest.Server) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != miniorangetest.PathUsersList {
					srv.Handler().ServeHTTP(w, r)
					return
				}
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte(strings.Repeat("x", 190) + rotatedKey + " " + echo))
			})
		},
	}
	for name, handler := range cases {
		t.Run(name, func(t *testing.T) {
			srv := startSim(t, nil)
			srv.SetAPIKey(rotatedKey)
			var logs strings.Builder
			src := newSource(t, serve(t, handler(srv)), func(_ *configs.MiniOrangeConfig, o *Options) {
				o.Logger = newTestLogger(&logs)
			})
			if err := src.SetAPIKey(rotatedKey); err != nil {
				t.Fatal(err)
			}
			_, err := src.Snapshot(context.Background())
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("Snapshot error = %v, want incomplete", err)
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("nothing was redacted: %v", err)
			}
			for _, key := range []string{miniorangetest.DefaultAPIKey, rotatedKey} {
				// A cut key must not leave its start behind either.
				if strings.Contains(err.Error(), key[:8]) || strings.Contains(logs.String(), key[:8]) {
					t.Errorf("error or logs hold (part of) %q: %v", key, err)
				}
			}
		})
	}
}

// rekey stands in front of the simulator while the source's key flips between two: it checks
// that each request's Authorization hash and Api-Key header use the same key, then signs it
// again with the simulator's key.
type rekey struct {
	next      http.Handler
	keys      []string
	serverKey string

	mu   sync.Mutex
	seen map[string]int
	torn int
}

func (k *rekey) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != miniorangetest.PathTimestamp {
		ck, ts, sent := r.Header.Get("Customer-Key"), r.Header.Get("Timestamp"), r.Header.Get("Api-Key")
		used := ""
		for _, key := range k.keys {
			if sent == key && r.Header.Get("Authorization") == Signature(ck, ts, key) {
				used = key
			}
		}
		k.mu.Lock()
		if used == "" {
			k.torn++
		} else {
			k.seen[used]++
		}
		k.mu.Unlock()
		r.Header.Set("Authorization", Signature(ck, ts, k.serverKey))
		r.Header.Set("Api-Key", k.serverKey)
	}
	k.next.ServeHTTP(w, r)
}

func TestSetAPIKeyUnderLoad(t *testing.T) {
	srv := startSim(t, nil)
	keys := []string{miniorangetest.DefaultAPIKey, rotatedKey}
	rk := &rekey{next: srv.Handler(), keys: keys, serverKey: miniorangetest.DefaultAPIKey, seen: map[string]int{}}
	src := newSource(t, serve(t, rk), func(c *configs.MiniOrangeConfig, o *Options) {
		c.SendAPIKeyHeader = true
		o.Concurrency = 4
	})
	users := srv.Users()

	const rounds = 30
	swaptest.Run(t, 4, rounds, func(w, i int) error {
		_, err := src.User(context.Background(), users[(w*rounds+i)%len(users)].UserName)
		return err
	}, func(n int) error { return src.SetAPIKey(keys[n%2]) })
	rk.mu.Lock()
	defer rk.mu.Unlock()
	if rk.torn != 0 {
		t.Errorf("%d requests signed with one key and sent with the other", rk.torn)
	}
	if len(rk.seen) != 2 {
		t.Errorf("requests used keys %v: the swaps did not reach them", rk.seen)
	}
}
