package data

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestColumnAppendAndGather(t *testing.T) {
	t.Parallel()
	src := &Column{Type: String, Strings: []string{"a", "", "c"}, Nulls: []bool{false, true, false}}

	var dst Column
	dst.Type = String
	dst.AppendValue(src, 0) // no mask yet: nothing null so far
	if dst.Nulls != nil {
		t.Fatalf("mask allocated before a null: %v", dst.Nulls)
	}
	dst.AppendValue(src, 1)
	dst.Strings = append(dst.Strings, "direct")
	dst.MarkAppended()
	dst.AppendNull()
	want := Column{Type: String, Strings: []string{"a", "", "direct", ""}, Nulls: []bool{false, true, false, true}}
	if diff := cmp.Diff(want, dst); diff != "" {
		t.Errorf("appended (-want +got):\n%s", diff)
	}
	if dst.Len() != 4 {
		t.Errorf("Len() = %d", dst.Len())
	}

	var g Column
	g.Gather(src, []int32{2, 1, 2})
	want = Column{Type: String, Strings: []string{"c", "", "c"}, Nulls: []bool{false, true, false}}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("gathered (-want +got):\n%s", diff)
	}
	g.Gather(&Column{Type: Int, Ints: []int64{7, 8}}, []int32{1})
	if g.Type != Int || !cmp.Equal(g.Ints, []int64{8}) || g.Nulls != nil {
		t.Errorf("gathered again from an int column without nulls: %+v", g)
	}
}

// TestColumnAppendNullEveryType checks the zero value AppendNull writes for
// each type, and that the mask it allocates takes the values' capacity, so
// that a column sized for a batch fills its mask without growing it again.
func TestColumnAppendNullEveryType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		col  Column
		want Column
	}{
		{Column{Type: String, Strings: make([]string, 1, 8)}, Column{Type: String, Strings: []string{"", "", ""}}},
		{Column{Type: Int, Ints: make([]int64, 1, 8)}, Column{Type: Int, Ints: []int64{0, 0, 0}}},
		{Column{Type: Float, Floats: make([]float64, 1, 8)}, Column{Type: Float, Floats: []float64{0, 0, 0}}},
		{Column{Type: Bool, Bools: make([]bool, 1, 8)}, Column{Type: Bool, Bools: []bool{false, false, false}}},
		{Column{Type: Timestamp, Times: make([]time.Time, 1, 8)}, Column{Type: Timestamp, Times: []time.Time{{}, {}, {}}}},
	} {
		t.Run(tc.col.Type.String(), func(t *testing.T) {
			c := tc.col
			c.AppendNull()
			if got := cap(c.Nulls); got != 8 {
				t.Errorf("mask capacity %d after the first null, want the values' 8", got)
			}
			first := &c.Nulls[0]
			c.AppendNull()
			if &c.Nulls[0] != first {
				t.Error("mask reallocated within the values' capacity")
			}
			tc.want.Nulls = []bool{false, true, true}
			if diff := cmp.Diff(tc.want, c); diff != "" {
				t.Errorf("after two nulls (-want +got):\n%s", diff)
			}
		})
	}
}
