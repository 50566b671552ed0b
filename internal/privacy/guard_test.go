package privacy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/privacy"
)

// TestGuardSensitivity: a declared column reaches a sink unprotected only
// when the sink's classification is at least the column's sensitivity;
// without a declared sensitivity, that is restricted.
func TestGuardSensitivity(t *testing.T) {
	t.Parallel()
	decl := map[string]privacy.Declaration{
		"email":      {Type: privacy.Email},
		"work_email": {Type: privacy.Email, Sensitivity: privacy.Internal},
		"phone":      {Type: privacy.Phone, Sensitivity: privacy.Confidential},
		"ssn":        {Type: privacy.NationalID, Sensitivity: privacy.Restricted},
	}
	tests := []struct {
		col     privacy.GuardColumn
		class   privacy.Sensitivity
		refused bool
	}{
		{privacy.GuardColumn{Name: "email", From: "email"}, privacy.Confidential, true},
		{privacy.GuardColumn{Name: "email", From: "email"}, privacy.Restricted, false},
		{privacy.GuardColumn{Name: "work_email", From: "work_email"}, privacy.Public, true},
		{privacy.GuardColumn{Name: "work_email", From: "work_email"}, privacy.Internal, false},
		{privacy.GuardColumn{Name: "work_email", From: "work_email"}, privacy.Confidential, false},
		{privacy.GuardColumn{Name: "contact", From: "work_email"}, privacy.Internal, false},
		{privacy.GuardColumn{Name: "work_email", From: "work_email"}, "", true},
		{privacy.GuardColumn{Name: "work_email", From: "work_email"}, "secret", true},
		{privacy.GuardColumn{Name: "phone", From: "phone"}, privacy.Internal, true},
		{privacy.GuardColumn{Name: "phone", From: "phone"}, privacy.Confidential, false},
		{privacy.GuardColumn{Name: "ssn", From: "ssn"}, privacy.Confidential, true},
		{privacy.GuardColumn{Name: "ssn", From: "ssn", Protected: true}, privacy.Public, false},
		{privacy.GuardColumn{Name: "city", From: "city"}, privacy.Public, false},
	}
	for _, tt := range tests {
		g := privacy.Guard{Task: "out", Sink: "the csv sink", Declared: decl, Class: tt.class}
		err := g.CheckDeclared([]privacy.GuardColumn{tt.col})
		if refused := errors.Is(err, privacy.ErrRawPII); refused != tt.refused || (err != nil && !refused) {
			t.Errorf("column %+v into a %q sink: error %v, want refused %v", tt.col, tt.class, err, tt.refused)
		}
	}
}

// TestGuardMessage: the refusal names the column, its type, its
// sensitivity and where it comes from, the sink and its classification,
// and where the pii step belongs.
func TestGuardMessage(t *testing.T) {
	t.Parallel()
	g := privacy.Guard{Task: "out", Sink: "the csv sink", Class: privacy.Internal, Declared: map[string]privacy.Declaration{
		"phone": {Type: privacy.Phone, Sensitivity: privacy.Confidential},
		"ssn":   {Type: privacy.NationalID},
	}}
	err := g.CheckDeclared([]privacy.GuardColumn{{Name: "mobile", From: "phone"}, {Name: "ssn", From: "ssn"}})
	for _, want := range []string{
		`task out: raw personal data would reach the sink: `,
		`column "mobile" (phone: declared in pii_columns as "phone", renamed; sensitivity confidential, declared) reaches the csv sink (classification internal) unprotected: add a pii step before the step that renames "phone" to "mobile", e.g. - pii: {phone: {mask: {keep_last: 4}}}`,
		`column "ssn" (national_id: declared in pii_columns; sensitivity restricted, the default) reaches the csv sink (classification internal) unprotected: add a pii step before the load, e.g. - pii: {ssn: redact}`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\ndoes not say %s", err, want)
		}
	}
}

// TestGuardBatchSensitivity: detection applies the declared sensitivity
// to what it finds, raised to the least of the type it finds; a column
// detected without a declaration is restricted.
func TestGuardBatchSensitivity(t *testing.T) {
	t.Parallel()
	schema := data.MustSchema(
		data.Field{Name: "work_email", Type: data.String},
		data.Field{Name: "notes", Type: data.String},
		data.Field{Name: "email", Type: data.String},
	)
	b := data.NewBatch(schema, 3)
	for _, r := range [][3]string{
		{"ann@example.com", "card 4111 1111 1111 1111", "x@example.org"},
		{"bob@example.com", "paid with 5500 0000 0000 0004", "y@example.org"},
		{"cy@example.com", "4012 8888 8888 1881 on file", "z@example.org"},
	} {
		for i, v := range r {
			b.Cols[i].Strings = append(b.Cols[i].Strings, v)
		}
	}
	b.Len = 3
	cols := []privacy.GuardColumn{{Name: "work_email", From: "work_email"}, {Name: "notes", From: "notes"}, {Name: "email", From: "email"}}
	decl := map[string]privacy.Declaration{
		"work_email": {Type: privacy.Email, Sensitivity: privacy.Internal},
		"notes":      {Type: privacy.FreeText, Sensitivity: privacy.Internal},
	}
	g := privacy.Guard{Task: "out", Sink: "the csv sink", Class: privacy.Confidential, Declared: decl}
	err := g.CheckBatch(cols, b)
	if !errors.Is(err, privacy.ErrRawPII) {
		t.Fatalf("error = %v, want ErrRawPII", err)
	}
	msg := err.Error()
	if strings.Contains(msg, `column "work_email"`) {
		t.Errorf("work_email (internal) refused at a confidential sink: %s", msg)
	}
	for _, want := range []string{
		`column "notes" (free_text: detected in 3 of 3 values; sensitivity restricted, the least for the credit_card found in its text; declared internal)`,
		`column "email" (email: detected in 3 of 3 values; sensitivity restricted, the default) reaches the csv sink (classification confidential)`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %s\ndoes not say %s", msg, want)
		}
	}
	g.Class = privacy.Restricted
	if err := g.CheckBatch(cols, b); err != nil {
		t.Errorf("restricted sink: %v", err)
	}
}
