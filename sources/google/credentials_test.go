package google

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/idsync/idsync/configs"
	"github.com/idsync/idsync/sources/google/googletest"
)

// syncBuffer is a log sink safe for the source's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// otherKeyJSON is a service account key file like the simulator's, signed by another RSA key
// (a key the simulated Google does not know).
func otherKeyJSON(t *testing.T, tokenURI string) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(googletest.ServiceAccountJSON(tokenURI), &m); err != nil {
		t.Fatal(err)
	}
	m["private_key"] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	m["private_key_id"] = "6262626262626262626262626262626262626262"
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replaceFile writes data over path as a secret manager would: a new file renamed over it.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".new-key")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestCredentialsFileRotation: the source takes a changed credentials file up at its next
// read (dropping the cached access token), keeps the key it has while the file is not a usable
// key (with one warning naming the file), and goes back to a good key once it is written.
func TestCredentialsFileRotation(t *testing.T) {
	logs := &syncBuffer{}
	opts := fastRetry
	opts.Logger = zerolog.New(logs)
	var credFile string
	e := newEnvWith(t, googletest.Options{Org: &googletest.Org{
		Users:  []googletest.User{{PrimaryEmail: "ada@example.com", GivenName: "Ada", FamilyName: "Lee"}},
		Groups: []googletest.Group{{Email: "eng@example.com", Name: "Engineering", Members: []string{"ada@example.com"}}},
	}}, func(c *configs.GoogleConfig) { credFile = c.CredentialsFile }, opts)
	ctx := context.Background()
	good, err := os.ReadFile(credFile)
	if err != nil {
		t.Fatal(err)
	}
	tokens := func() int { return e.sim.Calls()[googletest.EndpointToken] }

	if _, err := e.src.Snapshot(ctx); err != nil {
		t.Fatalf("first read: %v", err)
	}
	if tokens() != 1 {
		t.Fatalf("%d token requests after the first read, want 1", tokens())
	}

	// A file cut short while it is written: the key in use stays, one warning says why.
	if err := os.WriteFile(credFile, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.src.Snapshot(ctx); err != nil {
			t.Fatalf("read with a half-written credentials file: %v (the previous key must stay in use)", err)
		}
	}
	if tokens() != 1 {
		t.Errorf("%d token requests, want still 1: the cached token of the key in use serves", tokens())
	}
	if n := strings.Count(logs.String(), "cannot be used as it is"); n != 1 {
		t.Errorf("%d warnings about the unusable file, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), credFile) {
		t.Errorf("the warning does not name the file %s:\n%s", credFile, logs)
	}

	// A new key the account does not know: taken up at once (the cached token is dropped),
	// so the read fails on the token exchange.
	replaceFile(t, credFile, otherKeyJSON(t, e.sim.URL+googletest.PathToken))
	if _, err := e.src.Snapshot(ctx); err == nil {
		t.Fatal("read with a key the account does not know succeeded: the new file was not taken up")
	} else if !strings.Contains(err.Error(), "token") {
		t.Errorf("read with an unknown key: %v, want a token error", err)
	}

	// The good key again: the next read works, with a new token.
	before := tokens()
	replaceFile(t, credFile, good)
	if _, err := e.src.Snapshot(ctx); err != nil {
		t.Fatalf("read after the good key came back: %v", err)
	}
	if tokens() <= before {
		t.Errorf("no token request after the key changed (%d, was %d)", tokens(), before)
	}
	if n := strings.Count(logs.String(), "uses the new service account key"); n != 2 {
		t.Errorf("%d notes of a new key taken up, want 2:\n%s", n, logs)
	}

	// The same content again changes nothing: no new token.
	before = tokens()
	replaceFile(t, credFile, good)
	if _, err := e.src.User(ctx, "ada@example.com"); err != nil {
		t.Fatalf("User: %v", err)
	}
	if tokens() != before {
		t.Errorf("the same key rewritten made a new token request (%d, was %d)", tokens(), before)
	}

	// A file removed keeps the key in use too.
	if err := os.Remove(credFile); err != nil {
		t.Fatal(err)
	}
	if _, err := e.src.Snapshot(ctx); err != nil {
		t.Fatalf("read with the credentials file gone: %v (the previous key must stay in use)", err)
	}
}
