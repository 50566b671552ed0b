package keys

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/internal/store"
)

// Crypto-shredding.
//
// Every dataset, log, secret version and encrypted file has a data key of
// its own, so deleting the thing is not enough: a backup of the file (or,
// for a secret, of the store alone) still decrypts as long as its data key
// survives. Whatever deletes such a thing destroys its data key too, with
// DestroyDataKey, once whatever replaces it is durable.

// DestroyDataKey deletes the data key id for good: whatever it encrypted,
// in every copy and backup, can never be decrypted again. It reports
// whether the key existed; destroying twice is not an error, so an
// interrupted deletion can be run again.
//
// st is the store the deletion goes through: pass the transaction-bound
// store of the caller's InTx, so that the key is destroyed in the same
// transaction as the record of what was deleted (on SQLite a write through
// the keyring's own store would wait for that transaction), or nil for the
// keyring's store. The key leaves the cache before and after the delete;
// a reader in this process that loads it between the delete and the
// caller's commit caches it again, so a caller in a transaction calls
// DestroyDataKey(ctx, nil, id) once more after the commit (it then
// reports false) to leave no unwrapped copy behind.
func (kr *Keyring) DestroyDataKey(ctx context.Context, st store.KeyStore, id string) (bool, error) {
	if id == "" {
		return false, errors.New("destroying data key: empty id")
	}
	if st == nil {
		st = kr.st
	}
	kr.cache.remove(id)
	err := st.DeleteDataKey(ctx, id)
	kr.cache.remove(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("destroying data key %q: %w", id, err)
	}
	return true, nil
}

// ErrNotEnvelope is returned by EnvelopeKeyID for a stream that does not
// start with an envelope header: it was not encrypted by the keyring, so
// no data key protects it.
var ErrNotEnvelope = errors.New("not an encrypted sluice stream")

// EnvelopeKeyID reads the header of an envelope stream (an encrypted
// artifact, log or file) and returns the id of the data key it names,
// without fetching the key or decrypting anything: what a deletion needs
// to destroy the key of a file it is about to remove. A stream without
// the magic wraps ErrNotEnvelope; a damaged header wraps ErrIntegrity.
func EnvelopeKeyID(r io.Reader) (string, error) {
	var fixed [len(envelopeMagic) + 3]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", fmt.Errorf("reading envelope header: stream shorter than a header: %w", ErrNotEnvelope)
		}
		return "", fmt.Errorf("reading envelope header: %w", err)
	}
	if string(fixed[:4]) != envelopeMagic {
		return "", fmt.Errorf("reading envelope header: no %q magic: %w", envelopeMagic, ErrNotEnvelope)
	}
	if v := fixed[4]; v != envelopeVersion {
		return "", fmt.Errorf("reading envelope header: version %d, this binary reads %d: %w", v, envelopeVersion, ErrIntegrity)
	}
	n := int(binary.BigEndian.Uint16(fixed[5:]))
	if n == 0 || n > maxIDLen {
		return "", fmt.Errorf("reading envelope header: data key id length %d: %w", n, ErrIntegrity)
	}
	id := make([]byte, n)
	if _, err := io.ReadFull(r, id); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", fmt.Errorf("reading envelope header: stream shorter than its header: %w", ErrIntegrity)
		}
		return "", fmt.Errorf("reading envelope header: %w", err)
	}
	return string(id), nil
}
