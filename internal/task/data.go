package task

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/artifact"
	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/keys"
	"github.com/sluicehq/sluice/internal/pipeline"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/transform"
)

// ArtifactDir is the directory, inside the state directory, that holds the
// datasets tasks pass to each other and their quarantined records.
const ArtifactDir = "artifacts"

// progressEvery is how often a data task reports its row counts.
const progressEvery = 250 * time.Millisecond

// Data executes data tasks: a source (a connector, or the output dataset of
// an upstream task), the transform steps, and a sink (a connector, or a new
// output dataset), as one stream of batches. Memory is bounded by a batch or
// two whatever the size of the data.
//
// Every record read is accounted for: it is written, filtered out by a
// step, quarantined with its reason, or merged into a group by an
// aggregate step, so that
// rows_in = rows_out + filtered + rows_quarantined + aggregated
// (transform.Stats has the last three). Blocking steps (aggregate, dedupe
// with keep: last) emit their rows once the source is exhausted.
type Data struct {
	connectors *data.Registry
	crypt      Crypter
}

// Crypter encrypts datasets at rest: every artifact is written through a
// stream wrapper under a data key of its own and bound to its id. The
// keyring (internal/keys) implements it.
type Crypter interface {
	Wrapper(ctx context.Context, purpose, ref string, aad []byte) func(io.Writer) (io.WriteCloser, error)
	Unwrapper(ctx context.Context, aad []byte) func(io.Reader) (io.Reader, error)
	EncryptWriter(ctx context.Context, w io.Writer, purpose, ref string, aad []byte) (io.WriteCloser, error)
}

// NewData returns the executor for data tasks, opening connectors from r
// and encrypting every dataset it stores with crypt.
func NewData(r *data.Registry, crypt Crypter) *Data { return &Data{connectors: r, crypt: crypt} }

// create starts an encrypted artifact with the given id at rel (relative
// to the state directory).
func (d *Data) create(ctx context.Context, home, id, rel string, schema *data.Schema) (*artifact.Writer, error) {
	return artifact.Create(filepath.Join(home, rel), schema, artifact.Options{
		Wrap: d.crypt.Wrapper(ctx, store.PurposeArtifact, id, artifact.AAD(id)),
	})
}

// Execute runs one attempt of a data task.
func (d *Data) Execute(ctx context.Context, job *Job) (Result, error) {
	t := job.Task
	var res Result
	prefix := filepath.Join(ArtifactDir, job.Run.ID, fmt.Sprintf("%s.%d", t.Name, job.Attempt))

	q := &quarantine{id: prefix + ".quarantine", path: prefix + ".quarantine.arrow", home: job.StateDir, create: d.create}
	defer q.abort()
	env := data.Env{
		Dir:        job.Pipeline.Dir,
		Expand:     func(s string) (string, error) { return pipeline.Expand(s, job.Vars) },
		Quarantine: q,
		BatchSize:  data.DefaultBatchSize,
		Encrypt: func(w io.Writer, ref string) (io.WriteCloser, error) {
			return d.crypt.EncryptWriter(ctx, w, store.PurposeFile, ref, []byte(data.EncryptedFileAAD))
		},
	}

	src, err := d.openSource(ctx, job, env)
	if err != nil {
		return res, err
	}
	defer src.Close()

	schema := src.Schema()
	var chain *transform.Chain
	if len(t.Transform) > 0 {
		chain, err = transform.CompileContext(ctx, t.Transform, schema, d.withKeys(d.transformOptions(job, env)))
		if err != nil {
			err = fmt.Errorf("task %s: %w", t.Name, err)
			if errors.Is(err, transform.ErrJoinInput) {
				return res, err // permanent only if opening marked it so
			}
			return res, Permanent(err)
		}
		schema = chain.Schema()
	}
	drift, err := checkContract(job, schema)
	res.SchemaDrift = drift
	if err != nil {
		return res, err
	}
	guard, err := newExitGuard(job, chain, schema)
	if err != nil {
		return res, err
	}

	var (
		sink   data.Sink
		output *artifact.Writer
	)
	if t.Load != nil {
		conn, err := d.connector(t.Load, "sink")
		if err != nil {
			return res, err
		}
		sink, err = conn.OpenSink(ctx, t.Load.Config, schema, env)
		if err != nil {
			return res, fmt.Errorf("opening %s sink: %w", t.Load.Connector, err)
		}
	} else {
		output, err = d.create(ctx, job.StateDir, prefix+".out", prefix+".arrow", schema)
		if err != nil {
			return res, fmt.Errorf("creating output dataset: %w", err)
		}
		sink = output
	}
	wb := newWriteBehind(ctx, sink)
	committed := false
	defer func() {
		if !committed {
			wb.Abort()
		}
	}()

	var rowsIn, rowsOut int64
	lastReport := time.Now()
	rd := newPrefetch(ctx, src)
	defer rd.Stop()
	for {
		b, err := rd.Next(ctx)
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			return res, integrity(fmt.Errorf("reading: %w", err))
		}
		rowsIn += int64(b.Len)
		out := b
		if chain != nil {
			out, err = chain.Apply(ctx, b, q)
			if err != nil {
				return res, fmt.Errorf("transforming: %w", err)
			}
		}
		if out.Len > 0 {
			if err := guard.check(out); err != nil {
				return res, err
			}
			if err := wb.Write(ctx, out); err != nil {
				return res, fmt.Errorf("writing: %w", err)
			}
			rowsOut += int64(out.Len)
		}
		if job.Progress != nil && time.Since(lastReport) >= progressEvery {
			lastReport = time.Now()
			job.Progress(rowsIn+q.sourceRejects(chain), rowsOut)
		}
		if t.MaxBadRows != nil && q.rejected() > *t.MaxBadRows {
			// Stop early: the task fails whatever the rest holds.
			return d.tooManyBad(ctx, job, q, res, rowsIn+q.sourceRejects(chain), rowsOut)
		}
	}
	// Blocking steps (dedupe keep: last, aggregate) emit at the end.
	for chain != nil && chain.Blocking() {
		out, err := chain.Flush(ctx, q)
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("transforming: %w", err)
		}
		if err := guard.check(out); err != nil {
			return res, err
		}
		if err := wb.Write(ctx, out); err != nil {
			return res, fmt.Errorf("writing: %w", err)
		}
		rowsOut += int64(out.Len)
	}
	if chain != nil {
		if err := recordQuality(ctx, job, chain, q, &res, rowsIn+q.sourceRejects(chain), rowsOut); err != nil {
			return res, err
		}
	}
	if exceedsBadLimits(t, q.rejected(), rowsIn+q.sourceRejects(chain)) {
		return d.tooManyBad(ctx, job, q, res, rowsIn+q.sourceRejects(chain), rowsOut)
	}

	// Quarantine first: if it cannot be kept, the task fails before its
	// output becomes visible, and no rejected record is lost.
	qa, err := q.commit(ctx, job)
	if err != nil {
		return res, fmt.Errorf("writing quarantine: %w", err)
	}
	if err := wb.Commit(ctx); err != nil {
		return res, fmt.Errorf("committing %s: %w", sinkName(t), err)
	}
	committed = true
	// Only now may a queue source forget its messages: had anything
	// failed before the commit, Close would have given them back.
	if a, ok := src.(data.Acker); ok {
		if err := a.Ack(ctx); err != nil {
			return res, fmt.Errorf("acknowledging %s source: %w", t.Extract.Connector, err)
		}
	}

	res.RowsIn = rowsIn + q.sourceRejects(chain)
	res.RowsOut = rowsOut
	res.RowsQuarantined = q.rejected()
	if qa != nil {
		qa.ExpiresAt = expiry(t, time.Now())
		res.Artifacts = append(res.Artifacts, *qa)
	}
	if o, ok := sink.(data.Outputer); ok && t.Load != nil {
		// Record where the data went and the digest of what was
		// delivered, so the run can later prove it.
		out := o.Output()
		res.Artifacts = append(res.Artifacts, store.Artifact{
			ID: prefix + ".sink", RunID: job.Run.ID, Task: t.Name, Attempt: job.Attempt, Kind: "sink",
			Path: out.Location, Format: t.Load.Connector, Schema: artifact.EncodeSchema(schema),
			Rows: rowsOut, Bytes: out.Bytes, SHA256: out.SHA256, Created: time.Now().UTC(),
		})
	}
	if output != nil {
		info := output.Info()
		id := prefix + ".out"
		res.Artifacts = append(res.Artifacts, store.Artifact{
			ID: id, RunID: job.Run.ID, Task: t.Name, Attempt: job.Attempt, Kind: "output",
			Path: prefix + ".arrow", Format: artifact.Format, Schema: info.Schema, Rows: info.Rows,
			Bytes: info.Bytes, SHA256: info.SHA256, PlainSHA256: info.PlainSHA256, Created: time.Now().UTC(),
			ExpiresAt: expiry(t, time.Now()),
		})
		res.Output = id
	}
	return res, nil
}

// integrity marks a verification failure of stored data as ErrIntegrity,
// and as permanent: a dataset that fails verification will fail again.
func integrity(err error) error {
	if errors.Is(err, artifact.ErrIntegrity) || errors.Is(err, keys.ErrIntegrity) {
		return Permanent(fmt.Errorf("%w: %w", ErrIntegrity, err))
	}
	return err
}

func sinkName(t *pipeline.Task) string {
	if t.Load != nil {
		return t.Load.Connector + " sink"
	}
	return "output dataset"
}

func (d *Data) connector(ep *pipeline.Endpoint, role string) (*data.Connector, error) {
	conn, ok := d.connectors.Lookup(ep.Connector)
	if !ok || (role == "source" && conn.OpenSource == nil) || (role == "sink" && conn.OpenSink == nil) {
		return nil, Permanent(fmt.Errorf("%s: no %s connector %q", ep.Pos, role, ep.Connector))
	}
	return conn, nil
}

// openSource opens the task's extract connector, or the verified output
// dataset of its input task.
func (d *Data) openSource(ctx context.Context, job *Job, env data.Env) (data.Source, error) {
	t := job.Task
	if t.Extract != nil {
		conn, err := d.connector(t.Extract, "source")
		if err != nil {
			return nil, err
		}
		src, err := conn.OpenSource(ctx, t.Extract.Config, env)
		if err != nil {
			return nil, fmt.Errorf("opening %s source: %w", t.Extract.Connector, err)
		}
		return src, nil
	}
	return d.openDataset(ctx, job, t.Input)
}

// openDataset opens and verifies the output dataset of upstream task name.
func (d *Data) openDataset(ctx context.Context, job *Job, name string) (data.Source, error) {
	t := job.Task
	in, ok := job.Inputs[name]
	if !ok || in.ID == "" {
		return nil, Permanent(fmt.Errorf("task %s: input task %q produced no dataset", t.Name, name))
	}
	src, err := artifact.Open(filepath.Join(job.StateDir, in.Path), in.SHA256, artifact.Options{
		Unwrap:      d.crypt.Unwrapper(ctx, artifact.AAD(in.ID)),
		PlainSHA256: in.PlainSHA256,
	})
	if err != nil {
		return nil, integrity(fmt.Errorf("opening input %s: %w", in.ID, err))
	}
	return src, nil
}

// joinInputs opens, for each join step, the verified dataset of the task
// it joins with, exactly as the main input is opened.
func (d *Data) joinInputs(job *Job) map[string]transform.OpenFunc {
	inputs := map[string]transform.OpenFunc{}
	for _, s := range job.Task.Transform {
		if s.Join == nil {
			continue
		}
		name := s.Join.With
		inputs[name] = func(ctx context.Context) (data.Source, error) { return d.openDataset(ctx, job, name) }
	}
	return inputs
}

// quarantineSchema is the shape of quarantined records: where each came
// from, why it was rejected, and the record as it was read.
var quarantineSchema = data.MustSchema(
	data.Field{Name: "pos", Type: data.String},
	data.Field{Name: "reason", Type: data.String},
	data.Field{Name: "raw", Type: data.String},
)

// quarantine keeps a task's rejected records in a dataset of their own,
// written like any other artifact, created on the first reject.
type quarantine struct {
	id, home, path string
	create         func(ctx context.Context, home, id, rel string, schema *data.Schema) (*artifact.Writer, error)
	w              *artifact.Writer
	batch          *data.Batch

	mu    sync.Mutex // Reject is called from the reader and the steps
	count int64
}

// rejected is the number of records quarantined so far.
func (q *quarantine) rejected() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count
}

// Reject implements data.Quarantine. The source (reading ahead in its own
// goroutine) and the steps reject concurrently.
func (q *quarantine) Reject(ctx context.Context, r data.Reject) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.w == nil {
		w, err := q.create(ctx, q.home, q.id, q.path, quarantineSchema)
		if err != nil {
			return fmt.Errorf("creating quarantine: %w", err)
		}
		q.w = w
		q.batch = data.NewBatch(quarantineSchema, 256)
	}
	b := q.batch
	b.Cols[0].Strings = append(b.Cols[0].Strings, r.Pos)
	b.Cols[1].Strings = append(b.Cols[1].Strings, r.Reason)
	b.Cols[2].Strings = append(b.Cols[2].Strings, r.Raw)
	b.Len++
	q.count++
	if b.Len == cap(b.Cols[0].Strings) {
		return q.flush(ctx)
	}
	return nil
}

func (q *quarantine) flush(ctx context.Context) error {
	if q.batch == nil || q.batch.Len == 0 {
		return nil
	}
	if err := q.w.Write(ctx, q.batch); err != nil {
		return err
	}
	for i := range q.batch.Cols {
		q.batch.Cols[i].Strings = q.batch.Cols[i].Strings[:0]
	}
	q.batch.Len = 0
	return nil
}

// sourceRejects is the number of records rejected before they reached a
// batch (by the source itself): all rejects minus the transform's.
func (q *quarantine) sourceRejects(chain *transform.Chain) int64 {
	if chain == nil {
		return q.rejected()
	}
	return q.rejected() - chain.Stats().Quarantined
}

func (q *quarantine) commit(ctx context.Context, job *Job) (*store.Artifact, error) {
	if q.w == nil {
		return nil, nil
	}
	if err := q.flush(ctx); err != nil {
		return nil, err
	}
	if err := q.w.Commit(ctx); err != nil {
		return nil, err
	}
	info := q.w.Info()
	q.w = nil
	return &store.Artifact{
		ID: q.id, RunID: job.Run.ID, Task: job.Task.Name, Attempt: job.Attempt, Kind: "quarantine",
		Path: q.path, Format: artifact.Format, Schema: info.Schema, Rows: info.Rows, Bytes: info.Bytes,
		SHA256: info.SHA256, PlainSHA256: info.PlainSHA256, Created: time.Now().UTC(),
	}, nil
}

func (q *quarantine) abort() {
	if q.w != nil {
		q.w.Abort()
	}
}
