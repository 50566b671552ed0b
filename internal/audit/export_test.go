package audit_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/store"
)

// TestExportJSONLIsReverifiable re-verifies an export the way a third
// party would: from the lines alone, with SHA-256.
func TestExportJSONLIsReverifiable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	recordN(t, e.st, 5)
	var buf bytes.Buffer
	n, err := audit.Export(t.Context(), e.st, &buf, audit.FormatJSONL, store.AuditFilter{})
	if err != nil || n != 5 {
		t.Fatalf("Export = %d, %v", n, err)
	}
	prev := make([]byte, 32)
	sc := bufio.NewScanner(&buf)
	var seq int64
	for sc.Scan() {
		var line struct {
			Event    json.RawMessage `json:"event"`
			Hash     string          `json:"hash"`
			PrevHash string          `json:"prev_hash"`
			Seq      int64           `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		seq++
		ph, _ := hex.DecodeString(line.PrevHash)
		if line.Seq != seq || !bytes.Equal(ph, prev) {
			t.Fatalf("line %d: seq %d, prev %s: chain broken", seq, line.Seq, line.PrevHash)
		}
		sum := sha256.Sum256(append(append([]byte{}, prev...), line.Event...))
		if hex.EncodeToString(sum[:]) != line.Hash {
			t.Fatalf("line %d: hash does not cover the event bytes", seq)
		}
		prev = sum[:]
	}
	if seq != 5 {
		t.Fatalf("%d lines, want 5", seq)
	}
}

func TestExportOCSF(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, ev := range []audit.Event{
		{Time: at(1), Actor: "user:alice", Action: "secret.set", Resource: "secret:crm_dsn", Outcome: audit.OutcomeSuccess,
			Source: audit.SourceAPI, Address: "10.1.2.3:4000", RequestID: "req-1", Details: map[string]string{"version": "2"}},
		{Time: at(2), Actor: "user:bob", Action: "auth.login", Outcome: audit.OutcomeDenied, Reason: "bad password", Source: audit.SourceAPI},
		{Time: at(3), Actor: "local:root", Action: "key.retire", Resource: "kek:7", Outcome: audit.OutcomeFailure, Reason: "in use", Source: audit.SourceCLI},
	} {
		if err := audit.Record(t.Context(), e.st, ev); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := audit.Export(t.Context(), e.st, &buf, audit.FormatOCSF, store.AuditFilter{}); err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Class, Activity, Type, Status int
		Time                          int64
		User, Op, IP, Detail          string
	}
	var got []summary
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var o struct {
			ClassUID     int    `json:"class_uid"`
			ActivityID   int    `json:"activity_id"`
			TypeUID      int    `json:"type_uid"`
			StatusID     int    `json:"status_id"`
			StatusDetail string `json:"status_detail"`
			Time         int64  `json:"time"`
			Actor        struct {
				User struct{ Name string } `json:"user"`
			} `json:"actor"`
			API         struct{ Operation string } `json:"api"`
			SrcEndpoint struct{ IP string }        `json:"src_endpoint"`
		}
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatal(err)
		}
		got = append(got, summary{o.ClassUID, o.ActivityID, o.TypeUID, o.StatusID, o.Time, o.Actor.User.Name, o.API.Operation, o.SrcEndpoint.IP, o.StatusDetail})
	}
	want := []summary{
		{6003, 1, 600301, 1, at(1).UnixMilli(), "alice", "secret.set", "10.1.2.3", ""},
		{3002, 1, 300201, 2, at(2).UnixMilli(), "bob", "", "", "denied: bad password"},
		{6003, 4, 600304, 2, at(3).UnixMilli(), "root", "key.retire", "", "in use"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OCSF (-want +got):\n%s", diff)
	}
	if _, err := audit.Export(t.Context(), e.st, &buf, "xml", store.AuditFilter{}); err == nil {
		t.Error("Export with an unknown format: no error")
	}
}
