package keys

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/sluicehq/sluice/internal/store"
)

// Named and per-subject keys.
//
// Most data keys protect one thing and are created with it. The privacy
// operators need keys that outlive a run instead: a pseudonym (hmac) or a
// token (tokenize) must be the same in every run so that datasets still
// join, so their key is a named, persistent data key, created on first use
// and found again by name. Its id is derived from its purpose and name, so
// that concurrent first uses agree on one key (the store's primary key
// settles the race) without a lookup by name.
//
// A per-subject key tokenises the values of one data subject. Destroying it
// (DestroySubjectKey) makes every token of that subject, in every dataset
// and every backup, permanently unreadable: crypto-shredding.

// SubjectRefPrefix prefixes the ref of per-subject keys.
const SubjectRefPrefix = "subject:"

// prfOutputLen is the length of a PRF output: the full HMAC-SHA256.
const prfOutputLen = 32

// namedID is the deterministic id of the named key (purpose, ref).
func namedID(purpose, ref string) string {
	h := sha256.Sum256([]byte("sluice named key v1\x00" + purpose + "\x00" + ref))
	return "dk_n_" + hex.EncodeToString(h[:16])
}

// NamedKey returns the persistent data key of purpose (PurposePRF or
// PurposeDAEAD) named name, creating it on first use. Every process sharing
// the store gets the same key, so what it computes is stable across runs.
func (kr *Keyring) NamedKey(ctx context.Context, purpose, name string) (*DataKey, error) {
	if purpose != PurposePRF && purpose != PurposeDAEAD {
		return nil, fmt.Errorf("named key %q: purpose %q: want %q or %q", name, purpose, PurposePRF, PurposeDAEAD)
	}
	if name == "" || strings.HasPrefix(name, SubjectRefPrefix) {
		return nil, fmt.Errorf("named key %q: a name must be non-empty and must not start with %q", name, SubjectRefPrefix)
	}
	k, err := kr.getOrCreate(ctx, purpose, name)
	if err != nil {
		return nil, fmt.Errorf("named key %q: %w", name, err)
	}
	return k, nil
}

// SubjectKey returns the deterministic-AEAD key of one data subject,
// creating it on first use. subject should itself be a pseudonym (the
// privacy package passes a keyed hash of the subject id), so the store
// never holds the raw id.
func (kr *Keyring) SubjectKey(ctx context.Context, subject string) (*DataKey, error) {
	if subject == "" {
		return nil, errors.New("subject key: empty subject")
	}
	k, err := kr.getOrCreate(ctx, PurposeDAEAD, SubjectRefPrefix+subject)
	if err != nil {
		return nil, fmt.Errorf("subject key: %w", err)
	}
	return k, nil
}

// LookupSubjectKey returns the key of subject if it exists, without
// creating one: reading a token must never resurrect an erased subject.
// Errors wrap store.ErrNotFound when the subject has no key (never had one,
// or it was destroyed).
func (kr *Keyring) LookupSubjectKey(ctx context.Context, subject string) (*DataKey, error) {
	if subject == "" {
		return nil, errors.New("subject key: empty subject")
	}
	k, err := kr.DataKey(ctx, namedID(PurposeDAEAD, SubjectRefPrefix+subject))
	if err != nil {
		return nil, fmt.Errorf("subject key: %w", err)
	}
	return k, nil
}

// DestroySubjectKey deletes the key of subject from the store and the
// cache. It reports whether a key existed; destroying twice is not an
// error, so an interrupted erasure can be run again.
func (kr *Keyring) DestroySubjectKey(ctx context.Context, subject string) (bool, error) {
	if subject == "" {
		return false, errors.New("destroying subject key: empty subject")
	}
	destroyed, err := kr.DestroyDataKey(ctx, nil, namedID(PurposeDAEAD, SubjectRefPrefix+subject))
	if err != nil {
		return false, fmt.Errorf("destroying subject key: %w", err)
	}
	return destroyed, nil
}

// getOrCreate loads the key (purpose, ref) or creates it under its
// deterministic id.
func (kr *Keyring) getOrCreate(ctx context.Context, purpose, ref string) (*DataKey, error) {
	id := namedID(purpose, ref)
	k, err := kr.DataKey(ctx, id)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	tmpl, err := templateFor(purpose)
	if err != nil {
		return nil, err
	}
	h, err := keyset.NewHandle(tmpl)
	if err != nil {
		return nil, fmt.Errorf("generating: %w", err)
	}
	kr.mu.RLock()
	wrapped, kekID, err := kr.wrap(h, id, purpose, ref)
	if err == nil {
		err = kr.st.PutDataKey(ctx, store.DataKey{ID: id, Purpose: purpose, Ref: ref, KEKKeyID: kekID,
			Wrapped: wrapped, CreatedAt: kr.now()})
	}
	kr.mu.RUnlock()
	if errors.Is(err, store.ErrConflict) {
		// Another process created it first: use theirs.
		return kr.DataKey(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	k, err = newDataKey(id, purpose, ref, kekID, h)
	if err != nil {
		return nil, err
	}
	kr.cache.put(k)
	return k, nil
}

// PRF computes the keyed pseudonym (HMAC-SHA256, 32 bytes) of input with a
// PurposePRF key.
func (k *DataKey) PRF(input []byte) ([]byte, error) {
	if k.prf == nil {
		return nil, fmt.Errorf("data key %q is a %s key, not a %s key", k.ID, k.Purpose, PurposePRF)
	}
	out, err := k.prf.ComputePrimaryPRF(input, prfOutputLen)
	if err != nil {
		return nil, fmt.Errorf("computing PRF with data key %q: %w", k.ID, err)
	}
	return out, nil
}

// EncryptDeterministically encrypts plaintext with a PurposeDAEAD key:
// equal plaintexts (and aad) give equal ciphertexts, which is what lets
// tokens join.
func (k *DataKey) EncryptDeterministically(plaintext, aad []byte) ([]byte, error) {
	if k.daead == nil {
		return nil, fmt.Errorf("data key %q is a %s key, not a %s key", k.ID, k.Purpose, PurposeDAEAD)
	}
	ct, err := k.daead.EncryptDeterministically(plaintext, aad)
	if err != nil {
		return nil, fmt.Errorf("encrypting with data key %q: %w", k.ID, err)
	}
	return ct, nil
}

// DecryptDeterministically undoes EncryptDeterministically; a ciphertext
// that is not one of this key's is an error wrapping ErrIntegrity.
func (k *DataKey) DecryptDeterministically(ciphertext, aad []byte) ([]byte, error) {
	if k.daead == nil {
		return nil, fmt.Errorf("data key %q is a %s key, not a %s key", k.ID, k.Purpose, PurposeDAEAD)
	}
	pt, err := k.daead.DecryptDeterministically(ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("decrypting with data key %q: %w: %w", k.ID, ErrIntegrity, err)
	}
	return pt, nil
}
