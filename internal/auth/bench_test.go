package auth

import (
	"testing"
	"time"
)

// BenchmarkPasswordVerify measures one argon2id verification with the
// default parameters: the cost of every password login.
func BenchmarkPasswordVerify(b *testing.B) {
	h, err := hashPassword(goodPassword, DefaultParams)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ok, _, err := verifyPassword(h, goodPassword, DefaultParams)
		if err != nil || !ok {
			b.Fatalf("verify: %v %v", ok, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/verify")
}

// BenchmarkTokenLookup measures AuthenticateToken on a store holding many
// tokens: digest, index lookup, owner read, constant-time compare.
func BenchmarkTokenLookup(b *testing.B) {
	e := newEnv(b, Options{})
	ctx := b.Context()
	u := e.user(b, "ada")
	var secret string
	for i := range 1000 {
		s, _, err := e.svc.CreateAPIToken(ctx, NewAPIToken{OwnerID: u.ID, Name: "t", Scopes: []string{"runs.read"},
			ExpiresAt: e.clock.Now().Add(24 * time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		if i == 500 {
			secret = s
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := e.svc.AuthenticateToken(ctx, secret); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/lookup")
}
