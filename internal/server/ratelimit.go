package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/clock"
)

// Rate is a number of requests allowed per window.
type Rate struct {
	N      int
	Window time.Duration
}

// Default rates for the login and token endpoints: generous for a person,
// hopeless for password guessing. The per-account limit holds across
// addresses, so spreading guesses over many machines does not help.
var (
	DefaultIPRate      = Rate{N: 20, Window: time.Minute}
	DefaultAccountRate = Rate{N: 10, Window: time.Minute}
)

// maxBuckets bounds the limiter's memory: when a new key would exceed it,
// windows that have ended are dropped first.
const maxBuckets = 100_000

// Limiter is a fixed-window rate limiter keyed by a string (a client
// address, an account name). Each key may be used Rate.N times in each
// window of Rate.Window, the windows starting at the key's first use.
// golang.org/x/time/rate is not a dependency; a fixed window is enough to
// stop guessing and is easy to reason about.
type Limiter struct {
	rate  Rate
	clock clock.Clock

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	start time.Time
	count int
}

// NewLimiter returns a limiter for r using clk (clock.Real{} when nil).
func NewLimiter(r Rate, clk clock.Clock) *Limiter {
	if clk == nil {
		clk = clock.Real{}
	}
	return &Limiter{rate: r, clock: clk, buckets: map[string]*bucket{}}
}

// Allow uses one request of key's allowance. When none is left it returns
// false and how long until the window ends.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if ok && now.Sub(b.start) >= l.rate.Window {
		ok = false
	}
	if !ok {
		if _, exists := l.buckets[key]; !exists && len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{start: now}
		l.buckets[key] = b
	}
	if b.count >= l.rate.N {
		return false, b.start.Add(l.rate.Window).Sub(now)
	}
	b.count++
	return true, 0
}

// prune drops ended windows; if every window is current it drops all, so
// memory stays bounded even under a flood of distinct keys.
func (l *Limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		if now.Sub(b.start) >= l.rate.Window {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

// Check is Allow as an error: nil, or a rate_limited *Error carrying the
// Retry-After delay.
func (l *Limiter) Check(key string) error {
	ok, wait := l.Allow(key)
	if ok {
		return nil
	}
	return &Error{Code: CodeRateLimited, Message: "too many attempts; retry later", RetryAfter: wait}
}

// WithRateLimit limits requests per client address with perIP, and makes
// perAccount available to the handlers through CheckAccount, since only a
// handler knows which account a login names once it has read the body.
func WithRateLimit(perIP, perAccount *Limiter) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := perIP.Check(ClientIP(r)); err != nil {
				WriteError(w, r, err)
				return
			}
			ctx := context.WithValue(r.Context(), ctxAccountLimiter, perAccount)
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// CheckAccount uses one attempt of account's allowance; login and token
// handlers call it before checking a credential and send the error it
// returns (rate_limited, with Retry-After) through WriteError. Outside a
// rate-limited route it fails closed with an internal error, so a handler
// mounted in the wrong place is noticed rather than left unlimited.
func CheckAccount(r *http.Request, account string) error {
	l, ok := r.Context().Value(ctxAccountLimiter).(*Limiter)
	if !ok {
		return &Error{Code: CodeInternal, Err: errNoAccountLimiter}
	}
	return l.Check(account)
}
