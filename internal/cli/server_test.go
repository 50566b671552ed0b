package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// firstWrite hands the first write to a channel and keeps the rest.
type firstWrite struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first chan []byte
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() == 0 {
		w.first <- append([]byte(nil), p...)
	}
	return w.buf.Write(p)
}

func TestServerCommandServesUntilCancelled(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &firstWrite{first: make(chan []byte, 1)}
	var errOut bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- Main(ctx, []string{"server", "--home", home, "--listen", "127.0.0.1:0", "--output", "json"},
			strings.NewReader(""), out, &errOut, func(string) string { return "" })
	}()
	var started serverStarted
	select {
	case b := <-out.first:
		if err := json.Unmarshal(b, &started); err != nil {
			t.Fatalf("start output %q: %v", b, err)
		}
	case c := <-code:
		t.Fatalf("server exited %d before listening: %s", c, errOut.String())
	}
	if !started.TLS || !started.SelfSigned || !strings.HasPrefix(started.URL, "https://127.0.0.1:") || len(started.Fingerprint) != 95 {
		t.Fatalf("start output %+v", started)
	}
	pem, err := os.ReadFile(started.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	resp, err := c.Get(started.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz = %d", resp.StatusCode)
	}
	cancel() // as SIGINT would
	if got := <-code; got != ExitOK {
		t.Errorf("exit %d after cancel, want 0: %s", got, errOut.String())
	}
	// A state directory without users gets told how to make the first.
	if !strings.Contains(errOut.String(), "sluice init") {
		t.Errorf("no hint to create the first user on a server without users:\n%s", errOut.String())
	}
}

func TestServerCommandRefusesUnsafeOrBadFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"plain HTTP off loopback", []string{"--insecure-http", "--listen", "0.0.0.0:0"}, "only allowed on a loopback address"},
		{"plain HTTP with a certificate", []string{"--insecure-http", "--tls-cert", "a", "--tls-key", "b"}, "contradict"},
		{"certificate without key", []string{"--tls-cert", "a"}, "give both"},
		{"zero shutdown timeout", []string{"--shutdown-timeout", "0s"}, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			args := append([]string{"server", "--home", t.TempDir()}, tt.args...)
			got := Main(t.Context(), args, strings.NewReader(""), &out, &errOut, func(string) string { return "" })
			if got != ExitUsage || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", got, errOut.String(), ExitUsage, tt.want)
			}
		})
	}
}
