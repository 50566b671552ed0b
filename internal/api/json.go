package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/server"
)

// Paging defaults: a list returns DefaultLimit items unless ?limit= asks
// for another number from 1 to MaxLimit.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Page is the one shape of every list response: the items, and the cursor
// that fetches the next page (?cursor=), absent on the last page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// NewPage returns a page of items, never with a null list.
func NewPage[T any](items []T, next string) Page[T] {
	if items == nil {
		items = []T{}
	}
	return Page[T]{Items: items, NextCursor: next}
}

// Paging reads ?limit= and ?cursor= and decodes the cursor into into (the
// keyset of the last item of the previous page; left as it is without a
// cursor). Bad values are invalid errors naming the parameter.
func Paging(r *http.Request, into any) (limit int, err error) {
	q := r.URL.Query()
	limit = DefaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return 0, server.Errorf(server.CodeInvalid, "query parameter limit: want a number from 1 to %d, got %q", MaxLimit, s)
		}
		limit = n
	}
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || json.Unmarshal(b, into) != nil {
			return 0, server.Errorf(server.CodeInvalid, "query parameter cursor: not a cursor this API returned")
		}
	}
	return limit, nil
}

// Cursor encodes a keyset as an opaque cursor for Page.NextCursor.
func Cursor(keyset any) string {
	b, err := json.Marshal(keyset)
	if err != nil {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// WriteJSON sends v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	server.WriteJSON(w, status, v)
	return nil
}

// Decode reads a JSON request body into v, refusing unknown fields.
func Decode(r *http.Request, v any) error { return server.DecodeJSON(r, v) }

// ETag formats a resource version as a strong entity tag.
func ETag(version string) string { return `"` + version + `"` }

// SetETag sends the resource version in the ETag header, for a client to
// send back in If-Match when it changes the resource.
func SetETag(w http.ResponseWriter, version string) { w.Header().Set("ETag", ETag(version)) }

// IfMatch checks a conditional change: when the request carries If-Match,
// it must name the current version (or be *), else the change is refused
// with precondition_failed, so two editors cannot overwrite each other
// unknowingly. Without If-Match the change goes ahead.
func IfMatch(r *http.Request, current string) error {
	h := r.Header.Get("If-Match")
	if h == "" || strings.TrimSpace(h) == "*" {
		return nil
	}
	for _, t := range strings.Split(h, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == ETag(current) {
			return nil
		}
	}
	return &server.Error{Code: server.CodePrecondition, Message: "If-Match does not name the current version " + ETag(current) + "; read the resource again"}
}
