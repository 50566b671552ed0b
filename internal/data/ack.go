package data

import "context"

// Acker is implemented by sources that read from a queue or a log whose
// messages stay owed to the reader until acknowledged (NATS JetStream, for
// one). Acknowledging when a message is read would lose it if the task then
// failed; acknowledging only after the sink committed gives at-least-once
// delivery, and an idempotent or transactional sink turns that into
// exactly-once effects.
//
// The data task calls Ack once, after the sink's Commit returned nil, and
// before Close. On any failure it calls Nack instead (or only Close, which
// must release unacknowledged messages the same way), so the messages are
// delivered again to the next attempt.
type Acker interface {
	// Ack acknowledges every message the source returned so far.
	Ack(ctx context.Context) error
	// Nack gives every unacknowledged message back for redelivery.
	Nack(ctx context.Context) error
}
