package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/internal/store"
)

// taskLog is an attempt's log: encrypted at rest under a data key of its
// own, bound to its path, and created on its first write. Most tasks of a
// large DAG print nothing, and on a journaling file system creating a file
// (and a data key) costs more than all the rest of a task's bookkeeping; a
// log that was never written reads back as empty.
type taskLog struct {
	ctx  context.Context
	path string // absolute
	rel  string // relative to the state directory: the log's identity
	seal LogSealer

	mu  sync.Mutex
	f   *os.File
	enc io.WriteCloser
	err error
}

func (l *taskLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.enc == nil && l.err == nil {
		l.err = l.open()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.enc.Write(p)
}

func (l *taskLog) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|noFollow, logFileMode)
	if err != nil {
		return fmt.Errorf("creating task log: %w", err)
	}
	enc, err := l.seal.EncryptWriter(l.ctx, f, store.PurposeLog, l.rel, LogAAD(l.rel))
	if err != nil {
		f.Close()
		return fmt.Errorf("encrypting task log: %w", err)
	}
	l.f, l.enc = f, enc
	return nil
}

// Close completes the encrypted stream and closes the file, if the log was
// ever written.
func (l *taskLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.enc == nil {
		return nil
	}
	return errors.Join(l.enc.Close(), l.f.Close())
}

// LogOpener decrypts task logs; the keyring implements it.
type LogOpener interface {
	DecryptReader(ctx context.Context, r io.Reader, aad []byte) (io.Reader, error)
}

// ReadLog returns the text of the attempt log at rel (relative to
// stateDir). A log that was never written reads as "". A log cut short —
// its attempt was killed before the stream was completed — returns the
// text that could be verified together with an error saying where it
// stopped; bytes that fail authentication are never returned.
func ReadLog(ctx context.Context, o LogOpener, stateDir, rel string) (string, error) {
	if rel == "" {
		return "", nil
	}
	f, err := os.Open(filepath.Join(stateDir, rel))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading log: %w", err)
	}
	defer f.Close()
	r, err := o.DecryptReader(ctx, f, LogAAD(rel))
	if err != nil {
		return "", fmt.Errorf("reading log %s: %w", rel, err)
	}
	var b strings.Builder
	if _, err := io.Copy(&b, r); err != nil {
		return b.String(), fmt.Errorf("log %s ends early (its attempt was interrupted, or the file was damaged): %w", rel, err)
	}
	return b.String(), nil
}
