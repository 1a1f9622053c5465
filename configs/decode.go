package configs

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-viper/mapstructure/v2"
)

// typeError is a value of the wrong type; its message never holds a secret's value.
type typeError struct{ msg string }

func (e *typeError) Error() string { return e.msg }

// decodeInto decodes a map of settings onto out, recording every wrong type with its field
// path. Unknown keys are found separately by checkKeys, which knows the full path of a key
// inside a list item. note, when set, annotates a path with where its value came from.
//
// mapstructure leaves a pointer block (sources[].miniorange, sources[].push, sink.jira, ...)
// nil when any value inside it fails to decode, which would hide the block's other problems
// (its secret files unread, its keys unvalidated). So when values fail, they are dropped from
// a copy of in and the whole of out is decoded again: each block then holds every value it has
// right, and only the values that failed are missing.
func decodeInto(in map[string]any, out any, ps *Problems, note func(path string) string) {
	var failed []string
	err := decodeOnce(in, out, func(path string, err error) {
		msg := decodeMessage(err)
		if note != nil {
			msg += note(path)
		}
		ps.Add(path, msg, ErrWrongType)
		failed = append(failed, path)
	})
	if err != nil {
		ps.Add("", fmt.Sprintf("building the config decoder: %v", err), ErrInvalid)
		return
	}
	if len(failed) == 0 {
		return
	}
	in = deepCopyMap(in)
	for _, p := range failed {
		dropPath(in, p)
	}
	rv := reflect.ValueOf(out).Elem()
	rv.SetZero()
	_ = decodeOnce(in, out, func(string, error) {}) // what fails now was reported above
}

// decodeOnce decodes in onto out, handing every failed value to fail.
func decodeOnce(in map[string]any, out any, fail func(path string, err error)) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook: mapstructure.DecodeHookFuncValue(typeHook),
		Result:     out,
		TagName:    "mapstructure",
	})
	if err != nil {
		return err
	}
	collectDecodeErrors(d.Decode(in), fail)
	return nil
}

// dropPath removes the value at a decoder path ("sources[0].miniorange.page_size") from m,
// matching keys case-insensitively as the decoder does; an unknown path changes nothing. A
// failed list item is set to nil (its block decodes as absent).
func dropPath(m map[string]any, path string) {
	var cur any = m
	segs := splitPath(path)
	for i, seg := range segs {
		c, ok := cur.(map[string]any)
		if !ok {
			return
		}
		k, ok := mapKey(c, seg.key)
		if !ok {
			return
		}
		last := i == len(segs)-1
		if seg.index < 0 {
			if last {
				delete(c, k)
				return
			}
			cur = c[k]
			continue
		}
		l, ok := c[k].([]any)
		if !ok || seg.index >= len(l) {
			return
		}
		if last {
			l[seg.index] = nil
			return
		}
		cur = l[seg.index]
	}
}

type pathSeg struct {
	key   string
	index int // -1: no [i]
}

// splitPath splits "sources[0].push.token" into {sources 0} {push -1} {token -1}.
func splitPath(path string) []pathSeg {
	var out []pathSeg
	for _, part := range strings.Split(path, ".") {
		seg := pathSeg{key: part, index: -1}
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			if n, err := strconv.Atoi(part[i+1 : len(part)-1]); err == nil && n >= 0 {
				seg = pathSeg{key: part[:i], index: n}
			}
		}
		out = append(out, seg)
	}
	return out
}

func mapKey(m map[string]any, key string) (string, bool) {
	if _, ok := m[key]; ok {
		return key, true
	}
	for k := range m {
		if strings.EqualFold(k, key) {
			return k, true
		}
	}
	return "", false
}

// collectDecodeErrors flattens mapstructure's tree of joined DecodeErrors into (path, cause).
func collectDecodeErrors(err error, add func(path string, err error)) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			collectDecodeErrors(e, add)
		}
		return
	}
	if de, ok := err.(*mapstructure.DecodeError); ok {
		inner := de.Unwrap()
		var nested *mapstructure.DecodeError
		if _, joined := inner.(interface{ Unwrap() []error }); joined || errors.As(inner, &nested) {
			collectDecodeErrors(inner, add)
			return
		}
		add(de.Name(), inner)
		return
	}
	// Decode wraps the tree once ("decoding failed due to the following error(s)").
	if inner := errors.Unwrap(err); inner != nil {
		collectDecodeErrors(inner, add)
		return
	}
	add("", err)
}

// decodeMessage words a decode failure without quoting the value (it may be a secret) unless
// typeHook already chose to.
func decodeMessage(err error) string {
	var te *typeError
	if errors.As(err, &te) {
		return te.msg
	}
	var ut *mapstructure.UnconvertibleTypeError
	if errors.As(err, &ut) {
		return "want " + describeType(ut.Expected.Type()) + ", got " + describeKind(reflect.ValueOf(ut.Value))
	}
	var pe *mapstructure.ParseError
	if errors.As(err, &pe) {
		return "want " + describeType(pe.Expected.Type())
	}
	return "cannot decode this value"
}

// typeHook converts what YAML, the environment (always strings) and ${VAR} expansion give into
// the schema's types, strictly: "3" is an integer, "two" is not; 2.5 is not an integer; a
// duration needs a unit.
func typeHook(from, to reflect.Value) (any, error) {
	if !from.IsValid() {
		return nil, nil
	}
	in := from.Interface()
	t := derefType(to.Type())
	secret := t == secretType
	switch {
	case t == durationType:
		return toDuration(from)
	case t.Kind() == reflect.String:
		return toString(from, secret)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return toInt(from, t)
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return toFloat(from)
	case t.Kind() == reflect.Bool:
		return toBool(from)
	case t.Kind() == reflect.Slice:
		if from.Kind() != reflect.Slice {
			return nil, &typeError{"want a list, got " + describe(from, secretElem(t))}
		}
	case t.Kind() == reflect.Struct:
		if from.Kind() != reflect.Map {
			// Never echo the value: a block's place may hold a pasted secret (push: <token>).
			return nil, &typeError{"want a mapping of keys, got " + describeKind(from)}
		}
	}
	return in, nil
}

func secretElem(t reflect.Type) bool { return t.Elem() == secretType }

func toString(from reflect.Value, secret bool) (any, error) {
	switch k := from.Kind(); {
	case k == reflect.String:
		return from.String(), nil
	case k >= reflect.Int && k <= reflect.Int64:
		// customer_key: 243321 written without quotes
		return strconv.FormatInt(from.Int(), 10), nil
	case k >= reflect.Uint && k <= reflect.Uint64:
		return strconv.FormatUint(from.Uint(), 10), nil
	case k == reflect.Float32 || k == reflect.Float64:
		return strconv.FormatFloat(from.Float(), 'f', -1, 64), nil
	}
	return nil, &typeError{"want a string, got " + describe(from, secret)}
}

func toInt(from reflect.Value, t reflect.Type) (any, error) {
	zero := reflect.Zero(t)
	bad := func() error { return &typeError{"want an integer, got " + describe(from, false)} }
	switch k := from.Kind(); {
	case k >= reflect.Int && k <= reflect.Int64:
		if zero.OverflowInt(from.Int()) {
			return nil, &typeError{fmt.Sprintf("%d is out of range", from.Int())}
		}
		return from.Int(), nil
	case k >= reflect.Uint && k <= reflect.Uint64:
		if from.Uint() > math.MaxInt64 || zero.OverflowInt(int64(from.Uint())) {
			return nil, &typeError{fmt.Sprintf("%d is out of range", from.Uint())}
		}
		return int64(from.Uint()), nil
	case k == reflect.Float32 || k == reflect.Float64:
		f := from.Float()
		if f != math.Trunc(f) || math.IsInf(f, 0) || f > math.MaxInt64 || f < math.MinInt64 || zero.OverflowInt(int64(f)) {
			return nil, bad()
		}
		return int64(f), nil
	case k == reflect.String:
		n, err := strconv.ParseInt(strings.TrimSpace(from.String()), 10, t.Bits())
		if err != nil {
			return nil, bad()
		}
		return n, nil
	}
	return nil, bad()
}

func toFloat(from reflect.Value) (any, error) {
	switch k := from.Kind(); {
	case k >= reflect.Int && k <= reflect.Int64:
		return float64(from.Int()), nil
	case k >= reflect.Uint && k <= reflect.Uint64:
		return float64(from.Uint()), nil
	case k == reflect.Float32 || k == reflect.Float64:
		return from.Float(), nil
	case k == reflect.String:
		f, err := strconv.ParseFloat(strings.TrimSpace(from.String()), 64)
		if err == nil {
			return f, nil
		}
	}
	return nil, &typeError{"want a number, got " + describe(from, false)}
}

func toBool(from reflect.Value) (any, error) {
	switch from.Kind() {
	case reflect.Bool:
		return from.Bool(), nil
	case reflect.String:
		b, err := strconv.ParseBool(strings.TrimSpace(from.String()))
		if err == nil {
			return b, nil
		}
	}
	return nil, &typeError{"want true or false, got " + describe(from, false)}
}

func toDuration(from reflect.Value) (any, error) {
	if from.Type() == durationType {
		return from.Interface(), nil
	}
	switch k := from.Kind(); {
	case k == reflect.String:
		d, err := time.ParseDuration(strings.TrimSpace(from.String()))
		if err == nil {
			return d, nil
		}
	case (k >= reflect.Int && k <= reflect.Int64 && from.Int() == 0) ||
		(k >= reflect.Uint && k <= reflect.Uint64 && from.Uint() == 0) ||
		((k == reflect.Float32 || k == reflect.Float64) && from.Float() == 0):
		return time.Duration(0), nil
	}
	return nil, &typeError{`want a duration such as "30s" or "15m", got ` + describe(from, false)}
}

// describe names what was given; scalars are quoted unless they may be secret.
func describe(v reflect.Value, secret bool) string {
	switch k := v.Kind(); {
	case k == reflect.String:
		if secret {
			return "a string"
		}
		return strconv.Quote(truncate(v.String(), 60))
	case k == reflect.Bool, k >= reflect.Int && k <= reflect.Float64:
		if secret {
			return "a " + describeKind(v)
		}
		return fmt.Sprint(v.Interface())
	}
	return describeKind(v)
}

func describeKind(v reflect.Value) string {
	if !v.IsValid() {
		return "nothing"
	}
	if v.Type() == reflect.TypeFor[time.Time]() {
		return "a timestamp (quote it)"
	}
	switch k := v.Kind(); {
	case k == reflect.Map:
		return "a mapping"
	case k == reflect.Slice || k == reflect.Array:
		return "a list"
	case k == reflect.String:
		return "a string"
	case k == reflect.Bool:
		return "a boolean"
	case k >= reflect.Int && k <= reflect.Uint64:
		return "an integer"
	case k == reflect.Float32 || k == reflect.Float64:
		return "a number"
	}
	return "a " + v.Kind().String()
}

func describeType(t reflect.Type) string {
	t = derefType(t)
	switch {
	case t == durationType:
		return "a duration"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice:
		return "a list"
	}
	return "a mapping of keys"
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "..."
}

// checkKeys reports every key of raw that the schema t does not have, with its full path, and
// keys given twice with different case (viper would silently keep one).
// fileKey spells a key written in the file for a problem's path: quoted when it is empty or
// holds characters that would blur the path (dots, spaces, brackets, ...).
func fileKey(k string) string {
	plain := func(r rune) bool { return r == '_' || r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r) }
	if k != "" && strings.IndexFunc(k, func(r rune) bool { return !plain(r) }) < 0 {
		return k
	}
	return strconv.Quote(k)
}

func checkKeys(raw any, t reflect.Type, path string, ps *Problems) {
	t = derefType(t)
	switch {
	case t.Kind() == reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return // the decoder reports the wrong type
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		seen := make(map[string]string, len(keys))
		for _, k := range keys {
			p := joinKey(path, fileKey(k))
			lk := strings.ToLower(k)
			if first, dup := seen[lk]; dup {
				ps.Add(p, fmt.Sprintf("given twice (as %q and %q)", first, k), ErrDuplicate)
				continue
			}
			seen[lk] = k
			f, ok := fieldByKey(t, k)
			if !ok {
				ps.Add(p, "unknown key"+suggest(t, k), ErrUnknownKey)
				continue
			}
			checkKeys(m[k], f.Type, joinKey(path, keyOf(f)), ps)
		}
	case t.Kind() == reflect.Slice && isBlock(t.Elem()):
		l, ok := raw.([]any)
		if !ok {
			return
		}
		for i, item := range l {
			checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), ps)
		}
	}
}

// suggest names the closest known key for a likely typo.
func suggest(t reflect.Type, k string) string {
	best, bestD := "", 3
	for i := range t.NumField() {
		fk := keyOf(t.Field(i))
		if fk == "" {
			continue
		}
		if d := editDistance(strings.ToLower(k), fk); d < bestD {
			best, bestD = fk, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
