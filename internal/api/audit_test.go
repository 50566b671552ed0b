package api_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/api"
)

func TestAuditListVerifyExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sec := e.user("sec", "security-engineer", "")
	de := e.user("dee", "data-engineer", "")
	for _, path := range []string{"/audit", "/audit/export"} {
		if r := de.do(http.MethodGet, api.Prefix+path, nil); r.Status != http.StatusForbidden {
			t.Errorf("data engineer GET %s: %d, want 403", path, r.Status)
		}
	}
	if r := de.do(http.MethodPost, api.Prefix+"/audit/verify", nil); r.Status != http.StatusForbidden {
		t.Errorf("data engineer verifies: %d, want 403", r.Status)
	}

	// Paging by seq: pages follow each other without gap or overlap.
	var all []api.AuditEntry
	next := ""
	for range 100 {
		var p api.Page[api.AuditEntry]
		r := sec.do(http.MethodGet, api.Prefix+"/audit?limit=3&cursor="+next, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("audit page: %d %s", r.Status, r.Body)
		}
		r.decode(t, &p)
		all = append(all, p.Items...)
		if next = p.NextCursor; next == "" {
			break
		}
	}
	if len(all) < 4 {
		t.Fatalf("audit log has %d events, want several", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq != all[i-1].Seq+1 {
			t.Fatalf("pages skip or repeat: seq %d after %d", all[i].Seq, all[i-1].Seq)
		}
	}
	// The data engineer's refusals are recorded under their name.
	var p api.Page[api.AuditEntry]
	sec.do(http.MethodGet, api.Prefix+"/audit?actor=user:dee&action=access.decide&since=1h", nil).decode(t, &p)
	if len(p.Items) != 3 || slices.ContainsFunc(p.Items, func(en api.AuditEntry) bool { return en.Outcome != "denied" }) {
		t.Errorf("user:dee's decisions = %+v, want 3 denials", p.Items)
	}
	if r := sec.do(http.MethodGet, api.Prefix+"/audit?since=yesterday-ish", nil); r.Status != http.StatusBadRequest {
		t.Errorf("bad since: %d, want 400", r.Status)
	}

	var rep api.VerifyReport
	r := sec.do(http.MethodPost, api.Prefix+"/audit/verify", nil)
	r.decode(t, &rep)
	if r.Status != http.StatusOK || !rep.OK || rep.Events < int64(len(all)) || len(rep.Head) != 64 || rep.FirstBad != 0 {
		t.Errorf("verify: %d %s", r.Status, r.Body)
	}

	r = sec.do(http.MethodGet, api.Prefix+"/audit/export", nil)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-ndjson") {
		t.Fatalf("export: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		var line struct {
			Seq   int64           `json:"seq"`
			Hash  string          `json:"hash"`
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Seq != int64(lines+1) || len(line.Hash) != 64 {
			t.Fatalf("export line %d: %s (%v)", lines+1, sc.Bytes(), err)
		}
		lines++
	}
	if lines < len(all) {
		t.Errorf("export has %d lines, want at least %d", lines, len(all))
	}
	if r := sec.do(http.MethodGet, api.Prefix+"/audit/export?format=ocsf&action=access.decide", nil); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"class_uid"`)) {
		t.Errorf("OCSF export: %d %.300s", r.Status, r.Body)
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plat := e.user("plat", "platform-engineer", "")
	sec := e.user("sec", "security-engineer", "")
	if r := sec.do(http.MethodGet, api.Prefix+"/keys", nil); r.Status != http.StatusForbidden {
		t.Errorf("security engineer lists keys: %d, want 403", r.Status)
	}
	if r := sec.do(http.MethodPost, api.Prefix+"/keys/rotate", nil); r.Status != http.StatusForbidden {
		t.Errorf("security engineer rotates: %d, want 403", r.Status)
	}
	var kl api.KeyList
	plat.do(http.MethodGet, api.Prefix+"/keys", nil).decode(t, &kl)
	if kl.Source == "" || len(kl.Keys) != 1 || kl.Keys[0].Status != "primary" {
		t.Fatalf("keys = %+v", kl)
	}
	r := plat.do(http.MethodPost, api.Prefix+"/keys/rotate", nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("rotate: %d %s", r.Status, r.Body)
	}
	var k api.KeyView
	r.decode(t, &k)
	plat.do(http.MethodGet, api.Prefix+"/keys", nil).decode(t, &kl)
	if len(kl.Keys) != 2 || !slices.ContainsFunc(kl.Keys, func(x api.KeyView) bool { return x.ID == k.ID && x.Status == "primary" }) {
		t.Errorf("keys after rotation = %+v, want %d primary", kl.Keys, k.ID)
	}
	if !auditHas(t, sec, "key.rotate", "user:plat", "success") {
		t.Errorf("the rotation is not in the audit log")
	}
}

func TestSecretsMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	de := e.user("dee", "data-engineer", "")
	an := e.user("ann", "data-analyst", "")
	sec := e.user("sec", "security-engineer", "")
	value := "postgres://crm:very-secret-value-123@db/crm"
	if _, err := e.app.Secrets.Set(t.Context(), "crm_dsn", []byte(value), "user:dee"); err != nil {
		t.Fatal(err)
	}
	if r := an.do(http.MethodGet, api.Prefix+"/secrets", nil); r.Status != http.StatusForbidden {
		t.Errorf("analyst lists secrets: %d, want 403", r.Status)
	}
	r := de.do(http.MethodGet, api.Prefix+"/secrets", nil)
	var p api.Page[api.SecretView]
	r.decode(t, &p)
	if len(p.Items) != 1 || p.Items[0].Name != "crm_dsn" || p.Items[0].Version != 1 || p.Items[0].SetBy != "user:dee" {
		t.Errorf("secrets = %+v", p.Items)
	}
	if bytes.Contains(r.Body, []byte("very-secret")) {
		t.Fatalf("the listing shows the value: %s", r.Body)
	}
	if r := an.do(http.MethodDelete, api.Prefix+"/secrets/crm_dsn", nil); r.Status != http.StatusForbidden {
		t.Errorf("analyst deletes: %d, want 403", r.Status)
	}
	if n := secretKeys(t, e, "crm_dsn"); n == 0 {
		t.Fatal("the secret has no data key before its deletion")
	}
	if r := de.do(http.MethodDelete, api.Prefix+"/secrets/crm_dsn", nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	// Deleting a secret destroys its versions' data keys: a backup of its
	// sealed value cannot be opened any more.
	if n := secretKeys(t, e, "crm_dsn"); n != 0 {
		t.Errorf("%d data keys of the deleted secret remain", n)
	}
	if r := de.do(http.MethodDelete, api.Prefix+"/secrets/crm_dsn", nil); r.Status != http.StatusNotFound {
		t.Errorf("delete twice: %d, want 404", r.Status)
	}
	if !auditHas(t, sec, "secret.rm", "user:dee", "success") {
		t.Errorf("the deletion is not in the audit log")
	}
}

// secretKeys counts the data keys that protect versions of the secret.
func secretKeys(t *testing.T, e *env, name string) int {
	t.Helper()
	n, after := 0, ""
	for {
		ks, err := e.app.Store.ListDataKeys(t.Context(), after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			if strings.HasPrefix(k.Ref, "secret:"+name) {
				n++
			}
			after = k.ID
		}
		if len(ks) < 500 {
			return n
		}
	}
}
