package secrets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
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
