package google

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
	googleoauth "golang.org/x/oauth2/google"

	"github.com/idsync/idsync/configs"
)

// credentials is the service account key behind the source's access tokens, taken from
// credentials_file and taken again whenever the file's content changes, so a rotated key
// (a new JSON key written over the old file, or a Secret remounted) is used from the next
// read on, without a restart.
//
// reload runs at the start of every read (Snapshot and User): it reads the file and compares
// its SHA-256 with the key in use. A changed file that is a usable service account key
// replaces the token source, and with it the cached access token, so the next request signs
// a JWT with the new key. A changed file that is not usable (missing, cut short while being
// written, another kind of JSON) leaves the key in use in place and logs a warning once per
// distinct problem: a half-written file must not stop a source whose key still works, and
// if the old key was revoked the read fails on its token with the reason in the error.
type credentials struct {
	path     string
	subject  string
	tokenCtx context.Context // carries the paced, retried HTTP client of the token exchange
	log      zerolog.Logger

	mu       sync.Mutex
	sum      [sha256.Size]byte // of the file the key in use came from
	ts       oauth2.TokenSource
	clientID string
	// problem is the last reload's complaint ("" when the file matched or was taken), so
	// each distinct problem is logged once.
	problem string
}

var _ oauth2.TokenSource = (*credentials)(nil)

// newCredentials reads the key file; an unusable one is an error (the source cannot start
// without a key).
func newCredentials(path, subject string, tokenCtx context.Context, log zerolog.Logger) (*credentials, *configs.ServiceAccountKey, error) {
	c := &credentials{path: path, subject: subject, tokenCtx: tokenCtx, log: log}
	data, key, err := configs.ReadServiceAccount(path)
	if err != nil {
		return nil, nil, err
	}
	ts, err := c.tokenSource(data)
	if err != nil {
		return nil, nil, err
	}
	c.sum, c.ts, c.clientID = sha256.Sum256(data), ts, key.ClientID
	return c, key, nil
}

// tokenSource builds the caching JWT token source of one key file's content.
func (c *credentials) tokenSource(data []byte) (oauth2.TokenSource, error) {
	jwt, err := googleoauth.JWTConfigFromJSON(data, configs.GoogleScopes...)
	if err != nil {
		return nil, fmt.Errorf("the credentials file %s is not a usable service account key", c.path)
	}
	jwt.Subject = c.subject
	return oauth2.ReuseTokenSource(nil, jwt.TokenSource(c.tokenCtx)), nil
}

// Token returns an access token from the key in use.
func (c *credentials) Token() (*oauth2.Token, error) {
	c.mu.Lock()
	ts := c.ts
	c.mu.Unlock()
	return ts.Token()
}

// ClientID is the service account's client id (the one to allow in domain-wide delegation).
func (c *credentials) ClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// reload takes the key file up again if its content changed; it reports whether the key in
// use was replaced. An unusable file keeps the key in use and is logged (see credentials).
func (c *credentials) reload() bool {
	data, key, err := configs.ReadServiceAccount(c.path)
	if err == nil {
		c.mu.Lock()
		same := sha256.Sum256(data) == c.sum
		if same {
			c.problem = ""
		}
		c.mu.Unlock()
		if same {
			return false
		}
	}
	var ts oauth2.TokenSource
	if err == nil {
		ts, err = c.tokenSource(data)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if msg := err.Error(); msg != c.problem {
			c.problem = msg
			c.log.Warn().Err(err).Str("credentials_file", c.path).
				Msg("the credentials file changed and cannot be used as it is: the source keeps the service account key it read before until the file is fixed")
		}
		return false
	}
	c.sum, c.ts, c.clientID, c.problem = sha256.Sum256(data), ts, key.ClientID, ""
	c.log.Info().Str("credentials_file", c.path).Str("client_email", key.ClientEmail).
		Msg("the credentials file changed: the source uses the new service account key from this read on")
	return true
}
