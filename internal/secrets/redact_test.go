package secrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// canary returns a unique random secret with characters that every encoding
// changes: space, '/', '+', '"', '<', '&', '%', a non-ASCII rune and a newline.
func canary(t testing.TB) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "c4n/" + hex.EncodeToString(b) + ` +"<&>%é` + "\tq"
}

// forbidden is every form of secret that must never appear in redacted
// output: the value and each encoding Add documents.
func forbidden(secret string) []string {
	raw := []byte(secret)
	q := fmt.Sprintf("%q", secret)
	return []string{
		secret,
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		url.QueryEscape(secret),
		url.PathEscape(secret),
		hex.EncodeToString(raw),
		strings.ToUpper(hex.EncodeToString(raw)),
		jsonInner(secret, true),
		jsonInner(secret, false),
		q[1 : len(q)-1],
	}
}

// assertClean fails if out contains secret in any registered form.
func assertClean(t testing.TB, out []byte, secret string) {
	t.Helper()
	for _, f := range forbidden(secret) {
		if bytes.Contains(out, []byte(f)) {
			t.Fatalf("output contains the secret (form %q):\n%s", f, out)
		}
	}
}

// textWithEverything embeds secret in every form, between ordinary text.
func textWithEverything(secret string) string {
	var b strings.Builder
	for i, f := range forbidden(secret) {
		fmt.Fprintf(&b, "line %d: value=%s; end\n", i, f)
	}
	return b.String()
}

func TestRedactorString(t *testing.T) {
	t.Parallel()
	r := NewRedactor()
	r.Add("hunter2hunter2")
	r.Add("abc") // below MinRedactLen: ignored
	r.Add("s3cr3t\n")
	tests := []struct {
		name, in, want string
	}{
		{"plain", "password is hunter2hunter2.", "password is [REDACTED]."},
		{"twice", "hunter2hunter2 and hunter2hunter2", "[REDACTED] and [REDACTED]"},
		{"overlapping occurrences", "hunter2hunter2hunter2", "[REDACTED]"},
		{"base64", "b64=" + base64.StdEncoding.EncodeToString([]byte("hunter2hunter2")), "b64=[REDACTED]"},
		{"hex", "x=" + hex.EncodeToString([]byte("hunter2hunter2")), "x=[REDACTED]"},
		{"short value kept", "abc abc", "abc abc"},
		{"trimmed value", "pw=s3cr3t ok", "pw=[REDACTED] ok"},
		{"prefix only", "hunter2hunter", "hunter2hunter"},
		{"empty", "", ""},
		{"no secret", "nothing to see", "nothing to see"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, r.String(tt.in)); diff != "" {
				t.Errorf("String(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestRedactorOverlapsBecomeOneRedaction(t *testing.T) {
	t.Parallel()
	r := NewRedactor()
	r.Add("abcdefgh")
	r.Add("efghijkl")
	r.Add("zzzz")
	tests := []struct{ name, in, want string }{
		{"overlap", "<abcdefghijkl>", "<[REDACTED]>"},
		{"chain of one pattern", "zzzzzzzzzz!", "[REDACTED]!"},
		{"adjacent", "abcdefghzzzz", "[REDACTED][REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := r.String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
			var buf bytes.Buffer
			w := r.Writer(&buf)
			for i := range len(tt.in) { // one byte per Write: the hardest split
				if _, err := w.Write([]byte{tt.in[i]}); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.want {
				t.Errorf("Writer byte by byte = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRedactorMultiLineValue(t *testing.T) {
	t.Parallel()
	key := "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	r := NewRedactor()
	r.Add(key)
	got := r.String("debug: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n")
	if want := "debug: [REDACTED]\n"; got != want {
		t.Errorf("a line of a multi-line value: got %q, want %q", got, want)
	}
	js := r.String(`{"key":"` + jsonInner(key, true) + `"}`)
	if want := `{"key":"[REDACTED]"}`; js != want {
		t.Errorf("JSON-escaped multi-line value: got %q, want %q", js, want)
	}
}

// TestWriterEverySplit is the canary test of the streaming path: the text
// holds the secret in every encoding, and is written in two pieces split at
// every possible point, then in three pieces around each occurrence.
func TestWriterEverySplit(t *testing.T) {
	t.Parallel()
	secret := canary(t)
	r := NewRedactor()
	r.Add(secret)
	text := textWithEverything(secret)
	want := r.String(text)
	assertClean(t, []byte(want), secret)
	if strings.Count(want, Redacted) != len(forbidden(secret)) {
		t.Fatalf("String redacted %d occurrences, want %d:\n%s", strings.Count(want, Redacted), len(forbidden(secret)), want)
	}
	for split := 0; split <= len(text); split++ {
		var buf bytes.Buffer
		w := r.Writer(&buf)
		for _, piece := range []string{text[:split], text[split:]} {
			if _, err := io.WriteString(w, piece); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Fatalf("split at %d: got\n%s\nwant\n%s", split, buf.String(), want)
		}
	}
	// Three pieces: a one-byte middle at every position.
	for i := 0; i < len(text); i++ {
		var buf bytes.Buffer
		w := r.Writer(&buf)
		for _, piece := range []string{text[:i], text[i : i+1], text[i+1:]} {
			if _, err := io.WriteString(w, piece); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Fatalf("one-byte piece at %d: got\n%s\nwant\n%s", i, buf.String(), want)
		}
	}
}

func TestWriterCloseAndErrors(t *testing.T) {
	t.Parallel()
	r := NewRedactor()
	r.Add("topsecretvalue")
	t.Run("close flushes the held-back tail", func(t *testing.T) {
		t.Parallel()
		var buf bytes.Buffer
		w := r.Writer(&buf)
		if _, err := io.WriteString(w, "ends with topsecret"); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "topsecret") {
			t.Fatalf("a possible prefix of a secret was passed on before Close: %q", buf.String())
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got, want := buf.String(), "ends with topsecret"; got != want {
			t.Errorf("after Close got %q, want %q", got, want)
		}
		if _, err := w.Write([]byte("x")); !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("Write after Close: err = %v, want io.ErrClosedPipe", err)
		}
	})
	t.Run("write error is sticky", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("disk full")
		w := r.Writer(failWriter{boom})
		if _, err := io.WriteString(w, strings.Repeat("x", 100)); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
		if _, err := io.WriteString(w, "y"); !errors.Is(err, boom) {
			t.Errorf("second write err = %v, want %v", err, boom)
		}
		if err := w.Close(); !errors.Is(err, boom) {
			t.Errorf("Close err = %v, want %v", err, boom)
		}
	})
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriterConcurrentWritesAndAdds(t *testing.T) {
	t.Parallel()
	r := NewRedactor()
	secrets, extra := make([]string, 20), make([]string, 20)
	for i := range secrets {
		secrets[i], extra[i] = canary(t), canary(t)
	}
	var buf bytes.Buffer
	w := r.Writer(&buf)
	var wg sync.WaitGroup
	for i, s := range secrets {
		r.Add(s) // registered before any text holding it is written
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(w, "writer %d: %s\n", i, s)
			r.Add(extra[i]) // concurrent Adds while others write
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		assertClean(t, buf.Bytes(), s)
	}
	if got := strings.Count(buf.String(), Redacted); got != len(secrets) {
		t.Errorf("%d redactions, want %d:\n%s", got, len(secrets), buf.String())
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return "stringer(" + s.s + ")" }

type payload struct {
	User     string
	Password string
}

type valuer struct{ s string }

func (v valuer) LogValue() slog.Value { return slog.StringValue(v.s) }

// TestHandlerCanary logs the canary through every kind of attribute and both
// standard handlers, and scans the bytes written.
func TestHandlerCanary(t *testing.T) {
	t.Parallel()
	secret := canary(t)
	r := NewRedactor()
	r.Add(secret)
	records := []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"message", func(l *slog.Logger) { l.Info("connecting with " + secret) }},
		{"string attr", func(l *slog.Logger) { l.Info("x", "dsn", "postgres://u:"+secret+"@h/db") }},
		{"error attr", func(l *slog.Logger) { l.Error("x", "err", fmt.Errorf("dial: %w", errors.New("bad password "+secret))) }},
		{"stringer attr", func(l *slog.Logger) { l.Info("x", "v", stringer{secret}) }},
		{"bytes attr", func(l *slog.Logger) { l.Info("x", "body", []byte("token="+secret)) }},
		{"struct attr", func(l *slog.Logger) { l.Info("x", "p", payload{"u", secret}) }},
		{"map attr", func(l *slog.Logger) { l.Info("x", "m", map[string]string{"k": secret}) }},
		{"pointer attr", func(l *slog.Logger) { l.Info("x", "p", &payload{"u", secret}) }},
		{"log valuer", func(l *slog.Logger) { l.Info("x", "v", valuer{secret}) }},
		{"group", func(l *slog.Logger) {
			l.Info("x", slog.Group("conn", "host", "h", slog.Group("auth", "password", secret)))
		}},
		{"with attrs", func(l *slog.Logger) { l.With("pw", secret).Info("x") }},
		{"with group", func(l *slog.Logger) { l.WithGroup("g").Info("x", "pw", secret) }},
		{"key", func(l *slog.Logger) { l.Info("x", secret, 1) }},
		{"base64 in message", func(l *slog.Logger) {
			l.Info("header " + base64.StdEncoding.EncodeToString([]byte(secret)))
		}},
	}
	handlers := []struct {
		name string
		new  func(io.Writer) slog.Handler
	}{
		{"text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }},
		{"json", func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }},
	}
	for _, h := range handlers {
		for _, rec := range records {
			t.Run(h.name+"/"+rec.name, func(t *testing.T) {
				t.Parallel()
				var buf bytes.Buffer
				rec.log(slog.New(r.Handler(h.new(&buf))))
				if buf.Len() == 0 {
					t.Fatal("nothing logged")
				}
				assertClean(t, buf.Bytes(), secret)
				if !strings.Contains(buf.String(), Redacted) {
					t.Errorf("no %s marker in %s", Redacted, buf.String())
				}
			})
		}
	}
}

func TestHandlerKeepsCleanValues(t *testing.T) {
	t.Parallel()
	r := NewRedactor()
	r.Add("123456")
	var buf bytes.Buffer
	l := slog.New(r.Handler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	l.Info("ok", "n", 42, "pin", 123456, "ok", true, "s", "plain")
	want := `{"level":"INFO","msg":"ok","n":42,"pin":"[REDACTED]","ok":true,"s":"plain"}` + "\n"
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !r.Handler(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})).Enabled(context.Background(), slog.LevelWarn) {
		t.Error("Enabled(warn) = false, want the inner handler's answer true")
	}
}

func TestBytes(t *testing.T) {
	t.Parallel()
	r := NewRedactor()
	clean := []byte("no secret here")
	if got := r.Bytes(clean); &got[0] != &clean[0] {
		t.Error("Bytes copied a slice with nothing to redact")
	}
	r.Add("p4ssw0rd")
	if got, want := string(r.Bytes([]byte("x p4ssw0rd y"))), "x [REDACTED] y"; got != want {
		t.Errorf("Bytes = %q, want %q", got, want)
	}
}

// FuzzRedactWriter writes a text holding a secret in random chunks and
// checks that neither the secret nor any registered encoding gets through,
// and that the output equals the one-shot String result.
func FuzzRedactWriter(f *testing.F) {
	f.Add([]byte("prefix "), []byte(" suffix"), "s3cr3t-value", []byte{3, 1, 7})
	f.Add([]byte(""), []byte(""), "aaaa", []byte{1})
	f.Add([]byte("aaaaaa"), []byte("aaa"), "aaaa", []byte{2, 2, 2})
	f.Add([]byte("x\n"), []byte("\"}"), "pa ss/wo+rd\"é", []byte{0, 5, 200})
	f.Fuzz(func(t *testing.T, before, after []byte, secret string, chunks []byte) {
		if len(secret) < MinRedactLen {
			return
		}
		r := NewRedactor()
		r.Add(secret)
		r.Add("another-registered-secret")
		var text []byte
		text = append(text, before...)
		for i, form := range forbidden(secret) {
			text = append(text, form...)
			if i < len(after) {
				text = append(text, after[:i]...)
			}
		}
		text = append(text, after...)
		want := r.String(string(text))

		var buf bytes.Buffer
		w := r.Writer(&buf)
		rest := text
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(chunks) > 0 {
				n = min(n, 1+int(chunks[i%len(chunks)])%32)
			}
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.String() != want {
			t.Fatalf("chunked output differs from String:\n got %q\nwant %q", buf.String(), want)
		}
		// The secret may legitimately reappear only if removing every
		// occurrence rebuilt it from surrounding text containing the
		// marker, which a registered value never contains.
		if !strings.Contains(secret, Redacted) && !containsRedactedForm(secret) {
			assertClean(t, buf.Bytes(), secret)
		}
	})
}

// containsRedactedForm reports whether an encoding of secret could be made
// of the marker's own characters, the one way redacted output can contain
// a registered pattern.
func containsRedactedForm(secret string) bool {
	for _, f := range forbidden(secret) {
		if strings.Contains(Redacted, f) || strings.Contains(f, Redacted) {
			return true
		}
		for i := 1; i < len(f); i++ {
			if strings.HasSuffix(Redacted, f[:i]) || strings.HasPrefix(Redacted, f[i:]) {
				return true
			}
		}
	}
	return false
}

// BenchmarkRedactWriter measures the streaming redactor over log-like text
// with 50 secrets registered (each with its encodings), written in 4 KiB
// chunks as a child process's output arrives.
func BenchmarkRedactWriter(b *testing.B) {
	r := NewRedactor()
	for range 50 {
		r.Add(canary(b))
	}
	var text bytes.Buffer
	for i := 0; text.Len() < 1<<20; i++ {
		fmt.Fprintf(&text, "2026-01-02T03:04:05Z INFO task=load run=r-%d rows=%d msg=\"wrote batch to s3://bucket/path/part-%05d.parquet\"\n", i, i*17, i)
	}
	data := text.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		w := r.Writer(io.Discard)
		for off := 0; off < len(data); off += 4096 {
			if _, err := w.Write(data[off:min(off+4096, len(data))]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
