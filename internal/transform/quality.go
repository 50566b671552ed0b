package transform

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/quality"
)

// check evaluates a check step. Records pass on unchanged, except those
// that fail a check of severity quarantine: they go to quarantine with the
// names of the checks they failed as the reason.
type check struct {
	suite *quality.Suite
	out   *data.Schema
	keep  []int32
	buf   compactBuf
}

func newCheck(ctx context.Context, spec *pipeline.Check, in *data.Schema, opts Options) (op, error) {
	if spec == nil {
		return nil, errors.New("no checks")
	}
	inputs := make(map[string]func(context.Context) (data.Source, error), len(opts.Inputs))
	for name, open := range opts.Inputs {
		inputs[name] = open
	}
	s, err := quality.Compile(ctx, spec, in, quality.Options{Now: opts.Now, Inputs: inputs})
	if errors.Is(err, quality.ErrInput) {
		return nil, fmt.Errorf("%w: %w", ErrJoinInput, err)
	}
	if err != nil {
		return nil, err
	}
	return &check{suite: s, out: in}, nil
}

func (o *check) schema() *data.Schema { return o.out }

func (o *check) apply(ctx context.Context, c *Chain, q data.Quarantine) (filtered, rejected int64, err error) {
	b := c.cur.b
	rejects := o.suite.Eval(b, c.rowPos)
	if len(rejects) == 0 {
		return 0, 0, nil
	}
	o.keep = o.keep[:0]
	next := 0
	for r := 0; r < b.Len; r++ {
		if next < len(rejects) && rejects[next].Row == r {
			if err := c.reject(ctx, q, r, rejects[next].Reason); err != nil {
				return 0, 0, err
			}
			next++
			rejected++
			continue
		}
		o.keep = append(o.keep, int32(r))
	}
	c.keepRows(o.keep, &o.buf)
	return 0, rejected, nil
}

// rowPos names current row r as reject does: "line N" or "row N".
func (c *Chain) rowPos(r int) string {
	o := c.cur.origRow(r)
	if c.cur.in.Pos != nil {
		return fmt.Sprintf("%s %d", c.label, c.cur.in.Pos[o])
	}
	return fmt.Sprintf("%s %d", c.label, c.cur.base+int64(o)+1)
}

// Quality returns the results of the chain's check steps, in step order,
// and one result per consent step (kind "consent", severity "filter")
// counting the records it filtered out. Call it once the input is
// exhausted: after the last Apply, and after Flush returned
// data.ErrEndOfInput for a blocking chain.
func (c *Chain) Quality() []quality.Result {
	var out []quality.Result
	for _, o := range c.ops {
		switch o := o.(type) {
		case *check:
			out = append(out, o.suite.Results()...)
		case *consent:
			out = append(out, o.result())
		}
	}
	return out
}

// consentFiltered sums what consent steps filtered.
func (c *Chain) consentFiltered() int64 {
	var n int64
	for _, o := range c.ops {
		if o, ok := o.(*consent); ok {
			n += o.filtered
		}
	}
	return n
}

// The columns a consent source yields.
const (
	consentSubject = "subject" // the data subject's id (string or int); required
	consentPurpose = "purpose" // the purpose consented to; required
	consentStatus  = "status"  // "granted" or "revoked" (string), or granted as a bool; default granted
	consentAt      = "at"      // when the record took effect (timestamp, or RFC 3339 string); optional
)

// maxConsentRecords bounds the consent records held in memory.
const maxConsentRecords = pipeline.DefaultJoinMaxRows

// consent keeps the records whose subject has consented to the purpose:
// for each subject, the latest consent record for the purpose decides
// (latest by at, then by order in the source), and records dated after
// the run's time are not yet in force. A subject without a record has not
// consented. Records without consent are filtered out, not quarantined:
// they are not bad data, they are data the run may not use.
type consent struct {
	subject  string
	purpose  string
	col      int
	granted  map[string]bool // subject → consented
	out      *data.Schema
	checked  int64
	filtered int64
	keep     []int32
	buf      compactBuf
	key      []byte
}

// consentState is the latest consent record of a subject.
type consentState struct {
	granted bool
	at      time.Time
}

func newConsent(ctx context.Context, spec *pipeline.Consent, in *data.Schema, opts Options) (op, error) {
	if spec == nil || spec.Source == nil {
		return nil, errors.New("no consent source")
	}
	col := in.Index(spec.Subject)
	if col < 0 {
		return nil, fmt.Errorf("subject: %w", noColumn(spec.Subject, in))
	}
	if t := in.Fields[col].Type; t != data.String && t != data.Int {
		return nil, fmt.Errorf("subject: column %q is %s; a subject id is a string or an int", spec.Subject, t)
	}
	if opts.OpenEndpoint == nil {
		return nil, errors.New("no way to open the consent source was given")
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	src, err := opts.OpenEndpoint(ctx, spec.Source)
	if err != nil {
		return nil, fmt.Errorf("consent source %s: %w: %w", spec.Source.Connector, ErrJoinInput, err)
	}
	defer src.Close()
	states, err := loadConsent(ctx, src, spec.Purpose, now)
	if err != nil {
		return nil, fmt.Errorf("consent source %s: %w", spec.Source.Connector, err)
	}
	o := &consent{subject: spec.Subject, purpose: spec.Purpose, col: col, out: in, granted: make(map[string]bool, len(states))}
	for k, s := range states {
		if s.granted {
			o.granted[k] = true
		}
	}
	return o, nil
}

// loadConsent reads the consent records for purpose into the latest state
// per subject.
func loadConsent(ctx context.Context, src data.Source, purpose string, now time.Time) (map[string]consentState, error) {
	s := src.Schema()
	subj, purp := s.Index(consentSubject), s.Index(consentPurpose)
	if subj < 0 || purp < 0 {
		return nil, fmt.Errorf("want columns %s and %s (and optionally %s and %s), have: %s",
			consentSubject, consentPurpose, consentStatus, consentAt, strings.Join(s.Names(), ", "))
	}
	if t := s.Fields[subj].Type; t != data.String && t != data.Int {
		return nil, fmt.Errorf("column %s is %s; want string or int", consentSubject, t)
	}
	if t := s.Fields[purp].Type; t != data.String {
		return nil, fmt.Errorf("column %s is %s; want string", consentPurpose, t)
	}
	status, at := s.Index(consentStatus), s.Index(consentAt)
	if status < 0 {
		status = s.Index("granted")
	}
	if status >= 0 {
		if t := s.Fields[status].Type; t != data.String && t != data.Bool {
			return nil, fmt.Errorf("column %s is %s; want string (granted or revoked) or bool", s.Fields[status].Name, t)
		}
	}
	if at >= 0 {
		if t := s.Fields[at].Type; t != data.String && t != data.Timestamp {
			return nil, fmt.Errorf("column %s is %s; want a timestamp", consentAt, t)
		}
	}
	states := map[string]consentState{}
	var n int64
	var key []byte
	for {
		b, err := src.Next(ctx)
		if errors.Is(err, data.ErrEndOfInput) {
			return states, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrJoinInput, err)
		}
		for r := 0; r < b.Len; r++ {
			n++
			if n > maxConsentRecords {
				return nil, fmt.Errorf("more than %d consent records: they are held in memory; keep one source per purpose, or fewer records", maxConsentRecords)
			}
			where := fmt.Sprintf("record %d", n)
			if b.Pos != nil {
				where = fmt.Sprintf("line %d", b.Pos[r])
			}
			pc := &b.Cols[purp]
			if pc.IsNull(r) || strings.TrimSpace(pc.Strings[r]) != purpose {
				continue
			}
			sc := &b.Cols[subj]
			if sc.IsNull(r) {
				continue // grants or revokes nobody
			}
			granted := true
			if status >= 0 {
				g, err := consentGranted(&b.Cols[status], r)
				if err != nil {
					return nil, fmt.Errorf("%s: %s", where, err.Error())
				}
				granted = g
			}
			var when time.Time
			if at >= 0 && !b.Cols[at].IsNull(r) {
				c := &b.Cols[at]
				if c.Type == data.Timestamp {
					when = c.Times[r]
				} else if when, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(c.Strings[r])); err != nil {
					return nil, fmt.Errorf("%s: column %s: %q is not an RFC 3339 timestamp", where, consentAt, c.Strings[r])
				}
				if when.After(now) {
					continue // not yet in force
				}
			}
			key = subjectKey(key[:0], sc, r)
			prev, seen := states[string(key)]
			if seen && when.Before(prev.at) {
				continue
			}
			states[string(key)] = consentState{granted: granted, at: when}
		}
	}
}

func consentGranted(c *data.Column, r int) (bool, error) {
	if c.IsNull(r) {
		return false, fmt.Errorf("column %s: empty; want granted or revoked", consentStatus)
	}
	if c.Type == data.Bool {
		return c.Bools[r], nil
	}
	switch strings.ToLower(strings.TrimSpace(c.Strings[r])) {
	case "granted":
		return true, nil
	case "revoked":
		return false, nil
	}
	// The value is a status word, not personal data; still, show little.
	return false, fmt.Errorf("column %s: %s is neither granted nor revoked", consentStatus, quality.Mask(c.Strings[r]))
}

// subjectKey renders a subject id as the key both sides share: an int as
// its decimal digits, a string trimmed of surrounding spaces.
func subjectKey(dst []byte, c *data.Column, r int) []byte {
	if c.Type == data.Int {
		return fmt.Appendf(dst, "%d", c.Ints[r])
	}
	return append(dst, strings.TrimSpace(c.Strings[r])...)
}

func (o *consent) schema() *data.Schema { return o.out }

func (o *consent) apply(_ context.Context, c *Chain, _ data.Quarantine) (filtered, rejected int64, err error) {
	b := c.cur.b
	col := &b.Cols[o.col]
	o.keep = o.keep[:0]
	for r := 0; r < b.Len; r++ {
		if !col.IsNull(r) {
			o.key = subjectKey(o.key[:0], col, r)
			if o.granted[string(o.key)] {
				o.keep = append(o.keep, int32(r))
				continue
			}
		}
		filtered++
	}
	o.checked += int64(b.Len)
	o.filtered += filtered
	c.keepRows(o.keep, &o.buf)
	return filtered, 0, nil
}

// result reports what the step filtered, as a check result.
func (o *consent) result() quality.Result {
	r := quality.Result{
		Name: "consent." + o.purpose, Kind: "consent", Column: o.subject, Severity: "filter",
		Checked: o.checked, Failing: o.filtered, Mostly: 1, Passed: true,
		Detail: fmt.Sprintf("%d of %d records without consent to %s filtered out", o.filtered, o.checked, o.purpose),
	}
	if o.checked > 0 {
		r.FailingPct = 100 * float64(o.filtered) / float64(o.checked)
	}
	return r
}
