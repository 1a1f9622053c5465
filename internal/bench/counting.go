package bench

import (
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// countingTransport counts the answers the clients received, per target host: in remote mode
// the simulators' own counters are out of reach. 429s count as throttled, never as reads or
// writes, like the simulators count them.
type countingTransport struct {
	next     *http.Transport
	jiraHost string
	moHost   string

	mu sync.Mutex
	c  callCounts
}

type callCounts struct {
	reads, writes, throttled, source int64
	calls                            map[string]int64
}

func newCountingTransport(jiraURL, moURL string) (*countingTransport, error) {
	ju, err := url.Parse(jiraURL)
	if err != nil || ju.Host == "" {
		return nil, fmt.Errorf("%w: --jira-url %q is not an absolute URL", ErrUsage, jiraURL)
	}
	mu, err := url.Parse(moURL)
	if err != nil || mu.Host == "" {
		return nil, fmt.Errorf("%w: --miniorange-url %q is not an absolute URL", ErrUsage, moURL)
	}
	if ju.Host == mu.Host {
		return nil, fmt.Errorf("%w: --jira-url and --miniorange-url must differ (calls are told apart by host)", ErrUsage)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	t := &countingTransport{next: tr, jiraHost: ju.Host, moHost: mu.Host}
	t.reset()
	return t, nil
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	target := "other"
	switch req.URL.Host {
	case t.jiraHost:
		target = "jira"
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			t.c.throttled++
		case req.Method == http.MethodGet || req.Method == http.MethodHead:
			t.c.reads++
		default:
			t.c.writes++
		}
	case t.moHost:
		target = "miniorange"
		if resp.StatusCode != http.StatusTooManyRequests {
			t.c.source++
		}
	}
	t.c.calls[fmt.Sprintf("%s %s %s %d", target, req.Method, req.URL.Path, resp.StatusCode)]++
	return resp, nil
}

func (t *countingTransport) reset() {
	t.mu.Lock()
	t.c = callCounts{calls: map[string]int64{}}
	t.mu.Unlock()
}

func (t *countingTransport) counts() callCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.c
	c.calls = make(map[string]int64, len(t.c.calls))
	for k, v := range t.c.calls {
		c.calls[k] = v
	}
	return c
}

func (t *countingTransport) closeIdle() { t.next.CloseIdleConnections() }
