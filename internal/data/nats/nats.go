// Package nats is the nats connector: a source that reads JSON messages
// from a NATS JetStream stream through a durable consumer, and a sink that
// publishes each row as a JSON message to a subject.
//
// The source acknowledges nothing while it reads. It implements data.Acker:
// the task acknowledges the messages only after the sink committed, and on
// failure gives them back (a NAK), so JetStream delivers them again to the
// next attempt — at-least-once delivery. Messages are JSON objects decoded
// by the rules of the jsonl connector; a message that does not fit the
// schema is quarantined (and acknowledged with the rest, since it is kept).
//
// A stream cannot roll back, so the sink is idempotent rather than
// transactional: every message carries a Nats-Msg-Id derived from the run,
// the task and the row's position, and JetStream drops a message whose id
// it has seen within the stream's duplicate window. A retried attempt that
// writes the same rows in the same order therefore does not duplicate them.
// Commit waits for every publish acknowledgement; Abort stops publishing,
// and what was already published stays.
package nats

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// Name is the connector's name under extract: and load:.
const Name = "nats"

// connectTimeout bounds connecting to the server.
const connectTimeout = 10 * time.Second

func init() {
	data.Builtin.Register(&data.Connector{
		Name:       Name,
		Config:     func() any { return NewConfig() },
		OpenSource: OpenSource,
		OpenSink:   OpenSink,
	})
}

// Config is the nats connector's settings. Some apply to reading only,
// some to writing only.
type Config struct {
	// URL is the server, or comma-separated servers, a template that may
	// hold secret references. Required.
	URL string `yaml:"url"`
	// TLS configures a TLS connection.
	TLS *TLS `yaml:"tls"`
	// Creds is the content of a NATS credentials file (JWT and seed); a
	// secret reference.
	Creds string `yaml:"creds"`
	// Token is an authentication token; a secret reference.
	Token string `yaml:"token"`

	// Stream is the JetStream stream to read. Reading only; required.
	Stream string `yaml:"stream"`
	// Subject filters the stream's messages when reading; when writing it
	// is the subject to publish to (a template; required).
	Subject string `yaml:"subject"`
	// Durable names the consumer that remembers what was acknowledged.
	// Reading only; required.
	Durable string `yaml:"durable"`
	// MaxMessages stops reading after this many messages; 0: no limit.
	MaxMessages int `yaml:"max_messages"`
	// MaxWait stops reading after this long; 0: no limit. Reading also
	// stops as soon as no message is pending.
	MaxWait time.Duration `yaml:"max_wait"`
	// AckWait is how long the server waits for an acknowledgement before
	// it delivers a message again: longer than the task takes. Default
	// DefaultAckWait. Reading only.
	AckWait time.Duration `yaml:"ack_wait"`
	// Schema types the fields, in order; without it the schema is inferred
	// from the first message. Reading only.
	Schema fileio.Columns `yaml:"schema"`
	// BatchSize is the rows per batch; 0 uses the task's batch size.
	// Reading only.
	BatchSize int `yaml:"batch_size"`

	// MsgIDPrefix is a template that, followed by the row's position,
	// makes each message's Nats-Msg-Id. Default DefaultMsgIDPrefix.
	// Writing only.
	MsgIDPrefix string `yaml:"msg_id_prefix"`
}

// TLS names the files of a TLS connection.
type TLS struct {
	// CAFile is a PEM file of authorities to trust instead of the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and its key.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Defaults of the settings.
const (
	// DefaultAckWait is long enough for a large task: a message is owed to
	// the reader until the sink committed.
	DefaultAckWait = 30 * time.Minute
	// DefaultMsgIDPrefix makes message ids unique per run and task and
	// equal across attempts of one task.
	DefaultMsgIDPrefix = "{{ .RunID }}.{{ .Task }}"
)

// NewConfig returns a Config with its defaults set.
func NewConfig() *Config { return &Config{} }

func isReference(s string) bool {
	return strings.Contains(s, "${secret:") || strings.Contains(s, "{{")
}

const useSecret = "must be a secret reference such as ${secret:name} (store it with `sluice secret set`), not a literal credential"

// Validate checks the settings common to reading and writing, naming the
// bad one.
func (c *Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("url: required")
	case c.Subject == "" && c.Stream == "":
		return errors.New("subject: required (stream too, to read)")
	case c.Creds != "" && !isReference(c.Creds):
		return fmt.Errorf("creds: %s", useSecret)
	case c.Token != "" && !isReference(c.Token):
		return fmt.Errorf("token: %s", useSecret)
	case c.Creds != "" && c.Token != "":
		return errors.New("creds, token: want at most one")
	case c.TLS != nil && (c.TLS.CertFile == "") != (c.TLS.KeyFile == ""):
		return errors.New("tls: cert_file and key_file go together")
	case c.MaxMessages < 0:
		return fmt.Errorf("max_messages: must not be negative, got %d", c.MaxMessages)
	case c.MaxWait < 0:
		return fmt.Errorf("max_wait: must not be negative, got %s", c.MaxWait)
	case c.AckWait < 0:
		return fmt.Errorf("ack_wait: must not be negative, got %s", c.AckWait)
	case c.BatchSize < 0:
		return fmt.Errorf("batch_size: must not be negative, got %d", c.BatchSize)
	}
	if _, err := c.Schema.Schema(); err != nil {
		return err
	}
	return nil
}

func asConfig(cfg any) (*Config, error) { return data.ConfigAs[Config](Name, cfg) }

// connect opens the connection. It does not reconnect: a task that loses
// its server fails with a clear error and is retried whole, which the
// acknowledge-after-commit design makes safe, rather than hang.
func connect(c *Config, env data.Env) (*natsgo.Conn, string, error) {
	servers, err := env.Expand(c.URL)
	if err != nil {
		return nil, "", fmt.Errorf("url: %w", err)
	}
	where := redact(servers)
	opts := []natsgo.Option{natsgo.Name("sluice"), natsgo.NoReconnect(), natsgo.Timeout(connectTimeout)}
	if c.Token != "" {
		tok, err := env.Expand(c.Token)
		if err != nil {
			return nil, where, fmt.Errorf("token: %w", err)
		}
		opts = append(opts, natsgo.Token(tok))
	}
	if c.Creds != "" {
		creds, err := env.Expand(c.Creds)
		if err != nil {
			return nil, where, fmt.Errorf("creds: %w", err)
		}
		jwt, err := nkeys.ParseDecoratedJWT([]byte(creds))
		if err != nil {
			return nil, where, errors.New("creds: not a NATS credentials file (no user JWT)")
		}
		kp, err := nkeys.ParseDecoratedNKey([]byte(creds))
		if err != nil {
			return nil, where, errors.New("creds: not a NATS credentials file (no user seed)")
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, where, errors.New("creds: the user seed is not valid")
		}
		opts = append(opts, natsgo.UserJWTAndSeed(jwt, string(seed)))
	}
	if c.TLS != nil {
		conf, err := tlsConfig(c.TLS, env)
		if err != nil {
			return nil, where, fmt.Errorf("tls: %w", err)
		}
		opts = append(opts, natsgo.Secure(conf))
	}
	nc, err := natsgo.Connect(servers, opts...)
	if err != nil {
		return nil, where, fmt.Errorf("connecting to %s: %w", where, err)
	}
	return nc, where, nil
}

func tlsConfig(t *TLS, env data.Env) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		path, err := fileio.ResolvePath(env, t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", path)
		}
		conf.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := fileio.ResolvePath(env, t.CertFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		key, err := fileio.ResolvePath(env, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("loading cert_file and key_file: %w", err)
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

// redact renders a server list for messages, passwords hidden.
func redact(servers string) string {
	parts := strings.Split(servers, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.Host != "" {
			if u.User != nil {
				// A user alone may be a token: hide all of it.
				u.User = url.User("xxxxx")
			}
			p = u.String()
		} else if at := strings.LastIndexByte(p, '@'); at >= 0 {
			p = "xxxxx@" + p[at+1:]
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
