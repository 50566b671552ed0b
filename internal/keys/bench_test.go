package keys_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/internal/artifact"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
)

// BenchmarkArtifactEncrypted writes and reads back 1M rows of 8 columns
// through internal/artifact, plain and through the keyring's envelope, to
// compare their throughput.
func BenchmarkArtifactEncrypted(b *testing.B) {
	for _, encrypted := range []bool{false, true} {
		name := "plaintext"
		if encrypted {
			name = "encrypted"
		}
		b.Run(name, func(b *testing.B) {
			const rows, per = 1 << 20, data.DefaultBatchSize
			e := newEnv(b)
			ctx := context.Background()
			batch := testBatch(per, 0)
			var bytes int64
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				id := fmt.Sprint("bench-", i)
				var opts artifact.Options
				if encrypted {
					opts = artifactOptions(ctx, e.kr, id)
				}
				path := filepath.Join(e.dir, "bench.arrow")
				w, err := artifact.Create(path, testSchema, opts)
				if err != nil {
					b.Fatal(err)
				}
				for range rows / per {
					if err := w.Write(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Commit(ctx); err != nil {
					b.Fatal(err)
				}
				info := w.Info()
				bytes = info.Bytes
				r, err := artifact.Open(path, info.SHA256, opts)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					bt, err := r.Next(ctx)
					if errors.Is(err, data.ErrEndOfInput) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					n += bt.Len
				}
				r.Close()
				if n != rows {
					b.Fatalf("read %d rows", n)
				}
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(rows)*float64(b.N)/secs, "records/s")
			b.ReportMetric(float64(bytes)*float64(b.N)/secs/1e6, "MB/s")
		})
	}
}

// BenchmarkRewrap10k re-wraps 10,000 stored data keys after a rotation.
func BenchmarkRewrap10k(b *testing.B) {
	const n = 10000
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b)
		ctx := context.Background()
		// Stored in one transaction, through a keyring over it, to keep
		// the setup short.
		err := e.db.InTx(ctx, func(tx store.Store) error {
			kr := keys.New(tx, e.kek, keys.Options{CacheSize: 1})
			for i := range n {
				if _, err := kr.NewDataKey(ctx, keys.PurposeArtifact, fmt.Sprint(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.kr.Rotate(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		moved, err := e.kr.Rewrap(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		if moved != n {
			b.Fatalf("re-wrapped %d, want %d", moved, n)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/rewrap10k")
}
