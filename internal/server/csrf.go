package server

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// HeaderCSRF is the request header carrying the CSRF token (fetch calls);
// HTML forms send it in the field FormFieldCSRF instead.
const (
	HeaderCSRF    = "X-CSRF-Token"
	FormFieldCSRF = "csrf_token"
)

// csrfKeyLen is the HMAC key length.
const csrfKeyLen = 32

// csrfLabel separates CSRF tokens from any other use of the key.
const csrfLabel = "sluice/csrf/v1\x00"

var (
	// ErrCSRFKey is returned by NewCSRF for a key shorter than 32 bytes.
	ErrCSRFKey = errors.New("CSRF key must be at least 32 bytes")

	errNoAccountLimiter = errors.New("CheckAccount called outside a rate-limited route")
)

// CSRF protects cookie-authenticated requests against cross-site request
// forgery with a synchronizer token bound to the session: the token is an
// HMAC of the session cookie's value, so it is worthless with any other
// session, needs no storage, and reveals nothing about the session. It is
// backed by the browser's own signals: Sec-Fetch-Site and Origin must say
// the request came from this site.
//
// The UI gets the token with TokenFor (rendered into a <meta> tag or a
// hidden form field) or, after login, from the login response, and sends
// it back in the X-CSRF-Token header or the csrf_token form field.
type CSRF struct {
	key []byte
}

// NewCSRF returns a CSRF guard keyed with key (at least 32 bytes; share it
// between servers behind one address so their tokens agree), or with a
// fresh random key when key is nil: tokens then change on restart, and the
// UI fetches a new one with each page.
func NewCSRF(key []byte) (*CSRF, error) {
	if key == nil {
		key = make([]byte, csrfKeyLen)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generating CSRF key: %w", err)
		}
	}
	if len(key) < csrfKeyLen {
		return nil, ErrCSRFKey
	}
	return &CSRF{key: append([]byte(nil), key...)}, nil
}

// Token returns the CSRF token for the session whose cookie value is
// session.
func (c *CSRF) Token(session string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(csrfLabel))
	m.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TokenFor returns the token for the session cookie the request carries,
// or "" when it carries none.
func (c *CSRF) TokenFor(r *http.Request) string {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return ""
	}
	return c.Token(ck.Value)
}

// safeMethod reports methods that must not change state, so need no check.
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// Protect checks every unsafe request (POST, PUT, PATCH, DELETE, ...):
//   - Sec-Fetch-Site, when sent, must be same-origin or none;
//   - Origin, when sent, must be this server's own origin;
//   - a request carrying the session cookie must carry the session's token
//     in X-CSRF-Token or the csrf_token form field.
//
// A request without the session cookie (an API client with a bearer token,
// a login form) carries no ambient authority, so only the first two
// checks apply to it. Failures are forbidden errors.
func (c *CSRF) Protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if safeMethod(r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		if err := c.check(r); err != nil {
			WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (c *CSRF) check(r *http.Request) error {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return &Error{Code: CodeForbidden, Message: "cross-site request refused", Err: fmt.Errorf("Sec-Fetch-Site %q", site)}
	}
	// Under Referrer-Policy: no-referrer (set on every response) a
	// browser sends "Origin: null" with a form post even to its own site;
	// Sec-Fetch-Site, which pages cannot set, then says whether it is.
	origin := r.Header.Get("Origin")
	if origin == "null" && r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		origin = ""
	}
	if origin != "" && !sameOrigin(r, origin) {
		return &Error{Code: CodeForbidden, Message: "cross-origin request refused", Err: fmt.Errorf("Origin %q", origin)}
	}
	want := c.TokenFor(r)
	if want == "" {
		return nil
	}
	got := r.Header.Get(HeaderCSRF)
	if got == "" {
		got = r.PostFormValue(FormFieldCSRF)
	}
	if got == "" || !hmac.Equal([]byte(got), []byte(want)) {
		return &Error{Code: CodeForbidden, Message: "missing or invalid CSRF token"}
	}
	return nil
}

// sameOrigin reports whether origin is the origin the request was sent to.
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && u.Host == r.Host && u.Path == "" && u.User == nil
}
