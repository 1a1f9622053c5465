package configs

import (
	"errors"
	"strings"
)

// Sentinels wrapped by every Problem, so callers can test with errors.Is on a *Problems.
var (
	ErrRequired       = errors.New("required")
	ErrUnknownKey     = errors.New("unknown key")
	ErrWrongType      = errors.New("wrong type")
	ErrInvalid        = errors.New("invalid value")
	ErrDuplicate      = errors.New("duplicate")
	ErrConflict       = errors.New("conflicting settings")
	ErrUnreadableFile = errors.New("unreadable file")
	ErrUnsupported    = errors.New("not supported yet")
	ErrSyntax         = errors.New("invalid YAML")
	ErrEmpty          = errors.New("empty config")
)

// Problem is one thing wrong with a config, located by its field path
// ("sources[0].miniorange.customer_key"). Path is empty for problems with the file as a whole
// (syntax, empty file), whose Msg then names the file and, where known, the line.
type Problem struct {
	Path string
	Msg  string
	Err  error
}

// Error reads "sources[0].miniorange.customer_key: required".
func (p Problem) Error() string {
	msg := p.Msg
	if msg == "" && p.Err != nil {
		msg = p.Err.Error()
	}
	if p.Path == "" {
		return msg
	}
	return p.Path + ": " + msg
}

// Unwrap exposes the sentinel.
func (p Problem) Unwrap() error { return p.Err }

// Problems is every problem found in one config, in the order they were found. Load and
// Validate return it as their error so that an operator fixes a file in one round.
type Problems struct {
	List []Problem
}

// Error lists the problems one per line.
func (ps *Problems) Error() string {
	lines := make([]string, len(ps.List))
	for i, p := range ps.List {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As see each Problem and its sentinel.
func (ps *Problems) Unwrap() []error {
	errs := make([]error, len(ps.List))
	for i, p := range ps.List {
		errs[i] = p
	}
	return errs
}

// Add records a problem; an identical one already recorded is not repeated (the file and the
// merged layers are both decoded, so one mistake can be seen twice).
func (ps *Problems) Add(path, msg string, err error) {
	p := Problem{Path: path, Msg: msg, Err: err}
	for _, q := range ps.List {
		if q.Path == p.Path && q.Error() == p.Error() {
			return
		}
	}
	ps.List = append(ps.List, p)
}

// Err returns ps as an error, or nil when there is no problem (never a typed nil).
func (ps *Problems) Err() error {
	if ps == nil || len(ps.List) == 0 {
		return nil
	}
	return ps
}

// paths reports whether any problem sits on path, on its *_file twin, or above or below it.
func (ps *Problems) touches(path string) bool {
	for _, q := range ps.List {
		if q.Path == "" {
			continue
		}
		switch {
		case q.Path == path, q.Path == path+"_file", q.Path+"_file" == path,
			strings.HasPrefix(path, q.Path+"."), strings.HasPrefix(path, q.Path+"["),
			strings.HasPrefix(q.Path, path+"."), strings.HasPrefix(q.Path, path+"["):
			return true
		}
	}
	return false
}
