package data

import (
	"testing"

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
