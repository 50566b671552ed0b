package audit

import (
	"fmt"
	"time"
)

// ParseTime reads a time filter of the audit log as people write it: RFC
// 3339, a date (YYYY-MM-DD, UTC midnight), or a duration before now
// ("24h"). "" is the zero time (no bound). The CLI's --since/--until and
// the API's since/until parameters both read it.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (want RFC 3339, YYYY-MM-DD or a duration such as 24h)", s)
}
