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

// downloadTimeout bounds a whole Download: a state file can be hundreds of MB (the daemon
// allows the same time to send it).
const downloadTimeout = 30 * time.Minute

// Do sends a request and decodes a JSON answer into out (nil: discard). A non-2xx answer is
// an error carrying the API's error text, never the token.
func (c AdminClient) Do(ctx context.Context, method, path string, out any) (int, error) {
	resp, err := c.send(ctx, method, path, 60*time.Second)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("reading the admin API answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, answerError(method, path, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding the admin API answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// Fetch is Do for answers that may be large and slow (a plan of a big org): GET path, waited
// for as long as a Download, decoded into out as it streams, without Do's size limit.
func (c AdminClient) Fetch(ctx context.Context, path string, out any) error {
	resp, err := c.send(ctx, http.MethodGet, path, downloadTimeout)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return answerError(http.MethodGet, path, resp.StatusCode, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding the admin API answer: %w", err)
	}
	return nil
}

// Download streams the body of GET path into w, without Do's size limit, and returns the
// bytes written. Errors are Do's; an answer cut short (fewer bytes than its Content-Length)
// is an error too.
func (c AdminClient) Download(ctx context.Context, path string, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, http.MethodGet, path, downloadTimeout)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, answerError(http.MethodGet, path, resp.StatusCode, body)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("downloading %s from the admin API after %d bytes: %w", path, n, err)
	}
	return n, nil
}

// send sends a request with the token; timeout bounds the whole exchange when c.HTTP is nil.
func (c AdminClient) send(ctx context.Context, method, path string, timeout time.Duration) (*http.Response, error) {
	u, err := url.Parse(strings.TrimRight(c.Base, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--addr %q: want http(s)://host:port", c.Base)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: timeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the admin API: %w", err)
	}
	return resp, nil
}

// answerError describes a non-2xx answer by the API's error text.
func answerError(method, path string, status int, body []byte) error {
	var e struct{ Error, Detail string }
	_ = json.Unmarshal(body, &e)
	msg := strings.TrimSpace(e.Error + ": " + e.Detail)
	if e.Error == "" {
		msg = http.StatusText(status)
	}
	return fmt.Errorf("admin API %s %s: %d %s", method, path, status, strings.TrimSuffix(msg, ":"))
}
