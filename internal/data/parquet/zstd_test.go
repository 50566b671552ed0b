package parquet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// TestZstdCodec checks the sink's zstd codec against the library's: what
// it writes, from several goroutines at once (compress.Codec must be safe
// for concurrent use), any zstd reader decodes, including pages larger
// than its window.
func TestZstdCodec(t *testing.T) {
	t.Parallel()
	c, err := newZstdCodec()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			var dst []byte
			for i := range 8 {
				var src []byte
				for r := range (i + 1) * 1500 * (g + 1) { // up to 1.4 MB, past the 512 KiB window
					src = fmt.Appendf(src, "user%d@example.com,%d;", r%5000, r)
				}
				out, err := c.Encode(dst, src)
				if err != nil {
					t.Error(err)
					return
				}
				if len(out) >= len(src) {
					t.Errorf("goroutine %d page %d: %d bytes compressed to %d", g, i, len(src), len(out))
				}
				dst = out // reused, as the library reuses its page buffers
				back, err := pq.Zstd.Decode(nil, out)
				if err != nil {
					t.Errorf("goroutine %d page %d: library decoder: %v", g, i, err)
					return
				}
				if !bytes.Equal(back, src) {
					t.Errorf("goroutine %d page %d: round trip differs", g, i)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.String() != pq.Zstd.String() || c.CompressionCodec() != pq.Zstd.CompressionCodec() {
		t.Errorf("codec = %s/%v, want the file to say %s/%v", c, c.CompressionCodec(), &pq.Zstd, pq.Zstd.CompressionCodec())
	}
}

// TestLargeBatches writes batches far larger than writeChunk, with strings
// long enough to fill several pages per row group, and reads them back.
func TestLargeBatches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rows := sample(5000)
	for k := range rows {
		if s, ok := rows[k][0].(string); ok {
			rows[k][0] = s + strings.Repeat(fmt.Sprint(k%10), 200)
		}
	}
	writeFile(t, dir, &Config{Path: "big.parquet", RowGroupSize: 3000}, allTypes,
		batchOf(allTypes, rows[:4500]), batchOf(allTypes, rows[4500:]))

	f, err := os.Open(filepath.Join(dir, "big.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := pq.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, rg := range pf.RowGroups() {
		got = append(got, rg.NumRows())
	}
	if want := fmt.Sprint([]int{3000, len(rows) - 3000}); fmt.Sprint(got) != want {
		t.Errorf("row group sizes = %v, want %s", got, want)
	}
	if cc := pf.Metadata().RowGroups[0].Columns[0].MetaData; cc.Codec != format.Zstd || cc.TotalUncompressedSize < 2*pq.DefaultPageBufferSize {
		t.Errorf("column s of row group 1: codec %v, %d bytes uncompressed; want zstd over several pages", cc.Codec, cc.TotalUncompressedSize)
	}

	src, err := OpenSource(context.Background(), &Config{Path: "big.parquet"}, testEnv(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if diff := cmp.Diff(rows, readAll(t, src)); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}
