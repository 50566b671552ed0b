package jsonl

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecoderAndEncoder(t *testing.T) {
	t.Parallel()
	schema, reason := InferSchema([]byte("{\n  \"id\": 1,\n  \"name\": \"a\"\n}"))
	if reason != "" || schema.String() != "id:int, name:string" {
		t.Fatalf("InferSchema = %v, %q", schema, reason)
	}
	if _, reason := InferSchema([]byte(`[1]`)); reason != "not a JSON object" {
		t.Errorf("InferSchema of an array: reason %q", reason)
	}
	d := NewDecoder(schema, 4)
	tests := []struct{ in, reason string }{
		{`{"id": 7, "name": "x\n"}`, ""},
		{`{"id": "x"}`, `field "id": want int, got JSON string`},
		{`{"name": null}`, ""},
	}
	for i, tt := range tests {
		if got := d.Append([]byte(tt.in), int64(i+10)); got != tt.reason {
			t.Errorf("Append(%s) = %q, want %q", tt.in, got, tt.reason)
		}
	}
	b := d.Batch()
	if diff := cmp.Diff([]int64{10, 12}, b.Pos); diff != "" {
		t.Errorf("positions (-want +got):\n%s", diff)
	}
	var out []string
	enc := NewEncoder(schema)
	for r := 0; r < b.Len; r++ {
		out = append(out, string(enc.AppendRow(nil, b, r)))
	}
	if diff := cmp.Diff([]string{`{"id":7,"name":"x\n"}`, `{"id":null,"name":null}`}, out); diff != "" {
		t.Errorf("encoded (-want +got):\n%s", diff)
	}
	d.Reset()
	if d.Batch().Len != 0 {
		t.Errorf("Reset left %d rows", d.Batch().Len)
	}
}
