package transform

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"time"

	"github.com/sluicehq/sluice/internal/data"
)

// rowStore keeps rows copied out of batches, column by column, so that a
// step can hold on to them after the batch they came from is reused.
type rowStore struct {
	cols []data.Column
	n    int
}

func newRowStore(fields []data.Field) rowStore {
	s := rowStore{cols: make([]data.Column, len(fields))}
	for i, f := range fields {
		s.cols[i].Type = f.Type
	}
	return s
}

// appendRow appends row r of src (one column per stored column).
func (s *rowStore) appendRow(src []*data.Column, r int) {
	for i, c := range src {
		s.cols[i].AppendValue(c, r)
	}
	s.n++
}

// setRow overwrites stored row i with row r of src.
func (s *rowStore) setRow(i int, src []*data.Column, r int) {
	for k, c := range src {
		dst := &s.cols[k]
		null := c.IsNull(r)
		if null {
			dst.SetNull(i, s.n)
		} else if dst.Nulls != nil {
			dst.Nulls[i] = false
		}
		if null {
			continue
		}
		switch c.Type {
		case data.String:
			dst.Strings[i] = c.Strings[r]
		case data.Int:
			dst.Ints[i] = c.Ints[r]
		case data.Float:
			dst.Floats[i] = c.Floats[r]
		case data.Bool:
			dst.Bools[i] = c.Bools[r]
		case data.Timestamp:
			dst.Times[i] = c.Times[r]
		}
	}
}

// slice returns rows [from, to) of stored column k, sharing memory.
func (s *rowStore) slice(k, from, to int) data.Column {
	c := &s.cols[k]
	out := data.Column{Type: c.Type}
	switch c.Type {
	case data.String:
		out.Strings = c.Strings[from:to:to]
	case data.Int:
		out.Ints = c.Ints[from:to:to]
	case data.Float:
		out.Floats = c.Floats[from:to:to]
	case data.Bool:
		out.Bools = c.Bools[from:to:to]
	case data.Timestamp:
		out.Times = c.Times[from:to:to]
	}
	if c.Nulls != nil {
		out.Nulls = c.Nulls[from:to:to]
	}
	return out
}

// keyTable maps key tuples (the values of some columns of a row) to dense
// ids 0, 1, 2, ... in order of first appearance. It hashes the typed values
// with maphash and, since different tuples may share a hash, confirms
// every match against the stored tuple. Null is a value: two null keys are
// equal. Floats compare by value with -0 equal to 0 and NaN equal to NaN,
// timestamps by instant.
type keyTable struct {
	h    maphash.Hash
	keys rowStore
	head map[uint64]int32 // first id with a hash
	next []int32          // next id with the same hash, or -1
	// collide makes every key hash alike, so tests can prove that
	// matches are confirmed against the stored key.
	collide bool
}

func newKeyTable(fields []data.Field) *keyTable {
	t := &keyTable{keys: newRowStore(fields), head: make(map[uint64]int32)}
	t.h.SetSeed(maphash.MakeSeed())
	return t
}

// len is the number of distinct keys.
func (t *keyTable) len() int { return t.keys.n }

func (t *keyTable) hash(cols []*data.Column, r int) uint64 {
	if t.collide {
		return 0
	}
	t.h.Reset()
	var buf [16]byte
	for _, c := range cols {
		if c.IsNull(r) {
			t.h.WriteByte(0)
			continue
		}
		t.h.WriteByte(1)
		switch c.Type {
		case data.String:
			// The length first, so ("ab", "c") and ("a", "bc") differ.
			binary.LittleEndian.PutUint64(buf[:8], uint64(len(c.Strings[r])))
			t.h.Write(buf[:8])
			t.h.WriteString(c.Strings[r])
		case data.Int:
			binary.LittleEndian.PutUint64(buf[:8], uint64(c.Ints[r]))
			t.h.Write(buf[:8])
		case data.Float:
			binary.LittleEndian.PutUint64(buf[:8], floatBits(c.Floats[r]))
			t.h.Write(buf[:8])
		case data.Bool:
			if c.Bools[r] {
				t.h.WriteByte(1)
			} else {
				t.h.WriteByte(0)
			}
		case data.Timestamp:
			ts := c.Times[r]
			binary.LittleEndian.PutUint64(buf[:8], uint64(ts.Unix()))
			binary.LittleEndian.PutUint64(buf[8:], uint64(ts.Nanosecond()))
			t.h.Write(buf[:])
		}
	}
	return t.h.Sum64()
}

// floatBits is the bit pattern floats are hashed and compared by: -0 is
// 0, and every NaN is the same NaN.
func floatBits(f float64) uint64 {
	switch {
	case f == 0:
		return 0
	case math.IsNaN(f):
		return math.Float64bits(math.NaN())
	}
	return math.Float64bits(f)
}

// equal reports whether stored key id equals row r of cols.
func (t *keyTable) equal(id int32, cols []*data.Column, r int) bool {
	for k, c := range cols {
		s := &t.keys.cols[k]
		sn, cn := s.IsNull(int(id)), c.IsNull(r)
		if sn != cn {
			return false
		}
		if sn {
			continue
		}
		switch c.Type {
		case data.String:
			if s.Strings[id] != c.Strings[r] {
				return false
			}
		case data.Int:
			if s.Ints[id] != c.Ints[r] {
				return false
			}
		case data.Float:
			if floatBits(s.Floats[id]) != floatBits(c.Floats[r]) {
				return false
			}
		case data.Bool:
			if s.Bools[id] != c.Bools[r] {
				return false
			}
		case data.Timestamp:
			if !sameInstant(s.Times[id], c.Times[r]) {
				return false
			}
		}
	}
	return true
}

func sameInstant(a, b time.Time) bool { return a.Equal(b) }

// find returns the id of the key in row r of cols, or -1.
func (t *keyTable) find(cols []*data.Column, r int) int32 {
	id, ok := t.head[t.hash(cols, r)]
	if !ok {
		return -1
	}
	for ; id >= 0; id = t.next[id] {
		if t.equal(id, cols, r) {
			return id
		}
	}
	return -1
}

// insert returns the id of the key in row r of cols, adding it if it is
// new, and whether it was added.
func (t *keyTable) insert(cols []*data.Column, r int) (int32, bool) {
	h := t.hash(cols, r)
	first, ok := t.head[h]
	if ok {
		for id := first; id >= 0; id = t.next[id] {
			if t.equal(id, cols, r) {
				return id, false
			}
		}
	} else {
		first = -1
	}
	id := int32(t.keys.n)
	t.keys.appendRow(cols, r)
	t.next = append(t.next, first)
	t.head[h] = id
	return id, true
}

// colRefs fills dst with pointers to the columns idx of b.
func colRefs(dst []*data.Column, b *data.Batch, idx []int) []*data.Column {
	dst = dst[:0]
	for _, i := range idx {
		dst = append(dst, &b.Cols[i])
	}
	return dst
}

// keyJSON renders stored key id as a JSON object, for error messages.
func (t *keyTable) keyJSON(names []string, id int32) string {
	b := data.Batch{Cols: t.keys.cols, Len: t.keys.n}
	fields := make([]data.Field, len(names))
	for i, n := range names {
		fields[i] = data.Field{Name: n, Type: t.keys.cols[i].Type}
	}
	b.Schema = &data.Schema{Fields: fields}
	return rowJSON(&b, int(id))
}
