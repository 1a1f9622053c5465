package state

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/idsync/idsync/reconcile"
)

func TestDump(t *testing.T) {
	s := newStore(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	fillStore(t, s) // one record of most kinds; the secrets below replace its SCIM user
	must(s.PutSnapshot(reconcile.SnapshotRecord{Source: "corp", Hash: "h", Directory: reconcile.Directory{
		Users: []reconcile.User{{Key: "u1", UserName: "ann", Attributes: map[string]string{"dept": "R&D", "PASSWORD": "hunter2"}}},
	}}))
	must(s.PutSCIM(SCIMResource{Source: "corp", Type: SCIMUser, ID: "u1", Data: []byte(
		`{"userName":"ann","password":"s3cret-top","emails":[{"value":"ann@example.com"}],` +
			`"urn:example:ext":{"oldPassword":"s3cret-nested","tier":12345678901234567890}}`)}))
	must(s.PutSCIM(SCIMResource{Source: "hr", Type: SCIMGroup, ID: "g1", Data: []byte(`{"displayName":"Eng"}`)}))
	must(s.update(func(tx *bbolt.Tx) error {
		// Damage one record and add a bucket of another program: the dump shows both
		// without failing.
		if err := tx.Bucket([]byte(bucketLinks)).Put([]byte("corp/broken"), []byte("{not json")); err != nil {
			return err
		}
		b, err := tx.CreateBucket([]byte("extra"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("secret-ish"))
	}))

	var buf bytes.Buffer
	must(s.Dump(&buf))
	out := buf.String()
	if strings.Contains(strings.ToLower(out), "password") || strings.Contains(out, "s3cret") || strings.Contains(out, "hunter2") {
		t.Fatalf("dump leaks a password:\n%s", out)
	}
	if strings.Contains(out, "secret-ish") {
		t.Fatal("dump shows the content of a bucket idsync does not know")
	}
	var doc struct {
		File          string            `json:"file"`
		SchemaVersion int               `json:"schemaVersion"`
		Meta          map[string]string `json:"meta"`
		Links         []map[string]any  `json:"links"`
		Owned         []reconcile.Owned `json:"owned"`
		Snapshots     []reconcile.SnapshotRecord
		Runs          []reconcile.Run      `json:"runs"`
		HeldPlan      []reconcile.HeldPlan `json:"heldPlan"`
		Budgets       []Budget             `json:"budgets"`
		Audit         []reconcile.AuditRecord
		SCIM          []struct {
			Source, Type, ID string
			Resource         map[string]any
		} `json:"scim"`
		OtherBuckets map[string]int `json:"otherBuckets"`
		Counts       map[string]int `json:"counts"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("dump is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatal("dump holds more than one JSON document")
	}
	if doc.File != s.Path() || doc.SchemaVersion != CurrentVersion || doc.Meta[metaKeyApp] != "idsync" {
		t.Errorf("header = %q, %d, %v", doc.File, doc.SchemaVersion, doc.Meta)
	}
	if len(doc.Links) != 2 || doc.Links[0]["error"] == nil || doc.Links[1]["accountId"] != "acc-1" {
		t.Errorf("links = %v; want the broken record reported and the good one decoded", doc.Links)
	}
	if len(doc.Owned) != 1 || len(doc.Runs) != 1 || len(doc.HeldPlan) != 1 || doc.HeldPlan[0].Deactivations != 30 ||
		len(doc.Budgets) != 1 || doc.Budgets[0].Remaining != 7 || len(doc.Audit) != 1 || doc.Audit[0].UserName != "ann" {
		t.Errorf("records = %+v", doc)
	}
	if len(doc.Snapshots) != 1 || doc.Snapshots[0].Directory.Users[0].Attributes["dept"] != "R&D" {
		t.Errorf("snapshots = %+v", doc.Snapshots)
	}
	if len(doc.SCIM) != 2 || doc.SCIM[0].Source != "corp" || doc.SCIM[0].Resource["userName"] != "ann" || doc.SCIM[1].ID != "g1" {
		t.Errorf("scim = %+v", doc.SCIM)
	}
	ext, _ := doc.SCIM[0].Resource["urn:example:ext"].(map[string]any)
	if tier, _ := ext["tier"].(json.Number); tier.String() != "12345678901234567890" {
		t.Errorf("a big number changed in the dump: %v", ext["tier"])
	}
	want := map[string]int{"links": 2, "owned": 1, "snapshots": 1, "runs": 1, "heldPlan": 1, "budgets": 1, "audit": 1, "scim": 2,
		bucketAuditByTime: 1, bucketAuditByUser: 1}
	for k, v := range want {
		if doc.Counts[k] != v {
			t.Errorf("counts[%s] = %d, want %d (counts %v)", k, doc.Counts[k], v, doc.Counts)
		}
	}
	if doc.OtherBuckets["extra"] != 1 {
		t.Errorf("otherBuckets = %v", doc.OtherBuckets)
	}
}

func TestDumpReadOnlyAndEmpty(t *testing.T) {
	s := newStore(t)
	path := s.Path()
	_ = s.Close()
	ro, err := Open(path, Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ro.Close() }()
	var buf bytes.Buffer
	if err := ro.Dump(&buf); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("empty dump is not JSON: %v\n%s", err, buf.String())
	}
	if links, ok := doc["links"].([]any); !ok || len(links) != 0 {
		t.Fatalf("links of an empty store = %v", doc["links"])
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, bytes.ErrTooLarge }

func TestDumpReportsWriteErrors(t *testing.T) {
	s := newStore(t)
	for i := range 200 {
		if err := s.PutBudget(Budget{Target: strings.Repeat("t", 100) + string(rune('a'+i%26)) + strings.Repeat("x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Dump(failingWriter{}); err == nil {
		t.Fatal("Dump to a failing writer succeeded")
	}
}
