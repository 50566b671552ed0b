package keys

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	commonpb "github.com/tink-crypto/tink-go/v2/proto/common_go_proto"
	hmacprfpb "github.com/tink-crypto/tink-go/v2/proto/hmac_prf_go_proto"
	"google.golang.org/protobuf/proto"
)

// hmacPRFTypeURL is the Tink key type of HMAC PRF keys.
const hmacPRFTypeURL = "type.googleapis.com/google.crypto.tink.HmacPrfKey"

// hmacKeyOf returns the key bytes of the primary key of an HMAC-SHA256 PRF
// keyset. The key was made by Tink and never leaves this process; sluice
// only uses it with the standard library's HMAC, which is what Tink's PRF
// computes, so that a hot loop can keep one keyed state per goroutine
// instead of paying Tink's per-call set-up (see DataKey.HMAC).
func hmacKeyOf(h *keyset.Handle) ([]byte, error) {
	ks := insecurecleartextkeyset.KeysetMaterial(h)
	for _, k := range ks.GetKey() {
		if k.GetKeyId() != ks.GetPrimaryKeyId() {
			continue
		}
		kd := k.GetKeyData()
		if kd.GetTypeUrl() != hmacPRFTypeURL {
			return nil, fmt.Errorf("primary key is a %s, not an HMAC PRF key", kd.GetTypeUrl())
		}
		var hk hmacprfpb.HmacPrfKey
		if err := proto.Unmarshal(kd.GetValue(), &hk); err != nil {
			return nil, fmt.Errorf("reading the HMAC PRF key: %w", err)
		}
		if hk.GetParams().GetHash() != commonpb.HashType_SHA256 {
			return nil, fmt.Errorf("HMAC PRF key uses %s, want SHA256", hk.GetParams().GetHash())
		}
		return hk.GetKeyValue(), nil
	}
	return nil, errors.New("the keyset has no primary key")
}

// HMAC returns a new HMAC-SHA256 keyed with this PRF data key: the same
// function as PRF (its output is PRF's, byte for byte), for loops that
// compute millions of values and keep one keyed state per goroutine — Reset
// reuses the keyed state, where each PRF call sets it up again.
func (k *DataKey) HMAC() (hash.Hash, error) {
	if k.hmacKey == nil {
		return nil, fmt.Errorf("data key %q is a %s key, not a %s key", k.ID, k.Purpose, PurposePRF)
	}
	return hmac.New(sha256.New, k.hmacKey), nil
}
