package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/monitor"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

func TestErrorCodesMapToStatusInOnePlace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    error
		status int
		code   Code
		msg    string
	}{
		{Errorf(CodeInvalid, "field %q is required", "name"), 400, CodeInvalid, `field "name" is required`},
		{&Error{Code: CodeNotFound}, 404, CodeNotFound, "not found"},
		{&Error{Code: CodeConflict, Message: "exists"}, 409, CodeConflict, "exists"},
		{&Error{Code: CodeUnauthenticated}, 401, CodeUnauthenticated, "authentication required"},
		{&Error{Code: CodeForbidden}, 403, CodeForbidden, "not allowed"},
		{&Error{Code: CodeRateLimited, RetryAfter: 1500 * time.Millisecond}, 429, CodeRateLimited, "too many requests; retry later"},
		{&Error{Code: CodeTooLarge}, 413, CodeTooLarge, "request body too large"},
		{&http.MaxBytesError{Limit: 1}, 413, CodeTooLarge, "request body too large"},
		{fmt.Errorf("querying: %w", errors.New("disk on fire at /var/x")), 500, CodeInternal, "internal error"},
		{&Error{Code: CodeInternal, Message: "db password is x"}, 500, CodeInternal, "internal error"},
		{&Error{Code: "bogus"}, 500, "bogus", "internal error"},
	}
	for _, tt := range tests {
		t.Run(string(tt.code)+"/"+tt.err.Error(), func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			WriteError(rec, httptest.NewRequest("GET", "/", nil), tt.err)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			got := decodeError(t, rec.Body.String())
			if diff := cmp.Diff(errorDetail{Code: tt.code, Message: tt.msg}, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if tt.code == CodeRateLimited && rec.Header().Get("Retry-After") != "2" {
				t.Errorf("Retry-After = %q, want 2 (rounded up)", rec.Header().Get("Retry-After"))
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	s := newHandlerServer(t, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"echoed", "abc-123_x.y", true},
		{"generated when absent", "", false},
		{"replaced when unsafe", "evil\nline", false},
		{"replaced when too long", strings.Repeat("a", 65), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/nowhere", nil)
			if tt.sent != "" {
				r.Header.Set(HeaderRequestID, tt.sent)
			}
			rec := do(s, r)
			id := rec.Header().Get(HeaderRequestID)
			if (id == tt.sent) != tt.echoed || !validRequestID(id) {
				t.Errorf("request id %q for %q", id, tt.sent)
			}
			if got := decodeError(t, rec.Body.String()).RequestID; got != id {
				t.Errorf("error body request_id %q, header %q", got, id)
			}
			if !strings.Contains(logs.String(), `"request_id":"`+id+`"`) {
				t.Errorf("no log line with request id %s", id)
			}
		})
	}
}

func TestAccessLogIsStructuredAndLeavesOutQueries(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	s := newHandlerServer(t, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	r := httptest.NewRequest("GET", "/healthz?token=s3cret", nil)
	r.Header.Set(HeaderRequestID, "log-1")
	do(s, r)
	var line map[string]any
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, `"msg":"http request"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, want := range map[string]any{"method": "GET", "path": "/healthz", "status": 200.0, "request_id": "log-1", "remote_ip": "192.0.2.1"} {
		if line[k] != want {
			t.Errorf("access log %s = %v, want %v (line %v)", k, line[k], want, line)
		}
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("query string logged")
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]string
		if err := DecodeJSON(r, &v); err != nil {
			WriteError(w, r, err)
			return
		}
		WriteJSON(w, 200, v)
	})
	s := newHandlerServer(t, Options{API: api, MaxBodyBytes: 64})
	big := `{"a":"` + strings.Repeat("x", 100) + `"}`
	tests := []struct {
		name    string
		body    string
		chunked bool
		status  int
		code    Code
	}{
		{"small", `{"a":"b"}`, false, 200, ""},
		{"declared too large", big, false, 413, CodeTooLarge},
		{"streamed too large", big, true, 413, CodeTooLarge},
		{"malformed", `{"a":`, false, 400, CodeInvalid},
		{"unknown field stays JSON", `{"a":1}`, false, 400, CodeInvalid},
		{"trailing data", `{"a":"b"} {}`, false, 400, CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length
			}
			r := httptest.NewRequest("POST", APIPrefix+"echo", body)
			if tt.chunked {
				r.ContentLength = -1
			}
			rec := do(s, r)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.code != "" {
				if got := decodeError(t, rec.Body.String()).Code; got != tt.code {
					t.Errorf("code %s, want %s", got, tt.code)
				}
			}
		})
	}
}

func TestLoginRateLimits(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := CheckAccount(r, r.URL.Query().Get("user")); err != nil {
			WriteError(w, r, err)
			return
		}
		WriteJSON(w, 200, status{Status: "ok"})
	})
	s := newHandlerServer(t, Options{
		API: login, Clock: clk,
		IPRate:      Rate{N: 3, Window: time.Minute},
		AccountRate: Rate{N: 2, Window: time.Minute},
	})
	send := func(ip, user string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", AuthPrefix+"login?user="+user, nil)
		r.RemoteAddr = ip + ":5000"
		return do(s, r)
	}
	steps := []struct {
		name, ip, user string
		advance        time.Duration
		status         int
		retryAfter     string
	}{
		{"first try", "10.0.0.1", "ann", 0, 200, ""},
		{"second try", "10.0.0.1", "ann", 0, 200, ""},
		{"account exhausted", "10.0.0.1", "ann", 10 * time.Second, 429, "50"},
		{"account limit holds across addresses", "10.0.0.2", "ann", 0, 429, "50"},
		{"address exhausted", "10.0.0.1", "bob", 0, 429, "50"},
		{"other address, other account", "10.0.0.2", "bob", 0, 200, ""},
		{"window over", "10.0.0.1", "ann", 50 * time.Second, 200, ""},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		rec := send(st.ip, st.user)
		if rec.Code != st.status || rec.Header().Get("Retry-After") != st.retryAfter {
			t.Fatalf("%s: status %d Retry-After %q, want %d %q", st.name, rec.Code, rec.Header().Get("Retry-After"), st.status, st.retryAfter)
		}
		if st.status == 429 {
			if got := decodeError(t, rec.Body.String()).Code; got != CodeRateLimited {
				t.Fatalf("%s: code %s", st.name, got)
			}
		}
	}
	// Routes outside the auth prefix are not limited per address.
	for range 5 {
		r := httptest.NewRequest("GET", "/healthz", nil)
		r.RemoteAddr = "10.0.0.1:5000"
		if rec := do(s, r); rec.Code != 200 {
			t.Fatalf("GET /healthz = %d", rec.Code)
		}
	}
}

func TestCheckAccountFailsClosedOutsideAuthRoutes(t *testing.T) {
	t.Parallel()
	err := CheckAccount(httptest.NewRequest("POST", "/x", nil), "ann")
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInternal {
		t.Errorf("CheckAccount outside an auth route = %v, want an internal error", err)
	}
}

func TestLimiterBoundsMemory(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Unix(0, 0))
	l := NewLimiter(Rate{N: 1, Window: time.Minute}, clk)
	for i := range maxBuckets + 10 {
		if ok, _ := l.Allow(fmt.Sprint(i)); !ok {
			t.Fatalf("fresh key %d refused", i)
		}
	}
	if n := len(l.buckets); n > maxBuckets {
		t.Errorf("%d buckets kept, bound is %d", n, maxBuckets)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	key := []byte(strings.Repeat("k", 32))
	guard, err := NewCSRF(key)
	if err != nil {
		t.Fatal(err)
	}
	changed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, status{Status: "changed"}) })
	s := newHandlerServer(t, Options{API: changed, UI: changed, CSRF: guard})
	const session = "session-secret-1"
	token := guard.Token(session)
	form := url.Values{FormFieldCSRF: {token}}.Encode()
	tests := []struct {
		name    string
		method  string
		path    string
		cookie  string
		token   string
		form    bool
		headers map[string]string
		status  int
	}{
		{"safe method needs nothing", "GET", "/runs", session, "", false, nil, 200},
		{"cookie without token", "POST", APIPrefix + "runs", session, "", false, nil, 403},
		{"cookie with token", "POST", APIPrefix + "runs", session, token, false, nil, 200},
		{"cookie with token in form", "POST", "/runs", session, "", true, nil, 200},
		{"token of another session", "DELETE", APIPrefix + "runs/1", session, guard.Token("other"), false, nil, 403},
		{"token from another key", "POST", "/runs", session, mustCSRF(t).Token(session), false, nil, 403},
		{"cross-site fetch", "POST", APIPrefix + "runs", session, token, false, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site sibling", "POST", "/runs", session, token, false, map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"same-origin fetch", "PUT", APIPrefix + "runs", session, token, false, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://example.com"}, 200},
		{"foreign origin", "POST", APIPrefix + "runs", session, token, false, map[string]string{"Origin": "https://evil.test"}, 403},
		{"null origin", "POST", APIPrefix + "runs", session, token, false, map[string]string{"Origin": "null"}, 403},
		{"null origin, same-site form post", "POST", APIPrefix + "runs", session, token, false, map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, 200},
		{"null origin, cross-site", "POST", APIPrefix + "runs", session, token, false, map[string]string{"Origin": "null", "Sec-Fetch-Site": "cross-site"}, 403},
		{"null origin, same-site without token", "POST", APIPrefix + "runs", session, "", false, map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, 403},
		{"plain-http origin to https", "POST", APIPrefix + "runs", session, token, false, map[string]string{"Origin": "http://example.com"}, 403},
		{"bearer client without cookie", "POST", APIPrefix + "runs", "", "", false, map[string]string{"Authorization": "Bearer t"}, 200},
		{"login form cross-site", "POST", AuthPrefix + "login", "", "", false, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"login form same-origin", "POST", AuthPrefix + "login", "", "", false, map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if tt.form {
				body = strings.NewReader(form)
			}
			r := httptest.NewRequest(tt.method, "https://example.com"+tt.path, body)
			if tt.form {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: SessionCookie, Value: tt.cookie})
			}
			if tt.token != "" {
				r.Header.Set(HeaderCSRF, tt.token)
			}
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			rec := do(s, r)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 403 {
				if got := decodeError(t, rec.Body.String()).Code; got != CodeForbidden {
					t.Errorf("code %s", got)
				}
			}
		})
	}
	t.Run("TokenFor", func(t *testing.T) {
		t.Parallel()
		r := httptest.NewRequest("GET", "/", nil)
		if got := guard.TokenFor(r); got != "" {
			t.Errorf("TokenFor without session = %q", got)
		}
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: session})
		if got := guard.TokenFor(r); got != token || strings.Contains(got, session) {
			t.Errorf("TokenFor = %q, want %q", got, token)
		}
	})
	t.Run("short key refused", func(t *testing.T) {
		t.Parallel()
		if _, err := NewCSRF([]byte("short")); !errors.Is(err, ErrCSRFKey) {
			t.Errorf("NewCSRF(short) = %v", err)
		}
	})
}

func mustCSRF(t *testing.T) *CSRF {
	t.Helper()
	c, err := NewCSRF(nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCookies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cookie string
		strict       bool
		maxAge       time.Duration
		want         string
	}{
		{"lax session", "sluice_session", false, 0, "__Host-sluice_session=v; Path=/; HttpOnly; Secure; SameSite=Lax"},
		{"strict, prefixed already", "__Host-x", true, time.Hour, "__Host-x=v; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Strict"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			SetCookie(rec, tt.cookie, "v", tt.maxAge, tt.strict)
			if got := rec.Header().Get("Set-Cookie"); got != tt.want {
				t.Errorf("Set-Cookie = %q, want %q", got, tt.want)
			}
		})
	}
	rec := httptest.NewRecorder()
	ClearCookie(rec, "sluice_session")
	if got, want := rec.Header().Get("Set-Cookie"), "__Host-sluice_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"; got != want {
		t.Errorf("ClearCookie: %q, want %q", got, want)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	m := monitor.NewMetrics()
	m.RunFinished("success")
	m.TaskFinished("success", time.Second, 10, 9, 1)
	m.SchedulerLag(time.Second)
	m.AuthFailure("bad_password")
	m.Denied("run.trigger")
	s := start(t, Options{Metrics: m})
	resp, err := client(t, s, nil).Get(s.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	for _, f := range []string{
		monitor.FamilyRunsFinished, monitor.FamilyTaskRuns, monitor.FamilyTaskDuration,
		monitor.FamilyRowsIn, monitor.FamilyRowsOut, monitor.FamilyRowsQuarantined,
		monitor.FamilySchedulerLag, monitor.FamilyAuthFailures, monitor.FamilyDenied,
	} {
		if _, ok := fams[f]; !ok {
			t.Errorf("/metrics lacks %s", f)
		}
	}
	if got := fams[monitor.FamilyRowsQuarantined].GetMetric()[0].GetCounter().GetValue(); got != 1 {
		t.Errorf("quarantined = %v", got)
	}
}

func TestReadyzFollowsTheStore(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sluice.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{Ready: storeReady(db)})
	c := client(t, s, nil)
	get := func() int {
		resp, err := c.Get(s.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != 200 {
		t.Fatalf("/readyz with an open store = %d", got)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != 503 {
		t.Errorf("/readyz with a closed store = %d, want 503", got)
	}
	resp, err := c.Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz with a closed store = %d, want 200 (the process is alive)", resp.StatusCode)
	}
}

func TestHealthEndpointsRefuseWrites(t *testing.T) {
	t.Parallel()
	s := newHandlerServer(t, Options{})
	for _, path := range []string{"/healthz", "/readyz", "/metrics", APIPrefix + "health"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			if rec := do(s, httptest.NewRequest("POST", path, nil)); rec.Code != 400 {
				t.Errorf("POST %s = %d, want 400", path, rec.Code)
			}
			if rec := do(s, httptest.NewRequest("GET", path, nil)); rec.Code != 200 {
				t.Errorf("GET %s = %d, want 200", path, rec.Code)
			}
		})
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration
		release bool
		wantErr error
	}{
		{"drains a slow request", 10 * time.Second, true, nil},
		{"gives up after the timeout", 50 * time.Millisecond, false, ErrShutdownTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			started, release := make(chan struct{}), make(chan struct{})
			slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(started)
				select {
				case <-release:
				case <-r.Context().Done():
				}
				WriteJSON(w, 200, status{Status: "done"})
			})
			s, err := New(Options{Listen: "127.0.0.1:0", StateDir: t.TempDir(), Ready: ready, API: slow, ShutdownTimeout: tt.timeout})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			c := client(t, s, nil)
			type result struct {
				status int
				err    error
			}
			got := make(chan result, 1)
			go func() {
				resp, err := c.Get(s.URL() + APIPrefix + "slow")
				if err != nil {
					got <- result{err: err}
					return
				}
				resp.Body.Close()
				got <- result{status: resp.StatusCode}
			}()
			<-started
			stopped := make(chan error, 1)
			go func() { stopped <- s.Stop() }()
			// Done closes when the listener has stopped accepting, while
			// the slow request is still in flight.
			<-s.Done()
			if tt.release {
				select {
				case err := <-stopped:
					t.Fatalf("Stop returned %v before the in-flight request finished", err)
				default:
				}
				close(release)
				if r := <-got; r.err != nil || r.status != 200 {
					t.Errorf("in-flight request: %+v, want 200", r)
				}
			}
			if err := <-stopped; !errors.Is(err, tt.wantErr) {
				t.Errorf("Stop = %v, want %v", err, tt.wantErr)
			}
			if !tt.release {
				if r := <-got; r.err == nil {
					t.Errorf("request cut at the timeout still got %d", r.status)
				}
			}
			if err := s.Stop(); !errors.Is(err, tt.wantErr) {
				t.Errorf("second Stop = %v, want the first result", err)
			}
		})
	}
}
