package keys

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/internal/store"
)

// The envelope stream format, for files (artifacts, logs):
//
//	"SLK1"            4 bytes, magic
//	version           1 byte, envelopeVersion
//	id length         2 bytes, big endian
//	data key id       id length bytes
//	ciphertext        Tink streaming AEAD (AES256-GCM-HKDF) of the content
//
// The associated data of the ciphertext is the header itself followed by the
// caller's aad, so neither the header nor the file's identity can change
// without the first segment failing to decrypt.
const (
	envelopeMagic   = "SLK1"
	envelopeVersion = 1
	maxIDLen        = 256
)

func envelopeHeader(id string) []byte {
	h := make([]byte, 0, len(envelopeMagic)+3+len(id))
	h = append(h, envelopeMagic...)
	h = append(h, envelopeVersion)
	h = binary.BigEndian.AppendUint16(h, uint16(len(id)))
	return append(h, id...)
}

func streamAAD(header, aad []byte) []byte {
	b := make([]byte, 0, len(header)+len(aad))
	b = append(b, header...)
	return append(b, aad...)
}

// EncryptWriter starts an envelope stream on w under a new data key of
// purpose (PurposeArtifact, PurposeLog or PurposeFile) for ref. aad is the identity of
// what is written (an artifact's id, a log's run/task/attempt): the same aad
// must be given to DecryptReader, which is what makes a file swapped for
// another fail. The header is written at once; Close writes the final
// segment (it does not close w). Nothing written is readable until Close.
func (kr *Keyring) EncryptWriter(ctx context.Context, w io.Writer, purpose, ref string, aad []byte) (io.WriteCloser, error) {
	if purpose != PurposeArtifact && purpose != PurposeLog && purpose != PurposeFile {
		return nil, fmt.Errorf("starting envelope: purpose %q: streams take %q, %q or %q keys", purpose, PurposeArtifact, PurposeLog, PurposeFile)
	}
	k, err := kr.NewDataKey(ctx, purpose, ref)
	if err != nil {
		return nil, fmt.Errorf("starting envelope: %w", err)
	}
	header := envelopeHeader(k.ID)
	if _, err := w.Write(header); err != nil {
		return nil, fmt.Errorf("starting envelope: writing header: %w", err)
	}
	ew, err := k.stream.NewEncryptingWriter(w, streamAAD(header, aad))
	if err != nil {
		return nil, fmt.Errorf("starting envelope with data key %q: %w", k.ID, err)
	}
	return ew, nil
}

// DecryptReader reads an envelope stream's header, fetches its data key and
// returns the plaintext. It decrypts the first segment before returning,
// so a stream under another aad (a swapped file) or with an altered header
// fails here; damage further on fails the Read that reaches it, and a
// truncated stream fails at its end instead of returning io.EOF. Those
// failures wrap ErrIntegrity; errors of r itself are returned as they are.
func (kr *Keyring) DecryptReader(ctx context.Context, r io.Reader, aad []byte) (io.Reader, error) {
	var fixed [len(envelopeMagic) + 3]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("reading envelope: stream shorter than its header: %w", ErrIntegrity)
		}
		return nil, fmt.Errorf("reading envelope header: %w", err)
	}
	if string(fixed[:4]) != envelopeMagic {
		return nil, fmt.Errorf("reading envelope: no %q magic (not an encrypted sluice stream): %w", envelopeMagic, ErrIntegrity)
	}
	if v := fixed[4]; v != envelopeVersion {
		return nil, fmt.Errorf("reading envelope: version %d, this binary reads %d: %w", v, envelopeVersion, ErrIntegrity)
	}
	n := int(binary.BigEndian.Uint16(fixed[5:]))
	if n == 0 || n > maxIDLen {
		return nil, fmt.Errorf("reading envelope: data key id length %d: %w", n, ErrIntegrity)
	}
	id := make([]byte, n)
	if _, err := io.ReadFull(r, id); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("reading envelope: stream shorter than its header: %w", ErrIntegrity)
		}
		return nil, fmt.Errorf("reading envelope header: %w", err)
	}
	k, err := kr.DataKey(ctx, string(id))
	if errors.Is(err, store.ErrNotFound) {
		// Every envelope's key is stored before its first byte is
		// written: an unknown id is a damaged or forged header.
		return nil, fmt.Errorf("reading envelope: header names data key %q, which does not exist: %w", id, ErrIntegrity)
	}
	if err != nil {
		return nil, fmt.Errorf("reading envelope: %w", err)
	}
	if k.stream == nil {
		return nil, fmt.Errorf("reading envelope: data key %q is a %s key, not a stream key: %w", k.ID, k.Purpose, ErrIntegrity)
	}
	src := &trackingReader{r: r}
	dr, err := k.stream.NewDecryptingReader(src, streamAAD(envelopeHeader(k.ID), aad))
	if err != nil {
		return nil, fmt.Errorf("reading envelope with data key %q: %w", k.ID, err)
	}
	pr := &plainReader{r: dr, src: src, id: k.ID}
	// Decrypt the first segment now: a wrong aad fails before the caller
	// sees a byte. The byte read is handed back in front of the rest,
	// which is then read without another copy.
	var first [1]byte
	n, err = pr.Read(first[:])
	for n == 0 && err == nil {
		n, err = pr.Read(first[:])
	}
	if errors.Is(err, io.EOF) {
		return io.MultiReader(bytes.NewReader(first[:n])), nil
	}
	if err != nil {
		return nil, err
	}
	return io.MultiReader(bytes.NewReader(first[:n]), pr), nil
}

// trackingReader remembers an error of the ciphertext's reader, so that a
// failing disk is not reported as tampering.
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		t.err = err
	}
	return n, err
}

// plainReader turns Tink's decryption failures into ErrIntegrity.
type plainReader struct {
	r   io.Reader
	src *trackingReader
	id  string
}

func (p *plainReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err == nil || errors.Is(err, io.EOF) {
		return n, err
	}
	if p.src.err != nil {
		return n, fmt.Errorf("reading envelope: %w", p.src.err)
	}
	return n, fmt.Errorf("reading envelope with data key %q: ciphertext altered, truncated, or not written for this aad: %w: %w", p.id, ErrIntegrity, err)
}

// Wrapper returns an encrypting wrapper for a writer, the shape of
// artifact.Options.Wrap: each call starts an envelope under a new data key
// of purpose for ref, with aad.
func (kr *Keyring) Wrapper(ctx context.Context, purpose, ref string, aad []byte) func(io.Writer) (io.WriteCloser, error) {
	return func(w io.Writer) (io.WriteCloser, error) { return kr.EncryptWriter(ctx, w, purpose, ref, aad) }
}

// Unwrapper returns a decrypting wrapper for a reader, the shape of
// artifact.Options.Unwrap.
func (kr *Keyring) Unwrapper(ctx context.Context, aad []byte) func(io.Reader) (io.Reader, error) {
	return func(r io.Reader) (io.Reader, error) { return kr.DecryptReader(ctx, r, aad) }
}
