package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := t.Context()
	u := e.user(t, "ada")
	e.sink.reset()

	got, err := e.svc.Login(ctx, "ada", goodPassword)
	wantErr(t, err, nil)
	if got.ID != u.ID || !got.LastLoginAt.Equal(t0) {
		t.Errorf("Login = %+v", got)
	}
	_, err = e.svc.Login(ctx, "ada", goodPassword+"x")
	wantErr(t, err, ErrInvalidCredentials)
	_, err = e.svc.Login(ctx, "nobody", goodPassword)
	wantErr(t, err, ErrInvalidCredentials)
	want := []string{"auth.login success", "auth.login failure bad_password", "auth.login failure unknown_user"}
	if d := cmp.Diff(want, e.sink.summary()); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
	if ev := e.sink.events[2]; ev.Username != "nobody" || ev.UserID != "" || ev.Actor != "" {
		t.Errorf("unknown-user event = %+v", ev)
	}
}

// TestLockout walks the lockout policy with a fake clock: 5 failures lock
// for 1m, each further failure after a lockout doubles it up to 1h, attempts
// while locked are refused uncounted (even with the right password), and a
// success resets.
func TestLockout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := t.Context()
	e.user(t, "ada")
	bad := func() error { _, err := e.svc.Login(ctx, "ada", "wrong-password-xyz"); return err }
	good := func() error { _, err := e.svc.Login(ctx, "ada", goodPassword); return err }
	lockedFor := func(t *testing.T) time.Duration {
		t.Helper()
		u, err := e.st.GetUserByUsername(ctx, "ada")
		wantErr(t, err, nil)
		if u.LockedUntil.IsZero() {
			return 0
		}
		return u.LockedUntil.Sub(e.clock.Now())
	}

	t.Run("FourFailuresDoNotLock", func(t *testing.T) {
		for range 4 {
			wantErr(t, bad(), ErrInvalidCredentials)
		}
		if d := lockedFor(t); d != 0 {
			t.Fatalf("locked for %s after 4 failures", d)
		}
	})
	t.Run("FifthLocksForOneMinute", func(t *testing.T) {
		wantErr(t, bad(), ErrInvalidCredentials)
		if d := lockedFor(t); d != time.Minute {
			t.Fatalf("locked for %s, want 1m", d)
		}
	})
	t.Run("RightPasswordRefusedWhileLocked", func(t *testing.T) {
		wantErr(t, good(), ErrLocked)
		wantErr(t, bad(), ErrLocked)
		u, _ := e.st.GetUserByUsername(ctx, "ada")
		if u.FailedLogins != 5 {
			t.Fatalf("failures = %d, want 5 (attempts while locked are not counted)", u.FailedLogins)
		}
	})
	t.Run("BackoffDoubles", func(t *testing.T) {
		for _, want := range []time.Duration{2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
			32 * time.Minute, time.Hour, time.Hour} {
			e.clock.Set(e.clock.Now().Add(lockedFor(t)))
			wantErr(t, bad(), ErrInvalidCredentials)
			if d := lockedFor(t); d != want {
				t.Fatalf("locked for %s, want %s", d, want)
			}
		}
	})
	t.Run("SuccessResets", func(t *testing.T) {
		e.clock.Set(e.clock.Now().Add(time.Hour))
		wantErr(t, good(), nil)
		u, _ := e.st.GetUserByUsername(ctx, "ada")
		if u.FailedLogins != 0 || !u.LockedUntil.IsZero() {
			t.Fatalf("after success: failures %d, locked until %s", u.FailedLogins, u.LockedUntil)
		}
		wantErr(t, bad(), ErrInvalidCredentials)
		if d := lockedFor(t); d != 0 {
			t.Fatalf("one failure after a reset locked for %s", d)
		}
	})
	var locks int
	for _, s := range e.sink.summary() {
		if strings.HasPrefix(s, string(EventAccountLocked)) {
			locks++
		}
	}
	if locks != 8 {
		t.Errorf("%d lock events, want 8", locks)
	}
}

func TestLockoutDuration(t *testing.T) {
	t.Parallel()
	p := LockoutPolicy{Threshold: 3, Base: 10 * time.Second, Max: time.Minute}
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{0, 0}, {2, 0}, {3, 10 * time.Second}, {4, 20 * time.Second}, {5, 40 * time.Second}, {6, time.Minute}, {1000, time.Minute}} {
		if got := p.Duration(tc.failures); got != tc.want {
			t.Errorf("Duration(%d) = %s, want %s", tc.failures, got, tc.want)
		}
	}
}

// TestUnknownUserDoesTheSameWork: a login naming no account spends a
// password verification (or, the first time, the hash it verifies against)
// like a login naming one, so timing does not tell whether an account
// exists. Counted, not timed: wall times are noise on a loaded machine.
func TestUnknownUserDoesTheSameWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := t.Context()
	e.user(t, "ada")
	var verified int
	e.svc.verify = func(encoded, password string, want Params) (bool, bool, error) {
		verified++
		return verifyPassword(encoded, password, want)
	}
	for _, name := range []string{"ada", "nobody", "nobody", "ada"} {
		before := verified
		_, err := e.svc.Login(ctx, name, "wrong-password-xyz")
		wantErr(t, err, ErrInvalidCredentials)
		switch {
		case name == "nobody" && e.svc.dummyHash == "":
			t.Fatalf("login as %s: no dummy hash was made", name)
		case verified == before && !(name == "nobody" && before == 1):
			// The first unknown login makes the dummy hash instead of
			// verifying; every other login verifies once.
			t.Errorf("login as %s verified no password", name)
		}
	}
	if verified != 3 {
		t.Errorf("%d verifications for 4 logins (one of them made the dummy hash), want 3", verified)
	}
}

func TestRehashOnLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := t.Context()
	u := e.user(t, "ada") // hashed with testParams
	stronger := testParams
	stronger.Time = 2
	svc2, err := New(ctx, e.st, e.kr, Options{Events: e.sink, Clock: e.clock, Hash: stronger})
	wantErr(t, err, nil)
	_, err = svc2.Login(ctx, "ada", goodPassword)
	wantErr(t, err, nil)
	s, err := e.st.GetUser(ctx, u.ID)
	wantErr(t, err, nil)
	p, _, _, err := parseHash(s.PasswordHash)
	wantErr(t, err, nil)
	if p != stronger {
		t.Errorf("after login the hash has %+v, want %+v", p, stronger)
	}
	_, err = svc2.Login(ctx, "ada", goodPassword)
	wantErr(t, err, nil)
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := t.Context()
	u := e.user(t, "ada")
	s1, _, err := e.svc.NewSession(ctx, u.ID, MethodPassword, false)
	wantErr(t, err, nil)
	s2, _, err := e.svc.NewSession(ctx, u.ID, MethodPassword, true)
	wantErr(t, err, nil)
	const next = "copper-meadow-signal-97"

	wantErr(t, e.svc.ChangePassword(ctx, u.ID, "not-the-password", next), ErrInvalidCredentials)
	wantErr(t, e.svc.ChangePassword(ctx, u.ID, goodPassword, "short"), ErrWeakPassword)
	wantErr(t, e.svc.ChangePassword(ctx, u.ID, goodPassword, next), nil)
	for _, s := range []string{s1, s2} {
		_, _, err := e.svc.AuthenticateSession(ctx, s)
		wantErr(t, err, ErrRevoked)
	}
	_, err = e.svc.Login(ctx, "ada", goodPassword)
	wantErr(t, err, ErrInvalidCredentials)
	_, err = e.svc.Login(ctx, "ada", next)
	wantErr(t, err, nil)

	t.Run("AdminReset", func(t *testing.T) {
		const reset = "granite-willow-orbit-55"
		wantErr(t, e.svc.SetPassword(ctx, "usr_admin", u.ID, reset, true), nil)
		got, err := e.svc.Login(ctx, "ada", reset)
		wantErr(t, err, nil)
		if !got.MustChangePassword {
			t.Error("MustChangePassword not set after an administrator reset")
		}
	})
}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := hashPassword("secret passphrase", testParams)
	wantErr(t, err, nil)
	h2, err := hashPassword("secret passphrase", testParams)
	wantErr(t, err, nil)
	if h == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q lacks its parameters", h)
	}
	for _, tc := range []struct {
		name, hash, password string
		ok, rehash, bad      bool
	}{
		{name: "right", hash: h, password: "secret passphrase", ok: true},
		{name: "wrong", hash: h, password: "secret passphrasE"},
		{name: "other params", hash: mustHash(t, "pw", Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}), password: "pw", ok: true, rehash: true},
		{name: "not argon2id", hash: "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA", bad: true},
		{name: "huge memory", hash: "$argon2id$v=19$m=4000000,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA", bad: true},
		{name: "garbage", hash: "nonsense", bad: true},
		{name: "empty", hash: "", bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, rehash, err := verifyPassword(tc.hash, tc.password, testParams)
			if (err != nil) != tc.bad {
				t.Fatalf("error = %v, want error %v", err, tc.bad)
			}
			if ok != tc.ok || rehash != tc.rehash {
				t.Errorf("ok, rehash = %v, %v; want %v, %v", ok, rehash, tc.ok, tc.rehash)
			}
		})
	}
}

func mustHash(t *testing.T, pw string, p Params) string {
	t.Helper()
	h, err := hashPassword(pw, p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, password, want string // want: a piece of the message; "" for accepted
	}{
		{"passphrase", "violet harbour lantern", ""},
		{"random", "x9#Lq2!vR7@m", ""},
		{"unicode", "ñandú-über-straße", ""},
		{"too short", "Tr0ub4dor&3", "at least 12"},
		{"too long", strings.Repeat("ab3$", 65), "at most 256"},
		{"contains username", "my-ada-is-great-42", "username"},
		{"contains username in capitals", "xxADAxx-9876-qwe", "username"},
		{"common", "qwertyuiop123", "commonly used"},
		{"common with digits", "password1234", "commonly used"},
		{"leet", "P@ssw0rd2024!", "commonly used"},
		{"season", "Summer2025!!!", "commonly used"},
		{"repeated word", "monkeymonkey", "commonly used"},
		{"one character", "aaaaaaaaaaaaaaa", "distinct"},
		{"few characters", "abababababab", "distinct"},
		{"digit run", "123456789012", "sequence"},
		{"alphabet run", "bcdefghijklmn", "sequence"},
		{"keyboard walk", "qwertyuiopasd", "sequence"},
		{"reverse walk", "mnbvcxzlkjhg", "sequence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPassword(tc.password, "ada")
			if tc.want == "" {
				wantErr(t, err, nil)
				return
			}
			wantErr(t, err, ErrWeakPassword)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q does not say %q", err, tc.want)
			}
		})
	}
	if n := len(commonPasswords()); n < 400 {
		t.Errorf("common password list has %d entries", n)
	}
}
