package sqlrows

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/data/fileio"
)

// cell receives one column of the current row from database/sql without
// reflection or copying: the value is converted before the next row is
// read, so even a []byte pointing into the driver's buffer is safe.
type cell struct{ v any }

// Scan implements sql.Scanner.
func (c *cell) Scan(src any) error {
	c.v = src
	return nil
}

// appendValue converts v, as the driver delivered it, to column col of
// type t, or returns why it cannot.
func (d *Dialect) appendValue(bd *fileio.Builder, col int, name string, t data.Type, v any) string {
	if v == nil {
		bd.AppendNull(col)
		return ""
	}
	bad := func(what string) string {
		return fmt.Sprintf("column %q: %s is not %s", name, fileio.Quote(display(v)), what)
	}
	switch t {
	case data.Int:
		switch x := v.(type) {
		case int64:
			bd.AppendInt(col, x)
		case uint64:
			if x > math.MaxInt64 {
				return fmt.Sprintf("column %q: %d is out of range for int (64-bit signed)", name, x)
			}
			bd.AppendInt(col, int64(x))
		case float64:
			if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
				return bad("an int")
			}
			bd.AppendInt(col, int64(x))
		case []byte, string:
			n, err := strconv.ParseInt(asString(x), 10, 64)
			if err != nil {
				return bad("an int")
			}
			bd.AppendInt(col, n)
		default:
			return bad("an int")
		}
	case data.Float:
		switch x := v.(type) {
		case float64:
			bd.AppendFloat(col, x)
		case float32:
			bd.AppendFloat(col, float64(x))
		case int64:
			bd.AppendFloat(col, float64(x))
		case uint64:
			bd.AppendFloat(col, float64(x))
		case []byte, string:
			f, err := strconv.ParseFloat(asString(x), 64)
			if err != nil {
				return bad("a float")
			}
			bd.AppendFloat(col, f)
		default:
			return bad("a float")
		}
	case data.Bool:
		switch x := v.(type) {
		case bool:
			bd.AppendBool(col, x)
		case int64:
			if x != 0 && x != 1 {
				return bad("a bool (want 0 or 1)")
			}
			bd.AppendBool(col, x == 1)
		case uint64:
			if x > 1 {
				return bad("a bool (want 0 or 1)")
			}
			bd.AppendBool(col, x == 1)
		case []byte, string:
			b, err := strconv.ParseBool(asString(x))
			if err != nil {
				return bad("a bool")
			}
			bd.AppendBool(col, b)
		default:
			return bad("a bool")
		}
	case data.Timestamp:
		switch x := v.(type) {
		case time.Time:
			if x.IsZero() {
				// A zero time (MySQL's 0000-00-00) means "no date".
				bd.AppendNull(col)
				return ""
			}
			bd.AppendTime(col, x.UTC().Truncate(time.Microsecond))
		case int64:
			if !d.UnixTimestamps {
				return bad("a timestamp")
			}
			bd.AppendTime(col, time.Unix(x, 0).UTC())
		case []byte, string:
			ts, ok := fileio.ParseTime(asString(x))
			if !ok {
				return bad("a timestamp")
			}
			bd.AppendTime(col, ts)
		default:
			return bad("a timestamp")
		}
	case data.String:
		switch x := v.(type) {
		case []byte:
			if !utf8.Valid(x) {
				return fmt.Sprintf("column %q: value is not valid UTF-8 text", name)
			}
			bd.AppendString(col, string(x))
		case string:
			if !utf8.ValidString(x) {
				return fmt.Sprintf("column %q: value is not valid UTF-8 text", name)
			}
			bd.AppendString(col, x)
		default:
			bd.AppendString(col, display(x))
		}
	default:
		return fmt.Sprintf("column %q: unsupported type %s", name, t)
	}
	return ""
}

func asString(v any) string {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case string:
		return x
	}
	return display(v)
}

// display renders a driver value as text for error messages and for the
// raw form of a quarantined row.
func display(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return strings.ToValidUTF8(string(x), "\uFFFD")
	case string:
		return strings.ToValidUTF8(x, "\uFFFD")
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return string(fileio.AppendTime(nil, x))
	}
	return fmt.Sprint(v)
}

// rawRow renders a row as a JSON object of its values as read, the Raw
// text of a quarantined row.
func rawRow(names []string, cells []cell) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, c := range cells {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(names[i])
		b.Write(k)
		b.WriteByte(':')
		switch x := c.v.(type) {
		case nil:
			b.WriteString("null")
		case int64, uint64, bool:
			b.WriteString(display(x))
		default:
			s, _ := json.Marshal(display(x))
			b.Write(s)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// TypeOfValue is the type of a column whose database type says nothing,
// judged by its value in the first row; null tells nothing and reads as a
// string.
func TypeOfValue(v any) data.Type {
	switch v.(type) {
	case int64:
		return data.Int
	case float64:
		return data.Float
	case time.Time:
		return data.Timestamp
	}
	return data.String
}
