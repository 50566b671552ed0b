package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// tinkSealer is a real AEAD (Tink AES-256-GCM, fresh keyset) behind the
// Sealer interface; it also records the purpose and ref of each Seal.
type tinkSealer struct {
	aead tink.AEAD
	mu   sync.Mutex
	refs []string // "purpose ref"
	n    int
}

func newTinkSealer(t *testing.T) *tinkSealer {
	t.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	a, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	return &tinkSealer{aead: a}
}

func (s *tinkSealer) Seal(_ context.Context, purpose, ref string, plaintext, aad []byte) ([]byte, string, error) {
	ct, err := s.aead.Encrypt(plaintext, aad)
	if err != nil {
		return nil, "", fmt.Errorf("encrypting: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.refs = append(s.refs, purpose+" "+ref)
	return ct, fmt.Sprintf("dk-%d", s.n), nil
}

func (s *tinkSealer) Open(_ context.Context, _ string, ciphertext, aad []byte) ([]byte, error) {
	pt, err := s.aead.Decrypt(ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("decrypting: %w", err)
	}
	return pt, nil
}

type fixture struct {
	db       *sqlite.DB
	path     string
	sealer   *tinkSealer
	redactor *Redactor
	clock    *clock.Fake
	svc      *Service
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.db")
	db, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, path: path, sealer: newTinkSealer(t), redactor: NewRedactor(),
		clock: clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	f.svc = NewService(db, f.sealer, f.redactor, f.clock)
	return f
}

func TestServiceSetResolveListDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	value := []byte(canary(t))

	got, err := f.svc.Set(ctx, "crm_dsn", value, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Sealed != nil || got.SetBy != "alice" {
		t.Errorf("Set returned %+v, want version 1 by alice without the sealed bytes", got)
	}
	if diff := cmp.Diff([]string{"secret secret:crm_dsn"}, f.sealer.refs); diff != "" {
		t.Errorf("Seal purpose and ref (-want +got):\n%s", diff)
	}
	if f.redactor.String(string(value)) != string(value) {
		t.Error("Set registered the value with the redactor; only Resolve should")
	}

	resolved, err := f.svc.Resolve(ctx, "crm_dsn")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resolved, value) {
		t.Errorf("Resolve = %q, want %q", resolved, value)
	}
	if got := f.redactor.String("dsn=" + string(value)); got != "dsn="+Redacted {
		t.Errorf("after Resolve the redactor gives %q, want the value redacted", got)
	}

	f.clock.Advance(time.Hour)
	v2 := []byte("second-value")
	if got, err := f.svc.Set(ctx, "crm_dsn", v2, "bob"); err != nil || got.Version != 2 {
		t.Fatalf("second Set = %+v, %v; want version 2", got, err)
	}
	if _, err := f.svc.Set(ctx, "api.token-2", []byte("another-value"), "bob"); err != nil {
		t.Fatal(err)
	}
	if resolved, err := f.svc.Resolve(ctx, "crm_dsn"); err != nil || string(resolved) != "second-value" {
		t.Errorf("Resolve after second Set = %q, %v; want the latest value", resolved, err)
	}

	list, err := f.svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	want := []Meta{
		{Name: "api.token-2", Version: 1, SetBy: "bob", SetAt: t1},
		{Name: "crm_dsn", Version: 2, SetBy: "bob", SetAt: t1},
	}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	if _, err := f.svc.Delete(ctx, "crm_dsn"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Resolve(ctx, "crm_dsn"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Resolve after Delete: err = %v, want store.ErrNotFound", err)
	}
	if _, err := f.svc.Delete(ctx, "crm_dsn"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second Delete: err = %v, want store.ErrNotFound", err)
	}
}

// TestStoreNeverHoldsPlaintext is the canary test of the store: after Set,
// neither the database file nor its write-ahead log contains the value.
func TestStoreNeverHoldsPlaintext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	value := canary(t)
	if _, err := f.svc.Set(ctx, "canary", []byte(value), "alice"); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(f.path + "*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no database files at %s: %v", f.path, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range forbidden(value) {
			if bytes.Contains(b, []byte(form)) {
				t.Errorf("%s contains the secret (form %q)", filepath.Base(name), form)
			}
		}
	}
}

func TestServiceRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	tests := []struct {
		name, secret string
		value        string
		want         error
	}{
		{"empty name", "", "value-1", ErrInvalidName},
		{"leading digit", "1abc", "value-1", ErrInvalidName},
		{"space", "a b", "value-1", ErrInvalidName},
		{"colon", "a:b", "value-1", ErrInvalidName},
		{"too long", "a" + string(bytes.Repeat([]byte("b"), 128)), "value-1", ErrInvalidName},
		{"empty value", "ok", "", ErrValueTooShort},
		{"short value", "ok", "abc", ErrValueTooShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := f.svc.Set(ctx, tt.secret, []byte(tt.value), "alice"); !errors.Is(err, tt.want) {
				t.Errorf("Set: err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := f.svc.Resolve(ctx, "no such"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Resolve(bad name): err = %v, want ErrInvalidName", err)
	}
	if _, err := f.svc.Delete(ctx, "no such"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Delete(bad name): err = %v, want ErrInvalidName", err)
	}
	if _, err := f.svc.Resolve(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Resolve(missing): err = %v, want store.ErrNotFound", err)
	}
}

// swappingStore serves another secret's sealed bytes, as someone with write
// access to the database could: the AAD must make Resolve refuse them.
type swappingStore struct {
	*sqlite.DB
	swap func(store.Secret) store.Secret
}

func (s swappingStore) GetSecret(ctx context.Context, name string) (store.Secret, error) {
	sec, err := s.DB.GetSecret(ctx, name)
	if err != nil {
		return sec, err
	}
	return s.swap(sec), nil
}

func TestResolveRefusesMovedCiphertext(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	for _, name := range []string{"a", "b"} {
		if _, err := f.svc.Set(ctx, name, []byte("value-of-"+name), "alice"); err != nil {
			t.Fatal(err)
		}
	}
	oldB, err := f.db.GetSecret(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Set(ctx, "b", []byte("new-value-of-b"), "alice"); err != nil {
		t.Fatal(err)
	}
	a, err := f.db.GetSecret(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		swap func(store.Secret) store.Secret
	}{
		{"another name's value", func(s store.Secret) store.Secret {
			s.Sealed, s.DataKeyID = a.Sealed, a.DataKeyID
			return s
		}},
		{"an older version replayed", func(s store.Secret) store.Secret {
			s.Sealed, s.DataKeyID = oldB.Sealed, oldB.DataKeyID
			return s
		}},
		{"another name's whole row", func(store.Secret) store.Secret { return a }},
		{"flipped bit", func(s store.Secret) store.Secret {
			s.Sealed = bytes.Clone(s.Sealed)
			s.Sealed[len(s.Sealed)-1] ^= 1
			return s
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			svc := NewService(swappingStore{f.db, tt.swap}, f.sealer, NewRedactor(), nil)
			if v, err := svc.Resolve(ctx, "b"); err == nil {
				t.Errorf("Resolve = %q, want an error", v)
			}
		})
	}
}

// racingStore stores a competing version just before each of Set's
// transactions, as a concurrent Set of the same name would.
type racingStore struct {
	*sqlite.DB
	races int // how many transactions to race
}

func (s *racingStore) InTx(ctx context.Context, fn func(tx store.Store) error) error {
	if s.races > 0 {
		s.races--
		if _, err := s.DB.PutSecret(ctx, store.Secret{Name: "x", Sealed: []byte("junk"), DataKeyID: "dk-junk"}); err != nil {
			return err
		}
	}
	return s.DB.InTx(ctx, fn)
}

func TestSetRetriesWhenAVersionIsTaken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("wins on retry", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		rs := &racingStore{DB: f.db, races: 2}
		svc := NewService(rs, f.sealer, f.redactor, nil)
		got, err := svc.Set(ctx, "x", []byte("the-value"), "alice")
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 3 {
			t.Errorf("version = %d, want 3 (after two competing versions)", got.Version)
		}
		if v, err := svc.Resolve(ctx, "x"); err != nil || string(v) != "the-value" {
			t.Errorf("Resolve = %q, %v", v, err)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		svc := NewService(&racingStore{DB: f.db, races: 100}, f.sealer, f.redactor, nil)
		if _, err := svc.Set(ctx, "x", []byte("the-value"), "alice"); !errors.Is(err, store.ErrConflict) {
			t.Errorf("err = %v, want store.ErrConflict", err)
		}
	})
}

func TestValidNameAgreesWithRefNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a", "_", "A.b-c_9", "9a", "a b", "a:b", "é", "-a", ".a", "a}", string(bytes.Repeat([]byte("a"), 128)), string(bytes.Repeat([]byte("a"), 129))} {
		if got, want := badName(name) == "", ValidName(name) == nil; got != want {
			t.Errorf("name %q: badName accepts=%v, ValidName accepts=%v", name, got, want)
		}
	}
}
