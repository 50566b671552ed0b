package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"

	"github.com/sluicehq/sluice/internal/clock"
)

// Log attribute keys.
const (
	keyRequestID = "request_id"
	keyMethod    = "method"
	keyPath      = "path"
	keyStatus    = "status"
	keyBytes     = "bytes"
	keyDuration  = "duration_ms"
	keyRemote    = "remote_ip"
	keyCode      = "code"
	keyError     = "error"
	keyPanic     = "panic"
	keyStack     = "stack"
)

// HeaderRequestID carries the request id in both directions.
const HeaderRequestID = "X-Request-Id"

// maxRequestIDLen bounds an id a client supplies.
const maxRequestIDLen = 64

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxLogger
	ctxAccountLimiter
)

// RequestID returns the id of the request ctx belongs to ("" outside one).
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(ctxRequestID).(string)
	return s
}

// discard is the logger for contexts that carry none.
var discard = slog.New(slog.DiscardHandler)

// Logger returns the request's logger: the server's logger with the request
// id on every line. Outside a request it discards.
func Logger(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxLogger).(*slog.Logger); ok {
		return l
	}
	return discard
}

// Middleware wraps a handler.
type Middleware func(http.Handler) http.Handler

// Chain applies mws so that the first is the outermost.
func Chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// WithRequestID gives every request an id: the client's X-Request-Id when
// it is a short token of safe characters (so it cannot forge log lines),
// else a random one. The id is echoed in the response header, put on the
// request's logger and in every error body.
func WithRequestID(logger *slog.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(HeaderRequestID)
			if !validRequestID(id) {
				id = newRequestID()
			}
			w.Header().Set(HeaderRequestID, id)
			ctx := context.WithValue(r.Context(), ctxRequestID, id)
			ctx = context.WithValue(ctx, ctxLogger, logger.With(slog.String(keyRequestID, id)))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// WithAccessLog writes one structured line per request through the
// request's logger (so the redactor and the request id apply). The query
// string is left out: it may carry tokens.
func WithAccessLog(clk clock.Clock) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := clk.Now()
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				status := sw.status
				if status == 0 {
					status = http.StatusOK
				}
				Logger(r.Context()).LogAttrs(r.Context(), slog.LevelInfo, "http request",
					slog.String(keyMethod, r.Method),
					slog.String(keyPath, r.URL.Path),
					slog.Int(keyStatus, status),
					slog.Int64(keyBytes, sw.bytes),
					slog.Int64(keyDuration, clk.Now().Sub(start).Milliseconds()),
					slog.String(keyRemote, ClientIP(r)),
				)
			}()
			next.ServeHTTP(sw, r)
		})
	}
}

// ContentSecurityPolicy allows only the server's own scripts, styles and
// images (plus data: images), no inline script, no plugins, no framing.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// hstsValue asks browsers to use HTTPS only for a year.
const hstsValue = "max-age=31536000"

// WithSecurityHeaders sets the browser hardening headers on every response,
// errors and panics included, before the handler runs. HSTS is only sent
// over TLS, where it means something.
func WithSecurityHeaders(tls bool) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", ContentSecurityPolicy)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			if tls {
				h.Set("Strict-Transport-Security", hstsValue)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// WithRecover turns a panic in a handler into a 500 internal error; the
// panic value and stack go to the log, never to the client.
// http.ErrAbortHandler is passed on: it is how a handler aborts a response
// on purpose.
func WithRecover() Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				Logger(r.Context()).Error("handler panicked",
					slog.String(keyPanic, fmt.Sprint(v)), slog.String(keyStack, string(debug.Stack())))
				WriteError(w, r, &Error{Code: CodeInternal})
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// DefaultMaxBodyBytes is the default request body limit: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// WithBodyLimit refuses bodies over n bytes: at once with 413 when the
// declared Content-Length is over, else by making reads past n fail with
// *http.MaxBytesError, which WriteError and DecodeJSON turn into 413.
func WithBodyLimit(n int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				WriteError(w, r, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("request body over the %d-byte limit", n)})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}

// ClientIP is the address the request came from. X-Forwarded-For is
// ignored: sluice does not know which proxies to trust, and a header any
// client can set must not choose its own rate-limit bucket.
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
