package privacy_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/privacy"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// testEnv is a real SQLite store and keyring in a temporary state
// directory.
type testEnv struct {
	dir string
	db  *sqlite.DB
	kek *keys.FileKEK
	kr  *keys.Keyring
}

func newEnv(t testing.TB) *testEnv {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "sluice.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	kek, err := keys.LoadFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{dir: dir, db: db, kek: kek, kr: keys.New(db, kek, keys.Options{})}
}

func strCol(vals ...string) *data.Column {
	c := &data.Column{Type: data.String}
	for i, v := range vals {
		c.Strings = append(c.Strings, v)
		if v == "<null>" {
			c.Strings[i] = ""
			c.SetNull(i, len(vals))
		}
	}
	return c
}

// render shows a column's values as strings, "<null>" for null.
func render(c *data.Column) []string {
	var out []string
	n := len(c.Strings) + len(c.Ints) + len(c.Times) + len(c.Floats)
	for r := 0; r < n; r++ {
		if c.IsNull(r) {
			out = append(out, "<null>")
			continue
		}
		out = append(out, privacy.ValueString(c, r))
	}
	return out
}

func apply(t *testing.T, rule privacy.Rule, in *data.Column, tok *privacy.Tokenizer) ([]string, []string) {
	t.Helper()
	o, err := privacy.NewOperator(rule, in.Type, tok)
	if err != nil {
		t.Fatal(err)
	}
	n := len(in.Strings) + len(in.Ints) + len(in.Times) + len(in.Floats)
	var dst data.Column
	var rejects []string
	err = o.Apply(t.Context(), &dst, in, in, n, func(r int, reason string) error {
		rejects = append(rejects, reason)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return render(&dst), rejects
}

func TestOperatorsWithoutKeys(t *testing.T) {
	t.Parallel()
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	tests := []struct {
		name    string
		rule    privacy.Rule
		in      *data.Column
		want    []string
		rejects int
	}{
		{"redact", privacy.Rule{Op: privacy.OpRedact}, strCol("123-45-6789", "<null>"), []string{"<null>", "<null>"}, 0},
		{"mask keep last", privacy.Rule{Op: privacy.OpMask, KeepLast: 4}, strCol("+4915112345678", "<null>"), []string{"**********5678", "<null>"}, 0},
		{"mask keep first with char", privacy.Rule{Op: privacy.OpMask, KeepFirst: 2, Char: "#"}, strCol("Zoë Ångström"), []string{"Zo##########"}, 0},
		{"mask too short hides all", privacy.Rule{Op: privacy.OpMask, KeepLast: 4}, strCol("1234"), []string{"****"}, 0},
		{"generalize year string", privacy.Rule{Op: privacy.OpGeneralize, Date: privacy.DateYear}, strCol("1985-07-14", "14/07/1985"), []string{"1985", "<null>"}, 1},
		{"generalize month timestamp", privacy.Rule{Op: privacy.OpGeneralize, Date: privacy.DateMonth},
			&data.Column{Type: data.Timestamp, Times: []time.Time{day("1985-07-14")}}, []string{"1985-07-01T00:00:00Z"}, 0},
		{"generalize int width", privacy.Rule{Op: privacy.OpGeneralize, Width: 10},
			&data.Column{Type: data.Int, Ints: []int64{37, 40, -3}}, []string{"30-39", "40-49", "-10--1"}, 0},
		{"generalize float width", privacy.Rule{Op: privacy.OpGeneralize, Width: 2.5},
			&data.Column{Type: data.Float, Floats: []float64{6.1}}, []string{"[5, 7.5)"}, 0},
		{"generalize prefix", privacy.Rule{Op: privacy.OpGeneralize, Prefix: 3}, strCol("SW1A 1AA", "75"), []string{"SW1", "75"}, 0},
		{"generalize ip", privacy.Rule{Op: privacy.OpGeneralize, IPv4Prefix: 24},
			strCol("192.168.7.42", "2001:db8:abcd:12::1", "::ffff:10.1.2.3", "nope"),
			[]string{"192.168.7.0/24", "2001:db8:abcd::/48", "10.1.2.0/24", "<null>"}, 1},
		{"mask spans", privacy.Rule{Op: privacy.OpMaskSpans}, strCol("mail ann@example.com now", "nothing here"),
			[]string{"mail [EMAIL] now", "nothing here"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, rejects := apply(t, tt.rule, tt.in, nil)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("values (-want +got):\n%s", d)
			}
			if len(rejects) != tt.rejects {
				t.Errorf("rejects = %q, want %d", rejects, tt.rejects)
			}
		})
	}
}

func TestOperatorTypeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rule privacy.Rule
		in   data.Type
		want string
	}{
		{"mask int", privacy.Rule{Column: "n", Op: privacy.OpMask}, data.Int, "needs a string column"},
		{"year of int", privacy.Rule{Column: "n", Op: privacy.OpGeneralize, Date: privacy.DateYear}, data.Int, "timestamp or a YYYY-MM-DD"},
		{"width of string", privacy.Rule{Column: "s", Op: privacy.OpGeneralize, Width: 10}, data.String, "int or float"},
		{"fractional width of int", privacy.Rule{Column: "n", Op: privacy.OpGeneralize, Width: 2.5}, data.Int, "whole one"},
		{"two generalizations", privacy.Rule{Column: "s", Op: privacy.OpGeneralize, Prefix: 2, IPv4Prefix: 8}, data.String, "exactly one"},
		{"unknown", privacy.Rule{Column: "s", Op: "shred"}, data.String, "unknown operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := privacy.NewOperator(tt.rule, tt.in, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestKeyedOperatorsNeedKeys(t *testing.T) {
	t.Parallel()
	o, err := privacy.NewOperator(privacy.Rule{Column: "e", Op: privacy.OpHMAC}, data.String, nil)
	if err != nil {
		t.Fatal(err)
	}
	var dst data.Column
	err = o.Apply(t.Context(), &dst, strCol("a"), nil, 1, nil)
	if !errors.Is(err, privacy.ErrNoKeys) {
		t.Errorf("error = %v, want ErrNoKeys", err)
	}
}

func TestHMACAndTokens(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	tok, err := privacy.NewTokenizer(t.Context(), env.kr)
	if err != nil {
		t.Fatal(err)
	}
	in := strCol("ann@example.com", "bob@example.org", "ann@example.com", "<null>")
	hm, _ := apply(t, privacy.Rule{Op: privacy.OpHMAC}, in, tok)
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	if !hex64.MatchString(hm[0]) || hm[0] != hm[2] || hm[0] == hm[1] || hm[3] != "<null>" {
		t.Errorf("hmac values %q: want equal inputs equal, distinct distinct, 64 hex digits, null kept", hm)
	}
	// Stable across runs: a new keyring over the same store and KEK.
	tok2, err := privacy.NewTokenizer(t.Context(), keys.New(env.db, env.kek, keys.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := tok2.Pseudonym("ann@example.com"); p != hm[0] {
		t.Errorf("pseudonym changed across keyrings: %s != %s", p, hm[0])
	}
	toks, _ := apply(t, privacy.Rule{Op: privacy.OpTokenize}, in, tok)
	if !strings.HasPrefix(toks[0], privacy.TokenPrefix) || toks[0] != toks[2] || toks[0] == toks[1] {
		t.Errorf("tokens %q: want tok_ prefix, deterministic, distinct", toks)
	}
	for i, want := range []string{"ann@example.com", "bob@example.org"} {
		got, err := tok2.Detokenize(t.Context(), toks[i])
		if err != nil || got != want {
			t.Errorf("Detokenize(%s) = %q, %v; want %q", toks[i], got, err, want)
		}
	}
	for _, bad := range []string{"plain", "tok_!!", toks[0][:len(toks[0])-2] + "AA", "tok_s_zz_abc"} {
		if _, err := tok.Detokenize(t.Context(), bad); !errors.Is(err, privacy.ErrBadToken) {
			t.Errorf("Detokenize(%q) error = %v, want ErrBadToken", bad, err)
		}
	}
}

// TestMemoGivesTheSameValues: the operator's memo of recent pseudonyms and
// tokens changes nothing in the output, whether it stays on (repeated
// values) or switches itself off (distinct values).
func TestMemoGivesTheSameValues(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	tok, err := privacy.NewTokenizer(t.Context(), env.kr)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		distinct int
	}{{"repeated values", 7}, {"distinct values", 10000}} {
		vals := make([]string, 10000)
		for i := range vals {
			vals[i] = fmt.Sprintf("user%d@example.com", i%tc.distinct)
		}
		for _, op := range []privacy.Op{privacy.OpHMAC, privacy.OpTokenize} {
			got, _ := apply(t, privacy.Rule{Op: op}, strCol(vals...), tok)
			for i, v := range vals {
				var want string
				if op == privacy.OpHMAC {
					want, err = tok.Pseudonym(v)
				} else {
					want, err = tok.Token(v)
				}
				if err != nil {
					t.Fatal(err)
				}
				if got[i] != want {
					t.Fatalf("%s, %s: value %d = %q, want %q", tc.name, op, i, got[i], want)
				}
			}
		}
	}
}

// TestPseudonymIsThePRF: the hmac operator's fast path (a keyed state per
// operator, pseudonyms cut from a shared arena) gives, value for value,
// the keyring's PRF of "hmac\x00" + value, in hex; so does Pseudonym.
func TestPseudonymIsThePRF(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	tok, err := privacy.NewTokenizer(t.Context(), env.kr)
	if err != nil {
		t.Fatal(err)
	}
	prf, err := env.kr.NamedKey(t.Context(), store.PurposePRF, privacy.DefaultKeyName)
	if err != nil {
		t.Fatal(err)
	}
	vals := []string{"ann@example.com", "", "Zoë Ångström", strings.Repeat("x", 100<<10), "bob@example.org"}
	for i := range 3000 { // more than one arena chunk
		vals = append(vals, fmt.Sprintf("user%d@example.com", i))
	}
	vals = append(vals, "ann@example.com")
	got, _ := apply(t, privacy.Rule{Op: privacy.OpHMAC}, strCol(vals...), tok)
	for i, v := range vals {
		sum, err := prf.PRF([]byte("hmac\x00" + v))
		if err != nil {
			t.Fatal(err)
		}
		want := hex.EncodeToString(sum)
		if got[i] != want {
			t.Fatalf("value %d: operator gives %s, PRF %s", i, got[i], want)
		}
		if p, err := tok.Pseudonym(v); err != nil || p != want {
			t.Fatalf("value %d: Pseudonym gives %s, %v; PRF %s", i, p, err, want)
		}
	}
}

// TestApplyKeepsNullMaskInStep checks the whole output column, not only
// what IsNull says: the mask is absent while no row is null and, once a
// null or rejected row arrives, covers every row, earlier and later ones.
func TestApplyKeepsNullMaskInStep(t *testing.T) {
	t.Parallel()
	o, err := privacy.NewOperator(privacy.Rule{Column: "ip", Op: privacy.OpGeneralize, IPv4Prefix: 24}, data.String, nil)
	if err != nil {
		t.Fatal(err)
	}
	run := func(in *data.Column) (data.Column, []int) {
		t.Helper()
		var dst data.Column
		var rejected []int
		n := len(in.Strings)
		if err := o.Apply(t.Context(), &dst, in, nil, n, func(r int, _ string) error {
			rejected = append(rejected, r)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return dst, rejected
	}

	got, rejected := run(strCol("10.0.0.1", "10.0.1.1"))
	want := data.Column{Type: data.String, Strings: []string{"10.0.0.0/24", "10.0.1.0/24"}}
	if diff := cmp.Diff(want, got); diff != "" || rejected != nil {
		t.Errorf("no nulls: rejected %v, (-want +got):\n%s", rejected, diff)
	}

	got, rejected = run(strCol("10.0.0.1", "bad", "<null>", "10.0.2.1"))
	want = data.Column{
		Type:    data.String,
		Strings: []string{"10.0.0.0/24", "", "", "10.0.2.0/24"},
		Nulls:   []bool{false, true, true, false},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("with a rejected row and a null (-want +got):\n%s", diff)
	}
	if !cmp.Equal(rejected, []int{1}) {
		t.Errorf("rejected rows %v, want [1]", rejected)
	}
}
