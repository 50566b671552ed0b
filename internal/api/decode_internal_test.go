package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/server"
)

func TestDecodeOptional(t *testing.T) {
	t.Parallel()
	type note struct {
		Note string `json:"note"`
	}
	request := func(body string, length int64) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(body)))
		r.ContentLength = length
		return r
	}
	for name, r := range map[string]*http.Request{
		"length 0":             request("", 0),
		"chunked, empty":       request("", -1),
		"chunked, white space": request("\r\n", -1),
	} {
		v := note{Note: "kept"}
		if err := decodeOptional(r, &v); err != nil || v.Note != "kept" {
			t.Errorf("%s: %v, %+v; want no error and v untouched", name, err, v)
		}
	}
	var v note
	if err := decodeOptional(request(`{"note":"ok"}`, -1), &v); err != nil || v.Note != "ok" {
		t.Errorf("chunked body: %v, %+v", err, v)
	}
	var e *server.Error
	if err := decodeOptional(request(`{"note":`, -1), &v); !errors.As(err, &e) || e.Code != server.CodeInvalid {
		t.Errorf("truncated body: %v, want invalid", err)
	}
	if err := decodeOptional(request(`{"other":1}`, -1), &v); !errors.As(err, &e) || e.Code != server.CodeInvalid {
		t.Errorf("unknown field: %v, want invalid", err)
	}
}
