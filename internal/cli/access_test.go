package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/access"
	"github.com/sluicehq/sluice/internal/store"
)

func TestParseGrantExpiry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Time
		wantErr  bool
	}{
		{"none", "", time.Time{}, false},
		{"days", "90d", now.Add(90 * 24 * time.Hour), false},
		{"hours", "36h", now.Add(36 * time.Hour), false},
		{"rfc3339", "2026-06-01T08:00:00Z", time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC), false},
		{"date", "2026-06-01", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), false},
		{"zero days", "0d", time.Time{}, true},
		{"negative duration", "-5h", time.Time{}, true},
		{"word", "soon", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseGrantExpiry(tt.in, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseGrantExpiry(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("parseGrantExpiry(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestGrantSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, group string
		wantKind, wantSub string
		wantErr           bool
	}{
		{"user", "alice", "", store.SubjectUser, "alice", false},
		{"group", "", "analysts", store.SubjectGroup, "analysts", false},
		{"both", "alice", "analysts", "", "", true},
		{"neither", "", "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kind, sub, err := grantSubject(tt.user, tt.group)
			if (err != nil) != tt.wantErr || kind != tt.wantKind || sub != tt.wantSub {
				t.Errorf("grantSubject(%q, %q) = %q, %q, %v; want %q, %q, error %v",
					tt.user, tt.group, kind, sub, err, tt.wantKind, tt.wantSub, tt.wantErr)
			}
		})
	}
}

func TestSplitPipelineRefAndVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in     string
		wantNS, want string
		wantErr      bool
	}{
		{"ok", "crm/orders", "crm", "orders", false},
		{"no slash", "orders", "", "", true},
		{"empty namespace", "/orders", "", "", true},
		{"empty name", "crm/", "", "", true},
		{"two slashes", "crm/orders/x", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns, name, err := splitPipelineRef(tt.in)
			if (err != nil) != tt.wantErr || ns != tt.wantNS || name != tt.want {
				t.Errorf("splitPipelineRef(%q) = %q, %q, %v", tt.in, ns, name, err)
			}
		})
	}
	for _, tt := range []struct {
		in   string
		want int
		ok   bool
	}{{"3", 3, true}, {"v2", 2, true}, {"0", 0, false}, {"x", 0, false}} {
		t.Run("version "+tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parsePipelineVersion(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parsePipelineVersion(%q) = %d, %v", tt.in, got, err)
			}
		})
	}
}

func TestAccessErrorExitCodes(t *testing.T) {
	t.Parallel()
	sod := &access.SoDError{Rule: access.RuleSelfApproveVersion, Detail: "alice is the author of this version"}
	tests := []struct {
		name     string
		err      error
		wantCode int
	}{
		{"sod", fmt.Errorf("approving: %w", sod), ExitFailure},
		{"denied", fmt.Errorf("x: %w", access.ErrDenied), ExitFailure},
		{"unknown role", fmt.Errorf("x: %w", access.ErrUnknownRole), ExitUsage},
		{"invalid", fmt.Errorf("x: %w", access.ErrInvalid), ExitUsage},
		{"not found", fmt.Errorf("x: %w", store.ErrNotFound), ExitFailure},
		{"keeps its code", exitWith(ExitCancelled, errors.New("stopped")), ExitCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ee *exitError
			if !errors.As(accessError(tt.err), &ee) || ee.code != tt.wantCode {
				t.Fatalf("accessError(%v) = %v, want exit %d", tt.err, accessError(tt.err), tt.wantCode)
			}
		})
	}
	t.Run("sod names the rule", func(t *testing.T) {
		t.Parallel()
		err := accessError(sod)
		if !errors.Is(err, access.ErrSoD) {
			t.Fatalf("accessError lost the SoD error: %v", err)
		}
		if got := err.Error(); !strings.Contains(got, "refused under rule "+access.RuleSelfApproveVersion) {
			t.Errorf("accessError(sod) = %q, want the rule named", got)
		}
	})
}
