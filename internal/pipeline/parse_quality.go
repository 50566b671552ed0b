package pipeline

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sluicehq/sluice/internal/data"
)

// The data-quality and consent steps.
const (
	// StepCheck evaluates data-quality checks on every record (and on the
	// whole dataset at the end) and reports, quarantines or fails by each
	// check's severity.
	StepCheck StepKind = "check"
	// StepConsent keeps only the records whose subject consented to a
	// purpose, per a consent list read from a source connector.
	StepConsent StepKind = "consent"
)

// Severity says what a failing data-quality check does.
type Severity string

// The severities.
const (
	// SeverityWarn reports the failures; every record passes on.
	SeverityWarn Severity = "warn"
	// SeverityQuarantine sends each failing record to the task's
	// quarantine, with the check's name as the reason.
	SeverityQuarantine Severity = "quarantine"
	// SeverityFail fails the task, permanently, once the input has been
	// read, when the check does not pass; nothing is written.
	SeverityFail Severity = "fail"
)

// CheckKind is the kind of a data-quality check.
type CheckKind string

// The check kinds. Column checks look at one value per record and skip
// nulls (except not_null); dataset checks look at the whole stream.
const (
	CheckNotNull        CheckKind = "not_null"        // the value is not null
	CheckUnique         CheckKind = "unique"          // no value repeats an earlier one
	CheckAcceptedValues CheckKind = "accepted_values" // the value is one of Values
	CheckRegex          CheckKind = "regex"           // the (string) value matches Pattern
	CheckRange          CheckKind = "range"           // Min <= value <= Max (numbers)
	CheckLength         CheckKind = "length"          // Min <= length in characters <= Max
	CheckType           CheckKind = "type"            // the value is (or, as a string, parses as) Type
	CheckRowCount       CheckKind = "row_count"       // Min <= records <= Max, at the end
	CheckFreshness      CheckKind = "freshness"       // the newest Column is at most MaxAge older than the run
	CheckRelationship   CheckKind = "relationship"    // the value exists in column ToColumn of task ToTask's dataset
	CheckCustom         CheckKind = "custom"          // the CEL condition Expr holds for the record
)

// Check is a check step: its rules, in the order written.
type Check struct {
	Rules []CheckRule
	// Severity is the step's default for rules that name none.
	Severity Severity
}

// CheckRule is one data-quality check. Which fields are set depends on
// Kind.
type CheckRule struct {
	// Name identifies the check in results and quarantine reasons:
	// "column.kind" for column checks and relationships, the kind for
	// row_count and freshness ("freshness.column"), the given name for
	// custom checks.
	Name     string
	Kind     CheckKind
	Column   string
	Severity Severity
	// Mostly is the fraction of values that must pass, in (0, 1].
	Mostly float64
	// Values are the accepted values as written; the check converts
	// them to the column's type.
	Values []string
	// Pattern is a regular expression (RE2 syntax); it matches anywhere
	// in the value unless anchored.
	Pattern string
	// Min and Max bound range, length and row_count; nil is unbounded.
	Min, Max *float64
	Type     data.Type     // CheckType
	MaxAge   time.Duration // CheckFreshness
	ToTask   string        // CheckRelationship: the upstream task
	ToColumn string        // CheckRelationship: its column
	Expr     string        // CheckCustom: a CEL bool expression
	Pos      Pos
}

// Consent is a consent step.
type Consent struct {
	// Subject is the column holding each record's data-subject id.
	Subject string
	// Purpose is the processing purpose the subject must have consented
	// to, e.g. "marketing".
	Purpose string
	// Source is where the consent records come from: any source
	// connector. See docs/quality.md for the columns it must yield.
	Source *Endpoint
}

// DefaultSeverity is the severity of checks when the step names none.
const DefaultSeverity = SeverityWarn

var (
	checkFields        = []string{"columns", "dataset", "severity"}
	columnCheckKinds   = []string{"not_null", "unique", "accepted_values", "regex", "range", "length", "type"}
	datasetCheckKinds  = []string{"row_count", "freshness", "relationship", "custom"}
	checkModifiers     = []string{"severity", "mostly"}
	boundFields        = []string{"min", "max", "severity", "mostly"}
	rowCountFields     = []string{"min", "max", "severity"}
	freshnessFields    = []string{"column", "max_age", "severity"}
	relationshipFields = []string{"column", "to", "severity", "mostly"}
	relationshipTo     = []string{"task", "column"}
	customFields       = []string{"name", "expr", "severity", "mostly"}
	consentFields      = []string{"subject", "purpose", "source"}
)

// checkStep parses {columns: {col: checks}, dataset: {...}, severity: ...}.
func (ps *parser) checkStep(v *yaml.Node, what string, src *taskSrc) *Check {
	c := &Check{Severity: DefaultSeverity}
	n := ps.resolve(v)
	if n == nil {
		return c
	}
	nerr := len(ps.errs)
	fields := ps.fieldsOf(n, what, checkFields)
	if n.Kind != yaml.MappingNode {
		return c
	}
	if f, ok := fields["severity"]; ok {
		if s, ok := ps.severity(f.val, what+": severity"); ok {
			c.Severity = s
		}
	}
	if f, ok := fields["columns"]; ok {
		cw := what + ": columns"
		for _, kv := range ps.columnMap(f.val, cw) {
			col := kv.key.Value
			ps.column(kv.key, cw, col, false)
			c.Rules = append(c.Rules, ps.columnChecks(kv.val, fmt.Sprintf("%s: %s", cw, col), col)...)
		}
	}
	if f, ok := fields["dataset"]; ok {
		c.Rules = append(c.Rules, ps.datasetChecks(f.val, what+": dataset", src)...)
	}
	if len(c.Rules) == 0 && len(ps.errs) == nerr {
		ps.errorf(n, "%s: no checks: name at least one under columns: or dataset:", what)
	}
	seen := map[string]Pos{}
	for i := range c.Rules {
		r := &c.Rules[i]
		if first, dup := seen[r.Name]; dup {
			ps.errs = append(ps.errs, Error{Pos: r.Pos, Msg: fmt.Sprintf("%s: check %q is defined twice (first at line %d)", what, r.Name, first.Line)})
		}
		seen[r.Name] = r.Pos
		if r.Severity == "" {
			r.Severity = c.Severity
			// A check on the whole dataset has no record to set aside:
			// an inherited quarantine reports instead.
			if r.Severity == SeverityQuarantine && (r.Kind == CheckRowCount || r.Kind == CheckFreshness) {
				r.Severity = SeverityWarn
			}
		}
		if r.Mostly == 0 {
			r.Mostly = 1
		}
	}
	return c
}

// labelOr names the setting that read an upstream task, for errors.
func (j joinSrc) labelOr() string {
	if j.label == "" {
		return "join: with"
	}
	return j.label
}

// orderedFields is fieldsOf keeping the order the fields are written in.
func (ps *parser) orderedFields(n *yaml.Node, what string, known []string) ([]pair, map[string]pair) {
	var list []pair
	m := map[string]pair{}
	for _, kv := range ps.pairs(n, what, "field") {
		if !contains(known, kv.key.Value) {
			ps.unknownField(kv.key, what+": ", known)
			continue
		}
		list = append(list, kv)
		m[kv.key.Value] = kv
	}
	return list, m
}

// severity reads warn, quarantine or fail.
func (ps *parser) severity(n *yaml.Node, what string) (Severity, bool) {
	s, ok := ps.str(n, what)
	if !ok {
		return "", false
	}
	switch sv := Severity(s); sv {
	case SeverityWarn, SeverityQuarantine, SeverityFail:
		return sv, true
	}
	ps.errorf(ps.resolve(n), "%s: unknown severity %q (want warn, quarantine or fail)", what, s)
	return "", false
}

// mostly reads a pass fraction in (0, 1].
func (ps *parser) mostly(n *yaml.Node, what string) (float64, bool) {
	r, ok := ps.ratio(n, what)
	if !ok {
		return 0, false
	}
	if r == 0 {
		ps.errorf(ps.resolve(n), "%s: must be above 0 (0.95 means 95%% of the values must pass)", what)
		return 0, false
	}
	return r, true
}

// modifiers applies severity: and mostly: from fields to r.
func (ps *parser) modifiers(fields map[string]pair, what string, r *CheckRule) {
	if f, ok := fields["severity"]; ok {
		if s, ok := ps.severity(f.val, what+": severity"); ok {
			r.Severity = s
		}
	}
	if f, ok := fields["mostly"]; ok {
		if m, ok := ps.mostly(f.val, what+": mostly"); ok {
			r.Mostly = m
		}
	}
}

// columnChecks parses the checks of one column: a kind ("not_null"), a
// list of kinds and mappings, or a mapping of kind → argument with
// optional severity: and mostly: for all of them.
func (ps *parser) columnChecks(v *yaml.Node, what, col string) []CheckRule {
	n := ps.resolve(v)
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if r, ok := ps.bareCheck(n, what, col); ok {
			return []CheckRule{r}
		}
		return nil
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			ps.errorf(n, "%s: name at least one check", what)
		}
		var rules []CheckRule
		for _, item := range n.Content {
			item = ps.resolve(item)
			if item == nil {
				continue
			}
			if item.Kind == yaml.ScalarNode {
				if r, ok := ps.bareCheck(item, what, col); ok {
					rules = append(rules, r)
				}
				continue
			}
			rules = append(rules, ps.checkGroup(item, what, col)...)
		}
		return rules
	case yaml.MappingNode:
		return ps.checkGroup(n, what, col)
	}
	ps.errorf(n, "%s: want a check such as not_null, a list of checks or a mapping such as {regex: \"^a\"}, got %s", what, describe(n))
	return nil
}

// bareCheck parses a check written by its kind alone.
func (ps *parser) bareCheck(n *yaml.Node, what, col string) (CheckRule, bool) {
	switch k := CheckKind(n.Value); k {
	case CheckNotNull, CheckUnique:
		return CheckRule{Name: col + "." + string(k), Kind: k, Column: col, Pos: ps.pos(n)}, true
	case CheckAcceptedValues, CheckRegex, CheckRange, CheckLength, CheckType:
		ps.errorf(n, "%s: %s needs an argument, e.g. {%s: %s}", what, k, k, checkExample(k))
	default:
		ps.errorf(n, "%s: unknown check %q (column checks: %s)", what, n.Value, strings.Join(columnCheckKinds, ", "))
	}
	return CheckRule{}, false
}

func checkExample(k CheckKind) string {
	switch k {
	case CheckAcceptedValues:
		return "[DE, FR]"
	case CheckRegex:
		return `"^[^@]+@[^@]+$"`
	case CheckRange:
		return "{min: 0, max: 130}"
	case CheckLength:
		return "{min: 1, max: 200}"
	}
	return "int"
}

// checkGroup parses {kind: arg, ..., severity: s, mostly: m}.
func (ps *parser) checkGroup(n *yaml.Node, what, col string) []CheckRule {
	list, fields := ps.orderedFields(n, what, append(append([]string(nil), columnCheckKinds...), checkModifiers...))
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var shared CheckRule
	ps.modifiers(fields, what, &shared)
	var rules []CheckRule
	// Kinds in the order written, for results in the order written.
	for _, kv := range list {
		k := CheckKind(kv.key.Value)
		if contains(checkModifiers, string(k)) {
			continue
		}
		kw := fmt.Sprintf("%s: %s", what, k)
		r := CheckRule{Name: col + "." + string(k), Kind: k, Column: col, Severity: shared.Severity, Mostly: shared.Mostly, Pos: ps.pos(kv.key)}
		val := ps.resolve(kv.val)
		if val == nil {
			continue
		}
		switch k {
		case CheckNotNull, CheckUnique:
			if isNull(val) {
				break
			}
			b, ok := ps.boolean(val, kw)
			if !ok {
				continue
			}
			if !b {
				continue // not_null: false asks for no check
			}
		case CheckAcceptedValues:
			if val.Kind != yaml.SequenceNode || len(val.Content) == 0 {
				ps.errorf(val, "%s: want a non-empty list of values, e.g. [DE, FR, US], got %s", kw, describe(val))
				continue
			}
			for _, item := range val.Content {
				item = ps.resolve(item)
				if item == nil {
					continue
				}
				if item.Kind != yaml.ScalarNode || isNull(item) {
					ps.errorf(item, "%s: want a plain value, got %s", kw, describe(item))
					continue
				}
				r.Values = append(r.Values, item.Value)
			}
		case CheckRegex:
			s, ok := ps.str(val, kw)
			if !ok {
				continue
			}
			if _, err := regexp.Compile(s); err != nil {
				ps.errorf(val, "%s: invalid regular expression %q: %s", kw, s, err.Error())
				continue
			}
			r.Pattern = s
		case CheckRange, CheckLength:
			if !ps.bounds(val, kw, &r, k == CheckLength) {
				continue
			}
		case CheckType:
			s, ok := ps.str(val, kw)
			if !ok {
				continue
			}
			t, err := data.ParseType(s)
			if err != nil {
				ps.errorf(val, "%s: %s", kw, err.Error())
				continue
			}
			r.Type = t
		}
		rules = append(rules, r)
	}
	return rules
}

// bounds parses {min: a, max: b[, severity, mostly]} into r; whole asks for
// non-negative integers (lengths, counts).
func (ps *parser) bounds(n *yaml.Node, what string, r *CheckRule, whole bool) bool {
	known := boundFields
	if r.Kind == CheckRowCount {
		known = rowCountFields
	}
	fields := ps.fieldsOf(n, what, known)
	if n.Kind != yaml.MappingNode {
		return false
	}
	ps.modifiers(fields, what, r)
	ok := true
	read := func(name string) *float64 {
		f, has := fields[name]
		if !has {
			return nil
		}
		v, good := ps.number(f.val, what+": "+name, whole)
		if !good {
			ok = false
			return nil
		}
		return &v
	}
	r.Min, r.Max = read("min"), read("max")
	switch {
	case !ok:
		return false
	case r.Min == nil && r.Max == nil:
		ps.errorf(n, "%s: give min:, max: or both", what)
		return false
	case r.Min != nil && r.Max != nil && *r.Min > *r.Max:
		ps.errorf(n, "%s: min (%g) is above max (%g)", what, *r.Min, *r.Max)
		return false
	}
	return true
}

// number reads a number; whole asks for a non-negative integer.
func (ps *parser) number(n *yaml.Node, what string, whole bool) (float64, bool) {
	if n = ps.resolve(n); n == nil {
		return 0, false
	}
	if n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!int" || (!whole && n.ShortTag() == "!!float")) {
		f, err := strconv.ParseFloat(n.Value, 64)
		if err == nil && f == f {
			if whole && f < 0 {
				ps.errorf(n, "%s: must not be negative", what)
				return 0, false
			}
			return f, true
		}
	}
	want := "a number"
	if whole {
		want = "a whole number"
	}
	ps.errorf(n, "%s: want %s, got %s", what, want, describe(n))
	return 0, false
}

// datasetChecks parses {row_count, freshness, relationship, custom}.
func (ps *parser) datasetChecks(v *yaml.Node, what string, src *taskSrc) []CheckRule {
	n := ps.resolve(v)
	if n == nil {
		return nil
	}
	list, fields := ps.orderedFields(n, what, datasetCheckKinds)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var rules []CheckRule
	for _, kv := range list {
		kw := fmt.Sprintf("%s: %s", what, kv.key.Value)
		val := ps.resolve(kv.val)
		if val == nil {
			continue
		}
		switch k := CheckKind(kv.key.Value); k {
		case CheckRowCount:
			r := CheckRule{Name: string(k), Kind: k, Pos: ps.pos(kv.key)}
			if ps.bounds(val, kw, &r, true) && ps.wholeDataset(fields, kw, r) {
				rules = append(rules, r)
			}
		case CheckFreshness:
			if r, ok := ps.freshness(val, kw, kv.key); ok && ps.wholeDataset(fields, kw, r) {
				rules = append(rules, r)
			}
		case CheckRelationship:
			items := []*yaml.Node{val}
			if val.Kind == yaml.SequenceNode {
				items = val.Content
			}
			for _, item := range items {
				if r, ok := ps.relationship(ps.resolve(item), kw, src); ok {
					rules = append(rules, r)
				}
			}
		case CheckCustom:
			if val.Kind != yaml.SequenceNode || len(val.Content) == 0 {
				ps.errorf(val, "%s: want a list such as [{name: positive_total, expr: \"row.total >= 0\"}], got %s", kw, describe(val))
				continue
			}
			for _, item := range val.Content {
				if r, ok := ps.custom(ps.resolve(item), kw); ok {
					rules = append(rules, r)
				}
			}
		}
	}
	return rules
}

// wholeDataset rejects severity: quarantine on a check that has no
// record to quarantine.
func (ps *parser) wholeDataset(fields map[string]pair, what string, r CheckRule) bool {
	if r.Severity != SeverityQuarantine {
		return true
	}
	ps.errorf(ps.resolve(fields[string(r.Kind)].val), "%s: severity quarantine needs a failing record to set aside; %s checks the whole dataset: use warn or fail", what, r.Kind)
	return false
}

// requiredColumn reads the column: field a dataset check cannot do
// without; purpose says what the column is for in the error.
func (ps *parser) requiredColumn(fields map[string]pair, n *yaml.Node, what, purpose string) (string, bool) {
	f, has := fields["column"]
	if !has {
		ps.errorf(n, "%s: missing column: %s", what, purpose)
		return "", false
	}
	s, ok := ps.str(f.val, what+": column")
	if ok {
		ps.column(ps.resolve(f.val), what+": column", s, false)
	}
	return s, ok
}

func (ps *parser) freshness(n *yaml.Node, what string, key *yaml.Node) (CheckRule, bool) {
	r := CheckRule{Kind: CheckFreshness, Pos: ps.pos(key), Mostly: 1}
	fields := ps.fieldsOf(n, what, freshnessFields)
	if n.Kind != yaml.MappingNode {
		return r, false
	}
	ps.modifiers(fields, what, &r)
	col, ok := ps.requiredColumn(fields, n, what, "the timestamp column whose newest value must be recent")
	r.Column = col
	if f, has := fields["max_age"]; has {
		d, good := ps.duration(f.val, what+": max_age")
		if good && d == 0 {
			ps.errorf(ps.resolve(f.val), "%s: max_age: must be above 0", what)
			good = false
		}
		r.MaxAge, ok = d, ok && good
	} else {
		ps.errorf(n, "%s: missing max_age: how old the newest record may be, e.g. 24h", what)
		ok = false
	}
	r.Name = "freshness." + r.Column
	return r, ok
}

func (ps *parser) relationship(n *yaml.Node, what string, src *taskSrc) (CheckRule, bool) {
	if n == nil {
		return CheckRule{}, false
	}
	r := CheckRule{Kind: CheckRelationship, Pos: ps.pos(n)}
	fields := ps.fieldsOf(n, what, relationshipFields)
	if n.Kind != yaml.MappingNode {
		return r, false
	}
	ps.modifiers(fields, what, &r)
	col, ok := ps.requiredColumn(fields, n, what, "the column whose values must exist upstream")
	r.Column = col
	f, has := fields["to"]
	if !has {
		ps.errorf(n, "%s: missing to: {task: upstream_task, column: its_column}", what)
		return r, false
	}
	tw := what + ": to"
	to := ps.resolve(f.val)
	if to == nil {
		return r, false
	}
	tf := ps.fieldsOf(to, tw, relationshipTo)
	if to.Kind != yaml.MappingNode {
		return r, false
	}
	if t, has := tf["task"]; has {
		if s, good := ps.str(t.val, tw+": task"); good {
			r.ToTask = s
			src.joins = append(src.joins, joinSrc{with: s, node: ps.resolve(t.val), label: "check: relationship: to: task"})
		} else {
			ok = false
		}
	} else {
		ps.errorf(to, "%s: missing task: the upstream task whose dataset holds the valid values", tw)
		ok = false
	}
	if c, has := tf["column"]; has {
		if s, good := ps.str(c.val, tw+": column"); good {
			ps.column(ps.resolve(c.val), tw+": column", s, false)
			r.ToColumn = s
		} else {
			ok = false
		}
	} else {
		ps.errorf(to, "%s: missing column: the column of %q that holds the valid values", tw, r.ToTask)
		ok = false
	}
	r.Name = r.Column + ".relationship"
	return r, ok
}

func (ps *parser) custom(n *yaml.Node, what string) (CheckRule, bool) {
	if n == nil {
		return CheckRule{}, false
	}
	r := CheckRule{Kind: CheckCustom, Pos: ps.pos(n)}
	fields := ps.fieldsOf(n, what, customFields)
	if n.Kind != yaml.MappingNode {
		return r, false
	}
	ps.modifiers(fields, what, &r)
	ok := true
	if f, has := fields["name"]; has {
		if s, good := ps.str(f.val, what+": name"); good {
			if !identRe.Match(s) {
				ps.errorf(ps.resolve(f.val), "%s: name: invalid check name %q: start with a letter or _, then letters, digits or _, at most 64 characters", what, s)
				ok = false
			}
			r.Name = s
		} else {
			ok = false
		}
	} else {
		ps.errorf(n, "%s: missing name: what to call the check in results and quarantine reasons", what)
		ok = false
	}
	if f, has := fields["expr"]; has {
		if s, good := ps.str(f.val, what+": expr"); good {
			nerr := len(ps.errs)
			ps.cel(ps.resolve(f.val), what+": expr", s, true)
			r.Expr = s
			ok = ok && len(ps.errs) == nerr
		} else {
			ok = false
		}
	} else {
		ps.errorf(n, "%s: missing expr: a CEL condition each record must meet, e.g. \"row.total >= 0\"", what)
		ok = false
	}
	return r, ok
}

// consentStep parses {subject: column, purpose: name, source: {connector: {...}}}.
func (ps *parser) consentStep(v *yaml.Node, what string) *Consent {
	c := &Consent{}
	n := ps.resolve(v)
	if n == nil {
		return c
	}
	fields := ps.fieldsOf(n, what, consentFields)
	if n.Kind != yaml.MappingNode {
		return c
	}
	if f, ok := fields["subject"]; ok {
		if s, ok := ps.str(f.val, what+": subject"); ok {
			ps.column(ps.resolve(f.val), what+": subject", s, false)
			c.Subject = s
		}
	} else {
		ps.errorf(n, "%s: missing subject: the column holding each record's data-subject id", what)
	}
	if f, ok := fields["purpose"]; ok {
		if s, ok := ps.str(f.val, what+": purpose"); ok {
			if strings.TrimSpace(s) == "" {
				ps.errorf(ps.resolve(f.val), "%s: purpose: must not be empty", what)
			}
			c.Purpose = s
		}
	} else {
		ps.errorf(n, "%s: missing purpose: the purpose subjects must have consented to, e.g. marketing", what)
	}
	if f, ok := fields["source"]; ok {
		c.Source = ps.endpoint(f, what+": source", true)
	} else {
		ps.errorf(n, "%s: missing source: where the consent records come from, e.g. {csv: {path: consents.csv}}", what)
	}
	return c
}

// The normalised form of the quality steps.
type (
	normCheck struct {
		Severity Severity        `json:"severity"`
		Rules    []normCheckRule `json:"rules"`
	}
	normCheckRule struct {
		Name     string    `json:"name"`
		Kind     CheckKind `json:"kind"`
		Column   string    `json:"column,omitempty"`
		Severity Severity  `json:"severity"`
		Mostly   float64   `json:"mostly"`
		Values   []string  `json:"values,omitempty"`
		Pattern  string    `json:"pattern,omitempty"`
		Min      *float64  `json:"min,omitempty"`
		Max      *float64  `json:"max,omitempty"`
		Type     string    `json:"type,omitempty"`
		MaxAge   string    `json:"max_age,omitempty"`
		ToTask   string    `json:"to_task,omitempty"`
		ToColumn string    `json:"to_column,omitempty"`
		Expr     string    `json:"expr,omitempty"`
	}
	normConsent struct {
		Subject string        `json:"subject"`
		Purpose string        `json:"purpose"`
		Source  *normEndpoint `json:"source"`
	}
)

func normCheckOf(c *Check) *normCheck {
	if c == nil {
		return nil
	}
	n := &normCheck{Severity: c.Severity, Rules: []normCheckRule{}}
	for _, r := range c.Rules {
		nr := normCheckRule{Name: r.Name, Kind: r.Kind, Column: r.Column, Severity: r.Severity, Mostly: r.Mostly,
			Values: r.Values, Pattern: r.Pattern, Min: r.Min, Max: r.Max, ToTask: r.ToTask, ToColumn: r.ToColumn, Expr: r.Expr}
		if r.Kind == CheckType {
			nr.Type = r.Type.String()
		}
		if r.MaxAge > 0 {
			nr.MaxAge = r.MaxAge.String()
		}
		n.Rules = append(n.Rules, nr)
	}
	return n
}

func normConsentOf(c *Consent) (*normConsent, error) {
	if c == nil {
		return nil, nil
	}
	src, err := normEnd(c.Source)
	if err != nil {
		return nil, fmt.Errorf("consent source: %w", err)
	}
	return &normConsent{Subject: c.Subject, Purpose: c.Purpose, Source: src}, nil
}
