package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/data"
	"github.com/sluicehq/sluice/internal/privacy"
)

// example is one labelled value of the evaluation set. Label is the kind
// the value is, or "" for a value that must not be recognised as anything.
type example struct {
	Value    string
	Label    privacy.Type
	Category string
}

// seed fixes the evaluation set: the same examples every run.
const seed = 20240115

// perCategory is the number of examples generated per category.
const perCategory = 300

// generate builds the labelled evaluation set deterministically.
func generate() []example {
	r := rand.New(rand.NewPCG(seed, seed))
	var out []example
	add := func(cat string, label privacy.Type, gen func() string) {
		for range perCategory {
			out = append(out, example{Value: gen(), Label: label, Category: cat})
		}
	}
	// Positives.
	add("card", privacy.CreditCard, func() string { return formatCard(r, validCard(r)) })
	add("iban", privacy.IBAN, func() string { return formatIBAN(r, validIBAN(r)) })
	add("ssn", privacy.NationalID, func() string { return validSSN(r) })
	add("email", privacy.Email, func() string { return email(r) })
	add("phone", privacy.Phone, func() string { return phone(r) })
	add("ipv4", privacy.IPAddress, func() string { return ipv4(r) })
	add("ipv6", privacy.IPAddress, func() string { return ipv6(r) })
	// Invalid variants of the checksummed and rule-bound kinds.
	add("card, Luhn fails", "", func() string { return formatCard(r, breakLuhn(r, validCard(r))) })
	add("iban, bad checksum", "", func() string { return formatIBAN(r, breakIBAN(r, validIBAN(r))) })
	add("ssn, invalid area/group/serial", "", func() string { return invalidSSN(r) })
	add("email, malformed", "", func() string { return badEmail(r) })
	add("phone, unallocated area code", "", func() string { return badPhone(r) })
	add("ipv4, octet out of range", "", func() string { return badIPv4(r) })
	// Look-alikes.
	add("order number", "", func() string { return orderNumber(r) })
	add("timestamp", "", func() string { return timestamp(r) })
	add("version string", "", func() string { return version(r) })
	add("isbn", "", func() string { return isbn(r) })
	add("tracking number", "", func() string { return tracking(r) })
	add("uuid", "", func() string { return uuid(r) })
	add("price", "", func() string { return price(r) })
	// Sixteen random digits: one in ten passes Luhn by chance, and about
	// half start with a card prefix, so a few are read as card numbers.
	// Only the column-level view (a column where such matches are rare)
	// can tell them apart.
	add("16-digit reference number", "", func() string {
		b := make([]byte, 16)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		return string(b)
	})
	return out
}

// ---- cards ----

var cardPrefixes = []struct {
	prefix string
	length int
}{
	{"4", 16}, {"4", 13}, {"4", 19}, {"51", 16}, {"53", 16}, {"55", 16}, {"2221", 16}, {"2720", 16},
	{"34", 15}, {"37", 15}, {"6011", 16}, {"65", 16}, {"3528", 16}, {"3589", 16}, {"36", 14}, {"62", 16},
}

func validCard(r *rand.Rand) string {
	p := cardPrefixes[r.IntN(len(cardPrefixes))]
	b := []byte(p.prefix)
	for len(b) < p.length-1 {
		b = append(b, byte('0'+r.IntN(10)))
	}
	return string(append(b, luhnDigit(b)))
}

// luhnDigit is the check digit that makes body+digit pass Luhn.
func luhnDigit(body []byte) byte {
	sum := 0
	double := true
	for i := len(body) - 1; i >= 0; i-- {
		x := int(body[i] - '0')
		if double {
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}

func breakLuhn(r *rand.Rand, card string) string {
	b := []byte(card)
	last := b[len(b)-1]
	b[len(b)-1] = byte('0' + (int(last-'0')+1+r.IntN(9))%10)
	return string(b)
}

func formatCard(r *rand.Rand, card string) string {
	switch r.IntN(3) {
	case 0:
		return card
	default:
		sep := " "
		if r.IntN(2) == 0 {
			sep = "-"
		}
		return group(card, 4, sep)
	}
}

func group(s string, n int, sep string) string {
	var parts []string
	for len(s) > n {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(append(parts, s), sep)
}

// ---- IBANs ----

var ibanCountries = []struct {
	cc     string
	length int
	alpha  bool // some BBAN characters are letters (a bank code)
}{
	{"DE", 22, false}, {"FR", 27, false}, {"ES", 24, false}, {"IT", 27, true}, {"NL", 18, true},
	{"GB", 22, true}, {"BE", 16, false}, {"CH", 21, false}, {"AT", 20, false}, {"PL", 28, false},
	{"SE", 24, false}, {"NO", 15, false}, {"PT", 25, false}, {"IE", 22, true},
}

func validIBAN(r *rand.Rand) string {
	c := ibanCountries[r.IntN(len(ibanCountries))]
	bban := make([]byte, c.length-4)
	for i := range bban {
		if c.alpha && i < 4 {
			bban[i] = byte('A' + r.IntN(26))
			continue
		}
		bban[i] = byte('0' + r.IntN(10))
	}
	check := 98 - mod97(string(bban)+c.cc+"00")
	return fmt.Sprintf("%s%02d%s", c.cc, check, bban)
}

func mod97(s string) int {
	rem := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			rem = (rem*10 + int(c-'0')) % 97
		} else {
			rem = (rem*100 + int(c-'A') + 10) % 97
		}
	}
	return rem
}

// breakIBAN changes one BBAN digit: the check digits then fail (mod 97
// catches every single-digit error).
func breakIBAN(r *rand.Rand, iban string) string {
	b := []byte(iban)
	for {
		i := 4 + r.IntN(len(b)-4)
		if b[i] >= '0' && b[i] <= '9' {
			b[i] = byte('0' + (int(b[i]-'0')+1+r.IntN(9))%10)
			return string(b)
		}
	}
}

func formatIBAN(r *rand.Rand, iban string) string {
	if r.IntN(2) == 0 {
		return iban
	}
	return group(iban, 4, " ")
}

// ---- SSNs ----

func validSSN(r *rand.Rand) string {
	area := 1 + r.IntN(899)
	if area == 666 {
		area = 665
	}
	return fmt.Sprintf("%03d-%02d-%04d", area, 1+r.IntN(99), 1+r.IntN(9999))
}

func invalidSSN(r *rand.Rand) string {
	area, grp, serial := 1+r.IntN(665), 1+r.IntN(99), 1+r.IntN(9999)
	switch r.IntN(5) {
	case 0:
		area = 0
	case 1:
		area = 666
	case 2:
		area = 900 + r.IntN(100)
	case 3:
		grp = 0
	default:
		serial = 0
	}
	return fmt.Sprintf("%03d-%02d-%04d", area, grp, serial)
}

// ---- emails ----

var (
	firstNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "oscar", "peggy", "trent", "victor", "walter", "zoe", "li", "sam", "ana"}
	lastNames  = []string{"smith", "jones", "garcia", "muller", "rossi", "kowalski", "nguyen", "okafor", "tanaka", "silva", "dubois", "olsen"}
	domains    = []string{"example.com", "mail.example.org", "corp.example.net", "example.co.uk", "uni.example.edu", "example.de", "startup.example.io", "xn--bcher-kva.example"}
)

func email(r *rand.Rand) string {
	f, l := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	var local string
	switch r.IntN(5) {
	case 0:
		local = f + "." + l
	case 1:
		local = f[:1] + l + strconv.Itoa(r.IntN(100))
	case 2:
		local = f + "+" + []string{"news", "shop", "work"}[r.IntN(3)]
	case 3:
		local = f + "_" + l
	default:
		local = strings.ToUpper(f[:1]) + f[1:] + "." + strings.ToUpper(l[:1]) + l[1:]
	}
	return local + "@" + domains[r.IntN(len(domains))]
}

func badEmail(r *rand.Rand) string {
	f, l := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	switch r.IntN(6) {
	case 0:
		return f + "@localhost"
	case 1:
		return f + "." + l + ".example.com"
	case 2:
		return f + ".." + l + "@example.com"
	case 3:
		return "@example.com"
	case 4:
		return f + "@example.c0m"
	default:
		return f + " " + l + "@example.com"
	}
}

// ---- phones ----

// usAreaCodes are allocated US area codes.
var usAreaCodes = []int{201, 202, 206, 212, 213, 214, 303, 305, 312, 404, 415, 503, 512, 602, 617, 646, 702, 713, 718, 808, 917}

func usNumber(r *rand.Rand, area int) (a, e, n string) {
	exch := 200 + r.IntN(800)
	if exch%100 == 11 || exch == 555 { // N11 service codes and 555 are not line numbers
		exch++
	}
	return strconv.Itoa(area), strconv.Itoa(exch), fmt.Sprintf("%04d", r.IntN(10000))
}

func phone(r *rand.Rand) string {
	a, e, n := usNumber(r, usAreaCodes[r.IntN(len(usAreaCodes))])
	switch r.IntN(7) {
	case 0:
		return "(" + a + ") " + e + "-" + n
	case 1:
		return a + "-" + e + "-" + n
	case 2:
		return "+1 " + a + " " + e + " " + n
	case 3:
		return a + "." + e + "." + n
	case 4:
		return "+1" + a + e + n
	case 5:
		return fmt.Sprintf("+44 20 7%03d %04d", r.IntN(1000), r.IntN(10000))
	default:
		return fmt.Sprintf("+33 6 %02d %02d %02d %02d", 10+r.IntN(59), r.IntN(100), r.IntN(100), r.IntN(100)) // 06 10 to 06 68: allocated mobiles
	}
}

func badPhone(r *rand.Rand) string {
	// Area codes starting 0 or 1 are never allocated in the NANP.
	a, e, n := usNumber(r, 100+r.IntN(100))
	if r.IntN(2) == 0 {
		a = "0" + a[1:]
	}
	return "(" + a + ") " + e + "-" + n
}

// ---- IPs ----

func ipv4(r *rand.Rand) string {
	return fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(254), r.IntN(256), r.IntN(256), 1+r.IntN(254))
}

func ipv6(r *rand.Rand) string {
	var b [16]byte
	b[0], b[1] = 0x20, 0x01
	for i := 2; i < 16; i++ {
		if r.IntN(3) > 0 {
			b[i] = byte(r.IntN(256))
		}
	}
	return netip.AddrFrom16(b).String()
}

func badIPv4(r *rand.Rand) string {
	return fmt.Sprintf("%d.%d.%d.%d", 256+r.IntN(700), r.IntN(256), r.IntN(256), r.IntN(256))
}

// ---- look-alikes ----

func orderNumber(r *rand.Rand) string {
	switch r.IntN(5) {
	case 0:
		return fmt.Sprintf("ORD-%d-%06d", 2020+r.IntN(6), r.IntN(1000000))
	case 1:
		return fmt.Sprintf("#%d", 100000+r.IntN(900000))
	case 2:
		return fmt.Sprintf("%010d", r.Int64N(10000000000)) // bare ten digits
	case 3:
		return fmt.Sprintf("PO-%05d", r.IntN(100000))
	default:
		return fmt.Sprintf("%03d-%07d-%07d", r.IntN(1000), r.IntN(10000000), r.IntN(10000000)) // marketplace style
	}
}

func timestamp(r *rand.Rand) string {
	y, mo, d, h, mi, s := 2000+r.IntN(26), 1+r.IntN(12), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60)
	switch r.IntN(5) {
	case 0:
		return fmt.Sprintf("%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, s)
	case 1:
		return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", y, mo, d, h, mi, s)
	case 2:
		return strconv.FormatInt(946684800+r.Int64N(820000000), 10) // unix seconds
	case 3:
		return fmt.Sprintf("%02d/%02d/%04d %02d:%02d", d, mo, y, h, mi)
	default:
		return fmt.Sprintf("%04d-%02d-%02d", y, mo, d)
	}
}

func version(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return fmt.Sprintf("%d.%d.%d", r.IntN(20), r.IntN(40), r.IntN(200))
	case 1:
		return fmt.Sprintf("v%d.%d.%d", r.IntN(5), r.IntN(30), r.IntN(50))
	case 2:
		return fmt.Sprintf("%d.%d.%d-rc.%d", r.IntN(5), r.IntN(30), r.IntN(50), r.IntN(5))
	default:
		// Four-part build numbers (Windows, .NET assemblies); those whose
		// parts all fit in a byte are indistinguishable from IPv4.
		return fmt.Sprintf("%d.%d.%d.%d", r.IntN(12), r.IntN(10), r.IntN(300), r.IntN(2000))
	}
}

func isbn(r *rand.Rand) string {
	b := []byte("978")
	if r.IntN(4) == 0 {
		b = []byte("979")
	}
	for len(b) < 12 {
		b = append(b, byte('0'+r.IntN(10)))
	}
	sum := 0
	for i, c := range b {
		w := 1
		if i%2 == 1 {
			w = 3
		}
		sum += w * int(c-'0')
	}
	s := string(append(b, byte('0'+(10-sum%10)%10)))
	if r.IntN(2) == 0 {
		return s
	}
	return s[:3] + "-" + s[3:4] + "-" + s[4:6] + "-" + s[6:12] + "-" + s[12:]
}

func tracking(r *rand.Rand) string {
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + r.IntN(10))
		}
		return string(b)
	}
	switch r.IntN(3) {
	case 0:
		return "1Z" + strings.ToUpper(strconv.FormatInt(r.Int64N(1<<40), 36)) + digits(6) // UPS
	case 1:
		return digits(12) // FedEx
	default:
		return "9400" + digits(18) // USPS
	}
}

func uuid(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func price(r *rand.Rand) string {
	whole, cents := r.IntN(100000), r.IntN(100)
	switch r.IntN(4) {
	case 0:
		return fmt.Sprintf("$%d.%02d", whole, cents)
	case 1:
		return fmt.Sprintf("€%d,%02d", whole, cents)
	case 2:
		return fmt.Sprintf("%d.%02d", whole, cents)
	default:
		return fmt.Sprintf("USD %d.%02d", whole, cents)
	}
}

// ---- scoring ----

// score is the confusion counts of one kind.
type score struct {
	Type              privacy.Type
	Positives, TP, FP int
	Precision, Recall float64
}

// result is the evaluation of the whole set.
type result struct {
	Scores []score
	// Confusions counts, per category, values recognised as a kind other
	// than their label.
	Confusions map[string]map[privacy.Type]int
}

func evaluate(set []example) result {
	byType := map[privacy.Type]*score{}
	get := func(t privacy.Type) *score {
		if byType[t] == nil {
			byType[t] = &score{Type: t}
		}
		return byType[t]
	}
	res := result{Confusions: map[string]map[privacy.Type]int{}}
	for _, ex := range set {
		got, ok := privacy.Recognize(ex.Value)
		if ex.Label != "" {
			get(ex.Label).Positives++
		}
		switch {
		case ok && got == ex.Label:
			get(got).TP++
		case ok:
			get(got).FP++
			if res.Confusions[ex.Category] == nil {
				res.Confusions[ex.Category] = map[privacy.Type]int{}
			}
			res.Confusions[ex.Category][got]++
		}
	}
	for _, t := range privacy.Types {
		s, ok := byType[t]
		if !ok {
			continue
		}
		s.Precision, s.Recall = 1, 1
		if s.TP+s.FP > 0 {
			s.Precision = float64(s.TP) / float64(s.TP+s.FP)
		}
		if s.Positives > 0 {
			s.Recall = float64(s.TP) / float64(s.Positives)
		}
		res.Scores = append(res.Scores, *s)
	}
	return res
}

// writeTable renders the result as Markdown.
func writeTable(w io.Writer, set []example, res result) {
	fmt.Fprintf(w, "%d labelled values (%d per category), seed %d\n\n", len(set), perCategory, seed)
	fmt.Fprintln(w, "| type | positives | true pos. | false pos. | precision | recall |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, s := range res.Scores {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %.3f | %.3f |\n", s.Type, s.Positives, s.TP, s.FP, s.Precision, s.Recall)
	}
	if len(res.Confusions) == 0 {
		return
	}
	fmt.Fprint(w, "\nFalse recognitions by category:\n\n")
	fmt.Fprintln(w, "| category | recognised as | count |")
	fmt.Fprintln(w, "|---|---|---:|")
	cats := make([]string, 0, len(res.Confusions))
	for c := range res.Confusions {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for _, c := range cats {
		for _, t := range privacy.Types {
			if n := res.Confusions[c][t]; n > 0 {
				fmt.Fprintf(w, "| %s | %s | %d |\n", c, t, n)
			}
		}
	}
}

// columnResult is what the Detector concluded about a column holding the
// values of one category.
type columnResult struct {
	Category string
	Want     privacy.Type // "" = no finding expected
	Got      privacy.Type // "" = no finding
	Ratio    float64
}

// evaluateColumns runs the Detector over one column per category, named
// neutrally ("value") so that only the values speak.
func evaluateColumns(set []example) []columnResult {
	var order []string
	byCat := map[string][]example{}
	for _, ex := range set {
		if _, ok := byCat[ex.Category]; !ok {
			order = append(order, ex.Category)
		}
		byCat[ex.Category] = append(byCat[ex.Category], ex)
	}
	schema := data.MustSchema(data.Field{Name: "value", Type: data.String})
	var out []columnResult
	for _, cat := range order {
		exs := byCat[cat]
		b := data.NewBatch(schema, len(exs))
		for _, ex := range exs {
			b.Cols[0].Strings = append(b.Cols[0].Strings, ex.Value)
		}
		b.Len = len(exs)
		d := privacy.NewDetector(privacy.DetectOptions{})
		d.Observe(b)
		res := columnResult{Category: cat, Want: exs[0].Label}
		if fs := d.Findings(); len(fs) > 0 {
			res.Got, res.Ratio = fs[0].Type, fs[0].Ratio
		}
		out = append(out, res)
	}
	return out
}

func writeColumns(w io.Writer, cols []columnResult) {
	fmt.Fprint(w, "\nColumn level (one column per category, named \"value\", default MinRatio 0.5):\n\n")
	fmt.Fprintln(w, "| category | expected | detected | ratio |")
	fmt.Fprintln(w, "|---|---|---|---:|")
	dash := func(t privacy.Type) string {
		if t == "" {
			return "-"
		}
		return string(t)
	}
	for _, c := range cols {
		fmt.Fprintf(w, "| %s | %s | %s | %.3f |\n", c.Category, dash(c.Want), dash(c.Got), c.Ratio)
	}
}
