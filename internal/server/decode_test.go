package server

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeJSONEmptyBody(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{"empty": "", "white space": " \n\t"} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		var v map[string]string
		err := DecodeJSON(r, &v)
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalid {
			t.Fatalf("%s body: %v, want an invalid *Error", name, err)
		}
		if e.Message != "request body: empty; want a JSON object" {
			t.Errorf("%s body: message %q", name, e.Message)
		}
		if !errors.Is(err, io.EOF) {
			t.Errorf("%s body: %v does not wrap io.EOF", name, err)
		}
	}
	// A body cut short is malformed, not empty.
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"a":`))
	var v map[string]string
	if err := DecodeJSON(r, &v); err == nil || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "empty") {
		t.Errorf("truncated body: %v, want a malformed-input error", err)
	}
}
