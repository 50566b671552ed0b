package task

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sluicehq/sluice/internal/artifact"
	"github.com/sluicehq/sluice/internal/data"
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
// step, or quarantined with its reason, so that
// rows_in = rows_out + filtered + rows_quarantined.
type Data struct {
	connectors *data.Registry
}

// NewData returns the executor for data tasks, opening connectors from r.
func NewData(r *data.Registry) *Data { return &Data{connectors: r} }

// Execute runs one attempt of a data task.
func (d *Data) Execute(ctx context.Context, job *Job) (Result, error) {
	t := job.Task
	var res Result
	prefix := filepath.Join(ArtifactDir, job.Run.ID, fmt.Sprintf("%s.%d", t.Name, job.Attempt))

	q := &quarantine{id: prefix + ".quarantine", path: prefix + ".quarantine.arrow", home: job.StateDir}
	defer q.abort()
	env := data.Env{
		Dir:        job.Pipeline.Dir,
		Expand:     func(s string) (string, error) { return pipeline.Expand(s, job.Vars) },
		Quarantine: q,
		BatchSize:  data.DefaultBatchSize,
	}

	src, err := d.openSource(ctx, job, env)
	if err != nil {
		return res, err
	}
	defer src.Close()

	schema := src.Schema()
	var chain *transform.Chain
	if len(t.Transform) > 0 {
		chain, err = transform.Compile(t.Transform, schema)
		if err != nil {
			return res, Permanent(fmt.Errorf("task %s: %w", t.Name, err))
		}
		schema = chain.Schema()
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
		output, err = artifact.Create(filepath.Join(job.StateDir, prefix+".arrow"), schema, artifact.Options{})
		if err != nil {
			return res, fmt.Errorf("creating output dataset: %w", err)
		}
		sink = output
	}
	committed := false
	defer func() {
		if !committed {
			sink.Abort()
		}
	}()

	var rowsIn, rowsOut int64
	lastReport := time.Now()
	for {
		b, err := src.Next(ctx)
		if errors.Is(err, data.ErrEndOfInput) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("reading: %w", err)
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
			if err := sink.Write(ctx, out); err != nil {
				return res, fmt.Errorf("writing: %w", err)
			}
			rowsOut += int64(out.Len)
		}
		if job.Progress != nil && time.Since(lastReport) >= progressEvery {
			lastReport = time.Now()
			job.Progress(rowsIn+q.sourceRejects(chain), rowsOut)
		}
	}

	// Quarantine first: if it cannot be kept, the task fails before its
	// output becomes visible, and no rejected record is lost.
	qa, err := q.commit(ctx, job)
	if err != nil {
		return res, fmt.Errorf("writing quarantine: %w", err)
	}
	if err := sink.Commit(ctx); err != nil {
		return res, fmt.Errorf("committing %s: %w", sinkName(t), err)
	}
	committed = true

	res.RowsIn = rowsIn + q.sourceRejects(chain)
	res.RowsOut = rowsOut
	res.RowsQuarantined = q.count
	if qa != nil {
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
			Path: prefix + ".arrow", Format: artifact.Format, Schema: info.Schema,
			Rows: info.Rows, Bytes: info.Bytes, SHA256: info.SHA256, Created: time.Now().UTC(),
		})
		res.Output = id
	}
	return res, nil
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
	in, ok := job.Inputs[t.Input]
	if !ok || in.ID == "" {
		return nil, Permanent(fmt.Errorf("task %s: input task %q produced no dataset", t.Name, t.Input))
	}
	src, err := artifact.Open(filepath.Join(job.StateDir, in.Path), in.SHA256, artifact.Options{})
	if err != nil {
		// A dataset that fails verification will fail again: retrying
		// cannot make tampered or truncated bytes whole.
		if errors.Is(err, artifact.ErrIntegrity) {
			return nil, Permanent(fmt.Errorf("input %s of task %s: %w", in.ID, t.Name, err))
		}
		return nil, fmt.Errorf("opening input %s: %w", in.ID, err)
	}
	return src, nil
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
	w              *artifact.Writer
	batch          *data.Batch
	count          int64
}

// Reject implements data.Quarantine.
func (q *quarantine) Reject(ctx context.Context, r data.Reject) error {
	if q.w == nil {
		w, err := artifact.Create(filepath.Join(q.home, q.path), quarantineSchema, artifact.Options{})
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
		return q.count
	}
	return q.count - chain.Stats().Quarantined
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
		SHA256: info.SHA256, Created: time.Now().UTC(),
	}, nil
}

func (q *quarantine) abort() {
	if q.w != nil {
		q.w.Abort()
	}
}
