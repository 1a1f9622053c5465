package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/idsync/idsync/internal/metrics"
	"github.com/idsync/idsync/reconcile"
)

// The read line says what each source has read so far and the requests sent per target.
func TestProgressReadLine(t *testing.T) {
	var b bytes.Buffer
	p := &Progress{w: &b}
	m := metrics.New()
	p.CountRequests(RequestCounts(m))
	p.PassStarted(reconcile.Run{})
	m.APIRequest("miniorange", "/users/list", "POST", 200, time.Millisecond)
	m.APIRequest("miniorange", "/users/list", "POST", 429, time.Millisecond)
	m.APIRequest("jira", "/rest/api/3/users/search", "GET", 200, time.Millisecond)
	p.SourceProgress("corp", 3, 1500)
	p.SourceRead(reconcile.SourceRun{Name: "hr", Complete: true, Users: 200, Groups: 15})
	p.SourceRead(reconcile.SourceRun{Name: "ext", Complete: false})
	p.mu.Lock()
	line := p.readLine()
	p.drawRead()
	p.mu.Unlock()
	want := "reading  corp: 3 pages, 1500 objects | hr: 200 users, 15 groups | ext: incomplete | requests: jira 1, miniorange 2"
	if line != want {
		t.Errorf("read line\n got %q\nwant %q", line, want)
	}
	// The apply phase ends the line (cleared) and the goroutine that redraws it.
	p.Progress(1, 4)
	p.mu.Lock()
	reading := p.reading
	p.mu.Unlock()
	if reading || !strings.Contains(b.String(), "\r"+want) {
		t.Errorf("reading %v after the apply began; output %q", reading, b.String())
	}
	p.PassFinished(reconcile.Run{})

	// A pass that applies nothing ends the line at its end; a second pass starts a new one.
	p.PassStarted(reconcile.Run{})
	p.PassFinished(reconcile.Run{})
	p.PassStarted(reconcile.Run{})
	p.mu.Lock()
	fresh := p.readLine()
	p.mu.Unlock()
	p.PassFinished(reconcile.Run{})
	if strings.Contains(fresh, "corp") {
		t.Errorf("a new pass shows the last one's sources: %q", fresh)
	}
	var nilP *Progress
	nilP.CountRequests(nil) // no terminal: nothing to do, no panic
}
