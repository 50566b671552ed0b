package data

import "time"

// Len returns the number of values in c.
func (c *Column) Len() int {
	switch c.Type {
	case String:
		return len(c.Strings)
	case Int:
		return len(c.Ints)
	case Float:
		return len(c.Floats)
	case Bool:
		return len(c.Bools)
	case Timestamp:
		return len(c.Times)
	}
	return 0
}

// AppendNull appends a null to c: the zero value, marked in the null mask.
func (c *Column) AppendNull() {
	switch c.Type {
	case String:
		c.Strings = append(c.Strings, "")
	case Int:
		c.Ints = append(c.Ints, 0)
	case Float:
		c.Floats = append(c.Floats, 0)
	case Bool:
		c.Bools = append(c.Bools, false)
	case Timestamp:
		c.Times = append(c.Times, time.Time{})
	}
	c.markLast(true)
}

// AppendValue appends row r of src, a column of the same type, to c,
// null or not.
func (c *Column) AppendValue(src *Column, r int) {
	switch src.Type {
	case String:
		c.Strings = append(c.Strings, src.Strings[r])
	case Int:
		c.Ints = append(c.Ints, src.Ints[r])
	case Float:
		c.Floats = append(c.Floats, src.Floats[r])
	case Bool:
		c.Bools = append(c.Bools, src.Bools[r])
	case Timestamp:
		c.Times = append(c.Times, src.Times[r])
	}
	c.markLast(src.IsNull(r))
}

// MarkAppended keeps the null mask in step after a non-null value was
// appended to c directly.
func (c *Column) MarkAppended() { c.markLast(false) }

// markLast records whether the value just appended is null, allocating the
// mask only when the first null arrives.
func (c *Column) markLast(null bool) {
	switch {
	case c.Nulls != nil:
		c.Nulls = append(c.Nulls, null)
	case null:
		n := c.Len()
		c.Nulls = make([]bool, n, n+1)
		c.Nulls[n-1] = true
	}
}

// Gather makes c hold the rows of src at positions rows, in that order,
// reusing c's memory. c takes src's type.
func (c *Column) Gather(src *Column, rows []int32) {
	c.Type = src.Type
	switch src.Type {
	case String:
		c.Strings = gather(c.Strings, src.Strings, rows)
	case Int:
		c.Ints = gather(c.Ints, src.Ints, rows)
	case Float:
		c.Floats = gather(c.Floats, src.Floats, rows)
	case Bool:
		c.Bools = gather(c.Bools, src.Bools, rows)
	case Timestamp:
		c.Times = gather(c.Times, src.Times, rows)
	}
	if src.Nulls == nil {
		c.Nulls = nil
		return
	}
	c.Nulls = gather(c.Nulls, src.Nulls, rows)
}

func gather[T any](dst, src []T, rows []int32) []T {
	dst = dst[:0]
	for _, r := range rows {
		dst = append(dst, src[r])
	}
	return dst
}
