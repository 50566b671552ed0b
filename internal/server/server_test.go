package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

// ready is a Ready func for tests that do not care about the store.
func ready(context.Context) error { return nil }

// storeReady is the readiness check the application uses: a lookup by id
// that the store answers with ErrNotFound when it is reachable.
func storeReady(db store.Store) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := db.GetRun(ctx, "readiness-probe")
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a server on 127.0.0.1:0 with a temporary state directory and
// stops it when the test ends.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.Ready == nil {
		opts.Ready = ready
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// client trusts exactly the server's certificate.
func client(t *testing.T, s *Server, cfg *tls.Config) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(s.Cert().TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(leaf)
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg.RootCAs = pool
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
}

func TestTLSServesHealthzToATrustingClient(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	if !strings.HasPrefix(s.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL = %q", s.URL())
	}
	resp, err := client(t, s, nil).Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("GET /healthz = %d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != hstsValue {
		t.Errorf("HSTS = %q, want %q", got, hstsValue)
	}
	if resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("negotiated TLS version %x", resp.TLS.Version)
	}
	if got := Fingerprint(resp.TLS.PeerCertificates[0].Raw); got != s.Cert().Fingerprint {
		t.Errorf("served certificate %s, fingerprint reported %s", got, s.Cert().Fingerprint)
	}
}

func TestTLSRefusesOldVersionsAndWeakSuites(t *testing.T) {
	t.Parallel()
	s := start(t, Options{})
	tests := []struct {
		name string
		cfg  *tls.Config
	}{
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}},
		{"TLS 1.2 CBC only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := client(t, s, tt.cfg).Get(s.URL() + "/healthz")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("handshake succeeded with %s", tt.name)
			}
		})
	}
	t.Run("TLS 1.2 AEAD", func(t *testing.T) {
		t.Parallel()
		resp, err := client(t, s, &tls.Config{MaxVersion: tls.VersionTLS12}).Get(s.URL() + "/healthz")
		if err != nil {
			t.Fatalf("GET over TLS 1.2: %v", err)
		}
		resp.Body.Close()
		if resp.TLS.Version != tls.VersionTLS12 {
			t.Errorf("version %x, want TLS 1.2", resp.TLS.Version)
		}
	})
}

func TestPlainHTTP(t *testing.T) {
	t.Parallel()
	t.Run("refused by the TLS server", func(t *testing.T) {
		t.Parallel()
		s := start(t, Options{})
		url := strings.Replace(s.URL(), "https://", "http://", 1)
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("plain HTTP to the TLS listener got 200")
			}
		}
	})
	t.Run("refused off loopback", func(t *testing.T) {
		t.Parallel()
		for _, listen := range []string{"0.0.0.0:0", ":0", "192.0.2.1:8080", "example.com:80"} {
			_, err := New(Options{Listen: listen, InsecureHTTP: true, Ready: ready})
			if !errors.Is(err, ErrInsecureListen) {
				t.Errorf("New(insecure, %s) = %v, want ErrInsecureListen", listen, err)
			}
		}
	})
	t.Run("allowed on loopback with the flag", func(t *testing.T) {
		t.Parallel()
		s := start(t, Options{InsecureHTTP: true})
		if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || s.TLS() {
			t.Fatalf("URL = %q", s.URL())
		}
		resp, err := http.Get(s.URL() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("GET = %d, HSTS %q (want 200 and no HSTS over HTTP)", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
		}
	})
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no ready", Options{StateDir: dir}, "Ready is required"},
		{"bad listen", Options{Listen: "8443", StateDir: dir, Ready: ready}, `listen address "8443"`},
		{"bad port", Options{Listen: "127.0.0.1:http", StateDir: dir, Ready: ready}, "is not a number"},
		{"cert without key", Options{TLSCertFile: "c.pem", StateDir: dir, Ready: ready}, "both a certificate and a key"},
		{"missing cert files", Options{TLSCertFile: filepath.Join(dir, "no.crt"), TLSKeyFile: filepath.Join(dir, "no.key"), Ready: ready}, "loading TLS certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestConfiguredCertificateIsServed(t *testing.T) {
	t.Parallel()
	// A certificate made elsewhere, given by file.
	gen, err := SelfSignedCert(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(filepath.Dir(gen.CertPath), KeyFile)
	s := start(t, Options{TLSCertFile: gen.CertPath, TLSKeyFile: keyPath})
	if s.Cert().SelfSigned || s.Cert().Fingerprint != gen.Fingerprint {
		t.Errorf("served %+v, want the configured certificate %s", s.Cert().Fingerprint, gen.Fingerprint)
	}
	resp, err := client(t, s, nil).Get(s.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestSelfSignedCert(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := filepath.Join(t.TempDir(), TLSDir)
	first, err := SelfSignedCert(dir, []string{"sluice.internal"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || !first.SelfSigned {
		t.Errorf("first call: Created=%v SelfSigned=%v", first.Created, first.SelfSigned)
	}
	leaf, err := x509.ParseCertificate(first.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "sluice.internal"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	if got := leaf.NotAfter.Sub(now); got != selfSignedValidity {
		t.Errorf("validity %s, want %s", got, selfSignedValidity)
	}
	if k, ok := first.TLS.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", first.TLS.PrivateKey)
	}
	for name, want := range map[string]os.FileMode{"": 0o700, KeyFile: 0o600, CertFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %q = %o, want %o", name, got, want)
		}
	}

	tests := []struct {
		name    string
		hosts   []string
		at      time.Time
		created bool
	}{
		{"reused while valid", []string{"sluice.internal"}, now.Add(300 * 24 * time.Hour), false},
		{"wildcard host adds nothing", []string{"0.0.0.0"}, now.Add(time.Hour), false},
		{"regenerated when expired", []string{"sluice.internal"}, now.Add(366 * 24 * time.Hour), true},
	}
	prev := first.Fingerprint
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := SelfSignedCert(dir, tt.hosts, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if c.Created != tt.created || (c.Fingerprint != prev) != tt.created {
				t.Errorf("Created=%v fingerprint changed=%v, want %v", c.Created, c.Fingerprint != prev, tt.created)
			}
			prev = c.Fingerprint
		})
	}
	t.Run("regenerated for a new host", func(t *testing.T) {
		c, err := SelfSignedCert(dir, []string{"10.1.2.3"}, now.Add(367*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		l, _ := x509.ParseCertificate(c.TLS.Certificate[0])
		if !c.Created || l.VerifyHostname("10.1.2.3") != nil {
			t.Errorf("Created=%v, covers 10.1.2.3: %v", c.Created, l.VerifyHostname("10.1.2.3"))
		}
	})
}

// do sends r through the server's handler.
func do(s *Server, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, r)
	return rec
}

// decodeError parses the API error shape.
func decodeError(t *testing.T, body string) errorDetail {
	t.Helper()
	var b errorBody
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("error body is not the API error shape: %v", err)
	}
	return b.Error
}

// newHandlerServer builds a TLS server (not started) for handler tests.
func newHandlerServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.Ready == nil {
		opts.Ready = ready
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	api := http.NewServeMux()
	api.HandleFunc(APIPrefix+"boom", func(http.ResponseWriter, *http.Request) { panic("secret panic detail") })
	s := newHandlerServer(t, Options{API: api})
	want := map[string]string{
		"Content-Security-Policy":    ContentSecurityPolicy,
		"X-Content-Type-Options":     "nosniff",
		"Referrer-Policy":            "no-referrer",
		"X-Frame-Options":            "DENY",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Strict-Transport-Security":  hstsValue,
	}
	tests := []struct {
		name   string
		path   string
		status int
	}{
		{"200", "/healthz", 200},
		{"404", "/nowhere", 404},
		{"404 api", APIPrefix + "runs", 404},
		{"500", APIPrefix + "boom", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := do(s, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.status {
				t.Fatalf("GET %s = %d, want %d", tt.path, rec.Code, tt.status)
			}
			got := map[string]string{}
			for k := range want {
				got[k] = rec.Header().Get(k)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPanicBecomesAnInternalErrorWithoutItsText(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	api := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("password=hunter2") })
	s := newHandlerServer(t, Options{API: api, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	r := httptest.NewRequest("GET", APIPrefix+"x", nil)
	r.Header.Set(HeaderRequestID, "req-1")
	rec := do(s, r)
	if rec.Code != 500 {
		t.Fatalf("status %d", rec.Code)
	}
	body := rec.Body.String()
	if strings.Contains(body, "hunter2") {
		t.Errorf("panic text leaked to the client: %s", body)
	}
	e := decodeError(t, body)
	if diff := cmp.Diff(errorDetail{Code: CodeInternal, Message: "internal error", RequestID: "req-1"}, e); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "hunter2") || !strings.Contains(logs.String(), `"request_id":"req-1"`) {
		t.Errorf("panic not logged with its request id: %s", logs.String())
	}
}
