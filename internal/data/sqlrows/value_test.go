package sqlrows

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// valueOf returns row 0 of column 0 of b, nil when null.
func valueOf(b *data.Batch) any {
	c := &b.Cols[0]
	if c.IsNull(0) {
		return nil
	}
	switch c.Type {
	case data.String:
		return c.Strings[0]
	case data.Int:
		return c.Ints[0]
	case data.Float:
		return c.Floats[0]
	case data.Bool:
		return c.Bools[0]
	case data.Timestamp:
		return c.Times[0]
	}
	return nil
}

func TestAppendValue(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2024, 5, 1, 12, 30, 0, 123456789, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		name   string
		unix   bool
		typ    data.Type
		in     any
		want   any
		reason string
	}{
		{"null", false, data.Int, nil, nil, ""},
		{"int", false, data.Int, int64(-7), int64(-7), ""},
		{"uint in range", false, data.Int, uint64(7), int64(7), ""},
		{"uint out of range", false, data.Int, uint64(math.MaxUint64), nil, `column "c": 18446744073709551615 is out of range for int (64-bit signed)`},
		{"whole float as int", false, data.Int, 3.0, int64(3), ""},
		{"fraction as int", false, data.Int, 3.5, nil, `column "c": "3.5" is not an int`},
		{"text as int", false, data.Int, []byte("42"), int64(42), ""},
		{"bad text as int", false, data.Int, "4x", nil, `column "c": "4x" is not an int`},
		{"float", false, data.Float, 1.5, 1.5, ""},
		{"float32", false, data.Float, float32(0.5), 0.5, ""},
		{"int as float", false, data.Float, int64(2), 2.0, ""},
		{"text as float", false, data.Float, "2.25", 2.25, ""},
		{"bool", false, data.Bool, true, true, ""},
		{"one as bool", false, data.Bool, int64(1), true, ""},
		{"two as bool", false, data.Bool, int64(2), nil, `column "c": "2" is not a bool (want 0 or 1)`},
		{"text as bool", false, data.Bool, "false", false, ""},
		{"time to UTC micros", false, data.Timestamp, t0, t0.UTC().Truncate(time.Microsecond), ""},
		{"zero time is null", false, data.Timestamp, time.Time{}, nil, ""},
		{"text as time", false, data.Timestamp, "2024-05-01T10:30:00Z", time.Date(2024, 5, 1, 10, 30, 0, 0, time.UTC), ""},
		{"unix seconds", true, data.Timestamp, int64(86400), time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC), ""},
		{"int not a time without unix", false, data.Timestamp, int64(86400), nil, `column "c": "86400" is not a timestamp`},
		{"text", false, data.String, []byte("héllo"), "héllo", ""},
		{"int as text", false, data.String, int64(5), "5", ""},
		{"invalid utf-8", false, data.String, []byte{0xff, 'a'}, nil, `column "c": value is not valid UTF-8 text`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &Dialect{Name: "test", UnixTimestamps: tt.unix}
			bd := fileio.NewBuilder(data.MustSchema(data.Field{Name: "c", Type: tt.typ}), 1)
			reason := d.appendValue(bd, 0, "c", tt.typ, tt.in)
			if reason != tt.reason {
				t.Fatalf("reason = %q, want %q", reason, tt.reason)
			}
			if reason != "" {
				return
			}
			bd.EndRow(1)
			if diff := cmp.Diff(tt.want, valueOf(bd.B)); diff != "" {
				t.Errorf("value (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRawRow(t *testing.T) {
	t.Parallel()
	cells := []cell{{nil}, {int64(3)}, {true}, {[]byte("a\"b")}, {2.5}, {time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)}}
	names := []string{"n", "i", "b", "s", "f", "t"}
	got := rawRow(names, cells)
	want := `{"n":null,"i":3,"b":true,"s":"a\"b","f":"2.5","t":"2024-05-01T00:00:00Z"}`
	if got != want {
		t.Errorf("rawRow = %s\nwant %s", got, want)
	}
}

func TestTypeOfValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   any
		want data.Type
	}{
		{"int", int64(1), data.Int},
		{"float", 1.5, data.Float},
		{"time", time.Now(), data.Timestamp},
		{"text", "x", data.String},
		{"null", nil, data.String},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := TypeOfValue(tt.in); got != tt.want {
				t.Errorf("TypeOfValue(%v) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
