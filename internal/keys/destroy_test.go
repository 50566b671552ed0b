package keys_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

// TestDestroyDataKey: a destroyed data key is gone from the store and the
// cache, so what it encrypted cannot be decrypted by this keyring or a
// fresh one; destroying twice reports false without an error; destroying
// in a transaction that rolls back destroys nothing.
func TestDestroyDataKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	aad := []byte("artifact a1")
	ct := encrypt(t, e.kr, keys.PurposeArtifact, "a1", aad, plaintext(1000))
	id, err := keys.EnvelopeKeyID(bytes.NewReader(ct))
	if err != nil || id != envelopeID(ct) {
		t.Fatalf("EnvelopeKeyID = %q, %v; want %q", id, err, envelopeID(ct))
	}
	if _, err := keys.EnvelopeKeyID(bytes.NewReader([]byte("PAR1 plain"))); !errors.Is(err, keys.ErrNotEnvelope) {
		t.Errorf("EnvelopeKeyID(plain) error = %v, want ErrNotEnvelope", err)
	}

	rollback := errors.New("roll back")
	err = e.db.InTx(ctx, func(tx store.Store) error {
		if ok, err := e.kr.DestroyDataKey(ctx, tx, id); !ok || err != nil {
			t.Errorf("DestroyDataKey in tx = %v, %v; want true", ok, err)
		}
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatal(err)
	}
	if _, err := decrypt(ctx, e.kr, ct, aad); err != nil {
		t.Fatalf("after a rolled-back destroy: %v", err)
	}

	if ok, err := e.kr.DestroyDataKey(ctx, nil, id); !ok || err != nil {
		t.Fatalf("DestroyDataKey = %v, %v; want true", ok, err)
	}
	if ok, err := e.kr.DestroyDataKey(ctx, nil, id); ok || err != nil {
		t.Errorf("second DestroyDataKey = %v, %v; want false, nil", ok, err)
	}
	if _, err := e.db.GetDataKey(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("data key still in the store: %v", err)
	}
	for name, kr := range map[string]*keys.Keyring{"same keyring": e.kr, "fresh keyring": keys.New(e.db, e.kek, keys.Options{})} {
		if _, err := decrypt(ctx, kr, ct, aad); !errors.Is(err, keys.ErrIntegrity) {
			t.Errorf("%s: decrypting after destroy: %v, want ErrIntegrity", name, err)
		}
	}
	if _, err := e.kr.DestroyDataKey(ctx, nil, ""); err == nil {
		t.Error("DestroyDataKey(empty id): no error")
	}
}
