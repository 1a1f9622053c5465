package configs

import (
	"reflect"
	"strings"
	"time"
)

var (
	durationType = reflect.TypeFor[time.Duration]()
	secretType   = reflect.TypeFor[Secret]()
	configType   = reflect.TypeFor[Config]()
)

// keyOf returns the YAML key of a struct field, "" for fields that are not config keys.
func keyOf(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
	if tag == "-" {
		return ""
	}
	return tag
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// isBlock reports whether t is decoded from a YAML mapping (a struct or a pointer to one).
func isBlock(t reflect.Type) bool { return derefType(t).Kind() == reflect.Struct }

// walkLeafKeys calls fn for every scalar key of t that is not inside a list ("state.path",
// "sink.jira.admin_api.org_api_key"): the keys the environment and flags can set.
func walkLeafKeys(t reflect.Type, prefix string, fn func(key string, ft reflect.Type)) {
	t = derefType(t)
	for i := range t.NumField() {
		f := t.Field(i)
		k := keyOf(f)
		if k == "" {
			continue
		}
		key := joinKey(prefix, k)
		switch {
		case isBlock(f.Type):
			walkLeafKeys(f.Type, key, fn)
		case f.Type.Kind() == reflect.Slice:
			// lists are not addressable from the environment
		default:
			fn(key, f.Type)
		}
	}
}

// walkSchemaKeys calls fn for every key of the schema, lists of blocks written as "sources[]".
func walkSchemaKeys(t reflect.Type, prefix string, fn func(key string)) {
	t = derefType(t)
	for i := range t.NumField() {
		f := t.Field(i)
		k := keyOf(f)
		if k == "" {
			continue
		}
		key := joinKey(prefix, k)
		fn(key)
		switch {
		case isBlock(f.Type):
			walkSchemaKeys(f.Type, key, fn)
		case f.Type.Kind() == reflect.Slice && isBlock(f.Type.Elem()):
			walkSchemaKeys(f.Type.Elem(), key+"[]", fn)
		}
	}
}

// fieldByKey finds the field of struct type t whose key matches k case-insensitively (as viper
// and mapstructure match them).
func fieldByKey(t reflect.Type, k string) (reflect.StructField, bool) {
	t = derefType(t)
	for i := range t.NumField() {
		f := t.Field(i)
		if fk := keyOf(f); fk != "" && strings.EqualFold(fk, k) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// lookupField follows a dotted key through structs and non-nil pointers.
func lookupField(root any, key string) (reflect.Value, bool) {
	v := reflect.ValueOf(root)
	for _, k := range strings.Split(key, ".") {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		f, ok := fieldByKey(v.Type(), k)
		if !ok {
			return reflect.Value{}, false
		}
		v = v.FieldByIndex(f.Index)
	}
	return v, true
}

// lookupRaw follows a dotted key through decoded YAML maps; nil values count as absent.
func lookupRaw(m map[string]any, key string) (any, bool) {
	var cur any = m
	for _, k := range strings.Split(key, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = mm[k]
		if !ok || cur == nil {
			return nil, false
		}
	}
	return cur, true
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// envName is the variable that overrides key: IDSYNC_ + key upper-cased, "." -> "_".
func envName(key string) string {
	return "IDSYNC_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}
