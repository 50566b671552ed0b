package csv

import (
	"bytes"
	"context"
	stdcsv "encoding/csv"
	"errors"
	"io"
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

// FuzzCSVSource checks that the source never panics and accounts for every
// record: each record the standard library parser finds (good or bad)
// appears exactly once, at the same line, either in a batch or in the
// quarantine.
func FuzzCSVSource(f *testing.F) {
	for _, s := range []string{
		"1,a,1.5\n2,b,2.5\n",
		"1,\"a,b\",3\n\"x\"y,1,2\n",
		"1,a\n1,a,2,3\n",
		"\"multi\nline\",a,1\n\n\n2,b,c\r\n",
		"1,\xff,2\n",
		"a\"b,c,d\n\"unterminated,1,2\n3,4,5",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if bytes.HasPrefix(in, []byte("\xef\xbb\xbf")) {
			in = in[3:] // the source drops a byte order mark; the reference does not
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "f.csv"), in, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := &Config{Path: "f.csv", Delimiter: ",", Columns: []string{"a", "b", "c"},
			Schema: fileio.Columns{{Name: "a", Type: data.Int}, {Name: "b", Type: data.String}, {Name: "c", Type: data.Float}}}
		q := &quarantine{}
		env := testEnv(dir, q)
		env.BatchSize = 2
		src, err := OpenSource(context.Background(), cfg, env)
		if err != nil {
			t.Fatalf("OpenSource: %v", err)
		}
		defer src.Close()
		var got []int64
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
			got = append(got, b.Pos...)
		}
		prefix := filepath.Join(dir, "f.csv") + ":"
		for _, r := range q.rejs {
			n, err := strconv.ParseInt(strings.TrimPrefix(r.Pos, prefix), 10, 64)
			if err != nil || r.Reason == "" {
				t.Fatalf("bad reject %+v", r)
			}
			got = append(got, n)
		}
		slices.Sort(got)

		var want []int64
		ref := stdcsv.NewReader(bytes.NewReader(in))
		ref.FieldsPerRecord = -1
		for {
			_, err := ref.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			var pe *stdcsv.ParseError
			if errors.As(err, &pe) {
				want = append(want, int64(pe.StartLine))
				continue
			}
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			line, _ := ref.FieldPos(0)
			want = append(want, int64(line))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("record lines (-reference +source):\n%s", diff)
		}
	})
}
