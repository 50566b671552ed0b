// Package keys is the keyring of sluice: envelope encryption for everything a
// pipeline stores (dataset artifacts, task logs, secrets), built on Tink.
//
// Two levels of keys:
//
//   - A data-encryption key (DEK) protects one thing: one artifact, one task
//     log, one secret version. It is a Tink keyset of its own, generated when
//     that thing is written, and it is stored only wrapped (encrypted) by the
//     KEK, in the store, bound by associated data to its id, purpose and ref.
//   - The key-encryption key (KEK) wraps DEKs and never reaches the store. It
//     comes from a KEK source: a keyset file in the state directory, a keyset
//     in an environment variable, or any tink.AEAD (a KMS key).
//
// Rotation follows the order rotate → rewrap → retire: Rotate adds a new
// primary KEK key (old DEKs stay readable), Rewrap re-wraps every DEK under
// the primary without touching any ciphertext, and Retire removes an old KEK
// key once no DEK refers to it.
//
// Nothing here implements a cipher: every encryption is a Tink primitive.
package keys

import (
	"context"
	"errors"

	"github.com/tink-crypto/tink-go/v2/tink"
)

// Sentinel errors. Check with errors.Is.
var (
	// ErrIntegrity: an envelope stream or sealed value is not what was
	// written under that data key and associated data: a byte was flipped,
	// it was truncated, or it was swapped for another one (wrong AAD).
	ErrIntegrity = errors.New("integrity check failed")
	// ErrKeyUnavailable: a data key cannot be unwrapped with this KEK,
	// because the KEK key that wrapped it was retired, the KEK is a
	// different keyset, or the wrapped bytes were altered.
	ErrKeyUnavailable = errors.New("data key cannot be unwrapped")
	// ErrReadOnlyKEK: Rotate or Retire on a KEK that sluice does not
	// manage (environment variable, KMS): rotate it where it is managed.
	ErrReadOnlyKEK = errors.New("the KEK is managed outside sluice")
	// ErrKeyInUse: Retire of a KEK key that still wraps data keys, or is
	// the primary.
	ErrKeyInUse = errors.New("KEK key in use")
)

// KeyStatus is the state of one KEK key.
type KeyStatus string

// Key states.
const (
	// StatusPrimary: wraps new data keys (and unwraps).
	StatusPrimary KeyStatus = "primary"
	// StatusEnabled: unwraps data keys wrapped before a rotation.
	StatusEnabled KeyStatus = "enabled"
	// StatusDisabled: in the keyset but unusable until enabled again.
	StatusDisabled KeyStatus = "disabled"
	// StatusMissing: data keys in the store name this KEK key, but the
	// keyset does not hold it (retired while still referenced, or the
	// wrong keyset): those data keys cannot be unwrapped. Reported by
	// Keyring.List only.
	StatusMissing KeyStatus = "missing"
)

// KeyInfo describes one KEK key. Tink keysets record no creation time, so
// none is reported.
type KeyInfo struct {
	ID     uint32
	Status KeyStatus
	// DataKeys is how many stored data keys this KEK key wraps (filled by
	// Keyring.List; zero from KEK.Info).
	DataKeys int64
}

// KEK is a source of the key-encryption key. Implementations are safe for
// concurrent use. A KMS-backed source is a few lines around FromAEAD.
type KEK interface {
	// AEAD encrypts with the primary key and decrypts with any key of the
	// set (Tink's keyset primitive routes by the key id in the
	// ciphertext).
	AEAD() tink.AEAD
	// Info lists the keys of the set; exactly one is StatusPrimary.
	Info() []KeyInfo
	// Source says where the KEK comes from, for messages ("file
	// /state/keys/kek.json", "environment variable SLUICE_KEK").
	Source() string
}

// ManagedKEK is a KEK whose keyset sluice maintains (the keyset file), so
// the keyring can rotate and retire its keys. Sources that do not
// implement it are read-only: the keyring refuses with ErrReadOnlyKEK.
type ManagedKEK interface {
	KEK
	// Rotate adds a new key, makes it the primary and persists the keyset
	// before returning it; older keys stay in the set for unwrapping.
	Rotate(ctx context.Context) (KeyInfo, error)
	// Remove deletes a non-primary key from the set and persists it.
	Remove(ctx context.Context, keyID uint32) error
}

func primaryOf(infos []KeyInfo) (uint32, bool) {
	for _, k := range infos {
		if k.Status == StatusPrimary {
			return k.ID, true
		}
	}
	return 0, false
}
