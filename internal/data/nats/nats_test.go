package nats

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
	"go.yaml.in/yaml/v3"
)

func natsURL() string {
	if u := os.Getenv("SLUICE_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

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

// testEnv expands the run and task templates to fixed values.
func testEnv(q data.Quarantine, run string) data.Env {
	r := strings.NewReplacer("{{ .RunID }}", run, "{{ .Task }}", "load")
	return data.Env{Dir: os.TempDir(), Expand: func(s string) (string, error) { return r.Replace(s), nil }, Quarantine: q, BatchSize: 3}
}

// testStream creates a stream of its own for the test, deleted at the end.
// It returns the stream name, its subject prefix, and a JetStream handle.
func testStream(t testing.TB) (string, string, jetstream.JetStream) {
	t.Helper()
	nc, err := natsgo.Connect(natsURL(), natsgo.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("connecting to NATS at %s: %v (run scripts/services.sh to start the test services)", natsURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "T_" + hex.EncodeToString(b)
	subj := "sluicetest." + strings.ToLower(name)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj + ".>"}, Duplicates: 2 * time.Minute, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatalf("creating stream %s: %v (is JetStream enabled? run scripts/services.sh)", name, err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), name) })
	return name, subj, js
}

func publish(t testing.TB, js jetstream.JetStream, subj string, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		if _, err := js.Publish(context.Background(), subj, []byte(m)); err != nil {
			t.Fatalf("publishing: %v", err)
		}
	}
}

func cfg(t testing.TB, src string) *Config {
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

func sourceCfg(t testing.TB, stream, subj, extra string) *Config {
	return cfg(t, fmt.Sprintf("url: %s\nstream: %s\nsubject: '%s.>'\ndurable: reader\nschema: {id: int, name: string}\n%s", natsURL(), stream, subj, extra))
}

// drain reads the source to the end, returning the ids.
func drain(t testing.TB, src data.Source) ([]int64, error) {
	var ids []int64
	for {
		b, err := src.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			return ids, nil
		}
		if err != nil {
			return ids, err
		}
		ids = append(ids, b.Cols[0].Ints...)
	}
}

func readIDs(t testing.TB, c *Config, q data.Quarantine, ack bool) []int64 {
	t.Helper()
	src, err := OpenSource(context.Background(), c, testEnv(q, "r"))
	if err != nil {
		t.Fatalf("OpenSource: %v", err)
	}
	ids, err := drain(t, src)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	if ack {
		if err := src.(data.Acker).Ack(context.Background()); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return ids
}

func msgs(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf(`{"id": %d, "name": "n%d"}`, i, i))
	}
	return out
}

func ids(from, to int) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, int64(i))
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	stream, subj, _ := testStream(t)
	schema := data.MustSchema(data.Field{Name: "id", Type: data.Int}, data.Field{Name: "name", Type: data.String},
		data.Field{Name: "at", Type: data.Timestamp}, data.Field{Name: "ok", Type: data.Bool})
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	b := fileio.NewBuilder(schema, 4)
	for i := 1; i <= 4; i++ {
		b.AppendInt(0, int64(i))
		if i == 2 {
			b.AppendNull(1)
		} else {
			b.AppendString(1, fmt.Sprintf("n\"%d", i))
		}
		b.AppendTime(2, at)
		b.AppendBool(3, i%2 == 0)
		b.EndRow(int64(i))
	}
	sink, err := OpenSink(context.Background(), cfg(t, "url: "+natsURL()+"\nsubject: '"+subj+".{{ .Task }}'"), schema, testEnv(nil, "run1"))
	if err != nil {
		t.Fatalf("OpenSink: %v", err)
	}
	if err := sink.Write(context.Background(), b.B); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := sink.Commit(context.Background()); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if out := sink.(data.Outputer).Output(); out.Bytes == 0 || len(out.SHA256) != 64 || !strings.Contains(out.Location, subj+".load") {
		t.Errorf("Output() = %+v", out)
	}

	// Without a schema the first message fixes the types; a timestamp
	// arrives as a JSON string, so it is inferred as a string.
	src, err := OpenSource(context.Background(), cfg(t, fmt.Sprintf("url: %s\nstream: %s\nsubject: '%s.load'\ndurable: d", natsURL(), stream, subj)), testEnv(&quarantine{}, "r"))
	if err != nil {
		t.Fatalf("OpenSource: %v", err)
	}
	defer src.Close()
	if got := src.Schema().String(); got != "id:int, name:string, at:string, ok:bool" {
		t.Errorf("inferred schema %q", got)
	}
	var rows [][]any
	for {
		bt, err := src.Next(context.Background())
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for r := 0; r < bt.Len; r++ {
			var name any = bt.Cols[1].Strings[r]
			if bt.Cols[1].IsNull(r) {
				name = nil
			}
			rows = append(rows, []any{bt.Cols[0].Ints[r], name, bt.Cols[2].Strings[r], bt.Cols[3].Bools[r]})
		}
	}
	want := [][]any{
		{int64(1), `n"1`, "2025-01-02T03:04:05Z", false}, {int64(2), nil, "2025-01-02T03:04:05Z", true},
		{int64(3), `n"3`, "2025-01-02T03:04:05Z", false}, {int64(4), `n"4`, "2025-01-02T03:04:05Z", true},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, extra string
		want        []int64
	}{
		{"until nothing is pending", "", ids(1, 10)},
		{"max_messages", "max_messages: 4", ids(1, 4)},
		{"max_wait already over", "max_wait: 1ns", nil},
		{"filter subject", "", nil}, // replaced below
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stream, subj, js := testStream(t)
			publish(t, js, subj+".a", msgs(1, 5)...)
			publish(t, js, subj+".b", msgs(100, 100)...)
			publish(t, js, subj+".a", msgs(6, 10)...)
			c := sourceCfg(t, stream, subj, tt.extra)
			want := tt.want
			if tt.name == "filter subject" {
				c.Subject = subj + ".b"
				want = []int64{100}
			} else {
				c.Subject = subj + ".a"
			}
			got := readIDs(t, c, &quarantine{}, true)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAckOnlyAfterCommit(t *testing.T) {
	t.Parallel()
	stream, subj, js := testStream(t)
	publish(t, js, subj+".x", msgs(1, 7)...)
	c := sourceCfg(t, stream, subj, "")

	// A failed task: read, no Ack. Close gives the messages back.
	if got := readIDs(t, c, &quarantine{}, false); !cmp.Equal(ids(1, 7), got) {
		t.Fatalf("first read %v", got)
	}
	// An explicit Nack does the same.
	src, err := OpenSource(context.Background(), c, testEnv(&quarantine{}, "r"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := drain(t, src); err != nil || !cmp.Equal(ids(1, 7), got) {
		t.Fatalf("read after an abort: %v, %v; want every message again", got, err)
	}
	if err := src.(data.Acker).Nack(context.Background()); err != nil {
		t.Fatalf("Nack: %v", err)
	}
	src.Close()
	// The committed task: read and Ack.
	if got := readIDs(t, c, &quarantine{}, true); !cmp.Equal(ids(1, 7), got) {
		t.Fatalf("read after a Nack: %v; want every message again", got)
	}
	if got := readIDs(t, c, &quarantine{}, true); len(got) != 0 {
		t.Fatalf("read after the commit: %v; want nothing", got)
	}
	publish(t, js, subj+".x", msgs(8, 9)...)
	if got := readIDs(t, c, &quarantine{}, true); !cmp.Equal(ids(8, 9), got) {
		t.Fatalf("read of new messages: %v", got)
	}
	cons, err := js.Consumer(context.Background(), stream, "reader")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("consumer has %d unacknowledged and %d pending messages, want 0", info.NumAckPending, info.NumPending)
	}
}

func TestQuarantine(t *testing.T) {
	t.Parallel()
	stream, subj, js := testStream(t)
	publish(t, js, subj+".q", `{"id": 1}`, `not json`, `{"id": "two"}`, `{"id": 3}`)
	q := &quarantine{}
	got := readIDs(t, sourceCfg(t, stream, subj, ""), q, true)
	if !cmp.Equal([]int64{1, 3}, got) {
		t.Errorf("ids %v", got)
	}
	want := []data.Reject{
		{Pos: "nats stream " + stream + " seq 2 subject " + subj + ".q", Reason: "not a JSON object", Raw: "not json"},
		{Pos: "nats stream " + stream + " seq 3 subject " + subj + ".q", Reason: `field "id": want int, got JSON string`, Raw: `{"id": "two"}`},
	}
	if diff := cmp.Diff(want, q.rejs); diff != "" {
		t.Errorf("rejects (-want +got):\n%s", diff)
	}
	if got := readIDs(t, sourceCfg(t, stream, subj, ""), &quarantine{}, true); len(got) != 0 {
		t.Errorf("quarantined messages were not acknowledged: read %v again", got)
	}
}

func TestSinkDeduplicatesRetries(t *testing.T) {
	t.Parallel()
	stream, subj, js := testStream(t)
	schema := data.MustSchema(data.Field{Name: "id", Type: data.Int})
	b := fileio.NewBuilder(schema, 5)
	for i := 1; i <= 5; i++ {
		b.AppendInt(0, int64(i))
		b.EndRow(int64(i))
	}
	attempt := func(run string, commit bool) int64 {
		sink, err := OpenSink(context.Background(), cfg(t, "url: "+natsURL()+"\nsubject: "+subj+".d"), schema, testEnv(nil, run))
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Write(context.Background(), b.B); err != nil {
			t.Fatal(err)
		}
		if !commit {
			// The attempt dies after its messages reached the stream.
			if err := sink.(*Sink).wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			sink.Abort()
			return 0
		}
		if err := sink.Commit(context.Background()); err != nil {
			t.Fatal(err)
		}
		return sink.(*Sink).Duplicates()
	}
	attempt("run1", false)
	if dups := attempt("run1", true); dups != 5 {
		t.Errorf("retried attempt: %d duplicates dropped, want 5", dups)
	}
	if dups := attempt("run2", true); dups != 0 {
		t.Errorf("another run: %d duplicates dropped, want 0", dups)
	}
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 10 {
		t.Errorf("stream holds %d messages, want 10 (5 per run)", info.State.Msgs)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	t.Run("no such stream", func(t *testing.T) {
		t.Parallel()
		_, err := OpenSource(context.Background(), cfg(t, "url: "+natsURL()+"\nstream: NO_SUCH_STREAM_X\nsubject: a\ndurable: d"), testEnv(&quarantine{}, "r"))
		if err == nil || !strings.Contains(err.Error(), `stream "NO_SUCH_STREAM_X": no such stream`) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("no stream on the subject", func(t *testing.T) {
		t.Parallel()
		schema := data.MustSchema(data.Field{Name: "id", Type: data.Int})
		sink, err := OpenSink(context.Background(), cfg(t, "url: "+natsURL()+"\nsubject: sluicetest.nostream.x"), schema, testEnv(nil, "r"))
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Abort()
		b := fileio.NewBuilder(schema, 1)
		b.AppendInt(0, 1)
		b.EndRow(1)
		err = sink.Write(context.Background(), b.B)
		if err == nil {
			err = sink.Commit(context.Background())
		}
		if err == nil || !strings.Contains(err.Error(), "no stream takes this subject") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("server down", func(t *testing.T) {
		t.Parallel()
		_, err := OpenSource(context.Background(), cfg(t, "url: nats://user:hunter2@127.0.0.1:1\nstream: S\nsubject: a\ndurable: d"), testEnv(&quarantine{}, "r"))
		if err == nil || !strings.Contains(err.Error(), "connecting to nats://xxxxx@127.0.0.1:1") || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("connection closed mid-read", func(t *testing.T) {
		t.Parallel()
		stream, subj, js := testStream(t)
		publish(t, js, subj+".m", msgs(1, 20)...)
		proxy := newProxy(t, strings.TrimPrefix(natsURL(), "nats://"))
		c := sourceCfg(t, stream, subj, "")
		c.URL = "nats://" + proxy.addr()
		src, err := OpenSource(context.Background(), c, testEnv(&quarantine{}, "r"))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if _, err := src.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
		proxy.cut()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var n int
		for err == nil {
			var b *data.Batch
			b, err = src.Next(ctx)
			if b != nil {
				n += b.Len
			}
		}
		if errors.Is(err, data.ErrEndOfInput) || ctx.Err() != nil || !strings.Contains(err.Error(), "connection closed") {
			t.Fatalf("after the connection dropped: %v after %d more rows, want a connection closed error", err, n)
		}
	})
	t.Run("literal credentials", func(t *testing.T) {
		t.Parallel()
		c := NewConfig()
		if err := yaml.Unmarshal([]byte("url: nats://x\nsubject: a\ntoken: abc"), c); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "sluice secret set") {
			t.Fatalf("Validate() = %v", err)
		}
	})
	t.Run("tls against a plain server", func(t *testing.T) {
		t.Parallel()
		_, err := OpenSink(context.Background(), cfg(t, "url: "+natsURL()+"\nsubject: a\ntls: {ca_file: /nonexistent/ca.pem}"), data.MustSchema(data.Field{Name: "id", Type: data.Int}), testEnv(nil, "r"))
		if err == nil || !strings.Contains(err.Error(), "tls: ca_file") {
			t.Fatalf("error = %v", err)
		}
	})
}

// proxy forwards TCP connections to a NATS server until cut, which drops
// every connection as a failing network would.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(p.cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
