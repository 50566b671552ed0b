package secrets

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	values := map[string]string{"db": "pa$$w0rd", "user": "app", "x.y-z": "${secret:db}"}
	resolve := func(name string) ([]byte, error) {
		v, ok := values[name]
		if !ok {
			return nil, errors.New("unknown secret")
		}
		return []byte(v), nil
	}
	tests := []struct {
		name, in, want string
		wantCol        int // 0: no error expected
	}{
		{"no reference", "plain $HOME ${HOME} $1", "plain $HOME ${HOME} $1", 0},
		{"whole string", "${secret:db}", "pa$$w0rd", 0},
		{"in a URL", "postgres://${secret:user}:${secret:db}@h/d", "postgres://app:pa$$w0rd@h/d", 0},
		{"value not expanded again", "${secret:x.y-z}", "${secret:db}", 0},
		{"escape", "$${secret:db}", "${secret:db}", 0},
		{"escape then reference", "$${secret:db} ${secret:user}", "${secret:db} app", 0},
		{"dollar before escape", "$$${secret:db}", "$${secret:db}", 0},
		{"empty name", "ab ${secret:}", "", 4},
		{"bad name", "ab ${secret:bad name}", "", 4},
		{"bad first character", "${secret:9x}", "", 1},
		{"unterminated", "éé ${secret:db", "", 4},
		{"second is bad", "${secret:db} ${secret:a:b}", "", 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Expand(context.Background(), tt.in, resolve)
			if tt.wantCol == 0 {
				if err != nil {
					t.Fatalf("Expand(%q): %v", tt.in, err)
				}
				if got != tt.want {
					t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
				}
				if err := ValidateRefs(tt.in); err != nil {
					t.Errorf("ValidateRefs(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			var re *RefError
			if !errors.As(err, &re) || !errors.Is(err, ErrMalformedRef) {
				t.Fatalf("Expand(%q): err = %v, want a *RefError", tt.in, err)
			}
			if re.Col != tt.wantCol {
				t.Errorf("Expand(%q): column %d, want %d (%v)", tt.in, re.Col, tt.wantCol, err)
			}
			if err := ValidateRefs(tt.in); !errors.Is(err, ErrMalformedRef) {
				t.Errorf("ValidateRefs(%q) = %v, want a malformed reference", tt.in, err)
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	_, err := Expand(context.Background(), "a ${secret:missing}", func(string) ([]byte, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Errorf("resolver error not wrapped: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	_, err = Expand(ctx, "${secret:x}", func(string) ([]byte, error) { called = true; return []byte("v"), nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("cancelled context: err = %v, resolver called = %v", err, called)
	}
}

func TestBadNameDoesNotEchoTheName(t *testing.T) {
	t.Parallel()
	err := ValidateRefs("${secret:hunter2 is my password}")
	if err == nil {
		t.Fatal("no error")
	}
	if got := err.Error(); strings.Contains(got, "hunter2") {
		t.Errorf("error %q repeats the text written as a name", got)
	}
}

func TestRefs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"none", "plain ${HOME}", nil},
		{"several, once each, in order", "${secret:b} ${secret:a} ${secret:b}", []string{"b", "a"}},
		{"escape is not a reference", "$${secret:a} ${secret:c}", []string{"c"}},
		{"stops at a malformed one", "${secret:a} ${secret:} ${secret:b}", []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, Refs(tt.in)); diff != "" {
				t.Errorf("Refs(%q) (-want +got):\n%s", tt.in, diff)
			}
			if got, want := HasRefs(tt.in), len(tt.want) > 0; got != want {
				t.Errorf("HasRefs(%q) = %v, want %v", tt.in, got, want)
			}
		})
	}
}

func FuzzExpand(f *testing.F) {
	f.Add("${secret:a} $${secret:b} ${secret:")
	f.Add("é${secret:bad name}")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := Expand(context.Background(), s, func(name string) ([]byte, error) { return []byte("<" + name + ">"), nil })
		if vErr := ValidateRefs(s); (err == nil) != (vErr == nil) {
			t.Fatalf("Expand err %v but ValidateRefs err %v", err, vErr)
		}
		if err != nil {
			var re *RefError
			if !errors.As(err, &re) || re.Col < 1 {
				t.Fatalf("error %v is not a located *RefError", err)
			}
			return
		}
		for _, name := range Refs(s) {
			if ValidName(name) != nil {
				t.Fatalf("Refs returned invalid name %q", name)
			}
			if !strings.Contains(out, "<"+name+">") {
				t.Fatalf("output %q lacks the value of %q", out, name)
			}
		}
	})
}
