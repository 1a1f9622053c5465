package state

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/idsync/idsync/reconcile"
)

// Dump writes the whole store as one JSON document for `idsync state inspect`: the schema
// version, the meta bucket, every record of every bucket decoded from its JSON (SCIM
// resources as objects, audit records in append order), and counts. Index buckets are only
// counted, and buckets idsync does not know are listed by name and size without content.
//
// The store should hold no secret, but SCIM bodies may carry a "password" attribute and
// user attributes are free-form, so every object key containing "password" (any case) is
// dropped, at any depth. A record that does not decode is shown with its error rather than
// stopping the dump. It reads in one transaction, so the document is consistent.
func (s *Store) Dump(w io.Writer) error {
	bw := bufio.NewWriter(w)
	d := &dumper{w: bw}
	err := s.view(func(tx *bbolt.Tx) error {
		s.dumpTx(d, tx)
		return nil
	})
	if err == nil {
		err = d.err
	}
	if err == nil {
		err = bw.WriteByte('\n')
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("dumping state file %s: %w", s.path, err)
	}
	return nil
}

// dumpTx writes the document Dump describes from one read transaction.
func (s *Store) dumpTx(d *dumper, tx *bbolt.Tx) {
	counts := map[string]int{}
	d.beginObject()
	d.member("file", s.path)
	d.member("schemaVersion", s.version)
	dumpMeta(d, tx)
	for _, sec := range dumpSections {
		dumpSection(d, tx, sec, counts)
	}
	dumpSCIM(d, tx, counts)
	if other := countBuckets(tx, counts); len(other) > 0 {
		d.member("otherBuckets", other)
	}
	d.member("counts", counts)
	d.endObject()
}

// dumpMeta writes the meta bucket as one object of strings.
func dumpMeta(d *dumper, tx *bbolt.Tx) {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		return
	}
	m := map[string]string{}
	_ = meta.ForEach(func(k, v []byte) error { m[string(k)] = string(v); return nil })
	d.member("meta", m)
}

// recordSection is a bucket of JSON records Dump writes as an array named field.
type recordSection struct {
	field, bucket string
	// typed checks that a record decodes as the code will read it.
	typed func([]byte) error
}

// dumpSections are the record buckets, in the order Dump writes them.
var dumpSections = []recordSection{
	{"links", bucketLinks, typed[reconcile.Link]},
	{"owned", bucketOwned, typed[reconcile.Owned]},
	{"snapshots", bucketSnapshots, typed[reconcile.SnapshotRecord]},
	{"runs", bucketRuns, typed[reconcile.Run]},
	{"heldPlan", bucketHeld, typed[reconcile.HeldPlan]},
	{"standingApprovals", bucketStanding, typed[[]reconcile.StandingApproval]},
	{"budgets", bucketBudget, typed[Budget]},
	{"audit", bucketAudit, typed[reconcile.AuditRecord]},
}

// dumpSection writes every record of one bucket, scrubbed, or its error when it does not
// decode as its type, and counts them.
func dumpSection(d *dumper, tx *bbolt.Tx, sec recordSection, counts map[string]int) {
	b := tx.Bucket([]byte(sec.bucket))
	if b == nil {
		return
	}
	d.beginArray(sec.field)
	counts[sec.field] = 0
	_ = b.ForEach(func(k, v []byte) error {
		counts[sec.field]++
		label := string(k)
		if sec.bucket == bucketAudit && len(k) == 8 {
			label = fmt.Sprint(binary.BigEndian.Uint64(k))
		}
		if sec.bucket == bucketSnapshots {
			var err error
			if v, err = snapshotJSON(v); err != nil {
				d.item(map[string]any{"key": label, "error": "record does not inflate: " + err.Error()})
				return nil
			}
		}
		if err := sec.typed(v); err != nil {
			d.item(map[string]any{"key": label, "error": "record does not decode: " + err.Error()})
			return nil
		}
		d.item(decodeScrubbed(label, v))
		return nil
	})
	d.endArray()
}

// dumpSCIM writes the SCIM resources of every source bucket, scrubbed, and counts them.
func dumpSCIM(d *dumper, tx *bbolt.Tx, counts map[string]int) {
	b := tx.Bucket([]byte(bucketSCIM))
	if b == nil {
		return
	}
	d.beginArray("scim")
	counts["scim"] = 0
	_ = b.ForEach(func(source, v []byte) error {
		sb := b.Bucket(source)
		if v != nil || sb == nil {
			d.item(map[string]any{"key": string(source), "error": "not a source bucket"})
			return nil
		}
		return sb.ForEach(func(k, v []byte) error {
			counts["scim"]++
			typ, id, _ := strings.Cut(string(k), "/")
			d.item(map[string]any{
				"source": string(source), "type": typ, "id": id,
				"resource": decodeScrubbed(string(k), v),
			})
			return nil
		})
	})
	d.endArray()
}

// countBuckets counts the keys of the audit index buckets into counts and returns the
// buckets idsync does not know, with their key counts.
func countBuckets(tx *bbolt.Tx, counts map[string]int) map[string]int {
	other := map[string]int{}
	_ = tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
		n := string(name)
		switch {
		case n == bucketAuditByTime || n == bucketAuditByUser:
			counts[n] = b.Stats().KeyN
		case !slices.Contains(allBuckets, n):
			other[n] = b.Stats().KeyN
		}
		return nil
	})
	return other
}

func typed[T any](data []byte) error {
	var v T
	return json.Unmarshal(data, &v)
}

// decodeScrubbed decodes a stored JSON value with secrets removed, or describes why it
// cannot.
func decodeScrubbed(key string, data []byte) any {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep numbers exactly as stored
	var v any
	if err := dec.Decode(&v); err != nil {
		return map[string]any{"key": key, "error": "record does not decode: " + err.Error()}
	}
	return scrub(v)
}

// scrub drops every object key that names a password, at any depth.
func scrub(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, val := range t {
			if strings.Contains(strings.ToLower(k), "password") {
				delete(t, k)
				continue
			}
			t[k] = scrub(val)
		}
	case []any:
		for i := range t {
			t[i] = scrub(t[i])
		}
	}
	return v
}

// dumper writes indented JSON incrementally so a large store is never held in memory
// whole. The first write error sticks and stops further output.
type dumper struct {
	w *bufio.Writer
	// used[i] says whether the container at depth i already has an element.
	used []bool
	err  error
}

func (d *dumper) write(s string) {
	if d.err == nil {
		_, d.err = d.w.WriteString(s)
	}
}

// sep starts an element of the current container on its own line.
func (d *dumper) sep() {
	n := len(d.used)
	if d.used[n-1] {
		d.write(",")
	}
	d.used[n-1] = true
	d.write("\n" + strings.Repeat("  ", n))
}

func (d *dumper) encode(v any) {
	data, err := json.Marshal(v)
	if err != nil && d.err == nil {
		d.err = err
	}
	d.write(string(data))
}

func (d *dumper) beginObject() { d.write("{"); d.used = append(d.used, false) }
func (d *dumper) endObject()   { d.close("}") }

// close ends the current container, on a line of its own unless it is empty.
func (d *dumper) close(c string) {
	n := len(d.used)
	if d.used[n-1] {
		d.write("\n" + strings.Repeat("  ", n-1))
	}
	d.write(c)
	d.used = d.used[:n-1]
}

// member writes one "name": value member of the current object.
func (d *dumper) member(name string, v any) {
	d.sep()
	d.encode(name)
	d.write(": ")
	d.encode(v)
}

// beginArray starts a "name": [ member; item adds to it and endArray closes it.
func (d *dumper) beginArray(name string) {
	d.sep()
	d.encode(name)
	d.write(": [")
	d.used = append(d.used, false)
}

func (d *dumper) item(v any) { d.sep(); d.encode(v) }
func (d *dumper) endArray()  { d.close("]") }
