package data

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
)

// Env is what a connector gets from the task that opens it.
type Env struct {
	// Dir is the directory that relative paths are resolved against: the
	// directory of the pipeline file.
	Dir string
	// Expand renders a templated string ({{ .LogicalDate }}, {{ .RunID }},
	// {{ .Params.name }}). Connectors call it on the settings where a
	// template makes sense, such as paths. Never nil.
	Expand func(string) (string, error)
	// Quarantine receives records the connector cannot read. Never nil.
	Quarantine Quarantine
	// BatchSize is the number of rows per batch a source should produce.
	BatchSize int
	// Encrypt wraps w so that what a sink writes is encrypted under a data
	// key of its own (a file sink's `encrypt: true`); `sluice decrypt`
	// reads such a file back. ref names what is written, for the key's
	// record. Nil where encryption is not available.
	Encrypt func(w io.Writer, ref string) (io.WriteCloser, error)
}

// EncryptedFileAAD is the associated data of files that sinks encrypt
// (Env.Encrypt). It is fixed, not the file's name, so that an encrypted
// file can be moved and renamed and still be decrypted.
const EncryptedFileAAD = "sluice/file"

// Connector is a named source, sink, or both. Its lifecycle follows the
// spec: the pipeline parser decodes the connector's settings strictly into
// the value Config returns (unknown fields are errors, reported with their
// position), calls its Validate method if it has one, and the task later
// opens the source or sink with that decoded value.
type Connector struct {
	// Name is the key under extract: or load: in a pipeline, e.g. "csv".
	Name string
	// Config returns a pointer to a new config struct with its defaults set.
	Config func() any
	// OpenSource opens the connector as a source; nil if it is not one.
	OpenSource func(ctx context.Context, cfg any, env Env) (Source, error)
	// OpenSink opens the connector as a sink for records of schema; nil if
	// it is not one.
	OpenSink func(ctx context.Context, cfg any, schema *Schema, env Env) (Sink, error)
	// Transport, when set, checks that the decoded settings protect data
	// in transit as the pipeline's classification requires (TLS for
	// confidential and restricted data off loopback). The parser calls it
	// and reports its error at the connector's settings.
	Transport func(cfg any, classification string) error
}

// Registry holds connectors by name.
type Registry struct {
	mu sync.RWMutex
	m  map[string]*Connector
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]*Connector{}} }

// Builtin is the registry the built-in connectors join from their init
// functions; import internal/data/builtin to fill it.
var Builtin = NewRegistry()

// Register adds c. It panics on a duplicate or incomplete connector, since
// both are programming errors caught at start-up.
func (r *Registry) Register(c *Connector) {
	if c.Name == "" || c.Config == nil || (c.OpenSource == nil && c.OpenSink == nil) {
		panic(fmt.Sprintf("data: incomplete connector %q", c.Name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[c.Name]; dup {
		panic(fmt.Sprintf("data: connector %q registered twice", c.Name))
	}
	r.m[c.Name] = c
}

// Lookup returns the named connector.
func (r *Registry) Lookup(name string) (*Connector, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.m[name]
	return c, ok
}

// Sources returns the names of connectors usable as sources, sorted.
func (r *Registry) Sources() []string {
	return r.names(func(c *Connector) bool { return c.OpenSource != nil })
}

// Sinks returns the names of connectors usable as sinks, sorted.
func (r *Registry) Sinks() []string {
	return r.names(func(c *Connector) bool { return c.OpenSink != nil })
}

func (r *Registry) names(keep func(*Connector) bool) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for n, c := range r.m {
		if keep(c) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// ConfigAs returns a connector's settings (what its Connector.Config made
// and the pipeline decoded) as *T, validated. name, the connector's name,
// prefixes the errors: a value of another type is a programming error, a
// failed validation a mistake in the pipeline.
func ConfigAs[T any, P interface {
	*T
	Validate() error
}](name string, cfg any) (P, error) {
	c, ok := cfg.(P)
	if !ok || c == nil {
		return nil, fmt.Errorf("%s: settings have type %T, want %T", name, cfg, P(nil))
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}
