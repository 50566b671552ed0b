package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidEvent: an event cannot be recorded as given (a required field
// is empty, a value is not valid UTF-8, an outcome or source is unknown, a
// details key is malformed). Nothing was written.
var ErrInvalidEvent = errors.New("invalid audit event")

// The canonical encoding of an event, which is what is hashed (docs/audit.md
// states it for third parties):
//
//   - a JSON object with exactly the keys action, actor, address, details,
//     outcome, reason, request_id, resource, source, time, in that order
//     (ascending byte order), each present even when empty;
//   - every value a JSON string except details, an object of string values
//     whose keys are also in ascending byte order ({} when empty);
//   - no whitespace between tokens;
//   - strings as UTF-8, escaping only '"' as \", '\' as \\, and the control
//     characters U+0000 to U+001F: \b \t \n \f \r for those five and
//     \u00XX (lowercase hex) for the rest; nothing else is escaped;
//   - time in UTC as RFC 3339 with up to nine fractional digits, trailing
//     zeros (and a bare '.') removed: Go's time.RFC3339Nano.
//
// This is what Python's json.dumps(event, sort_keys=True,
// separators=(",", ":"), ensure_ascii=False) produces, and the RFC 8785
// (JCS) form of such an object.

// wireEvent is the JSON shape of an event, for decoding; Canonical does the
// encoding.
type wireEvent struct {
	Action    string            `json:"action"`
	Actor     string            `json:"actor"`
	Address   string            `json:"address"`
	Details   map[string]string `json:"details"`
	Outcome   Outcome           `json:"outcome"`
	Reason    string            `json:"reason"`
	RequestID string            `json:"request_id"`
	Resource  string            `json:"resource"`
	Source    Source            `json:"source"`
	Time      string            `json:"time"`
}

// Validate reports whether ev can be recorded: actor, action, outcome and
// source are required, outcome and source must be known values, every
// string valid UTF-8, details keys lowercase words ([a-z][a-z0-9_.]*), and
// the time set. Errors wrap ErrInvalidEvent.
func (ev Event) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidEvent, fmt.Sprintf(format, args...))
	}
	switch {
	case ev.Actor == "":
		return bad("empty actor")
	case ev.Action == "":
		return bad("empty action")
	case ev.Time.IsZero():
		return bad("zero time")
	}
	switch ev.Outcome {
	case OutcomeSuccess, OutcomeDenied, OutcomeFailure:
	default:
		return bad("outcome %q: want %q, %q or %q", ev.Outcome, OutcomeSuccess, OutcomeDenied, OutcomeFailure)
	}
	switch ev.Source {
	case SourceCLI, SourceAPI, SourceEngine:
	default:
		return bad("source %q: want %q, %q or %q", ev.Source, SourceCLI, SourceAPI, SourceEngine)
	}
	for name, s := range map[string]string{
		"actor": ev.Actor, "action": ev.Action, "resource": ev.Resource, "reason": ev.Reason,
		"address": ev.Address, "request_id": ev.RequestID,
	} {
		if !utf8.ValidString(s) {
			return bad("%s is not valid UTF-8", name)
		}
	}
	for k, v := range ev.Details {
		if !validDetailKey(k) {
			return bad("details key %q: want [a-z][a-z0-9_.]*", k)
		}
		if !utf8.ValidString(v) {
			return bad("details %q is not valid UTF-8", k)
		}
	}
	return nil
}

func validDetailKey(k string) bool {
	if k == "" || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Canonical returns the canonical JSON encoding of ev, the bytes that are
// hashed. ev must be valid (see Validate).
func Canonical(ev Event) ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(256)
	field := func(first bool, k, v string) {
		if !first {
			b.WriteByte(',')
		}
		writeString(&b, k)
		b.WriteByte(':')
		writeString(&b, v)
	}
	b.WriteByte('{')
	field(true, "action", ev.Action)
	field(false, "actor", ev.Actor)
	field(false, "address", ev.Address)
	b.WriteString(`,"details":{`)
	keys := make([]string, 0, len(ev.Details))
	for k := range ev.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		field(i == 0, k, ev.Details[k])
	}
	b.WriteByte('}')
	field(false, "outcome", string(ev.Outcome))
	field(false, "reason", ev.Reason)
	field(false, "request_id", ev.RequestID)
	field(false, "resource", ev.Resource)
	field(false, "source", string(ev.Source))
	field(false, "time", ev.Time.UTC().Format(time.RFC3339Nano))
	b.WriteByte('}')
	return b.Bytes(), nil
}

const hexDigits = "0123456789abcdef"

// writeString writes s as a JSON string with the minimal escaping the
// canonical encoding prescribes. s is valid UTF-8 (Validate checked).
func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// ParseCanonical decodes the canonical encoding of an event and checks
// that it is canonical: re-encoding the decoded event gives the same bytes.
func ParseCanonical(b []byte) (Event, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireEvent
	if err := dec.Decode(&w); err != nil {
		return Event{}, fmt.Errorf("decoding event: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Event{}, fmt.Errorf("decoding event: time: %w", err)
	}
	ev := Event{
		Time: t.UTC(), Actor: w.Actor, Action: w.Action, Resource: w.Resource, Outcome: w.Outcome,
		Reason: w.Reason, Source: w.Source, Address: w.Address, RequestID: w.RequestID, Details: w.Details,
	}
	again, err := Canonical(ev)
	if err != nil {
		return Event{}, fmt.Errorf("decoding event: %w", err)
	}
	if !bytes.Equal(again, b) {
		return Event{}, errors.New("decoding event: not in canonical form")
	}
	return ev, nil
}

// actorName is the name part of a "kind:name" actor, for exports that
// want a user name.
func actorName(actor string) string {
	if _, name, ok := strings.Cut(actor, ":"); ok {
		return name
	}
	return actor
}
