package google

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// How the state of a Google user is known.
//
// The official client decodes User.Suspended and User.Archived into plain bools (with
// omitempty and ForceSendFields, which only shape what it sends): a user record without the
// fields decodes exactly like an active one. Unknown means no, so the source reads the same
// answer twice: the client decodes it into its structs, and the source decodes the raw body
// (handed over by the transport through the request's context, see capture) into
// statusRecord, whose fields are json.RawMessage and so stay nil when the field is absent.
// The two decodings of one page are matched by position and user id.
//
// A user is active when both fields are present and false; inactive when either is true
// (suspended, or archived: an archived user cannot sign in); any other record (a field
// missing, null, or not a boolean, with neither true) has no known status and makes the read
// incomplete, naming the records and the fields.

// statusRecord is the part of a user record the state is read from.
type statusRecord struct {
	ID           string          `json:"id"`
	PrimaryEmail string          `json:"primaryEmail"`
	Suspended    json.RawMessage `json:"suspended"`
	Archived     json.RawMessage `json:"archived"`
}

// userState is what a record says about its user.
type userState int

const (
	stateUnknown userState = iota
	stateActive
	stateInactive
)

// flag is one boolean field as the raw record carries it.
type flag int

const (
	flagMissing flag = iota
	flagFalse
	flagTrue
	flagInvalid // null, or not a boolean
)

func readFlag(raw json.RawMessage) flag {
	switch string(bytes.TrimSpace(raw)) {
	case "":
		return flagMissing
	case "false":
		return flagFalse
	case "true":
		return flagTrue
	}
	return flagInvalid
}

// state reads the record's user state, and when it is unknown, which fields made it so.
func (r statusRecord) state() (userState, string) {
	s, a := readFlag(r.Suspended), readFlag(r.Archived)
	switch {
	case s == flagTrue || a == flagTrue:
		return stateInactive, ""
	case s == flagFalse && a == flagFalse:
		return stateActive, ""
	}
	var why []string
	for _, f := range []struct {
		name string
		v    flag
	}{{"suspended", s}, {"archived", a}} {
		switch f.v {
		case flagMissing:
			why = append(why, "field "+f.name+" is missing")
		case flagInvalid:
			why = append(why, "field "+f.name+" is not true or false")
		}
	}
	return stateUnknown, strings.Join(why, ", ")
}

var errStatusMismatch = errors.New("the raw answer and the decoded answer disagree")

// usersStatus decodes the user records of a users.list answer.
func usersStatus(body []byte) ([]statusRecord, error) {
	var page struct {
		Users []statusRecord `json:"users"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, fmt.Errorf("reading user states: %w", err)
	}
	return page.Users, nil
}

// userStatus decodes a users.get answer.
func userStatus(body []byte) (statusRecord, error) {
	var r statusRecord
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("reading the user's state: %w", err)
	}
	return r, nil
}
