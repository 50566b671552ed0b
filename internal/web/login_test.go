package web_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// An account whose password an administrator set says so only once the
// second factor is proven: with the password alone, the answer is the
// same as for a wrong password, so it does not confirm the password.
func TestMustChangePasswordAfterSecondFactor(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret := e.user("mona", true, "")
	u, err := e.app.Auth.UserByName(t.Context(), "mona")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.app.Auth.SetPassword(t.Context(), "user:admin", u.ID, password, true); err != nil {
		t.Fatal(err)
	}
	const mustChange = "must choose a new password"
	b := e.browser()
	for _, form := range []url.Values{
		{"username": {"mona"}, "password": {password}},
		{"username": {"mona"}, "password": {password}, "code": {"000000"}},
		{"username": {"mona"}, "password": {"wrong-password"}},
	} {
		status, body := b.post("/login", form)
		if status != http.StatusUnauthorized || strings.Contains(body, mustChange) || !strings.Contains(html.UnescapeString(body), "Sign-in failed.") {
			t.Errorf("sign-in with %v: %d, want 401 with the one failure message and no word of the password", form, status)
		}
	}
	status, body := b.post("/login", url.Values{"username": {"mona"}, "password": {password}, "code": {totpCode(t, secret, time.Now())}})
	if status != http.StatusUnauthorized || !strings.Contains(body, mustChange) {
		t.Errorf("sign-in with password and code: %d, want 401 saying the password must be changed", status)
	}
	for _, c := range b.c.Jar.Cookies(mustURL(t, e.base)) {
		t.Errorf("cookie %s set for an account that must change its password", c.Name)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
