package web

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/server"
)

// The access service's refusals are the caller's: each becomes a page
// with its status, never an internal error.
func TestAccessErrorCodes(t *testing.T) {
	for err, want := range map[error]server.Code{
		fmt.Errorf("approving request r1: %w", access.ErrRequestExpired): server.CodeConflict,
		fmt.Errorf("binding: %w", access.ErrUnknownPermission):           server.CodeInvalid,
		fmt.Errorf("binding: %w", access.ErrUnknownRole):                 server.CodeInvalid,
		fmt.Errorf("approving: %w", access.ErrDenied):                    server.CodeForbidden,
	} {
		var se *server.Error
		if !errors.As(accessError(err), &se) || se.Code != want {
			t.Errorf("accessError(%v) = %v, want code %s", err, accessError(err), want)
		}
	}
}
