package jsonl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// FuzzJSONLSource checks that the source never panics, that every
// non-blank line is either in a batch or quarantined (exactly once, at
// its line number), and that it agrees with encoding/json on validity: a
// line it accepts is valid JSON, and a line it calls invalid JSON is not.
func FuzzJSONLSource(f *testing.F) {
	for _, s := range []string{
		`{"id": 1, "name": "x", "score": 1.5, "ok": true, "at": "2024-01-01T00:00:00Z"}` + "\n" + `{"id": "bad"}`,
		`{"name": "\ud83d\ude00\n", "extra": {"a": [1, 2, {"b": null}]}}` + "\r\n\n[1]\n",
		`{"id": 1e3, "score": -0.0e-5}` + "\n" + `{"id":1,"id":2}`,
		"{\"name\": \"\xff\"}\n  \n{}",
	} {
		f.Add([]byte(s))
	}
	schema := fileio.Columns{{Name: "id", Type: data.Int}, {Name: "name", Type: data.String},
		{Name: "score", Type: data.Float}, {Name: "ok", Type: data.Bool}, {Name: "at", Type: data.Timestamp}}
	f.Fuzz(func(t *testing.T, in []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "f.jsonl"), in, 0o600); err != nil {
			t.Fatal(err)
		}
		q := &quarantine{}
		src, err := OpenSource(context.Background(), &Config{Path: "f.jsonl", Schema: schema}, testEnv(dir, q))
		if err != nil {
			t.Fatalf("OpenSource: %v", err)
		}
		defer src.Close()
		var accepted []int64
		for {
			b, err := src.Next(context.Background())
			if errors.Is(err, data.ErrEndOfInput) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if len(b.Pos) != b.Len {
				t.Fatalf("%d positions for %d rows", len(b.Pos), b.Len)
			}
			accepted = append(accepted, b.Pos...)
		}

		text := bytes.TrimPrefix(in, []byte("\xef\xbb\xbf"))
		lines := bytes.Split(text, []byte("\n"))
		line := func(n int64) []byte { return bytes.TrimSuffix(lines[n-1], []byte("\r")) }
		var want []int64
		for i := range lines {
			if !isBlank(line(int64(i + 1))) {
				want = append(want, int64(i+1))
			}
		}
		got := slices.Clone(accepted)
		prefix := filepath.Join(dir, "f.jsonl") + ":"
		for _, r := range q.rejs {
			n, err := strconv.ParseInt(strings.TrimPrefix(r.Pos, prefix), 10, 64)
			if err != nil || r.Reason == "" {
				t.Fatalf("bad reject %+v", r)
			}
			if r.Raw != string(line(n)) {
				t.Fatalf("reject at %d: raw %q, line %q", n, r.Raw, line(n))
			}
			if strings.HasPrefix(r.Reason, "invalid JSON") && json.Valid([]byte(r.Raw)) {
				t.Fatalf("line %d %q: called %q, but encoding/json accepts it", n, r.Raw, r.Reason)
			}
			got = append(got, n)
		}
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("line accounting (-non-blank lines +batches and rejects):\n%s", diff)
		}
		for _, n := range accepted {
			if !json.Valid(line(n)) {
				t.Fatalf("line %d %q accepted but not valid JSON", n, line(n))
			}
		}
	})
}
