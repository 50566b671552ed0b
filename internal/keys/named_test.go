package keys_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

func TestNamedKeyStableAcrossKeyrings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	k1, err := e.kr.NamedKey(ctx, keys.PurposePRF, "pii")
	if err != nil {
		t.Fatal(err)
	}
	other := keys.New(e.db, e.kek, keys.Options{})
	k2, err := other.NamedKey(ctx, keys.PurposePRF, "pii")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := k1.PRF([]byte("x"))
	b, err := k2.PRF([]byte("x"))
	if err != nil || k1.ID != k2.ID || string(a) != string(b) || len(a) != 32 {
		t.Errorf("named key differs across keyrings: %s/%s, %x/%x, %v", k1.ID, k2.ID, a, b, err)
	}
	d, err := e.kr.NamedKey(ctx, keys.PurposeDAEAD, "pii")
	if err != nil {
		t.Fatal(err)
	}
	if d.ID == k1.ID {
		t.Error("the prf and daead keys of one name share an id")
	}
	for _, tt := range []struct{ purpose, name string }{{keys.PurposeArtifact, "pii"}, {keys.PurposePRF, ""}, {keys.PurposeDAEAD, "subject:x"}} {
		if _, err := e.kr.NamedKey(ctx, tt.purpose, tt.name); err == nil {
			t.Errorf("NamedKey(%q, %q) succeeded", tt.purpose, tt.name)
		}
	}
}

func TestSubjectKeyDestroy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	k, err := e.kr.SubjectKey(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	ct, err := k.EncryptDeterministically([]byte("v"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.kr.SubjectKey(ctx, "h2"); err != nil {
		t.Fatal(err)
	}
	ok, err := e.kr.DestroySubjectKey(ctx, "h1")
	if err != nil || !ok {
		t.Fatalf("DestroySubjectKey = %v, %v; want true", ok, err)
	}
	// Gone from the cache and the store, for this keyring and any other.
	for _, kr := range []*keys.Keyring{e.kr, keys.New(e.db, e.kek, keys.Options{})} {
		if _, err := kr.LookupSubjectKey(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("LookupSubjectKey after destroy: %v, want ErrNotFound", err)
		}
		if _, err := kr.LookupSubjectKey(ctx, "h2"); err != nil {
			t.Errorf("other subject's key: %v", err)
		}
	}
	// A new key for the same subject does not read the old ciphertext.
	k2, err := e.kr.SubjectKey(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k2.DecryptDeterministically(ct, nil); !errors.Is(err, keys.ErrIntegrity) {
		t.Errorf("old ciphertext under the new key: %v, want ErrIntegrity", err)
	}
	if _, err := e.kr.DestroySubjectKey(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.kr.DestroySubjectKey(ctx, "h1"); ok || err != nil {
		t.Errorf("second destroy = %v, %v; want false, nil", ok, err)
	}
}

// TestHMACIsThePRF: the reusable HMAC of a PRF data key computes exactly
// what Tink's PRF computes, so pseudonyms do not change with the path.
func TestHMACIsThePRF(t *testing.T) {
	t.Parallel()
	kr := newEnv(t).kr
	k, err := kr.NamedKey(t.Context(), keys.PurposePRF, "pii")
	if err != nil {
		t.Fatal(err)
	}
	h, err := k.HMAC()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"", "a", "ann@example.com", strings.Repeat("x", 1000)} {
		want, err := k.PRF([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		h.Reset()
		h.Write([]byte(in))
		if got := h.Sum(nil); !bytes.Equal(got, want) {
			t.Errorf("HMAC(%.20q) = %x, PRF = %x", in, got, want)
		}
	}
	other, err := kr.NamedKey(t.Context(), keys.PurposeDAEAD, "pii")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.HMAC(); err == nil {
		t.Error("a DAEAD key gave an HMAC")
	}
}
