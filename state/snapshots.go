package state

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/bbolt"

	"github.com/idsync/idsync/reconcile"
)

// Snapshots are stored as gzip-compressed JSON, written one user at a time: a 100,000-user
// directory is about 40 MB of JSON, which a single json.Marshal would hold (and, while its
// buffer grows, hold again) on top of the directory itself. Compressed it is about a fifth of
// that on disk (41 MB became 8 MB). Records written before compression (plain JSON) still read.

// PutSnapshot stores the last complete read of a source, replacing the previous one (Taken
// is stamped when zero).
func (s *Store) PutSnapshot(r reconcile.SnapshotRecord) error {
	if r.Source == "" || len(r.Source) > maxKeyLen {
		return errors.New("storing snapshot: source is empty or too long")
	}
	if r.Taken.IsZero() {
		r.Taken = s.now()
	}
	data, err := encodeSnapshot(r)
	if err != nil {
		return fmt.Errorf("storing snapshot of source %s: %w", r.Source, err)
	}
	err = s.update(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSnapshots)
		if err != nil {
			return err
		}
		return b.Put([]byte(r.Source), data)
	})
	if err != nil {
		return fmt.Errorf("storing snapshot of source %s: %w", r.Source, err)
	}
	return nil
}

// Snapshot returns the last complete read of a source, or an error wrapping
// reconcile.ErrNotFound when it was never read completely.
func (s *Store) Snapshot(source string) (reconcile.SnapshotRecord, error) {
	var r reconcile.SnapshotRecord
	err := s.view(func(tx *bbolt.Tx) error {
		b, err := bucket(tx, bucketSnapshots)
		if err != nil {
			return err
		}
		data := b.Get([]byte(source))
		if data == nil {
			return fmt.Errorf("%s record %q: %w", bucketSnapshots, source, reconcile.ErrNotFound)
		}
		if err := decodeSnapshot(data, &r); err != nil {
			return fmt.Errorf("decoding %s record %q: %v: %w", bucketSnapshots, source, err, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return reconcile.SnapshotRecord{}, fmt.Errorf("reading snapshot of source %s: %w", source, err)
	}
	return r, nil
}

// usersHole is where the users go in the JSON of a record whose users are left out. No
// string inside JSON holds an unescaped quote, so it occurs exactly once.
var usersHole = []byte(`"users":null`)

// encodeSnapshot is the stored form of r: its JSON with the users array streamed in, gzipped.
func encodeSnapshot(r reconcile.SnapshotRecord) ([]byte, error) {
	users := r.Directory.Users
	r.Directory.Users = nil
	frame, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encoding: %w", err)
	}
	head, tail, ok := bytes.Cut(frame, usersHole)
	if !ok {
		return nil, errors.New("encoding: no users field in the record")
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the level is valid
	w := bufio.NewWriterSize(zw, 64<<10)
	_, _ = w.Write(head)
	_, _ = w.WriteString(`"users":`)
	if err := writeArray(w, users); err != nil {
		return nil, err
	}
	_, _ = w.Write(tail)
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("compressing: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing: %w", err)
	}
	return buf.Bytes(), nil
}

// writeArray writes list as JSON (null when nil), one element at a time.
func writeArray[T any](w io.Writer, list []T) error {
	if list == nil {
		_, err := io.WriteString(w, "null")
		return err
	}
	enc := json.NewEncoder(w)
	sep := "["
	for i := range list {
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		sep = ","
		// Encode ends each value with a newline, which JSON allows between elements.
		if err := enc.Encode(&list[i]); err != nil {
			return fmt.Errorf("encoding: %w", err)
		}
	}
	if sep == "[" {
		_, err := io.WriteString(w, "[]")
		return err
	}
	_, err := io.WriteString(w, "]")
	return err
}

// gzipMagic starts every gzip stream; a plain JSON record starts with '{'.
var gzipMagic = []byte{0x1f, 0x8b}

// snapshotJSON returns a stored snapshot as plain JSON, inflating a compressed one.
func snapshotJSON(data []byte) ([]byte, error) {
	if !bytes.HasPrefix(data, gzipMagic) {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// decodeSnapshot decodes a stored snapshot, compressed or not, streaming the inflated JSON
// into r.
func decodeSnapshot(data []byte, r *reconcile.SnapshotRecord) error {
	if !bytes.HasPrefix(data, gzipMagic) {
		return json.Unmarshal(data, r)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(zr)
	if err := dec.Decode(r); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the record")
	}
	return zr.Close()
}
