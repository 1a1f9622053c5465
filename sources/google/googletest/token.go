package googletest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// The service account the simulator trusts by default.
const (
	DefaultClientEmail  = "idsync@idsync-sim.iam.gserviceaccount.com"
	DefaultClientID     = "100000000000000000042"
	DefaultPrivateKeyID = "5151515151515151515151515151515151515151"
	// JWTBearerGrant is the grant type of a service account's token request (RFC 7523).
	JWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// tokenLifetime is how long an issued access token is accepted.
	tokenLifetime = time.Hour
)

// ReadOnlyScopes are the three scopes idsync's source needs and the simulator's domain-wide
// delegation grants by default.
var ReadOnlyScopes = []string{
	"https://www.googleapis.com/auth/admin.directory.user.readonly",
	"https://www.googleapis.com/auth/admin.directory.group.readonly",
	"https://www.googleapis.com/auth/admin.directory.group.member.readonly",
}

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
	keyErr  error
)

// TestKey is the RSA key of the simulated service account, made once per process.
func TestKey() *rsa.PrivateKey {
	keyOnce.Do(func() { key, keyErr = rsa.GenerateKey(rand.Reader, 2048) })
	if keyErr != nil {
		panic("googletest: generating the service account key: " + keyErr.Error())
	}
	return key
}

// ServiceAccountJSON is a service account key file for the simulated account (TestKey,
// DefaultClientEmail) whose token_uri is tokenURI, as Google's console downloads it.
func ServiceAccountJSON(tokenURI string) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(TestKey())
	if err != nil {
		panic("googletest: encoding the key: " + err.Error())
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	b, err := json.MarshalIndent(map[string]string{
		"type":                        "service_account",
		"project_id":                  "idsync-sim",
		"private_key_id":              DefaultPrivateKeyID,
		"private_key":                 string(pemKey),
		"client_email":                DefaultClientEmail,
		"client_id":                   DefaultClientID,
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   tokenURI,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"client_x509_cert_url":        "https://www.googleapis.com/robot/v1/metadata/x509/idsync%40idsync-sim.iam.gserviceaccount.com",
		"universe_domain":             "googleapis.com",
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// grant is one issued access token.
type grant struct {
	subject string
	scopes  []string
	expires time.Time
}

// tokenError answers an OAuth 2.0 error (RFC 6749 section 5.2) the way Google's token
// endpoint does.
func tokenError(w http.ResponseWriter, code int, errCode, desc string) {
	writeJSON(w, code, map[string]string{"error": errCode, "error_description": desc})
}

// serveToken is the OAuth 2.0 token endpoint for service accounts: it checks the JWT
// assertion's signature with the account's public key, its issuer, audience, lifetime, the
// impersonated subject (an admin the simulated account knows) and that every scope asked
// for is granted to the client by domain-wide delegation.
func (s *Sim) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "unreadable form")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != JWTBearerGrant {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	claims, why := s.verifyAssertion(r.PostForm.Get("assertion"))
	if why != "" {
		tokenError(w, http.StatusBadRequest, "invalid_grant", why)
		return
	}
	s.kmu.Lock()
	s.lastSubject, s.lastScopes = claims.Sub, strings.Fields(claims.Scope)
	admins, granted := s.admins, s.granted
	s.kmu.Unlock()
	if !slices.Contains(admins, claims.Sub) {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "Invalid email or User ID")
		return
	}
	scopes := strings.Fields(claims.Scope)
	if len(scopes) == 0 {
		tokenError(w, http.StatusBadRequest, "invalid_scope", "Empty or missing scope not allowed.")
		return
	}
	for _, sc := range scopes {
		if !slices.Contains(granted, sc) {
			tokenError(w, http.StatusUnauthorized, "unauthorized_client",
				"Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.")
			return
		}
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	tok := "ya29.sim-" + hex.EncodeToString(raw[:])
	s.kmu.Lock()
	s.tokens[tok] = grant{subject: claims.Sub, scopes: scopes, expires: s.now().Add(tokenLifetime)}
	s.kmu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(tokenLifetime / time.Second),
	})
}

// jwtClaims are the claims of a service account's assertion.
type jwtClaims struct {
	Iss   string `json:"iss"`
	Sub   string `json:"sub"`
	Aud   string `json:"aud"`
	Scope string `json:"scope"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

// verifyAssertion returns the assertion's claims, or why Google would refuse it.
func (s *Sim) verifyAssertion(assertion string) (jwtClaims, string) {
	var c jwtClaims
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return c, "Invalid JWT: not three parts"
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return c, "Invalid JWT: bad encoding"
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(hb, &h) != nil || h.Alg != "RS256" {
		return c, "Invalid JWT: alg must be RS256"
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	s.kmu.Lock()
	pub := s.pub
	s.kmu.Unlock()
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return c, "Invalid JWT Signature."
	}
	if json.Unmarshal(cb, &c) != nil {
		return c, "Invalid JWT: bad claims"
	}
	now := s.now().Unix()
	switch {
	case c.Iss != s.clientEmail:
		return c, "Invalid JWT: unknown issuer"
	case !s.audienceOK(c.Aud):
		return c, "Invalid JWT: audience is not this token endpoint"
	case c.Exp <= now || c.Iat > now+300 || c.Exp-c.Iat > 3600:
		return c, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	}
	return c, ""
}

func (s *Sim) audienceOK(aud string) bool {
	s.kmu.Lock()
	want := s.tokenURL
	s.kmu.Unlock()
	if want != "" {
		return aud == want
	}
	return strings.HasSuffix(aud, PathToken)
}

// authorize checks the request's bearer token and that it carries one of scopes.
func (s *Sim) authorize(r *http.Request, scopes []string) (int, string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return http.StatusUnauthorized, "Login Required.", false
	}
	s.kmu.Lock()
	g, known := s.tokens[tok]
	now := s.now()
	s.kmu.Unlock()
	if !known || now.After(g.expires) {
		return http.StatusUnauthorized, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", false
	}
	for _, sc := range scopes {
		if slices.Contains(g.scopes, sc) {
			return 0, "", true
		}
	}
	return http.StatusForbidden, "Request had insufficient authentication scopes.", false
}
