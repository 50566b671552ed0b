package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/audit"
	"github.com/sluicehq/sluice/internal/server"
)

// serverStarted is what `sluice server --output json` prints once it
// listens.
type serverStarted struct {
	URL         string `json:"url"`
	TLS         bool   `json:"tls"`
	Certificate string `json:"certificate,omitempty"`
	Fingerprint string `json:"fingerprint_sha256,omitempty"`
	SelfSigned  bool   `json:"self_signed"`
}

func serverCommand(e *env) *cobra.Command {
	var (
		opts    app.ServerOptions
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Serve the control plane (HTTPS API, health and metrics) until interrupted",
		Long: `Server starts sluice's control plane: the HTTPS server with /healthz,
/readyz, /metrics and the API under /api/v1, and the embedded engine.

It serves HTTPS only, on 127.0.0.1:8443 unless --listen says otherwise. The
certificate comes from --tls-cert/--tls-key (or tls_cert/tls_key in
config.yaml); without one, a self-signed certificate is generated in
<home>/tls on first start and its SHA-256 fingerprint printed, so clients can
verify it. Plain HTTP needs --insecure-http and a loopback address.

SIGINT or SIGTERM stops it gracefully: no new connections, in-flight
requests get --shutdown-timeout to finish, running tasks are cancelled and
recorded as such.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return exitWith(ExitUsage, fmt.Errorf("--shutdown-timeout: %s must be positive", timeout))
			}
			if opts.InsecureHTTP && (opts.TLSCert != "" || opts.TLSKey != "") {
				return exitWith(ExitUsage, errors.New("--insecure-http and --tls-cert/--tls-key contradict each other: choose one"))
			}
			if (opts.TLSCert == "") != (opts.TLSKey == "") {
				return exitWith(ExitUsage, errors.New("--tls-cert and --tls-key: give both, or neither"))
			}
			opts.ShutdownTimeout = timeout
			cfg, err := e.config()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// The log (written by every request) and the command's own
			// messages share stderr: one lock keeps their writes apart.
			stderr := &lockedWriter{w: e.stderr}
			s, err := app.Serve(ctx, cfg, app.Options{LogOutput: stderr, Getenv: e.getenv, AuditSource: audit.SourceAPI}, opts)
			if errors.Is(err, server.ErrInsecureListen) {
				return exitWith(ExitUsage, err)
			}
			if err != nil {
				return err
			}
			if s.App.KEKCreated != "" {
				fmt.Fprintf(stderr, "sluice: created a new key-encryption key in %s: back it up now (see docs/keys.md).\n", s.App.KEKCreated)
			}
			// Everything the server serves needs a signed-in user: say
			// how to get the first one rather than leave a newcomer at a
			// sign-in page nobody can pass.
			if users, err := s.App.Store.ListUsers(ctx); err == nil && len(users) == 0 {
				fmt.Fprintln(stderr, "sluice: no users yet: the web UI and the API need one to sign in. Create the first with 'sluice init',\n"+
					"  then run 'sluice login USER' once to choose a password and enrol an authenticator.")
			}
			if err := printServerStarted(e, s.HTTP); err != nil {
				s.Stop()
				return err
			}
			select {
			case <-ctx.Done():
			case <-s.HTTP.Done():
			}
			if !e.json() {
				fmt.Fprintf(stderr, "sluice: stopping (in-flight requests get up to %s)\n", timeout)
			}
			if err := s.Stop(); err != nil {
				return exitWith(ExitFailure, err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Listen, "listen", server.DefaultListen, "address to listen on, host:port (non-loopback addresses are reachable from the network)")
	f.StringVar(&opts.TLSCert, "tls-cert", "", "PEM certificate file (default: tls_cert from config.yaml, else a generated self-signed one)")
	f.StringVar(&opts.TLSKey, "tls-key", "", "PEM private key file for --tls-cert")
	f.BoolVar(&opts.InsecureHTTP, "insecure-http", false, "serve plain HTTP instead of HTTPS; only allowed on a loopback address")
	f.DurationVar(&timeout, "shutdown-timeout", server.DefaultShutdownTimeout, "how long in-flight requests may take to finish on shutdown")
	return cmd
}

func printServerStarted(e *env, s *server.Server) error {
	out := serverStarted{URL: s.URL(), TLS: s.TLS()}
	if c := s.Cert(); c != nil {
		out.Certificate, out.Fingerprint, out.SelfSigned = c.CertPath, c.Fingerprint, c.SelfSigned
	}
	if e.json() {
		return e.writeJSON(out)
	}
	fmt.Fprintf(e.stdout, "sluice server listening on %s\n", out.URL)
	switch {
	case !out.TLS:
		fmt.Fprintln(e.stdout, "  plain HTTP (--insecure-http): for local development only")
	case out.SelfSigned:
		fmt.Fprintf(e.stdout, "  self-signed certificate %s\n  SHA-256 fingerprint %s\n", out.Certificate, out.Fingerprint)
	default:
		fmt.Fprintf(e.stdout, "  certificate %s\n  SHA-256 fingerprint %s\n", out.Certificate, out.Fingerprint)
	}
	return nil
}

// lockedWriter serialises writes to w, for a stream that several
// goroutines write to.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
