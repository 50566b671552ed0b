package engine

import (
	"context"
	"errors"
	"sync"
)

// ErrCancelled is the cancellation cause of a run stopped with Cancel.
var ErrCancelled = errors.New("run cancelled on request")

// runs keeps the cancel functions of the runs this engine is executing,
// so that a run can be cancelled by id from outside the goroutine that
// drives it (the API's cancel endpoint). It knows only this process's
// runs: a run driven by another process is cancelled by that process.
type runs struct {
	mu     sync.Mutex
	cancel map[string]context.CancelCauseFunc
}

// track registers runID as executing under a context derived from ctx,
// returned with the function that unregisters it; ok is false when the run
// is executing in this process already. The store's lease cannot tell two
// drivers of one engine apart (they share the owner), so this is what keeps
// a run triggered through the API and picked up by the scheduler at the
// same moment from being driven twice.
func (r *runs) track(ctx context.Context, runID string) (_ context.Context, untrack func(), ok bool) {
	r.mu.Lock()
	if _, dup := r.cancel[runID]; dup {
		r.mu.Unlock()
		return ctx, nil, false
	}
	ctx, cancel := context.WithCancelCause(ctx)
	if r.cancel == nil {
		r.cancel = map[string]context.CancelCauseFunc{}
	}
	r.cancel[runID] = cancel
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.cancel, runID)
		r.mu.Unlock()
		cancel(nil)
	}, true
}

// Cancel cancels run runID if this engine is executing it, and reports
// whether it was. The cancellation takes the path of a cancelled Execute
// context: running attempts are stopped (child processes get their kill
// grace), every task not final is recorded cancelled and so is the run;
// Execute returns once that is recorded. Cancel does not wait for it.
func (e *Engine) Cancel(runID string) bool {
	e.running.mu.Lock()
	cancel, ok := e.running.cancel[runID]
	e.running.mu.Unlock()
	if ok {
		cancel(ErrCancelled)
	}
	return ok
}

// Executing reports whether this engine is executing run runID now.
func (e *Engine) Executing(runID string) bool {
	e.running.mu.Lock()
	defer e.running.mu.Unlock()
	_, ok := e.running.cancel[runID]
	return ok
}
