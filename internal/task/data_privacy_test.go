package task

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/privacy"
	"github.com/sluicehq/sluice/internal/store"
)

const (
	guardCustomersCSV = "id,email,city\nc1,ann@example.com,Oslo\nc2,bob@example.org,Lima\nc3,cy@example.net,Pune\n"
	guardOrdersCSV    = "order_id,customer\n1,c1\n2,c2\n3,c3\n"
)

// guardSpec has an upstream customers dataset (for joins) and a task
// "out" with the given body, loading into jsonl (sink options extra).
func guardSpec(body, load string) string {
	return `pipeline: p
classification: confidential
tasks:
  customers:
    extract: {csv: {path: customers.csv}}
  out:
    needs: [customers]
` + body + `    load: {jsonl: {path: out.jsonl}` + load + `}
`
}

func runGuard(t *testing.T, body, load string) (*Job, Result, error) {
	t.Helper()
	crypt := testKeys(t)
	files := map[string]string{"customers.csv": guardCustomersCSV, "orders.csv": guardOrdersCSV}
	spec := guardSpec(body, load)
	up := dataJob(t, spec, "customers", files)
	upRes, err := NewData(data.Builtin, crypt).Execute(context.Background(), up)
	if err != nil {
		t.Fatal(err)
	}
	job := dataJob(t, spec, "out", files)
	job.StateDir = up.StateDir
	job.Inputs = map[string]store.Artifact{"customers": artifactOf(t, upRes, "output")}
	res, err := NewData(data.Builtin, crypt).Execute(context.Background(), job)
	return job, res, err
}

func TestGuardRefusesRawPII(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, column string
	}{
		{"direct", "    extract: {csv: {path: customers.csv}}\n", `column "email"`},
		{"declared", "    extract: {csv: {path: customers.csv}}\n    pii_columns: {city: street_address}\n    transform:\n      - pii: {email: hmac}\n", `column "city"`},
		{"renamed", "    extract: {csv: {path: customers.csv}}\n    transform:\n      - rename: {email: contact}\n", `column "contact"`},
		{"renamed declared", "    extract: {csv: {path: customers.csv}}\n    pii_columns: {city: street_address}\n    transform:\n      - pii: {email: hmac}\n      - rename: {city: town}\n", `column "town"`},
		{"derived", "    extract: {csv: {path: customers.csv}}\n    transform:\n      - derive: {contact: \"row.email\"}\n      - drop: [email]\n", `column "contact"`},
		{"derived in place", "    extract: {csv: {path: customers.csv}}\n    pii_columns: {email: email}\n    transform:\n      - derive: {email: \"row.email + ''\"}\n", `column "email"`},
		{"selected", "    extract: {csv: {path: customers.csv}}\n    transform:\n      - select: [id, email]\n", `column "email"`},
		{"joined", "    extract: {csv: {path: orders.csv}}\n    transform:\n      - join: {with: customers, on: {customer: id}, select: [email]}\n", `column "email"`},
		{"protected then replaced", "    extract: {csv: {path: customers.csv}}\n    transform:\n      - pii: {email: hmac}\n      - derive: {email: \"row.city + '@example.com'\"}\n", `column "email"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job, _, err := runGuard(t, tt.body, "")
			if !errors.Is(err, privacy.ErrRawPII) {
				t.Fatalf("error = %v, want ErrRawPII", err)
			}
			if !IsPermanent(err) {
				t.Errorf("error %v is not permanent", err)
			}
			if !strings.Contains(err.Error(), tt.column) || !strings.Contains(err.Error(), "pii") {
				t.Errorf("error %q does not name %s and the pii step", err, tt.column)
			}
			if _, serr := os.Stat(filepath.Join(job.Pipeline.Dir, "out.jsonl")); !errors.Is(serr, os.ErrNotExist) {
				t.Errorf("the sink wrote out.jsonl despite the guard (stat: %v)", serr)
			}
		})
	}
}

func TestGuardPassesProtectedPII(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, load, notIn string
	}{
		{"masked", "    extract: {csv: {path: customers.csv}}\n    transform:\n      - pii: {email: {mask: {keep_first: 1}}}\n", "", "ann@"},
		{"hmac renamed", "    extract: {csv: {path: customers.csv}}\n    pii_columns: {email: email}\n    transform:\n      - pii: {email: hmac}\n      - rename: {email: contact}\n", "", "ann@"},
		{"tokenized", "    extract: {csv: {path: customers.csv}}\n    transform:\n      - pii: {email: {tokenize: {subject: id}}}\n", "", "ann@"},
		{"dropped", "    extract: {csv: {path: customers.csv}}\n    pii_columns: {email: email}\n    transform:\n      - pii: {email: drop}\n", "", "ann@"},
		{"restricted sink", "    extract: {csv: {path: customers.csv}}\n    pii_columns: {email: email}\n", ", classification: restricted", ""},
		{"allowed", "    extract: {csv: {path: customers.csv}}\n    allow_raw_pii: {columns: [email], reason: the newsletter provider needs it}\n", "", ""},
		{"sensitivity at the sink's classification", "    extract: {csv: {path: customers.csv}}\n    pii_columns: {email: {type: email, sensitivity: confidential}}\n", "", ""},
		{"sensitivity below the sink's classification", "    extract: {csv: {path: customers.csv}}\n    pii_columns: {email: {type: email, sensitivity: internal}}\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job, res, err := runGuard(t, tt.body, tt.load)
			if err != nil {
				t.Fatal(err)
			}
			if res.RowsOut != 3 {
				t.Errorf("rows out = %d, want 3", res.RowsOut)
			}
			b, err := os.ReadFile(filepath.Join(job.Pipeline.Dir, "out.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.notIn != "" && strings.Contains(string(b), tt.notIn) {
				t.Errorf("output holds raw %q:\n%s", tt.notIn, b)
			}
			if tt.name == "allowed" && !strings.Contains(job.Log.(*strings.Builder).String(), "the newsletter provider needs it") {
				t.Errorf("task log does not record the reason: %q", job.Log)
			}
		})
	}
}

// TestGuardSensitivityAboveTheSink: a column declared confidential does
// not go raw into a sink classified internal, and the refusal says why.
func TestGuardSensitivityAboveTheSink(t *testing.T) {
	t.Parallel()
	body := "    extract: {csv: {path: customers.csv}}\n    pii_columns: {email: {type: email, sensitivity: confidential}}\n    transform:\n      - rename: {email: contact}\n"
	job, _, err := runGuard(t, body, ", classification: internal")
	if !errors.Is(err, privacy.ErrRawPII) || !IsPermanent(err) {
		t.Fatalf("error = %v, want a permanent ErrRawPII", err)
	}
	want := `column "contact" (email: declared in pii_columns as "email", renamed; sensitivity confidential, declared) reaches the jsonl sink (classification internal) unprotected: add a pii step before the step that renames "email" to "contact"`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %v\ndoes not say %s", err, want)
	}
	if _, serr := os.Stat(filepath.Join(job.Pipeline.Dir, "out.jsonl")); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("the sink wrote out.jsonl despite the guard (stat: %v)", serr)
	}
}

func TestRetainSetsExpiry(t *testing.T) {
	t.Parallel()
	spec := "pipeline: p\ntasks:\n  a:\n    extract: {csv: {path: orders.csv}}\n    retain: 2d\n"
	job := dataJob(t, spec, "a", map[string]string{"orders.csv": guardOrdersCSV})
	res, err := NewData(data.Builtin, testKeys(t)).Execute(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	a := artifactOf(t, res, "output")
	if d := a.ExpiresAt.Sub(a.Created); d < 47*60*60*1e9 || d > 49*60*60*1e9 {
		t.Errorf("expiry %v is %v after creation, want about 48h", a.ExpiresAt, d)
	}
}
