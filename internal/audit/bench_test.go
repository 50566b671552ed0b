package audit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// BenchmarkRecordDurable measures appending events one transaction each,
// with synchronous=FULL: every event is on stable storage when Record
// returns.
func BenchmarkRecordDurable(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "s.db"), sqlite.Options{Synchronous: sqlite.SyncFull})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	ev := event(1)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := audit.Record(ctx, st, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkVerify1M measures verifying a chain of one million events (the
// chain is built first, in one transaction, outside the timing).
func BenchmarkVerify1M(b *testing.B) {
	const n = 1_000_000
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "s.db"), sqlite.Options{Synchronous: sqlite.SyncNormal})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	err = st.InTx(ctx, func(tx store.Store) error {
		prev := make([]byte, audit.HashSize)
		for i := 1; i <= n; i++ {
			ev := event(i % 1000)
			canon, err := audit.Canonical(ev)
			if err != nil {
				return err
			}
			h := audit.ChainHash(prev, canon)
			if err := tx.AppendAudit(ctx, store.AuditRecord{Seq: int64(i), Time: ev.Time, Actor: ev.Actor, Action: ev.Action,
				Resource: ev.Resource, Outcome: string(ev.Outcome), Event: canon, PrevHash: prev, Hash: h}); err != nil {
				return err
			}
			prev = h
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		rep, err := audit.Verify(ctx, st)
		if err != nil || !rep.OK() || rep.Events != n {
			b.Fatalf("Verify = %+v, %v", rep, err)
		}
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/verify")
}
