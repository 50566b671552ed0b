package server

import (
	"net/http"
	"strings"
	"time"
)

// CookiePrefix is put on every cookie sluice sets. Browsers accept a
// __Host- cookie only when it is Secure, has Path=/ and no Domain, so it
// can be neither set by a sibling subdomain nor sent over plain HTTP.
const CookiePrefix = "__Host-"

// SessionCookie is the name of the session cookie (the prefix included).
const SessionCookie = CookiePrefix + "sluice_session"

// CookieName returns name with the __Host- prefix, added if missing.
func CookieName(name string) string {
	if strings.HasPrefix(name, CookiePrefix) {
		return name
	}
	return CookiePrefix + name
}

// SetCookie sets a hardened cookie: __Host- prefixed, Secure, HttpOnly,
// Path=/, no Domain, SameSite=Strict when strict else Lax. maxAge <= 0
// makes a session cookie (gone when the browser closes).
func SetCookie(w http.ResponseWriter, name, value string, maxAge time.Duration, strict bool) {
	c := &http.Cookie{
		Name:     CookieName(name),
		Value:    value,
		Path:     "/",
		Secure:   true,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if strict {
		c.SameSite = http.SameSiteStrictMode
	}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

// ClearCookie tells the browser to drop the cookie name.
func ClearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName(name), Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}
