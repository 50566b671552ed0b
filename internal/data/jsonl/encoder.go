package jsonl

import "github.com/sluicehq/sluice/internal/data"

// Encoder renders rows as JSON objects exactly as the jsonl sink writes
// its lines: keys in schema order, nulls as null, timestamps as RFC 3339
// strings, NaN and infinities as null. Connectors that send records as
// JSON objects (one message per row, say) use it so that every JSON
// record sluice emits looks the same.
type Encoder struct {
	keys [][]byte
}

// NewEncoder returns an encoder of rows of schema.
func NewEncoder(schema *data.Schema) *Encoder { return &Encoder{keys: encodeKeys(schema)} }

// AppendRow appends row of b as one JSON object, without a line break.
// b must conform to the encoder's schema.
func (e *Encoder) AppendRow(buf []byte, b *data.Batch, row int) []byte {
	buf = appendRow(buf, e.keys, b, row)
	return buf[:len(buf)-1]
}

// encodeKeys renders `{"name":` for the first field and `,"name":` for
// the others, once per schema.
func encodeKeys(schema *data.Schema) [][]byte {
	keys := make([][]byte, 0, len(schema.Fields))
	for i, f := range schema.Fields {
		sep := byte(',')
		if i == 0 {
			sep = '{'
		}
		k := appendString([]byte{sep}, f.Name)
		keys = append(keys, append(k, ':'))
	}
	return keys
}
