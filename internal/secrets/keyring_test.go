package secrets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// The keyring is the Sealer production wires in.
var _ Sealer = (*keys.Keyring)(nil)

// TestServiceWithKeyring runs the Service over the real keyring and store:
// each version gets its own data key, nothing readable reaches the database,
// and a value moved to another name fails the keyring's integrity check.
func TestServiceWithKeyring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sluice.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	kekAEAD, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.New(db, keys.FromAEAD(kekAEAD, "test-kek"), keys.Options{})
	svc := NewService(db, kr, NewRedactor(), nil)

	value := canary(t)
	s1, err := svc.Set(ctx, "crm_dsn", []byte(value), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Set(ctx, "other", []byte("other-value"), "alice"); err != nil {
		t.Fatal(err)
	}
	got, err := svc.Resolve(ctx, "crm_dsn")
	if err != nil || string(got) != value {
		t.Fatalf("Resolve = %q, %v; want the value", got, err)
	}
	stored, err := db.GetSecret(ctx, "crm_dsn")
	if err != nil {
		t.Fatal(err)
	}
	dk, err := db.GetDataKey(ctx, stored.DataKeyID)
	if err != nil {
		t.Fatal(err)
	}
	if dk.Purpose != store.PurposeSecret || dk.Ref != "secret:crm_dsn" || s1.DataKeyID != dk.ID {
		t.Errorf("data key %+v: want purpose %q, ref %q, id %q", dk, store.PurposeSecret, "secret:crm_dsn", s1.DataKeyID)
	}

	files, _ := filepath.Glob(path + "*")
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

	other, err := db.GetSecret(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	moved := swappingStore{db, func(store.Secret) store.Secret { return other }}
	_, err = NewService(moved, kr, NewRedactor(), nil).Resolve(ctx, "crm_dsn")
	if !errors.Is(err, keys.ErrIntegrity) {
		t.Errorf("moved value: err = %v, want keys.ErrIntegrity", err)
	}
}

// TestDeleteShredsKeys: deleting a secret destroys the data key of every
// version, so a backup of the store taken before the deletion cannot open
// any of them again, with the same keyring or a fresh one over the same
// KEK; other secrets keep theirs, and the name can be set again.
func TestDeleteShredsKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "sluice.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	kekAEAD, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	kek := keys.FromAEAD(kekAEAD, "test-kek")
	kr := keys.New(db, kek, keys.Options{})
	svc := NewService(db, kr, NewRedactor(), nil)

	var backup []store.Secret // what a backup of the store holds
	for _, v := range []string{"first-value", "second-value"} {
		if _, err := svc.Set(ctx, "crm_dsn", []byte(v), "alice"); err != nil {
			t.Fatal(err)
		}
		sec, err := db.GetSecret(ctx, "crm_dsn")
		if err != nil {
			t.Fatal(err)
		}
		backup = append(backup, sec)
	}
	if _, err := svc.Set(ctx, "other", []byte("other-value"), "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Resolve(ctx, "crm_dsn"); err != nil { // caches the latest key
		t.Fatal(err)
	}
	other, err := db.GetSecret(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}

	destroyed, err := svc.Delete(ctx, "crm_dsn")
	if err != nil {
		t.Fatal(err)
	}
	if len(destroyed) != 2 {
		t.Errorf("destroyed keys %q, want the 2 versions' keys", destroyed)
	}
	fresh := keys.New(db, kek, keys.Options{})
	for _, sec := range backup {
		if !slices.Contains(destroyed, sec.DataKeyID) {
			t.Errorf("version %d: key %s not reported destroyed (%q)", sec.Version, sec.DataKeyID, destroyed)
		}
		if _, err := db.GetDataKey(ctx, sec.DataKeyID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("version %d: data key %s still in the store (%v)", sec.Version, sec.DataKeyID, err)
		}
		for name, k := range map[string]*keys.Keyring{"same keyring": kr, "fresh keyring": fresh} {
			if _, err := k.Open(ctx, sec.DataKeyID, sec.Sealed, sealAAD(sec.Name, sec.Version)); err == nil {
				t.Errorf("version %d: %s opened the backed-up value", sec.Version, name)
			}
		}
	}
	if _, err := db.GetDataKey(ctx, other.DataKeyID); err != nil {
		t.Errorf("other secret's data key: %v", err)
	}
	if got, err := svc.Resolve(ctx, "other"); err != nil || string(got) != "other-value" {
		t.Errorf("Resolve(other) = %q, %v", got, err)
	}
	if again, err := svc.Delete(ctx, "crm_dsn"); !errors.Is(err, store.ErrNotFound) || again != nil {
		t.Errorf("second Delete = %q, %v; want store.ErrNotFound", again, err)
	}
	if _, err := svc.Set(ctx, "crm_dsn", []byte("third-value"), "alice"); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.Resolve(ctx, "crm_dsn"); err != nil || string(got) != "third-value" {
		t.Errorf("Resolve after re-set = %q, %v", got, err)
	}
}
