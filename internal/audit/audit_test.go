package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"

	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// env is a real store and keyring in a temporary state directory.
type env struct {
	st   *sqlite.DB
	kr   *keys.Keyring
	path string
}

func newEnv(t testing.TB) env {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.db")
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek, err := keys.LoadFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return env{st: st, kr: keys.New(st, kek, keys.Options{}), path: path}
}

// tamper opens a second connection on the database file, as somebody with
// access to the file would, drops the append-only triggers and runs stmts.
func tamper(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{
		`DROP TRIGGER IF EXISTS audit_events_no_update`, `DROP TRIGGER IF EXISTS audit_events_no_delete`,
		`DROP TRIGGER IF EXISTS audit_checkpoints_no_update`, `DROP TRIGGER IF EXISTS audit_checkpoints_no_delete`,
		`DROP TRIGGER IF EXISTS audit_signing_keys_no_update`,
	}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("tampering: %s: %v", s, err)
		}
	}
}

func at(sec int) time.Time { return time.Date(2026, 3, 1, 12, 0, sec, 0, time.UTC) }

func event(i int) audit.Event {
	return audit.Event{
		Time: at(i), Actor: fmt.Sprintf("user:u%d", i%3), Action: "secret.set", Resource: fmt.Sprintf("secret:s%d", i),
		Outcome: audit.OutcomeSuccess, Source: audit.SourceCLI, Details: map[string]string{"version": fmt.Sprint(i)},
	}
}

func recordN(t *testing.T, st store.Store, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		if err := audit.Record(t.Context(), st, event(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCanonical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ev   audit.Event
		want string
	}{
		{
			name: "full",
			ev: audit.Event{
				Time: time.Date(2026, 3, 1, 12, 0, 0, 500_000_000, time.FixedZone("CET", 3600)), Actor: "user:alice",
				Action: "secret.set", Resource: "secret:crm_dsn", Outcome: audit.OutcomeDenied, Reason: `no "binding"`,
				Source: audit.SourceAPI, Address: "10.0.0.1:5000", RequestID: "r1",
				Details: map[string]string{"version": "3", "b.x": "é\n\x01<&>"},
			},
			want: `{"action":"secret.set","actor":"user:alice","address":"10.0.0.1:5000","details":{"b.x":"é\n\u0001<&>","version":"3"},` +
				`"outcome":"denied","reason":"no \"binding\"","request_id":"r1","resource":"secret:crm_dsn","source":"api","time":"2026-03-01T11:00:00.5Z"}`,
		},
		{
			name: "minimal",
			ev:   audit.Event{Time: at(0), Actor: "local:root", Action: "key.rotate", Outcome: audit.OutcomeSuccess, Source: audit.SourceCLI},
			want: `{"action":"key.rotate","actor":"local:root","address":"","details":{},"outcome":"success","reason":"","request_id":"",` +
				`"resource":"","source":"cli","time":"2026-03-01T12:00:00Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := audit.Canonical(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Canonical (-want +got):\n%s", diff)
			}
			back, err := audit.ParseCanonical(got)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := audit.Canonical(back)
			if !bytes.Equal(again, got) {
				t.Errorf("round trip changed the encoding: %s", again)
			}
		})
	}
}

func TestChainHashIsSHA256OfPrevAndEvent(t *testing.T) {
	t.Parallel()
	prev := bytes.Repeat([]byte{0xab}, 32)
	canon := []byte(`{"a":"b"}`)
	want := sha256.Sum256(append(append([]byte{}, prev...), canon...))
	if got := audit.ChainHash(prev, canon); !bytes.Equal(got, want[:]) {
		t.Errorf("ChainHash = %x, want %x", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := event(1)
	tests := map[string]func(*audit.Event){
		"no actor":          func(e *audit.Event) { e.Actor = "" },
		"no action":         func(e *audit.Event) { e.Action = "" },
		"unknown outcome":   func(e *audit.Event) { e.Outcome = "maybe" },
		"unknown source":    func(e *audit.Event) { e.Source = "" },
		"bad utf8":          func(e *audit.Event) { e.Reason = "\xff" },
		"bad details key":   func(e *audit.Event) { e.Details = map[string]string{"Version": "1"} },
		"bad details value": func(e *audit.Event) { e.Details = map[string]string{"v": "\xfe"} },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ev := ok
			mutate(&ev)
			if err := ev.Validate(); !errors.Is(err, audit.ErrInvalidEvent) {
				t.Errorf("Validate = %v, want ErrInvalidEvent", err)
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid event: %v", err)
	}
}

func TestRecordChains(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	recordN(t, e.st, 3)
	got, err := audit.List(t.Context(), e.st, store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries, want 3", len(got))
	}
	prev := make([]byte, 32)
	for i, en := range got {
		if en.Seq != int64(i+1) {
			t.Errorf("entry %d: seq %d", i, en.Seq)
		}
		if !bytes.Equal(en.PrevHash, prev) {
			t.Errorf("entry %d: prev hash %x, want %x", i, en.PrevHash, prev)
		}
		canon, _ := audit.Canonical(en.Event)
		if !bytes.Equal(en.Hash, audit.ChainHash(prev, canon)) {
			t.Errorf("entry %d: hash does not cover its event", i)
		}
		if diff := cmp.Diff(event(i+1), en.Event); diff != "" {
			t.Errorf("entry %d (-want +got):\n%s", i, diff)
		}
		prev = en.Hash
	}
	rep, err := audit.Verify(t.Context(), e.st)
	if err != nil || !rep.OK() || rep.Events != 3 {
		t.Fatalf("Verify = %+v, %v; want 3 events, no problem", rep, err)
	}
}

func TestRecordConcurrentWritersStayLinear(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const writers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- audit.Record(t.Context(), e.st, event(w*each+i))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := audit.Verify(t.Context(), e.st)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Events != writers*each || rep.LastSeq != writers*each {
		t.Fatalf("Verify = %+v", rep)
	}
}

func secretRow(name string) store.Secret {
	return store.Secret{Name: name, Sealed: []byte("sealed"), DataKeyID: "dk", SetBy: "user:a", SetAt: at(0)}
}

func TestDo(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	tests := []struct {
		name        string
		action      func(tx store.Store) error
		breakAudit  bool
		wantErr     error
		wantSecret  bool
		wantOutcome audit.Outcome // "" means no event
		wantReason  string
	}{
		{
			name:        "success",
			action:      func(tx store.Store) error { _, err := tx.PutSecret(context.Background(), secretRow("s")); return err },
			wantSecret:  true,
			wantOutcome: audit.OutcomeSuccess,
		},
		{
			name: "action fails",
			action: func(tx store.Store) error {
				if _, err := tx.PutSecret(context.Background(), secretRow("s")); err != nil {
					return err
				}
				return boom
			},
			wantErr:     boom,
			wantOutcome: audit.OutcomeFailure,
			wantReason:  "boom",
		},
		{
			name:       "record fails",
			action:     func(tx store.Store) error { _, err := tx.PutSecret(context.Background(), secretRow("s")); return err },
			breakAudit: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.breakAudit {
				// The audit table refuses inserts: the action must not happen.
				tamper(t, e.path, `CREATE TRIGGER no_insert BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk says no'); END`)
			}
			ev := audit.Event{Actor: "user:a", Action: "secret.set", Resource: "secret:s", Source: audit.SourceCLI}
			err := audit.Do(t.Context(), e.st, ev, tt.action)
			switch {
			case tt.breakAudit:
				if err == nil || !strings.Contains(err.Error(), "disk says no") {
					t.Fatalf("Do = %v, want the audit write's error", err)
				}
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("Do = %v, want %v", err, tt.wantErr)
			}
			_, gerr := e.st.GetSecret(t.Context(), "s")
			if got := gerr == nil; got != tt.wantSecret {
				t.Errorf("secret stored = %v, want %v (%v)", got, tt.wantSecret, gerr)
			}
			got, err := audit.List(t.Context(), e.st, store.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantOutcome == "" {
				if len(got) != 0 {
					t.Fatalf("events = %+v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Outcome != tt.wantOutcome || got[0].Reason != tt.wantReason {
				t.Fatalf("events = %+v, want one %s (%q)", got, tt.wantOutcome, tt.wantReason)
			}
		})
	}
}

func TestTriggersRefuseEdits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	recordN(t, e.st, 2)
	cp := audit.NewCheckpointer(e.st, e.kr, audit.CheckpointOptions{})
	if _, err := cp.Checkpoint(t.Context()); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", e.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`UPDATE audit_events SET actor = 'x' WHERE seq = 1`,
		`DELETE FROM audit_events WHERE seq = 2`,
		`UPDATE audit_checkpoints SET seq = 1`,
		`DELETE FROM audit_checkpoints`,
		`UPDATE audit_signing_keys SET public_keyset = x'00'`,
		`DELETE FROM audit_signing_keys`,
	} {
		t.Run(s, func(t *testing.T) {
			if _, err := db.Exec(s); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("Exec = %v, want the append-only refusal", err)
			}
		})
	}
}

func TestCheckpointMaybe(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cp := audit.NewCheckpointer(e.st, e.kr, audit.CheckpointOptions{Every: 3})
	var made []int64
	for i := 1; i <= 7; i++ {
		recordN(t, e.st, 1)
		c, ok, err := cp.Maybe(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			made = append(made, c.Seq)
		}
	}
	if diff := cmp.Diff([]int64{3, 6}, made); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
	// On demand at the tail; again at the same tail gives the same one.
	c1, err := cp.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c2, err := cp.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c1.Seq != 7 || !bytes.Equal(c1.Signature, c2.Signature) {
		t.Errorf("checkpoints %+v, %+v: want one at 7", c1, c2)
	}
	rep, err := cp.Verify(t.Context())
	if err != nil || !rep.OK() || rep.Checkpoints != 3 || rep.LastCheckpoint != 7 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	// The signing key is stored sealed under a signing data key.
	k, err := e.st.LastAuditSigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dk, err := e.st.GetDataKey(t.Context(), k.DataKeyID)
	if err != nil || dk.Purpose != store.PurposeSigning {
		t.Fatalf("signing data key = %+v, %v", dk, err)
	}
	if bytes.Contains(k.Sealed, []byte("privateKey")) || !bytes.Contains(k.PublicKeyset, []byte("Ed25519PublicKey")) {
		t.Errorf("signing key: private half not sealed or public half not in clear")
	}
}

func TestCheckpointEmptyLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := audit.NewCheckpointer(e.st, e.kr, audit.CheckpointOptions{}).Checkpoint(t.Context())
	if !errors.Is(err, audit.ErrEmptyLog) {
		t.Fatalf("Checkpoint = %v, want ErrEmptyLog", err)
	}
}

// rehash recomputes every stored hash from seq from on, as an attacker who
// rewrites the chain would.
func rehash(t *testing.T, path string, from int64) {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var prev []byte
	if from == 1 {
		prev = make([]byte, 32)
	} else if err := db.QueryRow(`SELECT hash FROM audit_events WHERE seq = ?`, from-1).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT seq, event FROM audit_events WHERE seq >= ? ORDER BY seq`, from)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		seq int64
		ev  []byte
	}
	var rs []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.ev); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	rows.Close()
	for _, r := range rs {
		h := audit.ChainHash(prev, r.ev)
		if _, err := db.Exec(`UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?`, prev, h, r.seq); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	// Each case: 8 events, a checkpoint at 6, 2 more events (10 in all).
	tests := []struct {
		name     string
		tamper   func(t *testing.T, path string)
		wantKind audit.ProblemKind
		wantSeq  int64
	}{
		{
			name: "modified event",
			tamper: func(t *testing.T, p string) {
				tamper(t, p, `UPDATE audit_events SET event = CAST(replace(CAST(event AS TEXT), 'secret:s4', 'secret:zz') AS BLOB),
					resource = 'secret:zz' WHERE seq = 4`)
			},
			wantKind: audit.ProblemModified, wantSeq: 4,
		},
		{
			name: "modified filter column",
			tamper: func(t *testing.T, p string) {
				tamper(t, p, `UPDATE audit_events SET actor = 'user:nobody' WHERE seq = 5`)
			},
			wantKind: audit.ProblemMalformed, wantSeq: 5,
		},
		{
			name:     "deleted event",
			tamper:   func(t *testing.T, p string) { tamper(t, p, `DELETE FROM audit_events WHERE seq = 3`) },
			wantKind: audit.ProblemMissing, wantSeq: 3,
		},
		{
			name: "deleted and renumbered",
			tamper: func(t *testing.T, p string) {
				tamper(t, p, `DELETE FROM audit_events WHERE seq = 3`,
					`UPDATE audit_events SET seq = seq + 1000 WHERE seq > 3`, `UPDATE audit_events SET seq = seq - 1001 WHERE seq > 1000`)
			},
			wantKind: audit.ProblemBrokenLink, wantSeq: 3,
		},
		{
			name: "inserted event",
			tamper: func(t *testing.T, p string) {
				canon, err := audit.Canonical(audit.Event{Time: at(3), Actor: "user:mallory", Action: "secret.set",
					Outcome: audit.OutcomeSuccess, Source: audit.SourceCLI})
				if err != nil {
					t.Fatal(err)
				}
				tamper(t, p, `UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 3`, `UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000`,
					fmt.Sprintf(`INSERT INTO audit_events SELECT 3, %d, 'user:mallory', 'secret.set', '', 'success', x'%x', hash, x'00'
						FROM audit_events WHERE seq = 2`, at(3).UnixMicro(), canon),
				)
				// The inserted row's hash, computed properly.
				db, _ := sql.Open("sqlite", p)
				defer db.Close()
				var prev []byte
				if err := db.QueryRow(`SELECT hash FROM audit_events WHERE seq = 2`).Scan(&prev); err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(`UPDATE audit_events SET hash = ? WHERE seq = 3`, audit.ChainHash(prev, canon)); err != nil {
					t.Fatal(err)
				}
			},
			wantKind: audit.ProblemInserted, wantSeq: 3,
		},
		{
			name: "reordered events",
			tamper: func(t *testing.T, p string) {
				tamper(t, p, `UPDATE audit_events SET seq = 1004 WHERE seq = 4`, `UPDATE audit_events SET seq = 4 WHERE seq = 5`,
					`UPDATE audit_events SET seq = 5 WHERE seq = 1004`)
			},
			wantKind: audit.ProblemBrokenLink, wantSeq: 4,
		},
		{
			name: "rewritten chain",
			tamper: func(t *testing.T, p string) {
				tamper(t, p, `UPDATE audit_events SET event = CAST(replace(CAST(event AS TEXT), 'secret:s2', 'secret:zz') AS BLOB),
					resource = 'secret:zz' WHERE seq = 2`)
				rehash(t, p, 2)
			},
			wantKind: audit.ProblemCheckpointMismatch, wantSeq: 6,
		},
		{
			name:     "truncated tail",
			tamper:   func(t *testing.T, p string) { tamper(t, p, `DELETE FROM audit_events WHERE seq >= 6`) },
			wantKind: audit.ProblemTruncated, wantSeq: 6,
		},
		{
			name: "forged checkpoint signature",
			tamper: func(t *testing.T, p string) {
				// Change the last byte, whatever it was (an Ed25519
				// signature's last byte is 0x00 about once in 32).
				tamper(t, p, `UPDATE audit_checkpoints SET signature = CAST(substr(signature, 1, length(signature) - 1) ||
					CASE WHEN substr(signature, length(signature), 1) = x'00' THEN x'01' ELSE x'00' END AS BLOB) WHERE seq = 6`)
			},
			wantKind: audit.ProblemBadSignature, wantSeq: 6,
		},
		{
			name: "moved checkpoint",
			tamper: func(t *testing.T, p string) {
				tamper(t, p, `UPDATE audit_checkpoints SET seq = 9, hash = (SELECT hash FROM audit_events WHERE seq = 9)`)
			},
			wantKind: audit.ProblemBadSignature, wantSeq: 9,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			recordN(t, e.st, 6)
			cp := audit.NewCheckpointer(e.st, e.kr, audit.CheckpointOptions{})
			if _, err := cp.Checkpoint(t.Context()); err != nil {
				t.Fatal(err)
			}
			for i := 7; i <= 10; i++ {
				if err := audit.Record(t.Context(), e.st, event(i)); err != nil {
					t.Fatal(err)
				}
			}
			if rep, err := cp.Verify(t.Context()); err != nil || !rep.OK() {
				t.Fatalf("before tampering: Verify = %+v, %v", rep, err)
			}
			tt.tamper(t, e.path)
			for name, verify := range map[string]func(context.Context) (audit.Report, error){
				"Verify":              func(ctx context.Context) (audit.Report, error) { return audit.Verify(ctx, e.st) },
				"Checkpointer.Verify": cp.Verify,
			} {
				rep, err := verify(t.Context())
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if rep.OK() {
					t.Fatalf("%s: tampering not detected: %+v", name, rep)
				}
				if p := rep.Problems[0]; p.Kind != tt.wantKind || rep.FirstBad() != tt.wantSeq {
					t.Errorf("%s: first problem %v, want %s at %d", name, p, tt.wantKind, tt.wantSeq)
				}
			}
		})
	}
}

// An attacker with the file but not the KEK can rewrite the chain and sign
// it with a key of their own; Checkpointer.Verify finds the substituted key.
func TestVerifyDetectsSubstitutedSigningKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	recordN(t, e.st, 4)
	cp := audit.NewCheckpointer(e.st, e.kr, audit.CheckpointOptions{})
	c, err := cp.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite event 2, re-sign the new head with the attacker's own Tink
	// key, and put its public half in place of sluice's.
	tamper(t, e.path, `UPDATE audit_events SET event = CAST(replace(CAST(event AS TEXT), 'secret:s2', 'secret:zz') AS BLOB),
		resource = 'secret:zz' WHERE seq = 2`)
	rehash(t, e.path, 2)
	db, err := sql.Open("sqlite", e.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var head []byte
	if err := db.QueryRow(`SELECT hash FROM audit_events WHERE seq = 4`).Scan(&head); err != nil {
		t.Fatal(err)
	}
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.NewSigner(h)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(audit.CheckpointMessage(4, head, c.Time))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := h.Public()
	if err != nil {
		t.Fatal(err)
	}
	var pubJSON bytes.Buffer
	if err := pub.WriteWithNoSecrets(keyset.NewJSONWriter(&pubJSON)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE audit_signing_keys SET public_keyset = ?`, []any{pubJSON.Bytes()}},
		{`UPDATE audit_checkpoints SET hash = ?, signature = ?`, []any{head, sig}},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}

	// The store's own public key now vouches for the forgery: the plain
	// Verify, which trusts it, cannot tell (docs/audit.md says so).
	rep, err := audit.Verify(t.Context(), e.st)
	if err != nil || !rep.OK() {
		t.Fatalf("Verify = %+v, %v; want a pass (it trusts stored public keys)", rep, err)
	}
	rep, err = cp.Verify(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Problems[0].Kind != audit.ProblemSigningKey || rep.FirstBad() != 4 {
		t.Fatalf("Checkpointer.Verify = %+v, want a signing_key problem at 4", rep)
	}
}
