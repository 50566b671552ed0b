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
// It is the one way to append a null; every writer of columns uses it, so
// the zero value of each type is decided here and nowhere else.
func (c *Column) AppendNull() {
	c.appendZero()
	if c.Nulls != nil { // the common case once a column has a null: no call
		c.Nulls = append(c.Nulls, true)
		return
	}
	c.markLast(true)
}

// appendZero appends the zero value of c's type, leaving the mask alone.
func (c *Column) appendZero() {
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
// appended to c directly. It is cheap enough to call for every value: while
// c holds no null it does nothing.
func (c *Column) MarkAppended() {
	if c.Nulls != nil {
		c.Nulls = append(c.Nulls, false)
	}
}

// markLast records whether the value just appended is null, allocating the
// mask only when the first null arrives. The mask is then given the
// capacity of the values, so that a column sized for a batch up front does
// not grow its mask again for the rest of that batch.
func (c *Column) markLast(null bool) {
	switch {
	case c.Nulls != nil:
		c.Nulls = append(c.Nulls, null)
	case null:
		n := c.Len()
		c.Nulls = make([]bool, n, c.valueCap())
		c.Nulls[n-1] = true
	}
}

// valueCap returns the capacity of the slice holding c's values.
func (c *Column) valueCap() int {
	switch c.Type {
	case String:
		return cap(c.Strings)
	case Int:
		return cap(c.Ints)
	case Float:
		return cap(c.Floats)
	case Bool:
		return cap(c.Bools)
	case Timestamp:
		return cap(c.Times)
	}
	return 0
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
