package auth

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// testParams keep argon2id cheap in tests that are not about its cost.
var testParams = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const goodPassword = "violet-harbour-lantern-42"

// sink records events and fails when told to.
type sink struct {
	mu     sync.Mutex
	events []Event
	fail   error
}

func (k *sink) Record(_ context.Context, _ store.Store, e Event) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	k.events = append(k.events, e)
	return nil
}

// summary lists the events as "type outcome reason" for comparison.
func (k *sink) summary() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, e := range k.events {
		s := string(e.Type) + " " + string(e.Outcome)
		if e.Reason != "" {
			s += " " + e.Reason
		}
		out = append(out, s)
	}
	return out
}

func (k *sink) reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.events = nil
}

type env struct {
	svc   *Service
	st    store.Store
	kr    *keys.Keyring
	clock *clock.Fake
	sink  *sink
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "sluice.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	kek, err := keys.LoadFile(dir)
	if err != nil {
		t.Fatalf("loading KEK: %v", err)
	}
	kr := keys.New(db, kek, keys.Options{})
	e := &env{st: db, kr: kr, sink: &sink{}}
	if opts.Clock == nil {
		e.clock = clock.NewFake(t0)
		opts.Clock = e.clock
	}
	if opts.Hash == (Params{}) {
		opts.Hash = testParams
	}
	opts.Events = e.sink
	if e.svc, err = New(context.Background(), db, kr, opts); err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func (e *env) user(t testing.TB, name string) User {
	t.Helper()
	u, err := e.svc.CreateUser(context.Background(), NewUser{Username: name, DisplayName: "User " + name,
		Groups: []string{"eng"}, Password: goodPassword})
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func TestNewRequiresEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "s.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	kek, err := keys.LoadFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(t.Context(), db, keys.New(db, kek, keys.Options{}), Options{}); err == nil {
		t.Fatal("New without an event sink succeeded")
	}
}

func TestCreateUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := t.Context()
	u, err := e.svc.CreateUser(ctx, NewUser{Actor: "usr_admin", Username: "ada", DisplayName: "Ada",
		Groups: []string{"ops", "eng", "ops"}, Password: goodPassword, MustChangePassword: true})
	wantErr(t, err, nil)
	want := User{ID: u.ID, Username: "ada", DisplayName: "Ada", Groups: []string{"eng", "ops"},
		MustChangePassword: true, HasPassword: true, CreatedAt: t0, UpdatedAt: t0}
	if d := cmp.Diff(want, u); d != "" {
		t.Errorf("CreateUser (-want +got):\n%s", d)
	}
	got, err := e.svc.UserByName(ctx, "ada")
	wantErr(t, err, nil)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("UserByName (-want +got):\n%s", d)
	}
	stored, err := e.st.GetUser(ctx, u.ID)
	wantErr(t, err, nil)
	if len(stored.PasswordHash) < 20 || stored.PasswordHash[:10] != "$argon2id$" {
		t.Errorf("stored hash %q is not an argon2id PHC string", stored.PasswordHash)
	}
	if d := cmp.Diff([]string{"auth.user.created success"}, e.sink.summary()); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}

	for _, tc := range []struct {
		name string
		p    NewUser
		want error
	}{
		{"taken", NewUser{Username: "ada", Password: goodPassword}, ErrConflict},
		{"upper case", NewUser{Username: "Ada", Password: goodPassword}, ErrInvalid},
		{"too short", NewUser{Username: "a", Password: goodPassword}, ErrInvalid},
		{"leading digit", NewUser{Username: "1ada", Password: goodPassword}, ErrInvalid},
		{"bad group", NewUser{Username: "bob", Groups: []string{"has space"}, Password: goodPassword}, ErrInvalid},
		{"weak password", NewUser{Username: "bob", Password: "password1234"}, ErrWeakPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateUser(ctx, tc.p)
			wantErr(t, err, tc.want)
		})
	}
}

func TestEventSinkFailureAbortsChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	boom := errors.New("audit log unavailable")
	e.sink.fail = boom
	_, err := e.svc.CreateUser(t.Context(), NewUser{Username: "ada", Password: goodPassword})
	wantErr(t, err, boom)
	_, err = e.st.GetUserByUsername(t.Context(), "ada")
	wantErr(t, err, store.ErrNotFound)
}

func TestUpdateUserDisableRevokesSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	ctx := t.Context()
	u := e.user(t, "ada")
	secret, _, err := e.svc.NewSession(ctx, u.ID, MethodPassword, false)
	wantErr(t, err, nil)
	name, groups, yes := "Ada L.", []string{"data"}, true
	got, err := e.svc.UpdateUser(ctx, u.ID, UserUpdate{Actor: "usr_admin", DisplayName: &name, Groups: &groups, Disabled: &yes})
	wantErr(t, err, nil)
	if got.DisplayName != name || !cmp.Equal(got.Groups, groups) || !got.Disabled {
		t.Errorf("UpdateUser = %+v", got)
	}
	_, _, err = e.svc.AuthenticateSession(ctx, secret)
	wantErr(t, err, ErrRevoked)
	_, err = e.svc.Login(ctx, "ada", goodPassword)
	wantErr(t, err, ErrDisabled)
	_, err = e.svc.UpdateUser(ctx, "usr_nope", UserUpdate{DisplayName: &name})
	wantErr(t, err, ErrNotFound)
}
