package httpapi

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicehq/sluice/internal/data"
	"go.yaml.in/yaml/v3"
)

// The secrets the tests' Expand resolves, standing in for the secret store.
var secrets = strings.NewReplacer("${secret:token}", "s3cr3t-token", "${secret:pass}", "s3cr3t-pass", "${secret:key}", "s3cr3t-key")

type quarantine struct {
	mu   sync.Mutex
	rejs []data.Reject
}

func (q *quarantine) Reject(_ context.Context, r data.Reject) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rejs = append(q.rejs, r)
	return nil
}

func testEnv(q data.Quarantine) data.Env {
	return data.Env{Dir: os.TempDir(), Expand: func(s string) (string, error) { return secrets.Replace(s), nil }, Quarantine: q, BatchSize: 2}
}

func decode(t *testing.T, src string) *Config {
	t.Helper()
	c := NewConfig()
	if err := yaml.Unmarshal([]byte(src), c); err != nil {
		t.Fatalf("decoding config: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return c
}

// sleeps records the waits a source asked for instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

// open is OpenSource with the clock and sleep injected.
func open(t *testing.T, cfg string, q data.Quarantine, sl *sleeps, now time.Time) (*Source, error) {
	t.Helper()
	c := decode(t, cfg)
	s, err := newSource(c, testEnv(q))
	if err != nil {
		return nil, err
	}
	if sl == nil {
		sl = &sleeps{}
	}
	s.sleep = sl.sleep
	s.now = func() time.Time { return now }
	if err := s.open(context.Background()); err != nil {
		s.Close()
		return nil, err
	}
	t.Cleanup(func() { s.Close() })
	return s, nil
}

// openRead opens the source and reads it to the end.
func openRead(t *testing.T, cfg string, q data.Quarantine, sl *sleeps, now time.Time) ([]int64, error) {
	t.Helper()
	src, err := open(t, cfg, q, sl, now)
	if err != nil {
		return nil, err
	}
	return readAll(t, src)
}

func readAll(t *testing.T, src data.Source) ([]int64, error) {
	t.Helper()
	var ids []int64
	for {
		b, err := src.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			return ids, nil
		}
		if err != nil {
			return ids, err
		}
		if len(b.Pos) != b.Len {
			t.Fatalf("%d positions for %d rows", len(b.Pos), b.Len)
		}
		ids = append(ids, b.Cols[0].Ints...)
	}
}

func record(id int) map[string]any { return map[string]any{"id": id, "name": fmt.Sprintf("n%d", id)} }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// pages splits ids 1..n into pages of size.
func pageOf(n, size, page int) []map[string]any {
	out := []map[string]any{}
	for id := (page-1)*size + 1; id <= min(n, page*size); id++ {
		out = append(out, record(id))
	}
	return out
}

func TestPagination(t *testing.T) {
	t.Parallel()
	const n, size = 7, 3
	tests := []struct {
		name    string
		cfg     string
		handler func(w http.ResponseWriter, r *http.Request)
		pages   int
	}{
		{
			name: "next link in the body",
			cfg:  "records: data.items\npagination: {next_link: {path: links.next}}",
			handler: func(w http.ResponseWriter, r *http.Request) {
				p, _ := strconv.Atoi(r.URL.Query().Get("p"))
				p = max(p, 1)
				var next any
				if p*size < n {
					next = fmt.Sprintf("/items?p=%d", p+1)
				}
				writeJSON(w, map[string]any{"data": map[string]any{"items": pageOf(n, size, p)}, "links": map[string]any{"next": next}})
			},
			pages: 3,
		},
		{
			name: "cursor, records by JSON pointer",
			cfg:  "records: /data/items\npagination: {cursor: {param: cursor, path: meta.next_cursor}}",
			handler: func(w http.ResponseWriter, r *http.Request) {
				p := 1
				if c := r.URL.Query().Get("cursor"); c != "" {
					p, _ = strconv.Atoi(strings.TrimPrefix(c, "c"))
				}
				next := ""
				if p*size < n {
					next = fmt.Sprintf("c%d", p+1)
				}
				writeJSON(w, map[string]any{"data": map[string]any{"items": pageOf(n, size, p)}, "meta": map[string]any{"next_cursor": next}})
			},
			pages: 3,
		},
		{
			name: "page numbers with a size",
			cfg:  "pagination: {page: {param: page, start: 1, size_param: per_page, size: 3}}",
			handler: func(w http.ResponseWriter, r *http.Request) {
				p, _ := strconv.Atoi(r.URL.Query().Get("page"))
				if r.URL.Query().Get("per_page") != "3" {
					http.Error(w, "per_page missing", http.StatusBadRequest)
					return
				}
				writeJSON(w, pageOf(n, size, p))
			},
			pages: 3,
		},
		{
			name: "page numbers from zero, until an empty page",
			cfg:  "pagination: {page: {param: page, start: 0}}",
			handler: func(w http.ResponseWriter, r *http.Request) {
				p, _ := strconv.Atoi(r.URL.Query().Get("page"))
				writeJSON(w, pageOf(n, size, p+1))
			},
			pages: 4,
		},
		{
			name: "Link header",
			cfg:  "pagination: {link_header: true}",
			handler: func(w http.ResponseWriter, r *http.Request) {
				p, _ := strconv.Atoi(r.URL.Query().Get("p"))
				p = max(p, 1)
				if p*size < n {
					w.Header().Add("Link", fmt.Sprintf(`<http://example.com/x?a=1,2>; rel="prev", </items?p=%d>; rel="next last"`, p+1))
				}
				writeJSON(w, pageOf(n, size, p))
			},
			pages: 3,
		},
		{
			name:    "no pagination",
			cfg:     "",
			handler: func(w http.ResponseWriter, r *http.Request) { writeJSON(w, pageOf(n, n, 1)) },
			pages:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			requests := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				requests++
				mu.Unlock()
				tt.handler(w, r)
			}))
			defer srv.Close()
			cfg := fmt.Sprintf("url: %s/items\nallow_hosts: [127.0.0.1]\nschema: {id: int, name: string}\n%s", srv.URL, tt.cfg)
			src, err := open(t, cfg, &quarantine{}, nil, time.Now())
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			ids, err := readAll(t, src)
			if err != nil {
				t.Fatalf("reading: %v", err)
			}
			if diff := cmp.Diff([]int64{1, 2, 3, 4, 5, 6, 7}, ids); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if requests != tt.pages {
				t.Errorf("%d requests, want %d", requests, tt.pages)
			}
		})
	}
}

func TestMaxPagesAndInference(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := strconv.Atoi(r.URL.Query().Get("page"))
		writeJSON(w, map[string]any{"items": pageOf(100, 2, p)})
	}))
	defer srv.Close()
	src, err := open(t, "url: "+srv.URL+"\nrecords: items\nallow_hosts: [127.0.0.1]\nmax_pages: 2\npagination: {page: {param: page}}", &quarantine{}, nil, time.Now())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if got := src.Schema().String(); got != "id:int, name:string" {
		t.Errorf("inferred schema %q", got)
	}
	ids, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1, 2, 3, 4}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
}

func TestQuarantine(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("p") == "2" {
			_, _ = w.Write([]byte(`{"items": [{"id": "seven"}, [1], {"id": 8}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"items": [{"id": 1}], "next": "/items?p=2&api_key=${secret:key}"}`))
	}))
	defer srv.Close()
	q := &quarantine{}
	src, err := open(t, "url: "+srv.URL+"/items\nrecords: items\nallow_hosts: [127.0.0.1]\nschema: {id: int}\npagination: {next_link: {path: next}}", q, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := readAll(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1, 8}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	want := []data.Reject{
		{Pos: srv.URL + "/items page 2 record 1", Reason: `field "id": want int, got JSON string`, Raw: `{"id": "seven"}`},
		{Pos: srv.URL + "/items page 2 record 2", Reason: "not a JSON object", Raw: `[1]`},
	}
	if diff := cmp.Diff(want, q.rejs); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
}

func TestRetries(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		failures  []func(w http.ResponseWriter) // answers before the success
		retries   string
		wantSleep []time.Duration // exact waits; nil: check count only
		sleeps    int
		wantErr   string
	}{
		{
			name:      "429 with Retry-After seconds",
			failures:  []func(http.ResponseWriter){status(429, "Retry-After", "7")},
			wantSleep: []time.Duration{7 * time.Second},
		},
		{
			name:      "503 with Retry-After as an HTTP date",
			failures:  []func(http.ResponseWriter){status(503, "Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))},
			wantSleep: []time.Duration{90 * time.Second},
		},
		{
			name:     "5xx twice then success, exponential backoff",
			failures: []func(http.ResponseWriter){status(500), status(502)},
			sleeps:   2,
		},
		{
			name:     "bounded by max_retries",
			failures: []func(http.ResponseWriter){status(500), status(500), status(500)},
			retries:  "max_retries: 2",
			sleeps:   2,
			wantErr:  "after 3 attempts: HTTP 500 Internal Server Error",
		},
		{
			name:     "Retry-After too far away",
			failures: []func(http.ResponseWriter){status(429, "Retry-After", "86400")},
			wantErr:  "more than 5m0s",
		},
		{
			name:     "4xx is not retried",
			failures: []func(http.ResponseWriter){status(404)},
			wantErr:  "HTTP 404 Not Found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			calls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				i := calls
				calls++
				mu.Unlock()
				if i < len(tt.failures) {
					tt.failures[i](w)
					return
				}
				writeJSON(w, pageOf(3, 3, 1))
			}))
			defer srv.Close()
			sl := &sleeps{}
			src, err := open(t, "url: "+srv.URL+"\nallow_hosts: [127.0.0.1]\nschema: {id: int}\n"+tt.retries, &quarantine{}, sl, now)
			var ids []int64
			if err == nil {
				ids, err = readAll(t, src)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if len(ids) != 3 {
				t.Errorf("read %v", ids)
			}
			if tt.wantSleep != nil {
				if diff := cmp.Diff(tt.wantSleep, sl.d); diff != "" {
					t.Errorf("sleeps (-want +got):\n%s", diff)
				}
			} else if len(sl.d) != tt.sleeps {
				t.Errorf("slept %v, want %d waits", sl.d, tt.sleeps)
			}
			for i, d := range sl.d {
				if tt.wantSleep == nil && (d < backoffBase<<i/2 || d > backoffBase<<i) {
					t.Errorf("backoff %d = %s, want within [%s, %s]", i, d, backoffBase<<i/2, backoffBase<<i)
				}
			}
		})
	}
}

func status(code int, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
	}
}

func TestResponseTooLarge(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, pageOf(1000, 1000, 1))
	}))
	defer srv.Close()
	_, err := openRead(t, "url: "+srv.URL+"\nallow_hosts: [127.0.0.1]\nschema: {id: int}\nmax_response_bytes: 1024", &quarantine{}, nil, time.Now())
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("error = %v, want ErrResponseTooLarge", err)
	}
}

func TestHostPolicy(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, pageOf(1, 1, 1))
	}))
	t.Cleanup(other.Close)
	otherURL := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, otherURL+"/x", http.StatusFound)
		case "/link":
			writeJSON(w, map[string]any{"items": pageOf(1, 1, 1), "next": otherURL + "/x"})
		}
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, cfg string
		want      error
	}{
		{"redirect to a host not allowed", "url: " + srv.URL + "/redirect\nallow_hosts: [127.0.0.1]", ErrHostNotAllowed},
		{"next link to a host not allowed", "url: " + srv.URL + "/link\nrecords: items\nallow_hosts: [127.0.0.1]\npagination: {next_link: {path: next}}", ErrHostNotAllowed},
		{"a name resolving to loopback, not allowlisted", "url: " + otherURL + "/x\ninsecure_http: true\ninsecure_reason: test", ErrBlockedAddress},
		{"the cloud metadata address", "url: http://169.254.169.254/latest/meta-data\ninsecure_http: true\ninsecure_reason: test", ErrBlockedAddress},
		{"the IPv6 metadata address", "url: https://[fd00:ec2::254]/\nallow_hosts: ['fd00:ec2::254']", ErrBlockedAddress},
		{"the unspecified address", "url: http://0.0.0.0:9/\ninsecure_http: true\ninsecure_reason: test", ErrBlockedAddress},
		{"http to a host not allowlisted", "url: http://127.0.0.1:9/\nallow_hosts: [example.com]", ErrInsecureURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewConfig()
			if err := yaml.Unmarshal([]byte(tt.cfg+"\nschema: {id: int}\nmax_retries: 0"), c); err != nil {
				t.Fatal(err)
			}
			src, err := OpenSource(context.Background(), c, testEnv(&quarantine{}))
			if err == nil {
				_, err = readAll(t, src)
				src.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("allowlisted next host gets no credentials", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var auth []string
		a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auth = append(auth, r.Host+" "+r.Header.Get("Authorization")+" "+r.Header.Get("X-Api-Key"))
			mu.Unlock()
			if r.Host == strings.TrimPrefix(srv.URL, "http://") {
				return
			}
			writeJSON(w, map[string]any{"items": pageOf(1, 1, 1), "next": nil})
		}))
		defer a.Close()
		host := strings.TrimPrefix(a.URL, "http://")
		first := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auth = append(auth, "first "+r.Header.Get("Authorization")+" "+r.Header.Get("X-Api-Key"))
			mu.Unlock()
			writeJSON(w, map[string]any{"items": pageOf(1, 1, 1), "next": "http://" + strings.Replace(host, "127.0.0.1", "localhost", 1) + "/n"})
		}))
		defer first.Close()
		src, err := open(t, "url: "+first.URL+"\nrecords: items\nallow_hosts: [127.0.0.1, localhost]\nschema: {id: int}\nauth: {bearer: '${secret:token}'}\nheaders: {X-Api-Key: '${secret:key}'}\npagination: {next_link: {path: next}}", &quarantine{}, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(t, src); err != nil {
			t.Fatal(err)
		}
		want := []string{"first Bearer s3cr3t-token s3cr3t-key", strings.Replace(host, "127.0.0.1", "localhost", 1) + "  "}
		if diff := cmp.Diff(want, auth); diff != "" {
			t.Errorf("credentials sent (-want +got):\n%s", diff)
		}
	})
}

func TestBlockReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip         string
		loopbackOK bool
		blocked    bool
	}{
		{"169.254.169.254", true, true},
		{"169.254.1.1", true, true},
		{"fe80::1", true, true},
		{"fd00:ec2::254", true, true},
		{"0.0.0.0", true, true},
		{"::", true, true},
		{"::ffff:169.254.169.254", true, true},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"127.0.0.1", true, false},
		{"93.184.215.14", false, false},
		{"2001:db8::1", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			t.Parallel()
			got := blockReason(netip.MustParseAddr(tt.ip), tt.loopbackOK) != ""
			if got != tt.blocked {
				t.Errorf("blocked = %v, want %v", got, tt.blocked)
			}
			err := dialControl(tt.loopbackOK)("tcp", netip.AddrPortFrom(netip.MustParseAddr(tt.ip), 443).String(), nil)
			if errors.Is(err, ErrBlockedAddress) != tt.blocked {
				t.Errorf("dialControl error = %v", err)
			}
		})
	}
}

func TestAuthSentNeverInErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, auth, want string }{
		{"bearer", "{bearer: '${secret:token}'}", "Bearer s3cr3t-token"},
		{"basic", "{basic: {user: etl, password: '${secret:pass}'}}", "Basic ZXRsOnMzY3IzdC1wYXNz"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			var mu sync.Mutex
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				got = append(got, r.Header.Get("Authorization"))
				mu.Unlock()
				if r.URL.Query().Get("fail") != "" {
					http.Error(w, "denied for "+r.Header.Get("Authorization"), http.StatusUnauthorized)
					return
				}
				writeJSON(w, pageOf(1, 1, 1))
			}))
			defer srv.Close()
			base := "allow_hosts: [127.0.0.1]\nschema: {id: int}\nauth: " + tt.auth
			if _, err := openRead(t, "url: "+srv.URL+"\n"+base, &quarantine{}, nil, time.Now()); err != nil {
				t.Fatal(err)
			}
			_, err := openRead(t, "url: "+srv.URL+"/x?fail=1\nquery: {api_key: '${secret:key}'}\n"+base, &quarantine{}, nil, time.Now())
			if err == nil {
				t.Fatal("no error for a 401")
			}
			for _, secret := range []string{"s3cr3t", "ZXRs", "api_key"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals %q", err, secret)
				}
			}
			if diff := cmp.Diff([]string{tt.want, tt.want}, got); diff != "" {
				t.Errorf("Authorization sent (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTLSWithCAFile(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, pageOf(2, 2, 1)) }))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "url: " + srv.URL + "\nallow_hosts: [127.0.0.1]\nschema: {id: int}\nmax_retries: 0\n"
	src, err := open(t, cfg+"ca_file: "+ca, &quarantine{}, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := readAll(t, src); err != nil || len(ids) != 2 {
		t.Fatalf("read %v, %v", ids, err)
	}
	if _, err := openRead(t, cfg, &quarantine{}, nil, time.Now()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without ca_file: error = %v, want a certificate error", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, cfg, want string }{
		{"no url", "records: x", "url: required"},
		{"literal bearer", "url: https://a.example/\nauth: {bearer: abc123}", "sluice secret set"},
		{"literal basic password", "url: https://a.example/\nauth: {basic: {user: u, password: pw}}", "auth: basic: password: must be a secret reference"},
		{"literal authorization header", "url: https://a.example/\nheaders: {Authorization: Bearer x}", "headers: Authorization: must be a secret reference"},
		{"both auths", "url: https://a.example/\nauth: {bearer: '${secret:t}', basic: {user: u, password: '${secret:p}'}}", "exactly one of bearer or basic"},
		{"plain http", "url: http://a.example/", "insecure URL refused"},
		{"credentials in url", "url: https://u:p@a.example/", "credentials in the URL"},
		{"insecure without reason", "url: http://a.example/\ninsecure_http: true", "insecure_reason: required"},
		{"two pagination styles", "url: https://a.example/\npagination: {link_header: true, page: {param: p}}", "exactly one of"},
		{"cursor without path", "url: https://a.example/\npagination: {cursor: {param: c}}", "cursor: path"},
		{"size_param without size", "url: https://a.example/\npagination: {page: {param: p, size_param: n}}", "size: required with size_param"},
		{"bad records path", "url: https://a.example/\nrecords: a..b", "records:"},
		{"allow_hosts with a scheme", "url: https://a.example/\nallow_hosts: ['https://b.example']", "allow_hosts[0]"},
		{"zero response limit", "url: https://a.example/\nmax_response_bytes: 0", "max_response_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewConfig()
			if err := yaml.Unmarshal([]byte(tt.cfg), c); err != nil {
				t.Fatal(err)
			}
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	ok := NewConfig()
	if err := yaml.Unmarshal([]byte("url: 'https://{{ .Params.host }}/v1'\nauth: {bearer: '${secret:t}'}\nallow_hosts: ['*.example.com', '::1']"), ok); err != nil {
		t.Fatal(err)
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestNextLinkHeader(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`<https://a/x?page=2>; rel="next"`, "https://a/x?page=2"},
		{`<https://a/1>; rel="prev", <https://a/3>; rel=next`, "https://a/3"},
		{`<https://a/x?q=a,b>; title="x, y"; rel="last next"`, "https://a/x?q=a,b"},
		{`<https://a/1>; rel="prev"`, ""},
		{`garbage`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := nextLink([]string{tt.in}); got != tt.want {
				t.Errorf("nextLink = %q, want %q", got, tt.want)
			}
		})
	}
}
