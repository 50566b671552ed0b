package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/api"
	"github.com/sluicehq/sluice/internal/app/apptest"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/monitor"
	"github.com/sluicehq/sluice/internal/server"
)

const testPassword = apptest.Password

// totpCode is the authenticator's code for secret at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	return apptest.TOTPCode(t, secret, at)
}

// enrolledUser creates a user with testPassword and a confirmed TOTP
// enrolment, and returns the enrolment. The enrolment is confirmed with
// the previous step's code, so the current step's code is still unused.
func (e *env) enrolledUser(name string) auth.Enrollment {
	e.t.Helper()
	ctx := e.t.Context()
	u, err := e.app.Auth.CreateUser(ctx, auth.NewUser{Actor: "test", Username: name, Password: testPassword})
	if err != nil {
		e.t.Fatal(err)
	}
	en, err := e.app.Auth.EnrollTOTP(ctx, u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.app.Auth.ConfirmTOTP(ctx, u.ID, totpCode(e.t, en.Secret, time.Now().Add(-30*time.Second))); err != nil {
		e.t.Fatal(err)
	}
	return en
}

// authFailures is sluice_auth_failures_total{reason}.
func (e *env) authFailures(reason string) float64 {
	e.t.Helper()
	fams, err := e.app.Metrics.Registry().Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != monitor.FamilyAuthFailures {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// errMessage returns the message of a JSON error body.
func errMessage(r response) string {
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Message
}

func TestLoginBearerWithTOTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	en := e.enrolledUser("carol")
	anon := e.anonymous()
	login := api.Prefix + "/auth/login"

	r := anon.do(http.MethodPost, login, api.LoginRequest{Username: "carol", Password: testPassword, Bearer: true})
	if r.Status != http.StatusUnauthorized || r.errorCode() != "unauthenticated" || !strings.Contains(string(r.Body), "TOTP code is required") {
		t.Fatalf("without a code: %d %s, want 401 saying a TOTP code is required", r.Status, r.Body)
	}
	before := e.authFailures("bad_totp")
	r = anon.do(http.MethodPost, login, api.LoginRequest{Username: "carol", Password: testPassword, TOTPCode: "000000", Bearer: true})
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("wrong code: %d %s, want 401", r.Status, r.Body)
	}
	if got := e.authFailures("bad_totp"); got != before+1 {
		t.Errorf("bad_totp failures = %v, want %v", got, before+1)
	}

	r = anon.do(http.MethodPost, login, api.LoginRequest{Username: "carol", Password: testPassword,
		TOTPCode: totpCode(t, en.Secret, time.Now()), Bearer: true})
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	var lr api.LoginResponse
	r.decode(t, &lr)
	if lr.Secret == "" || lr.CSRFToken != "" || !lr.User.MFA || lr.User.Username != "carol" || lr.SessionID == "" {
		t.Fatalf("login response = %+v, want a bearer secret and an MFA session", lr)
	}
	if ck := r.Header.Get("Set-Cookie"); ck != "" {
		t.Errorf("bearer login set a cookie: %s", ck)
	}
	carol := &client{e: e, bearer: lr.Secret}
	var me api.Me
	carol.do(http.MethodGet, api.Prefix+"/me", nil).decode(t, &me)
	if !me.MFA || me.Method != api.MethodSession {
		t.Errorf("me = %+v, want an MFA session", me)
	}

	// A recovery code also signs in, once.
	rc := en.RecoveryCodes[0]
	if r := anon.do(http.MethodPost, login, api.LoginRequest{Username: "carol", Password: testPassword, RecoveryCode: rc, Bearer: true}); r.Status != http.StatusOK {
		t.Errorf("recovery code: %d %s", r.Status, r.Body)
	}
	if r := anon.do(http.MethodPost, login, api.LoginRequest{Username: "carol", Password: testPassword, RecoveryCode: rc, Bearer: true}); r.Status != http.StatusUnauthorized {
		t.Errorf("recovery code used twice: %d %s, want 401", r.Status, r.Body)
	}

	// The session is listed as the current one, and logout ends it.
	var sp api.Page[api.SessionView]
	carol.do(http.MethodGet, api.Prefix+"/sessions", nil).decode(t, &sp)
	if !slices.ContainsFunc(sp.Items, func(s api.SessionView) bool { return s.ID == lr.SessionID && s.Current && s.MFA }) {
		t.Errorf("sessions = %+v, want the current MFA session %s", sp.Items, lr.SessionID)
	}
	if r := carol.do(http.MethodPost, api.Prefix+"/auth/logout", nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r := carol.do(http.MethodGet, api.Prefix+"/me", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("after logout: %d %s, want 401", r.Status, r.Body)
	}
}

func TestLoginCookieAndCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	en := e.enrolledUser("dana")
	r := e.anonymous().do(http.MethodPost, api.Prefix+"/auth/login", api.LoginRequest{Username: "dana", Password: testPassword,
		TOTPCode: totpCode(t, en.Secret, time.Now())})
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	var lr api.LoginResponse
	r.decode(t, &lr)
	if lr.Secret != "" || lr.CSRFToken == "" {
		t.Fatalf("cookie login response = %+v, want a CSRF token and no secret", lr)
	}
	resp := http.Response{Header: r.Header}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == server.SessionCookie {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("no %s cookie in %q", server.SessionCookie, r.Header.Values("Set-Cookie"))
	}
	if !strings.HasPrefix(session.Name, "__Host-") || !session.Secure || !session.HttpOnly ||
		session.SameSite != http.SameSiteStrictMode || session.Path != "/" || session.Domain != "" {
		t.Errorf("session cookie = %+v, want __Host-, Secure, HttpOnly, SameSite=Strict, Path=/", session)
	}
	browser := &client{e: e, header: http.Header{"Cookie": {session.Name + "=" + session.Value}}}
	var me api.Me
	browser.do(http.MethodGet, api.Prefix+"/me", nil).decode(t, &me)
	if me.Username != "dana" || me.CSRFToken != lr.CSRFToken {
		t.Errorf("me with the cookie = %+v, want dana with the login's CSRF token", me)
	}
	// An unsafe request with the cookie but without the token is
	// refused by the server's CSRF guard before the API sees it.
	if r := browser.raw().do(http.MethodPost, api.Prefix+"/auth/logout", nil); r.Status != http.StatusForbidden {
		t.Fatalf("logout without X-CSRF-Token: %d %s, want 403", r.Status, r.Body)
	}
	withToken := &client{e: e, header: http.Header{"Cookie": {session.Name + "=" + session.Value}, "X-Csrf-Token": {lr.CSRFToken}}}
	r = withToken.do(http.MethodPost, api.Prefix+"/auth/logout", nil)
	if r.Status != http.StatusNoContent {
		t.Fatalf("logout with X-CSRF-Token: %d %s, want 204", r.Status, r.Body)
	}
	if !strings.Contains(r.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout did not clear the cookie: %q", r.Header.Get("Set-Cookie"))
	}
	if r := browser.do(http.MethodGet, api.Prefix+"/me", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("cookie after logout: %d, want 401", r.Status)
	}
}

func TestLoginFailuresAndRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("erin", "", "")
	anon := e.anonymous()
	login := api.Prefix + "/auth/login"

	before := e.authFailures("bad_password")
	wrong := anon.do(http.MethodPost, login, api.LoginRequest{Username: "erin", Password: "not-the-password", Bearer: true})
	unknown := anon.do(http.MethodPost, login, api.LoginRequest{Username: "nobody-here", Password: "not-the-password", Bearer: true})
	for _, r := range []response{wrong, unknown} {
		if r.Status != http.StatusUnauthorized || r.errorCode() != "unauthenticated" {
			t.Fatalf("bad credentials: %d %s, want 401", r.Status, r.Body)
		}
	}
	if errMessage(wrong) != errMessage(unknown) {
		t.Errorf("a wrong password and an unknown user answer differently: %s vs %s", wrong.Body, unknown.Body)
	}
	if got := e.authFailures("bad_password"); got != before+2 {
		t.Errorf("bad_password failures = %v, want %v", got, before+2)
	}

	// The per-account limit (server.DefaultAccountRate) holds whatever
	// the password: the attempt after it is refused without checking.
	account := "target"
	var last response
	for i := 0; i <= server.DefaultAccountRate.N; i++ {
		last = anon.do(http.MethodPost, login, api.LoginRequest{Username: account, Password: "guess", Bearer: true})
		if i < server.DefaultAccountRate.N && last.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s, want 401", i+1, last.Status, last.Body)
		}
	}
	if last.Status != http.StatusTooManyRequests || last.errorCode() != "rate_limited" || last.Header.Get("Retry-After") == "" {
		t.Errorf("attempt %d: %d %s (Retry-After %q), want 429 with Retry-After", server.DefaultAccountRate.N+1,
			last.Status, last.Body, last.Header.Get("Retry-After"))
	}
	// Folding the case does not buy another allowance.
	if r := anon.do(http.MethodPost, login, api.LoginRequest{Username: "TARGET", Password: "guess", Bearer: true}); r.Status != http.StatusTooManyRequests {
		t.Errorf("same account in capitals: %d, want 429", r.Status)
	}
}

func TestMustChangePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sec := e.user("sec", "security-engineer", "")
	r := sec.do(http.MethodPost, api.Prefix+"/users", api.NewUserRequest{Username: "fred", DisplayName: "Fred"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create user: %d %s", r.Status, r.Body)
	}
	var cu api.CreatedUser
	r.decode(t, &cu)
	if len(cu.Password) < 20 || !cu.User.MustChangePassword {
		t.Fatalf("created = %+v, want a long initial password to be changed", cu)
	}
	anon := e.anonymous()
	r = anon.do(http.MethodPost, api.Prefix+"/auth/login", api.LoginRequest{Username: "fred", Password: cu.Password, Bearer: true})
	if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "/auth/password") {
		t.Fatalf("login with the initial password: %d %s, want 403 pointing to /auth/password", r.Status, r.Body)
	}
	r = anon.do(http.MethodPost, api.Prefix+"/auth/password", api.PasswordChange{Username: "fred", CurrentPassword: "wrong", NewPassword: testPassword})
	if r.Status != http.StatusUnauthorized {
		t.Errorf("change with a wrong current password: %d %s, want 401", r.Status, r.Body)
	}
	r = anon.do(http.MethodPost, api.Prefix+"/auth/password", api.PasswordChange{Username: "fred", CurrentPassword: cu.Password, NewPassword: "password"})
	if r.Status != http.StatusBadRequest {
		t.Errorf("change to a weak password: %d %s, want 400", r.Status, r.Body)
	}
	r = anon.do(http.MethodPost, api.Prefix+"/auth/password", api.PasswordChange{Username: "fred", CurrentPassword: cu.Password, NewPassword: testPassword})
	if r.Status != http.StatusNoContent {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	r = anon.do(http.MethodPost, api.Prefix+"/auth/login", api.LoginRequest{Username: "fred", Password: testPassword, Bearer: true})
	if r.Status != http.StatusOK {
		t.Fatalf("login with the new password: %d %s", r.Status, r.Body)
	}
	var lr api.LoginResponse
	r.decode(t, &lr)
	if lr.User.MFA {
		t.Errorf("a user without an authenticator got an MFA session")
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	de := e.user("dora", "data-engineer", "")
	tokens := api.Prefix + "/tokens"
	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)

	for _, tc := range []struct {
		scopes []string
		status int
	}{
		{[]string{"no.such"}, http.StatusBadRequest},
		{[]string{"user.manage"}, http.StatusBadRequest}, // privileged: never on a token
		{[]string{"run.control"}, http.StatusForbidden},  // not held by data-engineer
		{nil, http.StatusBadRequest},
	} {
		if r := de.raw().do(http.MethodPost, tokens, map[string]any{"name": "ci", "scopes": tc.scopes}); r.Status != tc.status {
			t.Errorf("scopes %v: %d %s, want %d", tc.scopes, r.Status, r.Body, tc.status)
		}
	}
	r := de.do(http.MethodPost, tokens, api.NewToken{Name: "ci", Scopes: []string{"pipeline.read"}, ExpiresAt: exp})
	if r.Status != http.StatusCreated {
		t.Fatalf("create token: %d %s", r.Status, r.Body)
	}
	var ct api.CreatedToken
	r.decode(t, &ct)
	if !strings.HasPrefix(ct.Secret, auth.TokenPrefix) || !ct.Token.ExpiresAt.Equal(exp) {
		t.Fatalf("created = %+v", ct)
	}
	tok := &client{e: e, bearer: ct.Secret}
	var me api.Me
	tok.do(http.MethodGet, api.Prefix+"/me", nil).decode(t, &me)
	if me.Method != api.MethodToken || !slices.Equal(me.Scopes, []string{"pipeline.read"}) {
		t.Errorf("me with the token = %+v", me)
	}
	// The token is narrowed to its scope: dora may list secrets, the
	// token may not; nor may it manage tokens.
	if r := de.do(http.MethodGet, api.Prefix+"/secrets", nil); r.Status != http.StatusOK {
		t.Errorf("dora lists secrets: %d %s", r.Status, r.Body)
	}
	if r := tok.do(http.MethodGet, api.Prefix+"/secrets", nil); r.Status != http.StatusForbidden {
		t.Errorf("token outside its scope: %d %s, want 403", r.Status, r.Body)
	}
	if r := tok.do(http.MethodPost, api.Prefix+"/auth/logout", nil); r.Status != http.StatusBadRequest {
		t.Errorf("logout with a token: %d %s, want 400", r.Status, r.Body)
	}
	if r := tok.do(http.MethodGet, tokens, nil); r.Status != http.StatusForbidden {
		t.Errorf("token lists tokens: %d %s, want 403", r.Status, r.Body)
	}
	var tp api.Page[api.TokenView]
	de.do(http.MethodGet, tokens, nil).decode(t, &tp)
	if len(tp.Items) != 1 || tp.Items[0].ID != ct.Token.ID || strings.Contains(string(de.do(http.MethodGet, tokens, nil).Body), ct.Secret) {
		t.Errorf("tokens = %+v, want the one token without its secret", tp.Items)
	}
	// Another user can neither revoke it nor learn it exists.
	other := e.user("otto", "viewer", "")
	if r := other.do(http.MethodDelete, tokens+"/"+ct.Token.ID, nil); r.Status != http.StatusForbidden {
		t.Errorf("another user revokes the token: %d %s, want 403", r.Status, r.Body)
	}
	if r := other.do(http.MethodDelete, tokens+"/tok_nosuch", nil); r.Status != http.StatusForbidden {
		t.Errorf("another user revokes an unknown token: %d %s, want 403", r.Status, r.Body)
	}
	if r := de.do(http.MethodDelete, tokens+"/"+ct.Token.ID, nil); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := tok.do(http.MethodGet, api.Prefix+"/me", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", r.Status)
	}
}

func TestRevokeSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gail := e.user("gail", "viewer", "")
	hank := e.user("hank", "viewer", "")
	sec := e.user("sec", "security-engineer", "")
	var sp api.Page[api.SessionView]
	hank.do(http.MethodGet, api.Prefix+"/sessions", nil).decode(t, &sp)
	if len(sp.Items) != 1 || !sp.Items[0].Current {
		t.Fatalf("hank's sessions = %+v", sp.Items)
	}
	hankSession := api.Prefix + "/sessions/" + sp.Items[0].ID
	if r := gail.do(http.MethodDelete, hankSession, nil); r.Status != http.StatusForbidden {
		t.Errorf("gail ends hank's session: %d %s, want 403", r.Status, r.Body)
	}
	if r := sec.do(http.MethodDelete, api.Prefix+"/sessions/ses_nosuch", nil); r.Status != http.StatusNotFound {
		t.Errorf("user.manage ends an unknown session: %d %s, want 404", r.Status, r.Body)
	}
	if r := sec.do(http.MethodDelete, hankSession, nil); r.Status != http.StatusNoContent {
		t.Fatalf("user.manage ends hank's session: %d %s", r.Status, r.Body)
	}
	if r := hank.do(http.MethodGet, api.Prefix+"/me", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("hank after revocation: %d, want 401", r.Status)
	}
	gail.do(http.MethodGet, api.Prefix+"/sessions", nil).decode(t, &sp)
	if r := gail.do(http.MethodDelete, api.Prefix+"/sessions/"+sp.Items[0].ID, nil); r.Status != http.StatusNoContent {
		t.Errorf("gail ends her own session: %d %s", r.Status, r.Body)
	}
}
