// Package strictyaml decodes YAML nodes into Go structs strictly: a key the
// struct does not declare is an error rather than silently ignored, a value
// of the wrong shape is an error rather than truncated or coerced, and every
// error keeps the line and column it comes from.
//
// It is how connector settings are decoded. A misspelt setting
// ("delimter: ;") must never fall back to a default without a word, since a
// pipeline that quietly does something else than written is worse than one
// that refuses to start.
//
// Struct fields are matched by their `yaml:"name"` tag (the lower-cased
// field name without one; `yaml:"-"` skips a field; `yaml:",inline"` merges
// an embedded struct's fields). Supported targets: structs, pointers,
// slices, maps with scalar keys, strings, bools, integers, floats,
// time.Duration (a Go duration string such as "30s"), types implementing
// yaml.Unmarshaler or encoding.TextUnmarshaler, and any. A struct whose
// pointer has a `Validate() error` method is validated once it decoded
// without error.
package strictyaml

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxAliasExpansions bounds how many alias dereferences one Decode follows,
// so that nested aliases (the "billion laughs" document) cannot make a small
// file expand into an enormous value.
const maxAliasExpansions = 10000

// Error is one problem in the decoded document, at a 1-based line and
// column (0 when unknown).
type Error struct {
	Line int
	Col  int
	Msg  string
	// Err is the underlying cause, when there is one (a Validate error, a
	// TextUnmarshaler error); Msg already includes its text.
	Err error
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem Decode found, in document order. Decode reports
// all of them, not just the first, so a user fixes a file in one pass.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Decode decodes node (a document or mapping node, typically) into v, which
// must be a non-nil pointer. A nil or null node leaves v as it is (with its
// defaults) but still validates it. The returned error, when not nil, is an
// Errors value.
func Decode(node *yaml.Node, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return Errors{{Msg: fmt.Sprintf("strictyaml: Decode needs a non-nil pointer, got %T", v)}}
	}
	d := &decoder{}
	if node != nil && node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			node = nil
		} else {
			node = node.Content[0]
		}
	}
	if node == nil {
		// Nothing to decode: defaults stand, and must still be valid.
		d.validate(&yaml.Node{}, rv.Elem())
	} else {
		d.value(node, rv.Elem())
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i], d.errs[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
		return d.errs
	}
	return nil
}

type decoder struct {
	errs    Errors
	aliases int
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &Error{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)})
}

// resolve follows aliases, counting them against the expansion budget.
// It returns nil when the budget is exhausted (after reporting it).
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		d.aliases++
		if d.aliases > maxAliasExpansions {
			if d.aliases == maxAliasExpansions+1 {
				d.errorf(n, "too many alias expansions (more than %d)", maxAliasExpansions)
			}
			return nil
		}
		n = n.Alias
	}
	return n
}

var (
	durationType        = reflect.TypeOf(time.Duration(0))
	yamlUnmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	validatorType       = reflect.TypeOf((*interface{ Validate() error })(nil)).Elem()
)

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "a document"
}

// value decodes n into out, reporting errors and returning whether it
// decoded cleanly.
func (d *decoder) value(n *yaml.Node, out reflect.Value) bool {
	n = d.resolve(n)
	if n == nil {
		return false
	}
	before := len(d.errs)
	t := out.Type()

	// Custom decoders first: they know their own shape.
	if out.CanAddr() && reflect.PointerTo(t).Implements(yamlUnmarshalerType) {
		if err := n.Decode(out.Addr().Interface()); err != nil {
			d.errs = append(d.errs, &Error{Line: n.Line, Col: n.Column, Msg: strings.TrimPrefix(err.Error(), "yaml: "), Err: err})
		}
		return len(d.errs) == before
	}
	if out.CanAddr() && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, "want a string, got %s", kindName(n))
			return false
		}
		if isNull(n) {
			return true
		}
		if err := out.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			d.errs = append(d.errs, &Error{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf("invalid value %q: %s", n.Value, err.Error()), Err: err})
		}
		return len(d.errs) == before
	}
	if t == durationType {
		return d.duration(n, out)
	}

	switch t.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			out.SetZero()
			return true
		}
		if out.IsNil() {
			out.Set(reflect.New(t.Elem()))
		}
		return d.value(n, out.Elem())
	case reflect.Struct:
		return d.structure(n, out)
	case reflect.Slice:
		return d.slice(n, out)
	case reflect.Map:
		return d.mapping(n, out)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			d.errorf(n, "cannot decode into %s", t)
			return false
		}
		var v any
		if err := n.Decode(&v); err != nil {
			d.errs = append(d.errs, &Error{Line: n.Line, Col: n.Column, Msg: strings.TrimPrefix(err.Error(), "yaml: "), Err: err})
			return false
		}
		if v == nil {
			out.SetZero()
		} else {
			out.Set(reflect.ValueOf(v))
		}
		return true
	default:
		return d.scalar(n, out)
	}
}

func (d *decoder) duration(n *yaml.Node, out reflect.Value) bool {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "want a duration such as 30s, 5m or 1h30m, got %s", kindName(n))
		return false
	}
	if isNull(n) {
		return true
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errorf(n, "invalid duration %q: want a number with a unit, such as 30s, 5m or 1h30m", n.Value)
		return false
	}
	out.SetInt(int64(dur))
	return true
}

func (d *decoder) scalar(n *yaml.Node, out reflect.Value) bool {
	t := out.Type()
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "want %s, got %s", typeName(t), kindName(n))
		return false
	}
	if isNull(n) {
		out.SetZero()
		return true
	}
	tag := n.ShortTag()
	bad := func() bool {
		d.errorf(n, "cannot use %q as %s", n.Value, typeName(t))
		return false
	}
	switch t.Kind() {
	case reflect.String:
		if tag == "!!binary" {
			return bad()
		}
		out.SetString(n.Value)
	case reflect.Bool:
		if tag != "!!bool" {
			return bad()
		}
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			return bad()
		}
		out.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag != "!!int" || n.Decode(&i) != nil || out.OverflowInt(i) {
			return bad()
		}
		out.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var u uint64
		if tag != "!!int" || n.Decode(&u) != nil || out.OverflowUint(u) {
			return bad()
		}
		out.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag != "!!int" && tag != "!!float") || n.Decode(&f) != nil {
			return bad()
		}
		if t.Kind() == reflect.Float32 && !math.IsInf(f, 0) && math.Abs(f) > math.MaxFloat32 {
			return bad()
		}
		out.SetFloat(f)
	default:
		d.errorf(n, "cannot decode into %s", t)
		return false
	}
	return true
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a bool (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

func (d *decoder) slice(n *yaml.Node, out reflect.Value) bool {
	if isNull(n) {
		out.SetZero()
		return true
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, "want a list, got %s", kindName(n))
		return false
	}
	ok := true
	s := reflect.MakeSlice(out.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		if !d.value(item, s.Index(i)) {
			ok = false
		}
	}
	out.Set(s)
	return ok
}

// pairs returns the key/value pairs of a mapping node, with merge keys
// ("<<: *base") expanded: explicit keys win over merged ones.
func (d *decoder) pairs(n *yaml.Node) [][2]*yaml.Node {
	var explicit, merged [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			v = d.resolve(v)
			if v == nil {
				continue
			}
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, s := range srcs {
				s = d.resolve(s)
				if s == nil {
					continue
				}
				if s.Kind != yaml.MappingNode {
					d.errorf(s, "a merge key (<<) needs a mapping or a list of mappings, got %s", kindName(s))
					continue
				}
				merged = append(merged, d.pairs(s)...)
			}
			continue
		}
		explicit = append(explicit, [2]*yaml.Node{k, v})
	}
	if len(merged) == 0 {
		return explicit
	}
	seen := make(map[string]bool, len(explicit))
	for _, p := range explicit {
		seen[p[0].Value] = true
	}
	out := explicit
	for _, p := range merged {
		if !seen[p[0].Value] {
			seen[p[0].Value] = true
			out = append(out, p)
		}
	}
	return out
}

func (d *decoder) mapping(n *yaml.Node, out reflect.Value) bool {
	if isNull(n) {
		out.SetZero()
		return true
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "want a mapping, got %s", kindName(n))
		return false
	}
	t := out.Type()
	if out.IsNil() {
		out.Set(reflect.MakeMap(t))
	}
	ok := true
	seen := map[string]*yaml.Node{}
	for _, p := range d.pairs(n) {
		k, v := d.resolve(p[0]), p[1]
		if k == nil {
			ok = false
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "a key must be a scalar, got %s", kindName(k))
			ok = false
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "duplicate key %q (first at line %d)", k.Value, first.Line)
			ok = false
			continue
		}
		seen[k.Value] = k
		kv := reflect.New(t.Key()).Elem()
		vv := reflect.New(t.Elem()).Elem()
		kok := d.value(k, kv)
		vok := d.value(v, vv)
		if kok && vok {
			out.SetMapIndex(kv, vv)
		} else {
			ok = false
		}
	}
	return ok
}

// field is a settable struct field reachable from a decoded struct,
// inlined fields included.
type field struct {
	name  string
	index []int
}

func fields(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		inline := false
		for _, o := range strings.Split(opts, ",") {
			if o == "inline" {
				inline = true
			}
		}
		if inline && f.Type.Kind() == reflect.Struct {
			for _, sub := range fields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, field{name: name, index: []int{i}})
	}
	return out
}

func (d *decoder) structure(n *yaml.Node, out reflect.Value) bool {
	before := len(d.errs)
	switch {
	case isNull(n):
		// An empty value: defaults stand.
	case n.Kind != yaml.MappingNode:
		d.errorf(n, "want a mapping, got %s", kindName(n))
		return false
	default:
		fs := fields(out.Type())
		byName := make(map[string]field, len(fs))
		known := make([]string, 0, len(fs))
		for _, f := range fs {
			byName[f.name] = f
			known = append(known, f.name)
		}
		sort.Strings(known)
		seen := map[string]*yaml.Node{}
		for _, p := range d.pairs(n) {
			k, v := d.resolve(p[0]), p[1]
			if k == nil {
				continue
			}
			if k.Kind != yaml.ScalarNode {
				d.errorf(k, "a key must be a scalar, got %s", kindName(k))
				continue
			}
			if first, dup := seen[k.Value]; dup {
				d.errorf(k, "duplicate field %q (first at line %d)", k.Value, first.Line)
				continue
			}
			seen[k.Value] = k
			f, ok := byName[k.Value]
			if !ok {
				if len(known) == 0 {
					d.errorf(k, "unknown field %q (this takes no settings)", k.Value)
				} else {
					d.errorf(k, "unknown field %q (known: %s)", k.Value, strings.Join(known, ", "))
				}
				continue
			}
			d.value(v, out.FieldByIndex(f.index))
		}
	}
	if len(d.errs) != before {
		return false
	}
	return d.validate(n, out)
}

// validate calls the Validate method of out, if it has one.
func (d *decoder) validate(n *yaml.Node, out reflect.Value) bool {
	var v any
	switch {
	case out.CanAddr() && reflect.PointerTo(out.Type()).Implements(validatorType):
		v = out.Addr().Interface()
	case out.Type().Implements(validatorType):
		if out.Kind() == reflect.Pointer && out.IsNil() {
			return true
		}
		v = out.Interface()
	default:
		return true
	}
	err := v.(interface{ Validate() error }).Validate()
	if err == nil {
		return true
	}
	// A validator that positions its own errors keeps them.
	var es Errors
	if errors.As(err, &es) {
		d.errs = append(d.errs, es...)
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		d.errs = append(d.errs, e)
		return false
	}
	d.errs = append(d.errs, &Error{Line: n.Line, Col: n.Column, Msg: err.Error(), Err: err})
	return false
}
