package secrets

import (
	"context"
	"fmt"
	"log/slog"
)

// Handler wraps h so that every record reaches it redacted: the message,
// every attribute key and value, inside groups too. Put it at the root of
// the logger once and no code path can forget to redact.
//
// Strings are redacted as they are. Values that the inner handler would
// render itself in a way this wrapper cannot predict (errors, fmt.Stringers,
// []byte, structs, maps, anything of kind Any) are rendered to a string here
// (err.Error(), String(), the bytes as text, or fmt's %+v) and redacted; the
// inner handler gets that string. Numbers, booleans, times and durations are
// kept as they are unless their text contains a registered value, in which
// case they become Redacted. LogValuers are resolved first.
//
// Attributes bound with WithAttrs are redacted when bound, so a value must be
// registered with the Redactor before it is bound to a logger.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	return &redactHandler{r: r, inner: h}
}

type redactHandler struct {
	r     *Redactor
	inner slog.Handler
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.r.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.r.attr(a)
	}
	return &redactHandler{r: h.r, inner: h.inner.WithAttrs(red)}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{r: h.r, inner: h.inner.WithGroup(h.r.String(name))}
}

// attr returns a redacted copy of a.
func (r *Redactor) attr(a slog.Attr) slog.Attr {
	return slog.Attr{Key: r.String(a.Key), Value: r.value(a.Value)}
}

func (r *Redactor) value(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(r.String(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		red := make([]slog.Attr, len(attrs))
		for i, a := range attrs {
			red[i] = r.attr(a)
		}
		return slog.GroupValue(red...)
	case slog.KindAny:
		return slog.StringValue(r.String(renderAny(v.Any())))
	default:
		// Int64, Uint64, Float64, Bool, Duration, Time: a numeric PIN is
		// still a secret, so check the text form too.
		s := v.String()
		if red := r.String(s); red != s {
			return slog.StringValue(red)
		}
		return v
	}
}

// renderAny is the text of a value of kind Any, as close as possible to what
// a handler would print.
func renderAny(x any) string {
	switch t := x.(type) {
	case nil:
		return "<nil>"
	case error, fmt.Stringer:
		// fmt recovers from a panicking method (a nil receiver, say).
		return fmt.Sprint(t)
	case []byte:
		return string(t)
	default:
		return fmt.Sprintf("%+v", x)
	}
}
