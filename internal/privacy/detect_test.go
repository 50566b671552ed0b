package privacy_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/privacy"
)

func TestRecognize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want privacy.Type // "" = not recognised
	}{
		{"visa", "4111111111111111", privacy.CreditCard},
		{"visa dashed", "4111-1111-1111-1111", privacy.CreditCard},
		{"visa spaced", "4111 1111 1111 1111", privacy.CreditCard},
		{"mastercard", "5555555555554444", privacy.CreditCard},
		{"mastercard 2-series", "2223003122003222", privacy.CreditCard},
		{"amex", "378282246310005", privacy.CreditCard},
		{"discover", "6011111111111117", privacy.CreditCard},
		{"jcb", "3530111333300000", privacy.CreditCard},
		{"card luhn fails", "4111111111111112", ""},
		{"card unknown prefix", "1234567812345670", ""},
		{"amex wrong length", "3782822463100050", ""},
		{"card double separator", "4111--1111-1111-1111", ""},
		{"iban gb", "GB82WEST12345698765432", privacy.IBAN},
		{"iban gb grouped", "GB82 WEST 1234 5698 7654 32", privacy.IBAN},
		{"iban de", "DE89370400440532013000", privacy.IBAN},
		{"iban fr", "FR1420041010050500013M02606", privacy.IBAN},
		{"iban nl", "NL91ABNA0417164300", privacy.IBAN},
		{"iban bad checksum", "GB82WEST12345698765433", ""},
		{"iban wrong length", "DE8937040044053201300", ""},
		{"iban unknown country", "ZZ89370400440532013000", ""},
		{"iban lower case", "gb82west12345698765432", ""},
		{"ssn", "123-45-6789", privacy.NationalID},
		{"ssn area 000", "000-12-3456", ""},
		{"ssn area 666", "666-12-3456", ""},
		{"ssn area 9xx", "912-12-3456", ""},
		{"ssn group 00", "123-00-4567", ""},
		{"ssn serial 0000", "123-45-0000", ""},
		{"ssn bare alone", "123456789", ""},
		{"nino", "AB123456C", privacy.NationalID},
		{"nino spaced", "AB 12 34 56 C", privacy.NationalID},
		{"nino bad prefix", "GB123456C", ""},
		{"nino bad suffix", "AB123456E", ""},
		{"email", "john.doe@example.com", privacy.Email},
		{"email plus", "j.o+tag@mail.example.co.uk", privacy.Email},
		{"email padded", "  ana@example.org ", privacy.Email},
		{"email no tld", "john@localhost", ""},
		{"email double dot", "a..b@example.com", ""},
		{"email numeric tld", "john@example.c0m", ""},
		{"email no local", "@example.com", ""},
		{"ipv4", "192.168.1.1", privacy.IPAddress},
		{"ipv6", "2001:db8::1", privacy.IPAddress},
		{"ipv4 out of range", "256.1.1.1", ""},
		{"version string", "1.2.3", ""},
		{"five parts", "1.2.3.4.5", ""},
		{"phone e164", "+12024561111", privacy.Phone},
		{"phone us formatted", "(202) 456-1111", privacy.Phone},
		{"phone uk", "+44 20 7946 0958", privacy.Phone},
		{"phone fr", "+33 1 42 68 53 00", privacy.Phone},
		{"phone bare digits", "2024561111", ""},
		{"phone invalid area", "(099) 456-1111", ""},
		{"iso date", "2024-01-15", ""},
		{"timestamp", "2024-01-15T10:30:00Z", ""},
		{"uuid", "123e4567-e89b-12d3-a456-426614174000", ""},
		{"price", "$1,234.56", ""},
		{"isbn13", "978-3-16-148410-0", ""},
		{"address", "221B Baker Street", privacy.StreetAddress},
		{"address us", "1600 Pennsylvania Ave NW, Washington", privacy.StreetAddress},
		{"word", "hello", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := privacy.Recognize(tt.in)
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("Recognize(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
			}
		})
	}
}

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, region, want string
		ok                     bool
	}{
		{"us national", "(202) 456-1111", "US", "+12024561111", true},
		{"uk national", "020 7946 0958", "GB", "+442079460958", true},
		{"international ignores region", "+44 20 7946 0958", "US", "+442079460958", true},
		{"too short", "555-1234", "US", "", false},
		{"letters", "1-800-FLOWERS", "US", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := privacy.NormalizePhone(tt.in, tt.region)
			if got != tt.want || ok != tt.ok {
				t.Errorf("NormalizePhone(%q, %q) = %q, %v; want %q, %v", tt.in, tt.region, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseType(t *testing.T) {
	t.Parallel()
	for _, typ := range privacy.Types {
		got, err := privacy.ParseType(string(typ))
		if err != nil || got != typ {
			t.Errorf("ParseType(%q) = %q, %v", typ, got, err)
		}
	}
	aliases := map[string]privacy.Type{"SSN": privacy.NationalID, "card": privacy.CreditCard, "dob": privacy.DateOfBirth, "ip": privacy.IPAddress, "Person Name": privacy.PersonName}
	for in, want := range aliases {
		if got, err := privacy.ParseType(in); err != nil || got != want {
			t.Errorf("ParseType(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := privacy.ParseType("shoe_size"); err == nil {
		t.Error("ParseType(shoe_size): want an error")
	}
}

// column builds a one-batch stream of string columns.
func batch(t *testing.T, cols map[string][]string, order ...string) *data.Batch {
	t.Helper()
	fields := make([]data.Field, len(order))
	for i, n := range order {
		fields[i] = data.Field{Name: n, Type: data.String}
	}
	b := data.NewBatch(data.MustSchema(fields...), 0)
	for i, n := range order {
		b.Cols[i].Strings = cols[n]
		b.Len = len(cols[n])
	}
	return b
}

func TestDetectorFindings(t *testing.T) {
	t.Parallel()
	now := func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name string
		col  string
		vals []string
		want *privacy.Finding // nil = no finding
	}{
		{"emails", "contact", []string{"a@example.com", "b@example.org", "c@example.net", ""},
			&privacy.Finding{Type: privacy.Email, Matches: 3, Sampled: 3, Ratio: 1}},
		{"cards with one typo", "payment", []string{"4111111111111111", "5555555555554444", "378282246310005", "4111111111111112"},
			&privacy.Finding{Type: privacy.CreditCard, Matches: 3, Sampled: 4, Ratio: 0.75}},
		{"bare ssns dominate", "taxpayer", []string{"123456789", "234567890", "345678901", "456789012"},
			&privacy.Finding{Type: privacy.NationalID, Matches: 4, Sampled: 4, Ratio: 1}},
		{"bare phones in a phone column", "phone", []string{"2024561111", "2125550147", "4155552671"},
			&privacy.Finding{Type: privacy.Phone, Matches: 3, Sampled: 3, Ratio: 1}},
		{"bare phones elsewhere", "order_no", []string{"2024561111", "2125550147", "4155552671"}, nil},
		{"dates of birth", "date_of_birth", []string{"1980-04-12", "1975-11-30", "2001-01-01", "2030-01-01"},
			&privacy.Finding{Type: privacy.DateOfBirth, Matches: 3, Sampled: 4, Ratio: 0.75}},
		{"dates elsewhere", "shipped_on", []string{"1980-04-12", "1975-11-30", "2001-01-01"}, nil},
		{"names by column", "customer_name", []string{"Zeynep Kaya", "Oluwaseun Adeyemi", "Nguyen Van An"},
			&privacy.Finding{Type: privacy.PersonName, Matches: 3, Sampled: 3, Ratio: 1}},
		{"names by given name", "who", []string{"Mary Smith", "James Brown", "Zeynep Kaya"},
			&privacy.Finding{Type: privacy.PersonName, Matches: 3, Sampled: 3, Ratio: 1}},
		{"product names", "product_name", []string{"Blue Widget", "Red Gadget", "Mary Jane Shoes"}, nil},
		{"addresses", "ship_to", []string{"221B Baker Street", "10 Downing St", "1600 Pennsylvania Ave NW"},
			&privacy.Finding{Type: privacy.StreetAddress, Matches: 3, Sampled: 3, Ratio: 1}},
		{"free text", "notes", []string{"Customer asked to be called back on +1 202-456-1111 tomorrow", "Delivered to the front desk as agreed", "Refund issued, see ticket 4411 for details"},
			&privacy.Finding{Type: privacy.FreeText, Matches: 1, Sampled: 3}},
		{"skus", "sku", []string{"SKU-1234", "SKU-5678", "SKU-9012"}, nil},
		{"mostly not", "mixed", []string{"a@example.com", "x", "y", "z"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := privacy.NewDetector(privacy.DetectOptions{Now: now})
			d.Observe(batch(t, map[string][]string{tt.col: tt.vals}, tt.col))
			got := d.Findings()
			var want []privacy.Finding
			if tt.want != nil {
				w := *tt.want
				w.Column = tt.col
				want = []privacy.Finding{w}
			}
			// Confidence is checked separately; Ratio for free text too.
			opt := cmp.FilterPath(func(p cmp.Path) bool {
				s := p.String()
				return s == "Confidence" || (tt.want != nil && tt.want.Type == privacy.FreeText && s == "Ratio")
			}, cmp.Ignore())
			if diff := cmp.Diff(want, got, opt); diff != "" {
				t.Fatalf("Findings() mismatch (-want +got):\n%s", diff)
			}
			for _, f := range got {
				if f.Confidence <= 0 || f.Confidence > 1 {
					t.Errorf("confidence %v out of (0, 1]", f.Confidence)
				}
			}
		})
	}
}

func TestDetectorConfidenceOrder(t *testing.T) {
	t.Parallel()
	d := privacy.NewDetector(privacy.DetectOptions{})
	d.Observe(batch(t, map[string][]string{
		"card": {"4111111111111111", "5555555555554444"},
		"who":  {"Mary Smith", "James Brown"},
	}, "card", "who"))
	fs := d.Findings()
	if len(fs) != 2 {
		t.Fatalf("got %d findings, want 2: %+v", len(fs), fs)
	}
	if !(fs[0].Confidence > fs[1].Confidence) {
		t.Errorf("card confidence %v should exceed name confidence %v", fs[0].Confidence, fs[1].Confidence)
	}
}

func TestDetectorSampleRowsAndNonStrings(t *testing.T) {
	t.Parallel()
	schema := data.MustSchema(data.Field{Name: "email", Type: data.String}, data.Field{Name: "n", Type: data.Int})
	d := privacy.NewDetector(privacy.DetectOptions{SampleRows: 3})
	for range 2 {
		b := data.NewBatch(schema, 2)
		b.Cols[0].Strings = []string{"a@example.com", "b@example.com"}
		b.Cols[1].Ints = []int64{1, 2}
		b.Cols[0].SetNull(1, 2)
		b.Cols[1].Ints = []int64{1, 2}
		b.Len = 2
		d.Observe(b)
	}
	// Rows 1 and 3 are sampled (row 2 is null, row 4 beyond the sample).
	want := []privacy.Finding{{Column: "email", Type: privacy.Email, Matches: 2, Sampled: 2, Ratio: 1}}
	if diff := cmp.Diff(want, d.Findings(), cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Confidence" }, cmp.Ignore())); diff != "" {
		t.Errorf("Findings() mismatch (-want +got):\n%s", diff)
	}
}

func TestDetectorRegion(t *testing.T) {
	t.Parallel()
	vals := []string{"020 7946 0958", "020 7946 0123", "0161 496 0000"}
	for _, tc := range []struct {
		region string
		want   int
	}{{"GB", 1}, {"US", 0}} {
		t.Run(tc.region, func(t *testing.T) {
			t.Parallel()
			d := privacy.NewDetector(privacy.DetectOptions{Region: tc.region})
			d.Observe(batch(t, map[string][]string{"tel": vals}, "tel"))
			if got := len(d.Findings()); got != tc.want {
				t.Errorf("region %s: %d findings, want %d: %+v", tc.region, got, tc.want, d.Findings())
			}
		})
	}
}

func TestSpans(t *testing.T) {
	t.Parallel()
	type sp struct {
		Text string
		Type privacy.Type
	}
	tests := []struct {
		name string
		in   string
		want []sp
	}{
		{"email and phone", "Mail jane.doe@example.com or call (202) 456-1111.", []sp{{"jane.doe@example.com", privacy.Email}, {"(202) 456-1111", privacy.Phone}}},
		{"grouped card", "card 4111 1111 1111 1111, exp 12/27", []sp{{"4111 1111 1111 1111", privacy.CreditCard}}},
		{"grouped iban", "IBAN: GB82 WEST 1234 5698 7654 32 (main)", []sp{{"GB82 WEST 1234 5698 7654 32", privacy.IBAN}}},
		{"ssn and ip", "SSN 123-45-6789 from 10.0.0.12", []sp{{"123-45-6789", privacy.NationalID}, {"10.0.0.12", privacy.IPAddress}}},
		{"international phone", "ring +44 20 7946 0958 today", []sp{{"+44 20 7946 0958", privacy.Phone}}},
		{"nothing", "Order 12345 shipped on 2024-01-15 for $19.99 (v1.2.3)", nil},
		{"luhn failing card", "card 4111 1111 1111 1112", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []sp
			for _, s := range privacy.Spans(tt.in) {
				got = append(got, sp{tt.in[s.Start:s.End], s.Type})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Spans(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
