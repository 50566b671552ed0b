package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
)

func TestQualityLines(t *testing.T) {
	t.Parallel()
	views := []checkView{
		{Task: "clean", Attempt: 1, Check: "email.regex", Kind: "regex", Severity: "fail", Checked: 10, Failing: 9, FailingPct: 90},
		{Task: "clean", Attempt: 2, Check: "consent.marketing", Kind: "consent", Severity: "filter", Checked: 10, Failing: 3, Passed: true},
		{Task: "clean", Attempt: 2, Check: "email.regex", Kind: "regex", Severity: "quarantine", Checked: 7, Failing: 2, FailingPct: 28.57,
			Samples: []store.CheckSample{{Pos: "line 3", Value: "bo***"}}},
		{Task: "clean", Attempt: 2, Check: "id.unique", Kind: "unique", Severity: "warn", Checked: 7, Passed: true},
		{Task: "load", Attempt: 1, Check: "row_count", Kind: "row_count", Severity: "fail", Checked: 1, Passed: true, Detail: "7 records"},
	}
	want := []string{
		"clean: quality 1/2 passed; failed: email.regex [quarantine] (2 failing, 28.57%); consent_filtered=3",
		"load: quality 1/1 passed",
	}
	if d := cmp.Diff(want, qualityLines(views)); d != "" {
		t.Errorf("qualityLines (-want +got):\n%s", d)
	}
	if got := samplesText(views[2]); got != "line 3=bo***" {
		t.Errorf("samplesText = %q, want %q", got, "line 3=bo***")
	}
	if got := samplesText(views[4]); got != "7 records" {
		t.Errorf("samplesText = %q, want the detail", got)
	}
}
