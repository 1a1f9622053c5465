package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/idsync/idsync/reconcile"
)

// bigStore writes a state file with branch pages, overflow pages, nested and inline buckets.
func bigStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "idsync.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, s)
	var links []reconcile.Link
	for i := range 3000 {
		links = append(links, reconcile.Link{Source: "corp", Key: fmt.Sprintf("u%05d", i), UserName: fmt.Sprintf("user%05d", i), AccountID: fmt.Sprintf("acc-%05d", i)})
	}
	if err := s.Journal(reconcile.JournalEntry{Links: links}); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 20000) // a value over several pages
	if err := s.PutSCIM(SCIMResource{Source: "corp", Type: SCIMGroup, ID: "g-big", Data: []byte(`{"d":"` + string(big) + `"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func verifyBytes(data []byte) error { return verifyFile(bytes.NewReader(data), int64(len(data))) }

func TestVerifyAcceptsRealFiles(t *testing.T) {
	data, err := os.ReadFile(bigStore(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyBytes(data); err != nil {
		t.Fatalf("a file idsync wrote does not verify: %v", err)
	}
	m, ok := chooseMeta(bytes.NewReader(data), int64(len(data)))
	if !ok || m.pgid < 10 {
		t.Fatalf("meta %+v, %v: want a file of many pages", m, ok)
	}
}

// TestVerifyRefusesDamagedPages damages one structure at a time in a file idsync wrote, the
// way a bad disk or a fuzzer would, and checks Open refuses each before bbolt reads it.
func TestVerifyRefusesDamagedPages(t *testing.T) {
	path := bigStore(t)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := chooseMeta(bytes.NewReader(orig), int64(len(orig)))
	ps := int(m.pageSize)
	at := func(id uint64) int { return int(id) * ps }
	ne := binary.NativeEndian
	cases := map[string]struct {
		damage func(b []byte) []byte
		want   string
	}{
		"element count beyond the page": {func(b []byte) []byte {
			ne.PutUint16(b[at(m.root)+10:], 0xFF00)
			return b
		}, "more than fit"},
		"key beyond the page": {func(b []byte) []byte {
			e := at(m.root) + pageHeaderSize
			ne.PutUint32(b[e+4:], 1<<30) // pos of the first element
			return b
		}, "runs past the page"},
		"root page outside the file": {func(b []byte) []byte {
			ne.PutUint64(b[at(m.root):], m.root) // keep the id...
			return setRoot(t, b, ps, m.pgid+50)  // ...but point the meta elsewhere
		}, "outside the file"},
		"page overflow past the end": {func(b []byte) []byte {
			ne.PutUint32(b[at(m.root)+12:], uint32(m.pgid))
			return b
		}, "runs past the file"},
		"freelist with a huge count": {func(b []byte) []byte {
			f := at(m.freelist)
			ne.PutUint16(b[f+10:], 0xFFFF)
			ne.PutUint64(b[f+pageHeaderSize:], 1<<40)
			return b
		}, "more than it can hold"},
		"truncated file": {func(b []byte) []byte { return b[:len(b)/2] }, "pages but the file holds"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			data := c.damage(bytes.Clone(orig))
			if err := verifyBytes(data); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verify = %v, want %q", err, c.want)
			}
			p := filepath.Join(t.TempDir(), "idsync.db")
			writeFile(t, p, data)
			if _, err := Open(p, Options{}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
		})
	}
}

// setRoot points both meta pages' root bucket at page id, with valid checksums, so only the
// tree walk can tell.
func setRoot(t *testing.T, b []byte, pageSize int, id uint64) []byte {
	t.Helper()
	for _, off := range []int{0, pageSize} {
		body := b[off+pageHeaderSize:]
		binary.NativeEndian.PutUint64(body[16:], id)
		h := fnvSum(body[:metaSumBytes])
		binary.NativeEndian.PutUint64(body[metaSumBytes:], h)
	}
	return b
}
