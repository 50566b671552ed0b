// Package monitor watches sluice at work. This file holds the metrics: one
// Prometheus registry per process, with collectors that the engine,
// scheduler and identity services feed through small typed methods, so a
// caller never touches a metric name or label by hand.
package monitor

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every sluice metric name.
const Namespace = "sluice"

// The metric family names, for dashboards, alert rules and tests.
const (
	FamilyRunsFinished    = "sluice_runs_finished_total"
	FamilyTaskRuns        = "sluice_task_runs_finished_total"
	FamilyTaskDuration    = "sluice_task_duration_seconds"
	FamilyRowsIn          = "sluice_rows_in_total"
	FamilyRowsOut         = "sluice_rows_out_total"
	FamilyRowsQuarantined = "sluice_rows_quarantined_total"
	FamilySchedulerLag    = "sluice_scheduler_lag_seconds"
	FamilyAuthFailures    = "sluice_auth_failures_total"
	FamilyDenied          = "sluice_access_denied_total"
)

// Metrics is the process's metric registry and the collectors in it. It is
// created once by the application and passed to whatever reports; its
// methods are safe for concurrent use.
//
// Label values (states, reasons, permissions) must come from a fixed set —
// the run and task states, the auth failure reasons, the permission names —
// never from user input such as a user name or a pipeline name: every
// distinct value is a new time series kept for the life of the process.
type Metrics struct {
	reg          *prometheus.Registry
	runs         *prometheus.CounterVec
	tasks        *prometheus.CounterVec
	taskDuration *prometheus.HistogramVec
	rowsIn       prometheus.Counter
	rowsOut      prometheus.Counter
	quarantined  prometheus.Counter
	schedLag     prometheus.Histogram
	authFailures *prometheus.CounterVec
	denied       *prometheus.CounterVec
}

// NewMetrics builds a registry holding sluice's collectors plus the Go
// runtime and process collectors. It does not use Prometheus's global
// default registry, so two servers in one test binary do not collide.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "runs_finished_total",
			Help: "Pipeline runs that reached a final state, by state.",
		}, []string{"state"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "task_runs_finished_total",
			Help: "Task attempts that ended, by resulting state (success, failed, cancelled, up_for_retry, skipped).",
		}, []string{"state"}),
		taskDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "task_duration_seconds",
			Help:    "Duration of task attempts that ran, by resulting state.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600},
		}, []string{"state"}),
		rowsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rows_in_total",
			Help: "Rows read by data tasks from their sources.",
		}),
		rowsOut: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rows_out_total",
			Help: "Rows written by data tasks to their sinks.",
		}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rows_quarantined_total",
			Help: "Rows set aside by data-quality checks.",
		}),
		schedLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "scheduler_lag_seconds",
			Help:    "Delay between when a scheduled run was due and when it was created.",
			Buckets: []float64{0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900},
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "auth_failures_total",
			Help: "Failed authentication attempts, by reason.",
		}, []string{"reason"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "access_denied_total",
			Help: "Authorization decisions that denied an action, by permission.",
		}, []string{"permission"}),
	}
	m.reg.MustRegister(
		m.runs, m.tasks, m.taskDuration, m.rowsIn, m.rowsOut, m.quarantined,
		m.schedLag, m.authFailures, m.denied,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry returns the underlying registry, for registering collectors
// that other parts of sluice own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// RunFinished counts a run that reached a final state.
func (m *Metrics) RunFinished(state string) { m.runs.WithLabelValues(state).Inc() }

// TaskFinished counts a task attempt that ended in state, with the rows it
// read, wrote and quarantined. dur is observed in the duration histogram
// only when positive: a skipped task never ran, and a zero would drag the
// distribution of real attempts down.
func (m *Metrics) TaskFinished(state string, dur time.Duration, rowsIn, rowsOut, quarantined int64) {
	m.tasks.WithLabelValues(state).Inc()
	if dur > 0 {
		m.taskDuration.WithLabelValues(state).Observe(dur.Seconds())
	}
	if rowsIn > 0 {
		m.rowsIn.Add(float64(rowsIn))
	}
	if rowsOut > 0 {
		m.rowsOut.Add(float64(rowsOut))
	}
	if quarantined > 0 {
		m.quarantined.Add(float64(quarantined))
	}
}

// SchedulerLag records how late a scheduled run was created after it was
// due. Negative values (clock skew) are recorded as zero.
func (m *Metrics) SchedulerLag(d time.Duration) {
	m.schedLag.Observe(max(d, 0).Seconds())
}

// AuthFailure counts a failed authentication, by a reason from a fixed set
// (for example bad_password, bad_totp, locked, bad_token).
func (m *Metrics) AuthFailure(reason string) { m.authFailures.WithLabelValues(reason).Inc() }

// Denied counts an authorization decision that denied perm.
func (m *Metrics) Denied(perm string) { m.denied.WithLabelValues(perm).Inc() }
