package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"github.com/sluicehq/sluice/internal/data/jsonl"
)

const (
	// inFlight is how many publishes may await their acknowledgement
	// before Write waits for them: bounds memory and surfaces a failing
	// stream early.
	inFlight = 4096
	// pubAckTimeout bounds the wait for one publish acknowledgement.
	pubAckTimeout = 30 * time.Second
)

// Sink publishes rows as JSON messages to a JetStream subject. It
// implements data.Sink and data.Outputer. See the package documentation
// for why it is idempotent rather than transactional.
type Sink struct {
	nc       *natsgo.Conn
	js       jetstream.JetStream
	schema   *data.Schema
	subject  string
	where    string
	prefix   string
	enc      *jsonl.Encoder
	seq      int64
	pending  []jetstream.PubAckFuture
	sum      hash.Hash
	bytes    int64
	dups     int64
	location string
}

var (
	_ data.Sink     = (*Sink)(nil)
	_ data.Outputer = (*Sink)(nil)
)

// OpenSink connects to the server named by cfg (a *Config) to publish
// records of schema.
func OpenSink(ctx context.Context, cfg any, schema *data.Schema, env data.Env) (data.Sink, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case c.Subject == "":
		return nil, errors.New("nats: subject: required to write")
	case c.Stream != "" || c.Durable != "" || c.MaxMessages != 0 || c.MaxWait != 0 || c.AckWait != 0 || len(c.Schema) > 0 || c.BatchSize != 0:
		return nil, errors.New("nats: stream, durable, max_messages, max_wait, ack_wait, schema and batch_size apply only to reading")
	}
	subject, err := env.Expand(c.Subject)
	if err != nil {
		return nil, fmt.Errorf("nats: subject: %w", err)
	}
	tmpl := c.MsgIDPrefix
	if tmpl == "" {
		tmpl = DefaultMsgIDPrefix
	}
	prefix, err := env.Expand(tmpl)
	if err != nil {
		return nil, fmt.Errorf("nats: msg_id_prefix: %w", err)
	}
	nc, where, err := connect(c, env)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(pubAckTimeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats: %s: %w", where, err)
	}
	return &Sink{nc: nc, js: js, schema: schema, subject: subject, where: fmt.Sprintf("%s subject %q", where, subject),
		prefix: prefix, enc: jsonl.NewEncoder(schema), sum: sha256.New(), location: where + " subject " + subject}, nil
}

// Write publishes one message per row, each with its Nats-Msg-Id.
func (s *Sink) Write(ctx context.Context, b *data.Batch) error {
	if err := fileio.CheckBatch(s.schema, b); err != nil {
		return fmt.Errorf("nats: publishing to %s: %w", s.where, err)
	}
	for row := 0; row < b.Len; row++ {
		payload := s.enc.AppendRow(nil, b, row)
		s.seq++
		id := s.prefix + "." + strconv.FormatInt(s.seq, 10)
		f, err := s.js.PublishMsgAsync(&natsgo.Msg{Subject: s.subject, Data: payload}, jetstream.WithMsgID(id))
		if err != nil {
			return fmt.Errorf("nats: publishing to %s: %w", s.where, err)
		}
		s.pending = append(s.pending, f)
		s.sum.Write(payload)
		s.sum.Write([]byte{'\n'})
		s.bytes += int64(len(payload)) + 1
		if len(s.pending) >= inFlight {
			if err := s.wait(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// wait collects the acknowledgements of the publishes in flight.
func (s *Sink) wait(ctx context.Context) error {
	for _, f := range s.pending {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				s.dups++
			}
		case err := <-f.Err():
			if errors.Is(err, natsgo.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
				return fmt.Errorf("nats: publishing to %s: no stream takes this subject: %w", s.where, err)
			}
			return fmt.Errorf("nats: publishing to %s: %w", s.where, err)
		case <-ctx.Done():
			return fmt.Errorf("nats: publishing to %s: %w", s.where, ctx.Err())
		}
	}
	s.pending = s.pending[:0]
	return nil
}

// Commit waits until the stream acknowledged every message.
func (s *Sink) Commit(ctx context.Context) error {
	err := s.wait(ctx)
	s.nc.Close()
	return err
}

// Duplicates reports how many messages the stream dropped as duplicates
// of ones an earlier attempt published.
func (s *Sink) Duplicates() int64 { return s.dups }

// Output describes what was published: the server and subject, and the
// size and SHA-256 of the messages as JSON Lines (each payload and a line
// break), in order.
func (s *Sink) Output() data.Output {
	return data.Output{Location: s.location, Bytes: s.bytes, SHA256: hex.EncodeToString(s.sum.Sum(nil))}
}

// Abort stops publishing. Messages already acknowledged by the stream
// stay there: a stream cannot roll back.
func (s *Sink) Abort() error {
	s.nc.Close()
	return nil
}
