package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Redacted replaces every occurrence of a registered secret value, or of one
// of its encodings, in text that passes through a Redactor.
const Redacted = "[REDACTED]"

// MinRedactLen is the shortest value, in bytes, that a Redactor registers.
//
// The trade-off: redacting every "a" or "42" would make logs unreadable while
// protecting almost nothing (a secret that short is guessable anyway), so
// shorter values are ignored by Add. A short secret must still never leak,
// so the Service refuses to store a value shorter than this: every value it
// can resolve is one the Redactor can catch. Four bytes is also the width of
// the prefix index that makes matching fast.
const MinRedactLen = 4

// minLineLen is the shortest line of a multi-line value that is registered
// on its own (see Add): long enough that ordinary log text does not collide
// with it, short enough to catch a line of a PEM key or a JSON credential
// file printed by itself.
const minLineLen = 16

// Redactor removes registered secret values from text. The zero value is not
// usable; create one with NewRedactor. It is safe for concurrent use: Add may
// run while writers and handlers redact, and takes effect for all text
// processed after it returns.
type Redactor struct {
	mu       sync.Mutex          // serialises Add
	values   map[string]struct{} // every pattern registered so far
	compiled atomic.Pointer[matcher]
}

// NewRedactor returns a Redactor with no values registered.
func NewRedactor() *Redactor {
	r := &Redactor{values: make(map[string]struct{})}
	r.compiled.Store(newMatcher(nil))
	return r
}

// Add registers a secret value. From then on, the value itself and each of
// these encodings of it are replaced by Redacted wherever they occur:
//
//   - standard and URL-safe base64, with and without padding;
//   - URL query escaping (space as "+") and path escaping (space as "%20");
//   - the value as it appears inside a JSON string (with and without the
//     HTML-safe escapes of encoding/json), and inside a Go quoted string
//     (the %q and slog text form);
//   - lowercase and uppercase hexadecimal, since dumping bytes with %x is a
//     common way for a value to end up in a debug line;
//   - the value with surrounding whitespace trimmed (a trailing newline from
//     a file or a pipe is easy to carry along), and each line of at least 16
//     bytes of a multi-line value (a PEM key printed line by line).
//
// Not covered: a value split across separately encoded pieces, or embedded
// inside a larger encoded blob (base64 of "user:password" in a Basic
// authorization header does not contain the base64 of "password"), and
// transformations such as compression or encryption. Those are why tasks
// should not print credentials in the first place.
//
// Values shorter than MinRedactLen bytes are ignored (see MinRedactLen).
func (r *Redactor) Add(value string) {
	if len(value) < MinRedactLen {
		return
	}
	variants := encodings(value)
	r.mu.Lock()
	defer r.mu.Unlock()
	added := false
	for _, v := range variants {
		if len(v) < MinRedactLen {
			continue
		}
		if _, ok := r.values[v]; !ok {
			r.values[v] = struct{}{}
			added = true
		}
	}
	if !added {
		return
	}
	pats := make([]string, 0, len(r.values))
	for v := range r.values {
		pats = append(pats, v)
	}
	r.compiled.Store(newMatcher(pats))
}

// encodings returns value and the encodings of it that Add registers.
func encodings(value string) []string {
	raw := []byte(value)
	out := []string{
		value,
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		url.QueryEscape(value),
		url.PathEscape(value),
		hex.EncodeToString(raw),
		strings.ToUpper(hex.EncodeToString(raw)),
		jsonInner(value, true),
		jsonInner(value, false),
	}
	if q := strconv.Quote(value); len(q) >= 2 {
		out = append(out, q[1:len(q)-1])
	}
	if t := strings.TrimSpace(value); t != value && len(t) >= MinRedactLen {
		out = append(out, encodings(t)...)
	}
	if strings.ContainsAny(value, "\r\n") {
		for line := range strings.FieldsFuncSeq(value, func(c rune) bool { return c == '\n' || c == '\r' }) {
			if line = strings.TrimSpace(line); len(line) >= minLineLen {
				out = append(out, line)
			}
		}
	}
	return out
}

// jsonInner is value as encoded inside a JSON string, without the quotes.
func jsonInner(value string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(value); err != nil {
		// Encoding a string cannot fail; the raw value is registered anyway.
		return value
	}
	s := strings.TrimSuffix(b.String(), "\n")
	return s[1 : len(s)-1]
}

// String returns s with every registered value and encoding replaced.
func (r *Redactor) String(s string) string {
	m := r.compiled.Load()
	if m.empty() || len(s) < MinRedactLen {
		return s
	}
	// Fast path: most strings contain no secret; avoid copying them.
	if !m.contains([]byte(s)) {
		return s
	}
	out, _, _ := m.redact(nil, []byte(s), 0, true)
	return string(out)
}

// Bytes is String for a byte slice; it returns a new slice when anything was
// redacted and b itself otherwise.
func (r *Redactor) Bytes(b []byte) []byte {
	m := r.compiled.Load()
	if m.empty() || !m.contains(b) {
		return b
	}
	out, _, _ := m.redact(nil, b, 0, true)
	return out
}

// Writer returns a WriteCloser that redacts everything written to it before
// passing it on to w. It catches a value split across Write calls by holding
// back the last (longest pattern − 1) bytes until the next Write or Close,
// so Close must be called to flush them; Close does not close w.
//
// Values added to the Redactor after a byte has been passed on cannot recall
// it: register secrets before the text that may contain them is written. The
// writer is safe for concurrent use (writes are serialised).
func (r *Redactor) Writer(w io.Writer) io.WriteCloser {
	return &redactWriter{r: r, w: w}
}

type redactWriter struct {
	r      *Redactor
	w      io.Writer
	mu     sync.Mutex
	tail   []byte // bytes not yet decided, at most maxLen−1 of them
	skip   int    // the first skip bytes of tail are inside a redaction already emitted
	out    []byte // reused output buffer
	closed bool
	err    error // sticky write error of w
}

func (rw *redactWriter) Write(p []byte) (int, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.closed {
		return 0, io.ErrClosedPipe
	}
	if rw.err != nil {
		return 0, rw.err
	}
	m := rw.r.compiled.Load()
	var buf []byte
	if len(rw.tail) == 0 {
		buf = p
	} else {
		rw.tail = append(rw.tail, p...)
		buf = rw.tail
	}
	out, consumed, skip := m.redact(rw.out[:0], buf, rw.skip, false)
	rw.out = out
	if len(out) > 0 {
		if _, err := rw.w.Write(out); err != nil {
			rw.err = err
			return 0, err
		}
	}
	rest := buf[consumed:]
	if len(rw.tail) == 0 {
		rw.tail = append(rw.tail[:0], rest...)
	} else {
		n := copy(rw.tail, rest)
		rw.tail = rw.tail[:n]
	}
	rw.skip = skip
	return len(p), nil
}

// Close flushes the bytes held back; it does not close the underlying writer.
func (rw *redactWriter) Close() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.closed {
		return nil
	}
	rw.closed = true
	if rw.err != nil {
		return rw.err
	}
	m := rw.r.compiled.Load()
	out, _, _ := m.redact(rw.out[:0], rw.tail, rw.skip, true)
	rw.tail, rw.out = nil, nil
	if len(out) > 0 {
		if _, err := rw.w.Write(out); err != nil {
			return err
		}
	}
	return nil
}

// indexBits sizes the prefix filter: 2^16 bits (8 KiB) stays in L1 cache
// and keeps false positives near 1% with a thousand patterns.
const indexBits = 16

// matcher is an immutable multi-pattern matcher. Every pattern is at least
// MinRedactLen bytes long, so each position of the text is tested by hashing
// its next four bytes into a bit filter; only on a hit are the patterns with
// that prefix compared. This costs a few instructions per byte whatever the
// number of patterns, which is all log text needs.
type matcher struct {
	filter []uint64
	byPre  map[uint32][][]byte // prefix → patterns, longest first
	maxLen int
}

func newMatcher(pats []string) *matcher {
	m := &matcher{filter: make([]uint64, (1<<indexBits)/64), byPre: make(map[uint32][][]byte)}
	for _, p := range pats {
		b := []byte(p)
		pre := binary.LittleEndian.Uint32(b)
		h := hashPrefix(pre)
		m.filter[h/64] |= 1 << (h % 64)
		m.byPre[pre] = append(m.byPre[pre], b)
		m.maxLen = max(m.maxLen, len(b))
	}
	for _, list := range m.byPre {
		sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	}
	return m
}

func (m *matcher) empty() bool { return m.maxLen == 0 }

func hashPrefix(v uint32) uint32 { return (v * 0x9E3779B1) >> (32 - indexBits) }

// matchAt returns the length of the longest pattern starting at buf[p], or 0.
func (m *matcher) matchAt(buf []byte, p int) int {
	if p+MinRedactLen > len(buf) {
		return 0
	}
	pre := binary.LittleEndian.Uint32(buf[p:])
	h := hashPrefix(pre)
	if m.filter[h/64]&(1<<(h%64)) == 0 {
		return 0
	}
	for _, pat := range m.byPre[pre] {
		if bytes.HasPrefix(buf[p:], pat) {
			return len(pat)
		}
	}
	return 0
}

// contains reports whether any pattern occurs in buf.
func (m *matcher) contains(buf []byte) bool {
	for p := 0; p+MinRedactLen <= len(buf); p++ {
		if m.matchAt(buf, p) > 0 {
			return true
		}
	}
	return false
}

// redact appends buf to out with every pattern occurrence replaced by
// Redacted. Overlapping or chained occurrences become one Redacted covering
// their union, so no fragment of any of them survives.
//
// skip says the first skip bytes of buf continue a redaction whose marker is
// already written. Unless final, only positions at which every pattern fits
// inside buf are decided: the rest (fewer than maxLen bytes) is left for the
// next call. redact returns the output, the number of bytes of buf consumed,
// and the skip value for the bytes that remain.
func (m *matcher) redact(out, buf []byte, skip int, final bool) ([]byte, int, int) {
	limit := len(buf)
	if !final {
		limit = len(buf) - (m.maxLen - 1)
		if m.maxLen == 0 {
			limit = len(buf)
		}
		if limit <= 0 {
			return out, 0, skip
		}
	}
	end := skip // end of the current redaction, exclusive
	lit := skip // start of literal bytes not yet written
	for p := 0; p < limit; p++ {
		n := m.matchAt(buf, p)
		if n == 0 {
			continue
		}
		if p >= end { // a new redaction starts
			out = append(out, buf[lit:p]...)
			out = append(out, Redacted...)
		}
		end = max(end, p+n)
		lit = end
	}
	if lit < limit {
		out = append(out, buf[lit:limit]...)
	}
	return out, limit, max(0, end-limit)
}
