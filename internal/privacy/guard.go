package privacy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
)

// ErrRawPII: personal data would leave through a sink unprotected. The data
// task fails permanently, before the sink writes anything.
var ErrRawPII = errors.New("raw personal data would reach the sink")

// GuardMinRatio is the share of a column's values in the first batch that
// must look like one kind of personal data for the guard to treat it as
// such: a column half full of email addresses is an email column.
const GuardMinRatio = 0.5

// GuardColumn is one column reaching the sink, with its lineage through
// the task's steps.
type GuardColumn struct {
	Name string
	// From is the source column it carries unchanged (possibly renamed);
	// "" for a computed column.
	From string
	// Protected: a pii operator transformed it.
	Protected bool
}

// Guard is the check at the exit of a data task: no column that is
// declared personal data, or looks like it, reaches a sink unprotected,
// unless the destination's classification is at least the column's
// sensitivity or the task allows it by name with a reason.
//
// A column's sensitivity is the one pii_columns declares for it, else
// DefaultSensitivity (restricted). When detection finds in a column a type
// whose MinSensitivity is higher than that (card numbers in a free-text
// column declared internal), the higher one counts: a declaration lowers
// the bar for what its author described, not for what the data turns out
// to hold.
type Guard struct {
	// Task and Sink name the task and its sink ("the csv sink") in
	// messages.
	Task, Sink string
	// Declared are the task's pii_columns, by source column name.
	Declared map[string]Declaration
	// Allowed are the output columns allow_raw_pii lets through.
	Allowed []string
	// Class is the destination's classification, in the words of
	// Sensitivity; "" or an unknown word lets nothing raw through.
	Class Sensitivity
	// Region for phone detection; "" means DefaultRegion.
	Region string
}

// CheckDeclared refuses declared columns that reach the sink unprotected
// and more sensitive than it is classified. It needs no data, so the task
// runs it before reading anything.
func (g Guard) CheckDeclared(cols []GuardColumn) error {
	if g.Class == Restricted {
		return nil
	}
	var msgs []string
	for _, c := range cols {
		if c.Protected || slices.Contains(g.Allowed, c.Name) {
			continue
		}
		d, via, ok := g.declared(c)
		if !ok {
			continue
		}
		s, why := g.sensitivity(c, d.Type, false)
		if g.Class.Allows(s) {
			continue
		}
		msgs = append(msgs, g.message(c, d.Type, s, why, via))
	}
	return g.fail(msgs)
}

// declared reports whether c is declared personal data, and how.
func (g Guard) declared(c GuardColumn) (Declaration, string, bool) {
	if c.From != "" {
		if d, ok := g.Declared[c.From]; ok {
			if c.From != c.Name {
				return d, fmt.Sprintf("declared in pii_columns as %q, renamed", c.From), true
			}
			return d, "declared in pii_columns", true
		}
	}
	if d, ok := g.Declared[c.Name]; ok {
		return d, "declared in pii_columns", true
	}
	return Declaration{}, "", false
}

// sensitivity is the sensitivity of c holding data of type t, and where
// it comes from, for messages. For free text, t is the type with the
// highest MinSensitivity found inside it (see textFloor), named as such.
func (g Guard) sensitivity(c GuardColumn, t Type, inText bool) (Sensitivity, string) {
	s, why := DefaultSensitivity, "the default"
	if d, _, ok := g.declared(c); ok && d.Sensitivity != "" {
		s, why = d.Sensitivity, "declared"
	}
	if least := MinSensitivity(t); least.Rank() > s.Rank() {
		if inText {
			return least, fmt.Sprintf("the least for the %s found in its text; declared %s", t, s)
		}
		return least, fmt.Sprintf("the least for %s; declared %s", t, s)
	}
	return s, why
}

// textFloor is the type, among the personal data found inside the values
// of a free-text column, whose MinSensitivity is the highest: a notes
// column declared internal that holds card numbers is restricted.
func textFloor(b *data.Batch, column string) Type {
	floor := FreeText
	i := b.Schema.Index(column)
	if i < 0 || b.Cols[i].Type != data.String {
		return floor
	}
	col := &b.Cols[i]
	for r := 0; r < b.Len && r < len(col.Strings); r++ {
		if col.IsNull(r) {
			continue
		}
		for _, sp := range Spans(col.Strings[r]) {
			if MinSensitivity(sp.Type).Rank() > MinSensitivity(floor).Rank() {
				floor = sp.Type
				if MinSensitivity(floor) == Restricted {
					return floor
				}
			}
		}
	}
	return floor
}

// CheckBatch runs detection over the first batch reaching the sink and
// refuses unprotected columns that look like personal data more sensitive
// than the sink is classified.
func (g Guard) CheckBatch(cols []GuardColumn, b *data.Batch) error {
	if g.Class == Restricted || b == nil || b.Len == 0 {
		return nil
	}
	d := NewDetector(DetectOptions{MinRatio: GuardMinRatio, Region: g.Region})
	d.Observe(b)
	byName := map[string]GuardColumn{}
	for _, c := range cols {
		byName[c.Name] = c
	}
	var msgs []string
	for _, f := range d.Findings() {
		c, ok := byName[f.Column]
		if !ok {
			c = GuardColumn{Name: f.Column}
		}
		if c.Protected || slices.Contains(g.Allowed, c.Name) {
			continue
		}
		s, why := g.sensitivity(c, f.Type, false)
		if f.Type == FreeText && g.Class.Allows(s) {
			// Only a column the sink would take needs its text read
			// again for what is inside it.
			if ft := textFloor(b, f.Column); ft != FreeText {
				s, why = g.sensitivity(c, ft, true)
			}
		}
		if g.Class.Allows(s) {
			continue
		}
		via := fmt.Sprintf("detected in %d of %d values", f.Matches, f.Sampled)
		if c.From == "" {
			via += ", computed by a step"
		} else if c.From != c.Name {
			via += fmt.Sprintf(", renamed from %q", c.From)
		}
		msgs = append(msgs, g.message(c, f.Type, s, why, via))
	}
	return g.fail(msgs)
}

// message names the column, its type, its sensitivity (and why it has
// it), the sink and its classification, and where the pii step that
// should have protected it belongs.
func (g Guard) message(c GuardColumn, t Type, s Sensitivity, why, via string) string {
	target := c.Name
	where := "add a pii step before the load"
	if c.From != "" && c.From != c.Name {
		target = c.From
		where = fmt.Sprintf("add a pii step before the step that renames %q to %q", c.From, c.Name)
	} else if c.From == "" {
		where = fmt.Sprintf("protect the columns %q is computed from with a pii step before it is computed, or add a pii step for it before the load", c.Name)
	}
	class := string(g.Class)
	if g.Class.Rank() < 0 {
		class = fmt.Sprintf("unknown (%q)", g.Class)
	}
	return fmt.Sprintf("column %q (%s: %s; sensitivity %s, %s) reaches %s (classification %s) unprotected: %s, e.g. - pii: {%s: %s}",
		c.Name, t, via, s, why, g.Sink, class, where, target, SuggestOp(t))
}

func (g Guard) fail(msgs []string) error {
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("task %s: %w: %s; or load into a destination classified at least as the column's sensitivity, or list the column in allow_raw_pii with a reason",
		g.Task, ErrRawPII, strings.Join(msgs, "; "))
}

// SuggestOp is the operator the guard proposes for a type of personal data.
func SuggestOp(t Type) string {
	switch t {
	case Email, PersonName, IBAN:
		return string(OpHMAC)
	case Phone:
		return "{mask: {keep_last: 4}}"
	case NationalID, StreetAddress:
		return string(OpRedact)
	case CreditCard:
		return string(OpTokenize)
	case DateOfBirth:
		return "{generalize: year}"
	case IPAddress:
		return "{generalize: {ipv4_prefix: 24}}"
	case FreeText:
		return "{mask_spans: true}"
	}
	return string(OpRedact)
}
