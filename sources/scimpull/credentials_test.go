package scimpull

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/internal/swaptest"
)

const rotatedToken = "rotated-scim-token-8e2c"

// wantUnauthorized checks err is the server's 401 and holds neither token.
func wantUnauthorized(t *testing.T, what string, err error) {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) || se.HTTPStatus != http.StatusUnauthorized {
		t.Fatalf("%s: err = %v, want the server's 401", what, err)
	}
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), rotatedToken) {
		t.Errorf("%s: error holds a token: %v", what, err)
	}
}

// After the server rotates the token, reads fail with its 401 until SetToken gives the new one.
func TestSetTokenRotation(t *testing.T) {
	f, url := newFakeSCIM(t, 30, 4)
	src := newSource(t, url, nil)
	ctx := context.Background()
	if _, err := src.User(ctx, "user3@example.com"); err != nil {
		t.Fatalf("User with the first token: %v", err)
	}

	f.setTokens(rotatedToken)
	_, err := src.User(ctx, "user3@example.com")
	wantUnauthorized(t, "User with the old token", err)
	_, err = src.Snapshot(ctx)
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Snapshot with the old token: err = %v, want ErrIncomplete", err)
	}
	wantUnauthorized(t, "Snapshot with the old token", err)

	if err := src.SetToken(rotatedToken); err != nil {
		t.Fatalf("SetToken: %v", err)
	}
	if _, err := src.User(ctx, "user3@example.com"); err != nil {
		t.Fatalf("User with the new token: %v", err)
	}
	dir, err := src.Snapshot(ctx)
	if err != nil || len(dir.Users) != 30 {
		t.Fatalf("Snapshot with the new token: %d users, %v", len(dir.Users), err)
	}
}

func TestSetTokenRejectsBadInput(t *testing.T) {
	_, url := newFakeSCIM(t, 5, 1)
	src := newSource(t, url, nil)
	for _, tc := range []struct{ name, token, want string }{
		{"empty", "", "is empty"},
		{"white space", "\t ", "is empty"},
		{"line break", rotatedToken + "\r\n", "control character"},
		{"surrounding space", rotatedToken + " ", "white space"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := src.SetToken(tc.token)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SetToken error = %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), rotatedToken) {
				t.Errorf("error holds the token: %v", err)
			}
			// The server accepts only the first token: it is still the one sent.
			if _, err := src.User(context.Background(), "user1@example.com"); err != nil {
				t.Fatalf("User after a rejected SetToken: %v", err)
			}
		})
	}
}

// A server that echoes tokens: errors and logs hold neither the token in force nor the one
// it replaced, also where the text is cut to length.
func TestSetTokenScrubsOldAndNewTokens(t *testing.T) {
	echo := testToken + " / " + rotatedToken
	cases := map[string]func(w http.ResponseWriter){
		"scim detail": func(w http.ResponseWriter) {
			scimErr(w, http.StatusBadRequest, "invalidValue", "tokens "+echo+" are not allowed here")
		},
		// The new token straddles the 200-byte cut of an answer that is not JSON.
		"text cut to length": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(strings.Repeat("x", 190) + rotatedToken + " " + echo))
		},
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			f, url := newFakeSCIM(t, 5, 1)
			f.setTokens(rotatedToken)
			f.before = func(w http.ResponseWriter, _ *http.Request) bool {
				answer(w)
				return true
			}
			var logs strings.Builder
			src := newSource(t, url, func(_ *configs.SCIMPullConfig, o *Options) {
				o.Logger = zerolog.New(zerolog.SyncWriter(&logs)).Level(zerolog.DebugLevel)
			})
			if err := src.SetToken(rotatedToken); err != nil {
				t.Fatal(err)
			}
			_, err := src.Snapshot(context.Background())
			var se *Error
			if !errors.As(err, &se) || se.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("Snapshot error = %v, want the 400", err)
			}
			if !strings.Contains(err.Error(), "[redacted]") {
				t.Errorf("nothing was redacted: %v", err)
			}
			for _, tok := range []string{testToken, rotatedToken} {
				// A cut token must not leave its start behind either.
				if strings.Contains(err.Error(), tok[:8]) || strings.Contains(logs.String(), tok[:8]) {
					t.Errorf("error or logs hold (part of) %q: %v", tok, err)
				}
			}
		})
	}
}

// Reads run while the token flips between two the server accepts: every read succeeds, both
// tokens reach the server, and -race checks the swap.
func TestSetTokenUnderLoad(t *testing.T) {
	f, url := newFakeSCIM(t, 20, 3)
	f.setTokens(testToken, rotatedToken)
	var mu sync.Mutex
	seen := map[string]int{}
	f.before = func(_ http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		seen[r.Header.Get("Authorization")]++
		mu.Unlock()
		return false
	}
	src := newSource(t, url, nil)
	tokens := []string{testToken, rotatedToken}

	swaptest.Run(t, 4, 30, func(int, int) error {
		_, err := src.User(context.Background(), "user7@example.com")
		return err
	}, func(n int) error { return src.SetToken(tokens[n%2]) })
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen["Bearer "+testToken] == 0 || seen["Bearer "+rotatedToken] == 0 {
		t.Errorf("the server saw %v: the swaps did not reach the requests", seen)
	}
}
