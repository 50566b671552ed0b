package privacy

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/data"
)

// DefaultMinRatio is the share of a column's sampled values that must be
// recognised as one kind before the Detector reports the column.
const DefaultMinRatio = 0.5

// Phone numbers are validated by a full parser, which costs microseconds a
// value. In each column the first phoneExact phone-shaped values are all
// validated; after that one in phoneStride is, and each valid one counts
// for phoneStride matches. The share of valid numbers in a column is
// settled long before, so the estimate changes no finding, and Observe
// stays fast on columns of millions of phone numbers.
const (
	phoneExact  = 1024
	phoneStride = 16
)

// DetectOptions configures a Detector. The zero value is usable.
type DetectOptions struct {
	// SampleRows is the number of rows examined; 0 examines all rows.
	// Detection needs a few thousand rows to be confident, not millions.
	SampleRows int
	// MinRatio is the share of a column's non-empty sampled values that
	// must be recognised as one kind for the column to be reported; 0
	// means DefaultMinRatio. Free-text columns are the exception: one
	// value with personal data inside it is enough to report them.
	MinRatio float64
	// Region is the ISO 3166 alpha-2 region that phone numbers without a
	// country code are read in; "" means DefaultRegion.
	Region string
	// Now is the clock that dates of birth are aged against; nil means
	// time.Now.
	Now func() time.Time
}

// Detector samples the string columns of a stream and reports what personal
// data each holds. Call Observe with every batch (it stops looking once
// SampleRows rows have been seen) and Findings at the end. A Detector is not
// safe for concurrent use.
type Detector struct {
	opts  DetectOptions
	now   time.Time
	rows  int64
	cols  map[string]*colStats
	order []string
}

// colStats counts what one column's values were recognised as.
type colStats struct {
	hint Type // the kind the column's name suggests, or ""
	// thing is set when the column's name says it names a thing
	// ("product_name"), so its values are never a person's name.
	thing   bool
	sampled int64
	counts  map[Type]int64
	// bareSSN counts nine-digit values that pass the SSN rules; they
	// count as NationalID only if they are most of the column.
	bareSSN int64
	// phones counts valid phone numbers, formatted ones anywhere and bare
	// digit strings only in a column named like a phone column;
	// phoneCand counts the phone-shaped values (see phoneExact).
	phones, phoneCand int64
	// dob counts dates that are plausible birth dates.
	dob int64
	// nameShape counts values shaped like a person's name; knownName
	// counts those whose first word is a common given name.
	nameShape, knownName int64
	// prose counts values that read as sentences; spanned those of them
	// with personal data inside.
	prose, spanned int64
}

// NewDetector returns a Detector configured by opts.
func NewDetector(opts DetectOptions) *Detector {
	if opts.MinRatio <= 0 {
		opts.MinRatio = DefaultMinRatio
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	return &Detector{opts: opts, now: now(), cols: map[string]*colStats{}}
}

// Recognize is the package-level Recognize with the Detector's region.
func (d *Detector) Recognize(v string) (Type, bool) {
	return recognize(strings.TrimSpace(v), d.opts.Region)
}

// Observe examines the string columns of b, up to the sample size. Other
// column types are skipped: personal data stored as numbers or timestamps
// has lost the shape that identifies it.
func (d *Detector) Observe(b *data.Batch) {
	if b == nil || b.Len == 0 {
		return
	}
	n := b.Len
	if d.opts.SampleRows > 0 {
		left := int64(d.opts.SampleRows) - d.rows
		if left <= 0 {
			return
		}
		if int64(n) > left {
			n = int(left)
		}
	}
	d.rows += int64(n)
	for ci := range b.Cols {
		col := &b.Cols[ci]
		if col.Type != data.String {
			continue
		}
		name := b.Schema.Fields[ci].Name
		st := d.cols[name]
		if st == nil {
			hint, thing := nameHint(name)
			st = &colStats{hint: hint, thing: thing, counts: map[Type]int64{}}
			d.cols[name] = st
			d.order = append(d.order, name)
		}
		for i := 0; i < n; i++ {
			if col.IsNull(i) {
				continue
			}
			d.observeValue(st, col.Strings[i])
		}
	}
}

func (d *Detector) observeValue(st *colStats, raw string) {
	v := strings.TrimSpace(raw)
	if v == "" {
		return
	}
	st.sampled++
	if t, ok := recognizeExceptPhone(v); ok {
		st.counts[t]++
		return
	}
	if isFormattedPhone(v) || (st.hint == Phone && phoneChars(v)) {
		st.phoneCand++
		weight := int64(1)
		if st.phoneCand > phoneExact {
			weight = phoneStride
		}
		if weight == 1 || st.phoneCand%phoneStride == 0 {
			if IsPhone(v, d.opts.Region) {
				st.phones += weight
				return
			}
		}
	}
	if isAddressShape(v) {
		st.counts[StreetAddress]++
		return
	}
	switch {
	case len(v) == 9 && IsSSN(v, true):
		st.bareSSN++
		return
	case st.hint == DateOfBirth:
		if d.plausibleBirthDate(v) {
			st.dob++
		}
		return
	}
	if isProse(v) {
		st.prose++
		if len(Spans(v)) > 0 {
			st.spanned++
		}
		return
	}
	if isNameShape(v) {
		st.nameShape++
		if commonGivenName(v) {
			st.knownName++
		}
	}
}

// Findings returns, for every string column observed that holds personal
// data, the kind it most likely holds, in column order.
func (d *Detector) Findings() []Finding {
	var out []Finding
	for _, name := range d.order {
		if f, ok := d.judge(name, d.cols[name]); ok {
			out = append(out, f)
		}
	}
	return out
}

// reliability is how far a match of each kind can be trusted: checksummed
// kinds are rarely matched by chance; shape tests and name hints often are.
var reliability = map[Type]float64{
	CreditCard:    0.99,
	IBAN:          0.99,
	Email:         0.97,
	IPAddress:     0.95,
	NationalID:    0.9,
	Phone:         0.85,
	DateOfBirth:   0.75,
	StreetAddress: 0.6,
	PersonName:    0.55,
	FreeText:      0.7,
}

func (d *Detector) judge(name string, st *colStats) (Finding, bool) {
	if st == nil || st.sampled == 0 {
		return Finding{}, false
	}
	counts := make(map[Type]int64, len(st.counts)+4)
	for t, c := range st.counts {
		counts[t] = c
	}
	rel := func(t Type) float64 { return reliability[t] }
	ratio := func(c int64) float64 { return float64(c) / float64(st.sampled) }
	// Bare nine-digit SSNs count when they dominate the column, or the
	// column is named for them.
	if st.bareSSN > 0 && (ratio(st.bareSSN) >= d.opts.MinRatio || st.hint == NationalID) {
		counts[NationalID] += st.bareSSN
	}
	counts[Phone] += min(st.phones, st.sampled)
	counts[DateOfBirth] += st.dob
	// Names: a column named for names, or values most of which begin with
	// a common given name.
	switch {
	case st.hint == PersonName:
		counts[PersonName] += st.nameShape
	case !st.thing && ratio(st.knownName) >= d.opts.MinRatio:
		counts[PersonName] += st.nameShape
	}
	best, bestScore := Type(""), 0.0
	var bestCount int64
	for _, t := range Types {
		c := counts[t]
		if c == 0 || ratio(c) < d.opts.MinRatio {
			continue
		}
		score := ratio(c) * rel(t)
		if st.hint == t {
			score += 0.05
		}
		if score > bestScore {
			best, bestScore, bestCount = t, score, c
		}
	}
	if best == "" {
		// Free text: sentences with personal data inside. One value is
		// enough to make the column a risk, so the ratio threshold is on
		// the share of prose, not of matches.
		if st.spanned > 0 && ratio(st.prose) >= d.opts.MinRatio {
			r := ratio(st.spanned)
			return Finding{Column: name, Type: FreeText, Matches: st.spanned, Sampled: st.sampled,
				Ratio: round3(r), Confidence: round3(rel(FreeText) * (0.5 + r/2))}, true
		}
		return Finding{}, false
	}
	conf := rel(best) * ratio(bestCount)
	if st.hint == best {
		conf += (1 - conf) * 0.3
	} else if best == PersonName || best == StreetAddress {
		conf *= 0.8
	}
	return Finding{Column: name, Type: best, Matches: bestCount, Sampled: st.sampled,
		Ratio: round3(ratio(bestCount)), Confidence: round3(min(conf, 1))}, true
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// nameHints maps words found in column names to the kind they suggest.
// Words are matched whole, after splitting the name on "_", "-", spaces
// and camelCase, so "username" and "filename" suggest nothing.
var nameHints = map[string]Type{
	"email": Email, "mail": Email, "e-mail": Email,
	"phone": Phone, "mobile": Phone, "tel": Phone, "telephone": Phone, "cell": Phone, "fax": Phone, "msisdn": Phone,
	"name": PersonName, "firstname": PersonName, "lastname": PersonName, "fullname": PersonName,
	"surname": PersonName, "forename": PersonName, "given": PersonName, "family": PersonName,
	"address": StreetAddress, "addr": StreetAddress, "street": StreetAddress,
	"dob": DateOfBirth, "birth": DateOfBirth, "birthdate": DateOfBirth, "birthday": DateOfBirth, "born": DateOfBirth,
	"ssn": NationalID, "nino": NationalID, "sin": NationalID, "national": NationalID, "passport": NationalID,
	"card": CreditCard, "pan": CreditCard, "cc": CreditCard,
	"iban": IBAN,
	"ip":   IPAddress,
}

// nameHint returns the kind a column's name suggests, and whether the name
// says the column names a thing rather than a person ("product_name",
// "file_name", "user_name"). "ip_address" and "email_address" suggest an IP
// address and an email, not a street address.
func nameHint(col string) (hint Type, thing bool) {
	words := splitName(col)
	for _, w := range words {
		t, ok := nameHints[w]
		if !ok {
			continue
		}
		switch {
		case hint == "":
			hint = t
		case hint == StreetAddress && t != StreetAddress:
			hint = t
		}
	}
	for _, w := range words {
		switch w {
		case "product", "file", "user", "company", "host", "domain", "display", "table", "column", "item", "brand", "city", "country", "street", "account", "bank", "event", "app", "service", "team", "org", "sku", "category", "title":
			if hint == PersonName {
				hint = ""
			}
			return hint, true
		}
	}
	return hint, false
}

// splitName splits a column name into lower-case words on non-letters and
// camelCase boundaries.
func splitName(s string) []string {
	var words []string
	var cur []rune
	prevLower := false
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	for _, r := range s {
		switch {
		case unicode.IsUpper(r):
			if prevLower {
				flush()
			}
			cur = append(cur, r)
			prevLower = false
		case unicode.IsLetter(r):
			cur = append(cur, r)
			prevLower = true
		default:
			flush()
			prevLower = false
		}
	}
	flush()
	return words
}

// birthLayouts are the date layouts a birth-date column is read in.
var birthLayouts = []string{"2006-01-02", "2006/01/02", "01/02/2006", "02.01.2006", "2006-01-02T15:04:05Z07:00", "20060102"}

// plausibleBirthDate reports whether v is a date on which someone alive
// could have been born: not in the future and less than 120 years ago.
func (d *Detector) plausibleBirthDate(v string) bool {
	for _, l := range birthLayouts {
		t, err := time.Parse(l, v)
		if err != nil {
			continue
		}
		return !t.After(d.now) && t.After(d.now.AddDate(-120, 0, 0))
	}
	return false
}

// isProse reports whether v reads as a sentence: at least five words and
// twenty characters.
func isProse(v string) bool {
	return len(v) >= 20 && len(strings.Fields(v)) >= 5
}

// isNameShape reports whether v is shaped like a person's name: one to
// four words, each a capitalised run of letters (apostrophes, hyphens and a
// trailing period for initials allowed), no digits.
func isNameShape(v string) bool {
	if len(v) < 2 || len(v) > 80 {
		return false
	}
	words := strings.Fields(v)
	if len(words) == 0 || len(words) > 4 {
		return false
	}
	for _, w := range words {
		r, _ := utf8.DecodeRuneInString(w)
		if !unicode.IsUpper(r) {
			return false
		}
		for _, c := range w {
			if !(unicode.IsLetter(c) || c == '\'' || c == '-' || c == '.') {
				return false
			}
		}
	}
	return true
}

// commonGivenName reports whether v's first word is among the most common
// given names in English-speaking countries. It lets a column of full names
// be found without a telling column name; it is deliberately a short list,
// and names outside it are found only through the column's name.
func commonGivenName(v string) bool {
	first, _, _ := strings.Cut(v, " ")
	return givenNames[strings.ToLower(first)]
}
