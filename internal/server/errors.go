package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Code is an application error code: the one vocabulary every API response
// uses for failure, mapped to an HTTP status in exactly one place (Status).
type Code string

// The error codes.
const (
	CodeInvalid          Code = "invalid"
	CodeNotFound         Code = "not_found"
	CodeConflict         Code = "conflict"
	CodeUnauthenticated  Code = "unauthenticated"
	CodeForbidden        Code = "forbidden"
	CodeRateLimited      Code = "rate_limited"
	CodeTooLarge         Code = "too_large"
	CodeMethodNotAllowed Code = "method_not_allowed"
	CodePrecondition     Code = "precondition_failed"
	CodeInternal         Code = "internal"
)

// statuses is the code → HTTP status table.
var statuses = map[Code]int{
	CodeInvalid:          http.StatusBadRequest,
	CodeNotFound:         http.StatusNotFound,
	CodeConflict:         http.StatusConflict,
	CodeUnauthenticated:  http.StatusUnauthorized,
	CodeForbidden:        http.StatusForbidden,
	CodeRateLimited:      http.StatusTooManyRequests,
	CodeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodePrecondition:     http.StatusPreconditionFailed,
	CodeInternal:         http.StatusInternalServerError,
}

// Status returns the HTTP status of code; an unknown code is internal.
func Status(c Code) int {
	if s, ok := statuses[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Error is an error a handler returns to the caller: Code and Message are
// shown, Err (the internal cause) is only logged. Message must be safe to
// show to whoever sent the request.
type Error struct {
	Code    Code
	Message string
	// Err is the internal cause, logged with the request id, never sent.
	Err error
	// RetryAfter, when positive, is sent as the Retry-After header (whole
	// seconds, rounded up).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Message, e.Err.Error())
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a message safe to show.
func Errorf(code Code, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// errorBody is the one JSON error shape of the whole API.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      Code   `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// safeMessages are shown when a handler gives a code without a message.
var safeMessages = map[Code]string{
	CodeInvalid:          "the request is not valid",
	CodeNotFound:         "not found",
	CodeConflict:         "the request conflicts with the current state",
	CodeUnauthenticated:  "authentication required",
	CodeForbidden:        "not allowed",
	CodeRateLimited:      "too many requests; retry later",
	CodeTooLarge:         "request body too large",
	CodeMethodNotAllowed: "method not allowed",
	CodePrecondition:     "the resource changed since it was read; read it again",
	CodeInternal:         "internal error",
}

// WriteError sends err in the API's JSON error shape. An *Error is shown
// as it is (its cause logged); a request body over the limit becomes
// too_large; anything else becomes internal, with the cause logged and
// only the request id shown, so the caller can quote it to an operator.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &e):
	case errors.As(err, &tooBig):
		e = &Error{Code: CodeTooLarge, Err: err}
	default:
		e = &Error{Code: CodeInternal, Err: err}
	}
	msg := e.Message
	if msg == "" || e.Code == CodeInternal {
		msg = safeMessages[e.Code]
	}
	if msg == "" {
		msg = safeMessages[CodeInternal]
	}
	status := Status(e.Code)
	log := Logger(r.Context())
	if e.Err != nil || status >= 500 {
		lvl := slog.LevelInfo
		if status >= 500 {
			lvl = slog.LevelError
		}
		attrs := []any{slog.String(keyCode, string(e.Code)), slog.Int(keyStatus, status)}
		if e.Err != nil {
			attrs = append(attrs, slog.String(keyError, e.Err.Error()))
		}
		log.Log(r.Context(), lvl, "request failed", attrs...)
	}
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: e.Code, Message: msg, RequestID: RequestID(r.Context())}})
}

// writeJSON sends v with status. Encoding errors cannot be reported to the
// client once the header is out, so they are dropped.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteJSON sends v as a JSON response with status, for API handlers.
func WriteJSON(w http.ResponseWriter, status int, v any) { writeJSON(w, status, v) }

// DecodeJSON reads a JSON request body into v, refusing unknown fields and
// trailing data. Errors are *Error values ready for WriteError: invalid for
// malformed input (the message names what is wrong), too_large for a body
// over the limit. An empty body (nothing but white space) is invalid
// with an error that wraps io.EOF, so that a caller for whom the body
// is optional can tell it apart.
func DecodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &Error{Code: CodeTooLarge, Err: err}
		}
		if errors.Is(err, io.EOF) {
			return &Error{Code: CodeInvalid, Message: "request body: empty; want a JSON object", Err: err}
		}
		return &Error{Code: CodeInvalid, Message: "request body: " + err.Error(), Err: err}
	}
	if dec.More() {
		return Errorf(CodeInvalid, "request body: unexpected data after the JSON value")
	}
	return nil
}
