package transform

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/data"
)

// rowJSON renders row r of b as a JSON object with the columns in schema
// order, so that a quarantined record can be read, fixed and replayed.
// Timestamps are RFC 3339 strings; floats that JSON cannot hold (NaN,
// infinities) are strings.
func rowJSON(b *data.Batch, r int) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, f := range b.Schema.Fields {
		if i > 0 {
			sb.WriteByte(',')
		}
		writeJSONString(&sb, f.Name)
		sb.WriteByte(':')
		c := &b.Cols[i]
		if c.IsNull(r) {
			sb.WriteString("null")
			continue
		}
		switch c.Type {
		case data.String:
			writeJSONString(&sb, c.Strings[r])
		case data.Int:
			sb.WriteString(strconv.FormatInt(c.Ints[r], 10))
		case data.Float:
			v := c.Floats[r]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				writeJSONString(&sb, strconv.FormatFloat(v, 'g', -1, 64))
			} else {
				sb.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
			}
		case data.Bool:
			sb.WriteString(strconv.FormatBool(c.Bools[r]))
		case data.Timestamp:
			writeJSONString(&sb, c.Times[r].UTC().Format(time.RFC3339Nano))
		}
	}
	sb.WriteByte('}')
	return sb.String()
}

func writeJSONString(sb *strings.Builder, s string) {
	// Marshalling a string cannot fail; invalid UTF-8 becomes U+FFFD.
	buf, _ := json.Marshal(s)
	sb.Write(buf)
}
