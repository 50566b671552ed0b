package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"github.com/sluicehq/sluice/internal/data/jsonl"
)

// The JetStream acknowledgement protocol: what jetstream.Msg.Ack and Nak
// send to a message's reply subject. The source keeps only the reply
// subjects of the messages it owes an answer, not the messages, so that
// what it holds until the commit is a few dozen bytes per message.
var (
	ackAck = []byte("+ACK")
	ackNak = []byte("-NAK")
)

// settleTimeout bounds giving messages back when the source is closed
// without an acknowledgement.
const settleTimeout = 10 * time.Second

// Source reads a JetStream stream through a durable pull consumer. It
// implements data.Source and data.Acker.
type Source struct {
	nc      *natsgo.Conn
	cons    jetstream.Consumer
	where   string // server and stream, for messages
	stream  string
	q       data.Quarantine
	size    int
	schema  *data.Schema
	dec     *jsonl.Decoder
	max     int
	end     time.Time // zero: no time bound
	count   int
	lastSeq uint64
	first   jetstream.Msg // read to infer the schema
	done    bool
	replies []string // owed an answer: acked on Ack, given back on Nack
	settled bool
}

var (
	_ data.Source = (*Source)(nil)
	_ data.Acker  = (*Source)(nil)
)

// OpenSource connects, checks the stream, and creates or updates the
// durable consumer. Without a declared schema it reads up to the first
// valid message to infer one.
func OpenSource(ctx context.Context, cfg any, env data.Env) (data.Source, error) {
	c, err := asConfig(cfg)
	if err != nil {
		return nil, err
	}
	switch {
	case c.Stream == "":
		return nil, errors.New("nats: stream: required to read")
	case c.Durable == "":
		return nil, errors.New("nats: durable: required to read: the consumer remembers what was acknowledged")
	case c.MsgIDPrefix != "":
		return nil, errors.New("nats: msg_id_prefix: applies only to writing")
	}
	nc, where, err := connect(c, env)
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	s := &Source{nc: nc, stream: c.Stream, where: fmt.Sprintf("%s stream %q", where, c.Stream), q: env.Quarantine,
		size: fileio.BatchSize(c.BatchSize, env), max: c.MaxMessages}
	if err := s.open(ctx, c, env); err != nil {
		nc.Close()
		return nil, err
	}
	return s, nil
}

func (s *Source) open(ctx context.Context, c *Config, env data.Env) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return fmt.Errorf("nats: %s: %w", s.where, err)
	}
	stream, err := js.Stream(ctx, c.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("nats: %s: no such stream", s.where)
	}
	if err != nil {
		return fmt.Errorf("nats: %s: %w", s.where, err)
	}
	subject, err := env.Expand(c.Subject)
	if err != nil {
		return fmt.Errorf("nats: subject: %w", err)
	}
	ackWait := c.AckWait
	if ackWait == 0 {
		ackWait = DefaultAckWait
	}
	s.cons, err = stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       c.Durable,
		FilterSubject: subject,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		// Every message read stays unacknowledged until the commit, so
		// the default limit (1000) would stall a large read.
		MaxAckPending: -1,
	})
	if err != nil {
		return fmt.Errorf("nats: %s: creating consumer %q: %w", s.where, c.Durable, err)
	}
	if c.MaxWait > 0 {
		s.end = time.Now().Add(c.MaxWait)
	}
	schema, err := c.Schema.Schema()
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	for schema == nil {
		msgs, err := s.fetch(ctx, 1)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return fmt.Errorf("nats: %s: no message to infer the schema from; declare schema", s.where)
		}
		var reason string
		schema, reason = jsonl.InferSchema(msgs[0].Data())
		if reason != "" {
			if err := s.reject(ctx, msgs[0], reason); err != nil {
				return err
			}
			continue
		}
		s.first = msgs[0]
	}
	s.schema = schema
	s.dec = jsonl.NewDecoder(schema, s.size)
	return nil
}

// Schema returns the schema of the batches.
func (s *Source) Schema() *data.Schema { return s.schema }

// Next returns the next batch, or data.ErrEndOfInput once max_messages
// were read, max_wait passed, or no message is pending. The batch is
// reused by the following call.
func (s *Source) Next(ctx context.Context) (*data.Batch, error) {
	if s.done {
		return nil, data.ErrEndOfInput
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.dec.Reset()
	if s.first != nil {
		if err := s.record(ctx, s.first); err != nil {
			return nil, err
		}
		s.first = nil
	}
	for b := s.dec.Batch(); b.Len < s.size && !s.done; {
		msgs, err := s.fetch(ctx, s.size-b.Len)
		if err != nil {
			return nil, err
		}
		if len(msgs) == 0 {
			s.done = true
		}
		for _, m := range msgs {
			if err := s.record(ctx, m); err != nil {
				return nil, err
			}
		}
	}
	if b := s.dec.Batch(); b.Len > 0 || !s.done {
		return b, nil
	}
	return nil, data.ErrEndOfInput
}

// fetch reads up to n new messages that are available now, within the
// bounds; none means the read is over.
func (s *Source) fetch(ctx context.Context, n int) ([]jetstream.Msg, error) {
	if s.max > 0 {
		n = min(n, s.max-s.count)
	}
	if n <= 0 || (!s.end.IsZero() && !time.Now().Before(s.end)) {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	batch, err := s.cons.FetchNoWait(n)
	if err != nil {
		return nil, fmt.Errorf("nats: %s: fetching messages: %w", s.where, err)
	}
	var out []jetstream.Msg
	got := 0
	for m := range batch.Messages() {
		got++
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("nats: %s: reading message metadata: %w", s.where, err)
		}
		s.replies = append(s.replies, m.Reply())
		if meta.Sequence.Stream <= s.lastSeq {
			// Delivered again (ack_wait passed): this read has it already.
			continue
		}
		s.lastSeq = meta.Sequence.Stream
		s.count++
		out = append(out, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, fmt.Errorf("nats: %s: fetching messages: %w", s.where, err)
	}
	if s.nc.IsClosed() {
		return nil, fmt.Errorf("nats: %s: fetching messages: %w", s.where, natsgo.ErrConnectionClosed)
	}
	if got < n {
		// A no-wait fetch returns every message available now, new or
		// given back: fewer than asked means none is pending.
		s.done = true
	}
	return out, nil
}

func (s *Source) record(ctx context.Context, m jetstream.Msg) error {
	meta, _ := m.Metadata() // read successfully by fetch
	if reason := s.dec.Append(m.Data(), int64(meta.Sequence.Stream)); reason != "" {
		return s.reject(ctx, m, reason)
	}
	return nil
}

func (s *Source) reject(ctx context.Context, m jetstream.Msg, reason string) error {
	seq := uint64(0)
	if meta, err := m.Metadata(); err == nil {
		seq = meta.Sequence.Stream
	}
	pos := fmt.Sprintf("nats stream %s seq %s subject %s", s.stream, strconv.FormatUint(seq, 10), m.Subject())
	if err := s.q.Reject(ctx, data.Reject{Pos: pos, Reason: reason, Raw: string(m.Data())}); err != nil {
		return fmt.Errorf("nats: quarantining %s: %w", pos, err)
	}
	return nil
}

// Ack acknowledges every message read, quarantined ones included (they
// are kept in the quarantine). It returns once the server confirmed the
// last acknowledgement, and with it all before it.
func (s *Source) Ack(ctx context.Context) error {
	return s.settle(ctx, ackAck)
}

// Nack gives every message read back to the stream for redelivery.
func (s *Source) Nack(ctx context.Context) error {
	return s.settle(ctx, ackNak)
}

func (s *Source) settle(ctx context.Context, verb []byte) error {
	if s.settled {
		return nil
	}
	s.settled = true
	if len(s.replies) == 0 {
		return nil
	}
	what := "acknowledging"
	if string(verb) == string(ackNak) {
		what = "giving back"
	}
	last := len(s.replies) - 1
	for _, r := range s.replies[:last] {
		if err := s.nc.Publish(r, verb); err != nil {
			return fmt.Errorf("nats: %s: %s %d messages: %w", s.where, what, len(s.replies), err)
		}
	}
	// Answers from one connection reach the consumer in order: the reply
	// to the last one means the server has all of them.
	if _, err := s.nc.RequestWithContext(ctx, s.replies[last], verb); err != nil {
		return fmt.Errorf("nats: %s: %s %d messages: %w", s.where, what, len(s.replies), err)
	}
	s.replies = nil
	return nil
}

// Close gives back any message not acknowledged, then disconnects.
func (s *Source) Close() error {
	var err error
	if !s.settled && !s.nc.IsClosed() {
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		err = s.Nack(ctx)
		cancel()
	}
	s.nc.Close()
	return err
}
