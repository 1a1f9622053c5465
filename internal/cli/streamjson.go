package cli

import (
	"bufio"
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// WriteJSON writes v indented, as json.Encoder with two-space indents does, but streams the
// slices of a struct (and of the structs its fields point to) one element at a time. A run
// record of a first sync at 100,000 users holds 1,210,000 changes, some 400 MB of JSON: built
// whole, and indented again, it took more memory than the pass.
func WriteJSON(w io.Writer, v any) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := writeValue(bw, reflect.ValueOf(v), ""); err != nil {
		return err
	}
	if err := bw.WriteByte('\n'); err != nil {
		return err
	}
	return bw.Flush()
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// ownEncoding reports whether encoding/json writes values of t through their own methods.
func ownEncoding(t reflect.Type) bool {
	return t.Implements(marshalerType) || t.Implements(textMarshalerType) ||
		reflect.PointerTo(t).Implements(marshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)
}

// writeValue writes v at indentation prefix: structs field by field, slices element by
// element, anything else (and anything with its own MarshalJSON) through json.MarshalIndent.
func writeValue(w *bufio.Writer, v reflect.Value, prefix string) error {
	if v.IsValid() && !ownEncoding(v.Type()) {
		switch v.Kind() {
		case reflect.Pointer:
			if !v.IsNil() && v.Elem().Kind() == reflect.Struct {
				return writeValue(w, v.Elem(), prefix)
			}
		case reflect.Struct:
			return writeStruct(w, v, prefix)
		case reflect.Slice:
			if !v.IsNil() && v.Type().Elem().Kind() != reflect.Uint8 {
				return writeSlice(w, v, prefix)
			}
		}
	}
	var x any
	if v.IsValid() {
		x = v.Interface()
	}
	b, err := json.MarshalIndent(x, prefix, "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func writeSlice(w *bufio.Writer, v reflect.Value, prefix string) error {
	if v.Len() == 0 {
		_, err := w.WriteString("[]")
		return err
	}
	inner := prefix + "  "
	_ = w.WriteByte('[')
	for i := range v.Len() {
		if i > 0 {
			_ = w.WriteByte(',')
		}
		_, _ = w.WriteString("\n" + inner)
		if err := writeValue(w, v.Index(i), inner); err != nil {
			return err
		}
	}
	_, err := w.WriteString("\n" + prefix + "]")
	return err
}

// writeStruct writes the exported fields of a struct as encoding/json names them, leaving
// out "-" and empty omitempty fields. Embedded structs are not flattened: no type written
// this way embeds one (the test compares the output with encoding/json's).
func writeStruct(w *bufio.Writer, v reflect.Value, prefix string) error {
	t := v.Type()
	inner := prefix + "  "
	n := 0
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if f.Anonymous {
			return fmt.Errorf("writing %s: embedded field %s", t, f.Name)
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fv := v.Field(i)
		if strings.Contains(","+opts+",", ",omitempty,") && isEmpty(fv) || strings.Contains(","+opts+",", ",omitzero,") && isZero(fv) {
			continue
		}
		if strings.Contains(","+opts+",", ",string,") {
			return fmt.Errorf("writing %s: field %s has the string option", t, f.Name)
		}
		sep := ","
		if n == 0 {
			sep = "{"
		}
		key, _ := json.Marshal(name)
		_, _ = w.WriteString(sep + "\n" + inner)
		_, _ = w.Write(key)
		_, _ = w.WriteString(": ")
		if err := writeValue(w, fv, inner); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		_, err := w.WriteString("{}")
		return err
	}
	_, err := w.WriteString("\n" + prefix + "}")
	return err
}

// isZero is encoding/json's omitzero test: the value's IsZero method, else the zero value.
func isZero(v reflect.Value) bool {
	if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
		return (v.Kind() != reflect.Pointer || !v.IsNil()) && z.IsZero() || v.Kind() == reflect.Pointer && v.IsNil()
	}
	return v.IsZero()
}

// isEmpty is encoding/json's omitempty test.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
