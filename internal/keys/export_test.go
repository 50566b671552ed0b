package keys

import (
	"context"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	gcmpb "github.com/tink-crypto/tink-go/v2/proto/aes_gcm_go_proto"
	gcmhkdfpb "github.com/tink-crypto/tink-go/v2/proto/aes_gcm_hkdf_streaming_go_proto"
	"google.golang.org/protobuf/proto"
)

// RawDataKey exports the raw AES key bytes of a data key, for tests that
// prove those bytes are nowhere at rest.
func RawDataKey(ctx context.Context, kr *Keyring, id string) ([]byte, error) {
	k, err := kr.DataKey(ctx, id)
	if err != nil {
		return nil, err
	}
	ks := insecurecleartextkeyset.KeysetMaterial(k.h)
	if len(ks.GetKey()) != 1 {
		return nil, fmt.Errorf("data key %q has %d keys", id, len(ks.GetKey()))
	}
	value := ks.GetKey()[0].GetKeyData().GetValue()
	switch k.Purpose {
	case PurposeSecret:
		var m gcmpb.AesGcmKey
		if err := proto.Unmarshal(value, &m); err != nil {
			return nil, err
		}
		return m.GetKeyValue(), nil
	default:
		var m gcmhkdfpb.AesGcmHkdfStreamingKey
		if err := proto.Unmarshal(value, &m); err != nil {
			return nil, err
		}
		return m.GetKeyValue(), nil
	}
}

// CacheLen is the number of unwrapped data keys kr holds.
func CacheLen(kr *Keyring) int { return kr.cache.len() }
