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
// unless the destination is restricted or the task allows it by name with
// a reason.
type Guard struct {
	// Task and Sink name the task and its sink in messages.
	Task, Sink string
	// Declared are the task's pii_columns, by source column name.
	Declared map[string]Type
	// Allowed are the output columns allow_raw_pii lets through.
	Allowed []string
	// Restricted: the destination may hold raw personal data.
	Restricted bool
	// Region for phone detection; "" means DefaultRegion.
	Region string
}

// CheckDeclared refuses declared columns that reach the sink unprotected.
// It needs no data, so the task runs it before reading anything.
func (g Guard) CheckDeclared(cols []GuardColumn) error {
	if g.Restricted {
		return nil
	}
	var msgs []string
	for _, c := range cols {
		if c.Protected || slices.Contains(g.Allowed, c.Name) {
			continue
		}
		typ, via, ok := g.declared(c)
		if !ok {
			continue
		}
		msgs = append(msgs, g.message(c, typ, via))
	}
	return g.fail(msgs)
}

// declared reports whether c is declared personal data, and how.
func (g Guard) declared(c GuardColumn) (Type, string, bool) {
	if c.From != "" {
		if t, ok := g.Declared[c.From]; ok {
			if c.From != c.Name {
				return t, fmt.Sprintf("declared in pii_columns as %q, renamed", c.From), true
			}
			return t, "declared in pii_columns", true
		}
	}
	if t, ok := g.Declared[c.Name]; ok {
		return t, "declared in pii_columns", true
	}
	return "", "", false
}

// CheckBatch runs detection over the first batch reaching the sink and
// refuses unprotected columns that look like personal data.
func (g Guard) CheckBatch(cols []GuardColumn, b *data.Batch) error {
	if g.Restricted || b == nil || b.Len == 0 {
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
		via := fmt.Sprintf("detected in %d of %d values", f.Matches, f.Sampled)
		if c.From == "" {
			via += ", computed by a step"
		} else if c.From != c.Name {
			via += fmt.Sprintf(", renamed from %q", c.From)
		}
		msgs = append(msgs, g.message(c, f.Type, via))
	}
	return g.fail(msgs)
}

func (g Guard) message(c GuardColumn, t Type, via string) string {
	target := c.Name
	where := "add a pii step before the load"
	if c.From != "" && c.From != c.Name {
		target = c.From
		where = fmt.Sprintf("add a pii step before the step that renames %q to %q", c.From, c.Name)
	} else if c.From == "" {
		where = fmt.Sprintf("protect the columns %q is computed from with a pii step before it is computed, or add a pii step for it before the load", c.Name)
	}
	return fmt.Sprintf("column %q (%s: %s) reaches %s unprotected: %s, e.g. - pii: {%s: %s}",
		c.Name, t, via, g.Sink, where, target, SuggestOp(t))
}

func (g Guard) fail(msgs []string) error {
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("task %s: %w: %s; or load into a destination classified restricted, or list the column in allow_raw_pii with a reason",
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
