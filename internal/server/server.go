// Package server is sluice's HTTP(S) control plane: the listener and its
// TLS settings, one middleware chain every request passes through (request
// id, access log, security headers, panic recovery, body limit, rate
// limits, CSRF), the health and metrics endpoints, and the mount points
// where the REST API (/api/v1) and the web UI plug in.
//
// It is secure by default: HTTPS with a generated certificate when none is
// configured, a loopback listen address, plain HTTP only when asked for
// explicitly and only on loopback.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/clock"
	"github.com/sluicehq/sluice/internal/monitor"
)

// DefaultListen is the default listen address: loopback only, so a fresh
// install is not reachable from the network until someone decides it
// should be.
const DefaultListen = "127.0.0.1:8443"

// DefaultShutdownTimeout bounds how long Stop waits for in-flight requests.
const DefaultShutdownTimeout = 30 * time.Second

// readyTimeout bounds the store check behind /readyz.
const readyTimeout = 2 * time.Second

// APIPrefix is where the REST API is mounted.
const APIPrefix = "/api/v1/"

// AuthPrefix is where the login and token endpoints live: everything under
// it is rate limited per client address, and handlers there limit per
// account with CheckAccount.
const AuthPrefix = APIPrefix + "auth/"

// LoginPath is the web UI's sign-in form: posts to it are rate limited
// like the API's login, per client address here and per account by the
// UI's handler (CheckAccount).
const LoginPath = "/login"

// Errors New returns for a listen address it refuses.
var (
	// ErrInsecureListen: plain HTTP was asked for on an address that is
	// not loopback, where credentials would cross the network in clear.
	ErrInsecureListen = errors.New("plain HTTP (--insecure-http) is only allowed on a loopback address such as 127.0.0.1 or localhost")
	// ErrNoReady: Options.Ready is required so /readyz cannot lie.
	ErrNoReady = errors.New("server: Options.Ready is required")
)

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Listen is host:port; default DefaultListen. A non-loopback address
	// is allowed and logged as a warning.
	Listen string
	// TLSCertFile and TLSKeyFile name a PEM certificate and key. When both
	// are empty a self-signed certificate is kept in StateDir/tls.
	TLSCertFile, TLSKeyFile string
	// StateDir is the state directory, for the generated certificate.
	StateDir string
	// InsecureHTTP serves plain HTTP; refused unless Listen is loopback.
	InsecureHTTP bool
	// Logger receives access logs and errors; it should be the app's
	// redacting logger. Default: discard.
	Logger *slog.Logger
	// Metrics is served on /metrics; default a new registry.
	Metrics *monitor.Metrics
	// Ready reports whether the server can do its work (the store answers
	// a cheap query); /readyz answers 503 while it returns an error.
	// Required.
	Ready func(ctx context.Context) error
	// MaxBodyBytes limits request bodies; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// IPRate and AccountRate limit the login and token endpoints under
	// AuthPrefix; defaults DefaultIPRate and DefaultAccountRate.
	IPRate, AccountRate Rate
	// CSRF guards unsafe requests to the API and the UI; default a guard
	// with a random per-process key.
	CSRF *CSRF
	// Clock times requests and rate-limit windows; default the real clock.
	Clock clock.Clock
	// ShutdownTimeout bounds Stop; default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// API serves everything under /api/v1/ except /api/v1/health. It
	// runs inside the full middleware chain and the CSRF guard, and under
	// AuthPrefix also the rate limits. Nil: every API path is a JSON 404.
	API http.Handler
	// UI serves every path outside /api/, /healthz, /readyz and /metrics
	// (the browser routes), inside the middleware chain and the CSRF
	// guard. Nil: JSON 404.
	UI http.Handler
}

// Server is the HTTP(S) server. Create it with New, then Start and Stop.
type Server struct {
	opts     Options
	log      *slog.Logger
	cert     *Cert
	csrf     *CSRF
	metrics  *monitor.Metrics
	handler  http.Handler
	loopback bool

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	done    chan struct{}
	serveEr error
	stop    sync.Once
	stopErr error
}

// New checks the options, loads or generates the certificate, and builds
// the handler. It does not listen yet.
func New(opts Options) (*Server, error) {
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.Logger == nil {
		opts.Logger = discard
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.IPRate.N <= 0 || opts.IPRate.Window <= 0 {
		opts.IPRate = DefaultIPRate
	}
	if opts.AccountRate.N <= 0 || opts.AccountRate.Window <= 0 {
		opts.AccountRate = DefaultAccountRate
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	if opts.Metrics == nil {
		opts.Metrics = monitor.NewMetrics()
	}
	if opts.Ready == nil {
		return nil, ErrNoReady
	}
	host, port, err := net.SplitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w (want host:port, such as 127.0.0.1:8443)", opts.Listen, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("listen address %q: port %q is not a number from 0 to 65535", opts.Listen, port)
	}
	s := &Server{opts: opts, log: opts.Logger, metrics: opts.Metrics, loopback: IsLoopback(host), done: make(chan struct{})}
	if opts.InsecureHTTP && !s.loopback {
		return nil, fmt.Errorf("listen address %q: %w", opts.Listen, ErrInsecureListen)
	}
	if !opts.InsecureHTTP {
		if (opts.TLSCertFile == "") != (opts.TLSKeyFile == "") {
			return nil, errors.New("TLS: give both a certificate and a key, or neither for a self-signed certificate")
		}
		var c Cert
		if opts.TLSCertFile != "" {
			c, err = LoadCert(opts.TLSCertFile, opts.TLSKeyFile)
		} else {
			if opts.StateDir == "" {
				return nil, errors.New("TLS: a state directory is needed to keep the self-signed certificate")
			}
			c, err = SelfSignedCert(filepath.Join(opts.StateDir, TLSDir), []string{host}, opts.Clock.Now())
		}
		if err != nil {
			return nil, err
		}
		s.cert = &c
	}
	s.csrf = opts.CSRF
	if s.csrf == nil {
		if s.csrf, err = NewCSRF(nil); err != nil {
			return nil, err
		}
	}
	s.handler = s.routes()
	return s, nil
}

// IsLoopback reports whether host (from host:port) names only the local
// machine: "localhost" or a loopback IP. An empty host means every
// interface and is not loopback.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Handler is the whole middleware chain and routes, for tests and for
// embedding behind another listener.
func (s *Server) Handler() http.Handler { return s.handler }

// CSRF returns the server's CSRF guard, so the UI can render tokens.
func (s *Server) CSRF() *CSRF { return s.csrf }

// Cert returns the certificate served, or nil for plain HTTP.
func (s *Server) Cert() *Cert { return s.cert }

// TLS reports whether the server serves HTTPS.
func (s *Server) TLS() bool { return s.cert != nil }

// routes builds the mux inside the middleware chain. The order matters:
// the request id comes first so every later line and error carries it;
// security headers are set before anything can answer; the access log
// sees the final status, including a recovered panic's 500.
func (s *Server) routes() http.Handler {
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, &Error{Code: CodeNotFound, Message: "no such endpoint"})
	})
	api := s.opts.API
	if api == nil {
		api = notFound
	}
	ui := s.opts.UI
	if ui == nil {
		ui = notFound
	}
	perIP := NewLimiter(s.opts.IPRate, s.opts.Clock)
	perAccount := NewLimiter(s.opts.AccountRate, s.opts.Clock)

	mux := http.NewServeMux()
	mux.Handle("/healthz", getOnly(http.HandlerFunc(s.healthz)))
	mux.Handle("/readyz", getOnly(http.HandlerFunc(s.readyz)))
	mux.Handle("/metrics", getOnly(s.metrics.Handler()))
	mux.Handle(APIPrefix+"health", getOnly(http.HandlerFunc(s.healthz)))
	// The REST API handlers plug in here (Options.API); login and token
	// endpoints belong under AuthPrefix, where the rate limits apply.
	mux.Handle(AuthPrefix, Chain(api, WithRateLimit(perIP, perAccount), s.csrf.Protect))
	mux.Handle(APIPrefix, s.csrf.Protect(api))
	// The web UI's sign-in form gets the same limits as the API's.
	mux.Handle("POST "+LoginPath, Chain(ui, WithRateLimit(perIP, perAccount), s.csrf.Protect))
	mux.Handle("/api/", notFound)
	// The web UI plugs in here (Options.UI): every other path.
	mux.Handle("/", s.csrf.Protect(ui))

	return Chain(mux,
		WithRequestID(s.log),
		WithSecurityHeaders(s.TLS()),
		WithAccessLog(s.opts.Clock),
		WithRecover(),
		WithBodyLimit(s.opts.MaxBodyBytes),
	)
}

// getOnly answers GET and HEAD and refuses other methods with a JSON error.
func getOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			WriteError(w, r, Errorf(CodeInvalid, "method %s not allowed here", r.Method))
			return
		}
		h.ServeHTTP(w, r)
	})
}

type status struct {
	Status string `json:"status"`
}

// healthz says the process is alive and serving; it checks nothing else,
// so a slow store never gets a healthy process restarted.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, status{Status: "ok"})
}

// readyz says whether the server can do its work: the store answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.opts.Ready(ctx); err != nil {
		Logger(r.Context()).Warn("not ready", slog.String(keyError, err.Error()))
		writeJSON(w, http.StatusServiceUnavailable, status{Status: "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, status{Status: "ready"})
}

// Start listens on the configured address and serves in the background
// until Stop. It returns once the listener is bound, so Addr and URL are
// known (useful with port 0).
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return errors.New("server already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.opts.Listen, err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.cert != nil {
		s.srv.TLSConfig = TLSConfig(s.cert.TLS)
	}
	if !s.loopback {
		s.log.Warn("listening on a non-loopback address: the server is reachable from the network",
			slog.String("listen", s.opts.Listen))
	}
	if s.cert != nil && s.cert.SelfSigned {
		s.log.Warn("serving a self-signed certificate: clients must trust it explicitly; configure tls_cert and tls_key for production",
			slog.String("certificate", s.cert.CertPath), slog.String("sha256", s.cert.Fingerprint))
	}
	if s.cert == nil {
		s.log.Warn("serving plain HTTP on loopback (--insecure-http): for local development only")
	}
	go func() {
		var err error
		if s.cert != nil {
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.mu.Lock()
		s.serveEr = err
		s.mu.Unlock()
		close(s.done)
	}()
	return nil
}

// Addr is the bound address; nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// URL is the base URL clients use: https:// (or http:// when insecure)
// and the bound address, with "localhost" for a wildcard host.
func (s *Server) URL() string {
	scheme := "https"
	if s.cert == nil {
		scheme = "http"
	}
	addr := s.Addr()
	if addr == nil {
		return scheme + "://" + s.opts.Listen
	}
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// Done is closed when the server stops serving (after Stop, or when the
// listener fails).
func (s *Server) Done() <-chan struct{} { return s.done }

// ErrShutdownTimeout is returned by Stop when in-flight requests did not
// finish within the shutdown timeout and their connections were closed.
var ErrShutdownTimeout = errors.New("in-flight requests did not finish in time; connections closed")

// Stop stops accepting connections and waits up to the shutdown timeout
// for in-flight requests to finish, then closes what is left. It is safe
// to call more than once and before Start; later calls return the first
// result.
func (s *Server) Stop() error {
	s.stop.Do(func() {
		s.mu.Lock()
		srv := s.srv
		s.mu.Unlock()
		if srv == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
		defer cancel()
		err := srv.Shutdown(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			_ = srv.Close() // the timeout is the error worth reporting
			err = fmt.Errorf("stopping server after %s: %w", s.opts.ShutdownTimeout, ErrShutdownTimeout)
		} else if err != nil {
			err = fmt.Errorf("stopping server: %w", err)
		}
		<-s.done
		s.mu.Lock()
		s.stopErr = errors.Join(err, s.serveEr)
		s.mu.Unlock()
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopErr
}
