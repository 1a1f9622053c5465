package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AdminClient calls a running daemon's admin API (for commands that cannot open the state
// file while the daemon holds it).
type AdminClient struct {
	Base  string
	Token string
	HTTP  *http.Client
}

// Do sends a request and decodes a JSON answer into out (nil: discard). A non-2xx answer is
// an error carrying the API's error text, never the token.
func (c AdminClient) Do(ctx context.Context, method, path string, out any) (int, error) {
	u, err := url.Parse(strings.TrimRight(c.Base, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return 0, fmt.Errorf("--addr %q: want http(s)://host:port", c.Base)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("calling the admin API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("reading the admin API answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Detail string }
		_ = json.Unmarshal(body, &e)
		msg := strings.TrimSpace(e.Error + ": " + e.Detail)
		if e.Error == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return resp.StatusCode, fmt.Errorf("admin API %s %s: %d %s", method, path, resp.StatusCode, strings.TrimSuffix(msg, ":"))
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding the admin API answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}
