package keys

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/tink-crypto/tink-go/v2/tink"
)

// FromAEAD makes a KEK of any tink.AEAD: the seam for key management
// services. Tink's KMS clients (registry.KMSClient.GetAEAD for AWS KMS,
// Google Cloud KMS, HashiCorp Vault) return exactly such an AEAD, so a KMS
// source is a small file that builds the client and calls FromAEAD with the
// key URI as id. The key never leaves the KMS; each wrap and unwrap is a
// call to it (unwrapped data keys are cached by the keyring).
//
// The KEK has one key, whose id is derived from id (the first four bytes of
// its SHA-256), so data keys record which KMS key wrapped them and a
// different id is reported as a different key. It is read-only: rotate the
// key inside the KMS, which keeps its old versions able to decrypt.
func FromAEAD(a tink.AEAD, id string) KEK {
	sum := sha256.Sum256([]byte(id))
	return &aeadKEK{a: a, id: id, keyID: binary.BigEndian.Uint32(sum[:4])}
}

type aeadKEK struct {
	a     tink.AEAD
	id    string
	keyID uint32
}

func (k *aeadKEK) AEAD() tink.AEAD { return k.a }
func (k *aeadKEK) Info() []KeyInfo { return []KeyInfo{{ID: k.keyID, Status: StatusPrimary}} }
func (k *aeadKEK) Source() string  { return "AEAD " + k.id }
