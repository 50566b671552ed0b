package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/privacy"
)

// piiOpNames lists the operators for messages.
func piiOpNames() string {
	names := make([]string, len(privacy.Ops))
	for i, o := range privacy.Ops {
		names[i] = string(o)
	}
	return strings.Join(names, ", ")
}

// piiStep parses {column: operator | {operator: options}, ...}.
func (ps *parser) piiStep(v *yaml.Node, what string) []privacy.Rule {
	var rules []privacy.Rule
	for _, kv := range ps.columnMap(v, what) {
		col := kv.key.Value
		ps.column(kv.key, what, col, false)
		cw := fmt.Sprintf("%s: %s", what, col)
		if r, ok := ps.piiRule(kv.val, cw); ok {
			r.Column = col
			rules = append(rules, r)
		}
	}
	return rules
}

var (
	maskFields       = []string{"keep_first", "keep_last", "char"}
	tokenizeFields   = []string{"subject"}
	generalizeFields = []string{"width", "prefix", "ipv4_prefix", "ipv6_prefix"}
)

// piiRule parses one column's operator: a bare name (hmac), or a mapping
// with one operator and its options ({mask: {keep_last: 4}}).
func (ps *parser) piiRule(v *yaml.Node, what string) (privacy.Rule, bool) {
	n := ps.resolve(v)
	if n == nil {
		return privacy.Rule{}, false
	}
	var (
		opNode *yaml.Node
		opts   *yaml.Node
	)
	switch {
	case n.Kind == yaml.ScalarNode && !isNull(n):
		opNode = n
	case n.Kind == yaml.MappingNode && len(n.Content) == 2:
		opNode, opts = ps.resolve(n.Content[0]), ps.resolve(n.Content[1])
	default:
		ps.errorf(n, "%s: want an operator (%s), or one operator with options such as {mask: {keep_last: 4}}, got %s",
			what, piiOpNames(), describeStep(n))
		return privacy.Rule{}, false
	}
	if opNode == nil {
		return privacy.Rule{}, false
	}
	r := privacy.Rule{Op: privacy.Op(opNode.Value)}
	ow := fmt.Sprintf("%s: %s", what, opNode.Value)
	hasOpts := opts != nil && !isNull(opts)
	switch r.Op {
	case privacy.OpRedact, privacy.OpDrop, privacy.OpHMAC:
		if hasOpts && !(opts.Kind == yaml.MappingNode && len(opts.Content) == 0) {
			ps.errorf(opts, "%s: takes no options", ow)
		}
	case privacy.OpMaskSpans:
		if hasOpts {
			if b, ok := ps.boolean(opts, ow); ok && !b {
				ps.errorf(opts, "%s: false: to leave the column as it is, leave it out of the pii step", ow)
				return r, false
			}
		}
	case privacy.OpMask:
		if hasOpts {
			fields := ps.fieldsOf(opts, ow, maskFields)
			for name, dst := range map[string]*int{"keep_first": &r.KeepFirst, "keep_last": &r.KeepLast} {
				if f, ok := fields[name]; ok {
					if i, ok := ps.integer(f.val, ow+": "+name); ok {
						if i < 0 {
							ps.errorf(ps.resolve(f.val), "%s: %s: must not be negative", ow, name)
						}
						*dst = i
					}
				}
			}
			if f, ok := fields["char"]; ok {
				if s, ok := ps.str(f.val, ow+": char"); ok {
					if len([]rune(s)) != 1 {
						ps.errorf(ps.resolve(f.val), "%s: char: want exactly one character, got %q", ow, s)
					}
					r.Char = s
				}
			}
		}
	case privacy.OpTokenize:
		if hasOpts {
			fields := ps.fieldsOf(opts, ow, tokenizeFields)
			if f, ok := fields["subject"]; ok {
				if s, ok := ps.str(f.val, ow+": subject"); ok {
					ps.column(ps.resolve(f.val), ow+": subject", s, false)
					r.Subject = s
				}
			}
		}
	case privacy.OpGeneralize:
		ps.generalize(opNode, opts, ow, &r)
	default:
		ps.errorf(opNode, "%s: unknown operator %q (known: %s)", what, opNode.Value, piiOpNames())
		return r, false
	}
	return r, true
}

// generalize parses generalize: month | year | {width: 10} | {prefix: 3}
// | {ipv4_prefix: 24, ipv6_prefix: 48}.
func (ps *parser) generalize(opNode, opts *yaml.Node, what string, r *privacy.Rule) {
	if opts == nil || isNull(opts) {
		ps.errorf(opNode, "%s: say how: month, year, {width: N}, {prefix: N} or {ipv4_prefix: N}", what)
		return
	}
	if opts.Kind == yaml.ScalarNode {
		switch opts.Value {
		case privacy.DateMonth, privacy.DateYear:
			r.Date = opts.Value
		default:
			ps.errorf(opts, "%s: unknown granularity %q (want month, year, or {width: N}, {prefix: N}, {ipv4_prefix: N})", what, opts.Value)
		}
		return
	}
	fields := ps.fieldsOf(opts, what, generalizeFields)
	if opts.Kind != yaml.MappingNode {
		return
	}
	if len(fields) == 0 {
		ps.errorf(opts, "%s: name one of month, year, width, prefix or ipv4_prefix", what)
		return
	}
	if f, ok := fields["width"]; ok {
		wn := ps.resolve(f.val)
		w, err := strconv.ParseFloat(wn.Value, 64)
		if wn.Kind != yaml.ScalarNode || (wn.ShortTag() != "!!int" && wn.ShortTag() != "!!float") || err != nil || !(w > 0) {
			ps.errorf(wn, "%s: width: want a positive number, got %s", what, describe(wn))
		} else {
			r.Width = w
		}
	}
	ints := []struct {
		name     string
		dst      *int
		min, max int
	}{{"prefix", &r.Prefix, 1, 1 << 20}, {"ipv4_prefix", &r.IPv4Prefix, 0, 32}, {"ipv6_prefix", &r.IPv6Prefix, 0, 128}}
	for _, it := range ints {
		f, ok := fields[it.name]
		if !ok {
			continue
		}
		if i, ok := ps.integer(f.val, what+": "+it.name); ok {
			if i < it.min || i > it.max {
				ps.errorf(ps.resolve(f.val), "%s: %s: %d is out of range (%d to %d)", what, it.name, i, it.min, it.max)
				continue
			}
			*it.dst = i
		}
	}
	groups := 0
	if _, ok := fields["width"]; ok {
		groups++
	}
	if _, ok := fields["prefix"]; ok {
		groups++
	}
	_, v4 := fields["ipv4_prefix"]
	_, v6 := fields["ipv6_prefix"]
	if v4 || v6 {
		groups++
	}
	if groups > 1 {
		ps.errorf(opts, "%s: want one of width, prefix, or ipv4_prefix/ipv6_prefix, not several", what)
	}
}

var (
	allowRawFields  = []string{"columns", "reason"}
	piiColumnFields = []string{"type", "sensitivity"}
)

// piiColumn parses one column of pii_columns: a type (email: email), or a
// type and a sensitivity (ssn: {type: national_id, sensitivity:
// restricted}; sensitivity may be left out). A sensitivity left out stays
// "", privacy.DefaultSensitivity.
func (ps *parser) piiColumn(v *yaml.Node, what string) (privacy.Declaration, bool) {
	n := ps.resolve(v)
	if n == nil {
		return privacy.Declaration{}, false
	}
	typeNode, sensNode := n, (*yaml.Node)(nil)
	switch {
	case n.Kind == yaml.ScalarNode && !isNull(n):
	case n.Kind == yaml.MappingNode:
		fs := ps.fieldsOf(n, what, piiColumnFields)
		tf, ok := fs["type"]
		if !ok {
			ps.errorf(n, "%s: missing type: the kind of personal data the column holds (%s)", what, piiTypeNames())
			return privacy.Declaration{}, false
		}
		typeNode = tf.val
		if sf, ok := fs["sensitivity"]; ok {
			sensNode = sf.val
		}
	default:
		ps.errorf(n, "%s: want a personal data type such as email, or {type: national_id, sensitivity: restricted}, got %s", what, describe(n))
		return privacy.Declaration{}, false
	}
	s, ok := ps.str(typeNode, what+": type")
	if !ok {
		return privacy.Declaration{}, false
	}
	typ, err := privacy.ParseType(s)
	if err != nil {
		ps.errorf(ps.resolve(typeNode), "%s: %s", what, err.Error())
		return privacy.Declaration{}, false
	}
	d := privacy.Declaration{Type: typ}
	if sensNode == nil {
		return d, true
	}
	if s, ok = ps.str(sensNode, what+": sensitivity"); !ok {
		return d, false
	}
	if d.Sensitivity, err = privacy.ParseSensitivity(s); err == nil {
		err = d.Check()
	}
	if err != nil {
		ps.errorf(ps.resolve(sensNode), "%s: %s", what, err.Error())
		return d, false
	}
	return d, true
}

// piiTypeNames lists the personal data types for messages.
func piiTypeNames() string {
	names := make([]string, len(privacy.Types))
	for i, t := range privacy.Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// privacyFields parses the data-only task fields pii_columns:,
// allow_raw_pii: and retain:.
func (ps *parser) privacyFields(fields map[string]pair, t *Task, what string) {
	for _, name := range []string{"pii_columns", "allow_raw_pii", "retain"} {
		if f, ok := fields[name]; ok && t.Kind != KindData && t.Kind != "" {
			ps.errorf(f.key, "%s: %s is only for data tasks", what, name)
			delete(fields, name)
		}
	}
	if f, ok := fields["pii_columns"]; ok {
		pw := what + ": pii_columns"
		for _, kv := range ps.columnMap(f.val, pw) {
			ps.column(kv.key, pw, kv.key.Value, false)
			d, ok := ps.piiColumn(kv.val, fmt.Sprintf("%s: column %q", pw, kv.key.Value))
			if !ok {
				continue
			}
			if t.PIIColumns == nil {
				t.PIIColumns = map[string]privacy.Declaration{}
			}
			t.PIIColumns[kv.key.Value] = d
		}
	}
	if f, ok := fields["allow_raw_pii"]; ok {
		aw := what + ": allow_raw_pii"
		n := ps.resolve(f.val)
		if n != nil {
			a := &AllowRawPII{Pos: ps.pos(f.key)}
			fs := ps.fieldsOf(n, aw, allowRawFields)
			if n.Kind == yaml.MappingNode {
				if c, ok := fs["columns"]; ok {
					a.Columns = ps.columns(c.val, aw+": columns", true)
				} else {
					ps.errorf(n, "%s: missing columns: the columns that may reach the sink unprotected", aw)
				}
				if r, ok := fs["reason"]; ok {
					if s, ok := ps.str(r.val, aw+": reason"); ok {
						if strings.TrimSpace(s) == "" {
							ps.errorf(ps.resolve(r.val), "%s: reason is empty: say why raw personal data may leave here", aw)
						}
						a.Reason = s
					}
				} else {
					ps.errorf(n, "%s: missing reason: say why raw personal data may leave here (it is recorded in the task log)", aw)
				}
				t.AllowRawPII = a
			}
		}
	}
	if f, ok := fields["retain"]; ok {
		if d, ok := ps.retention(f.val, what+": retain"); ok {
			t.Retain = d
		}
	}
}

// retention reads a positive duration; "90d" counts days.
func (ps *parser) retention(n *yaml.Node, what string) (time.Duration, bool) {
	if n = ps.resolve(n); n == nil {
		return 0, false
	}
	d, err := ParseRetention(n.Value)
	if n.Kind != yaml.ScalarNode || isNull(n) || err != nil {
		msg := "want a duration such as 90d, 12h or 30m"
		if err != nil && n.Kind == yaml.ScalarNode {
			msg = err.Error()
		}
		ps.errorf(n, "%s: %s", what, msg)
		return 0, false
	}
	return d, true
}

// ParseRetention parses a retention period: a Go duration (36h, 90m) or a
// whole number of days with a d suffix (90d). It must be positive.
func ParseRetention(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("invalid retention %q: want a whole number of days such as 90d, or a duration such as 12h", s)
		}
		if n > 365*100 {
			return 0, fmt.Errorf("invalid retention %q: more than a century", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid retention %q: want a duration such as 90d, 12h or 30m", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("invalid retention %q: must be positive", s)
	}
	return d, nil
}

// sinkClassification takes the classification: key out of a load:
// mapping's pairs (load: {csv: {...}, classification: restricted}).
func (ps *parser) sinkClassification(kvs []pair, what string) ([]pair, Classification) {
	var (
		out   []pair
		class Classification
	)
	for _, kv := range kvs {
		if kv.key.Value != "classification" {
			out = append(out, kv)
			continue
		}
		if s, ok := ps.str(kv.val, what+": load: classification"); ok {
			switch c := Classification(s); c {
			case Public, Internal, Confidential, Restricted:
				class = c
			default:
				ps.errorf(ps.resolve(kv.val), "%s: load: classification: unknown classification %q (want public, internal, confidential or restricted)", what, s)
			}
		}
	}
	return out, class
}
