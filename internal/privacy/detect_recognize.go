package privacy

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
)

// DefaultRegion is the region that phone numbers without a country code are
// read in when no other region is configured.
const DefaultRegion = "US"

// Recognize reports the kind of personal data a single value is, with phone
// numbers read in DefaultRegion. It looks only at the value: kinds that need
// a column's context (bare nine-digit social security numbers, names,
// addresses without a recognisable shape, dates of birth) are left to the
// Detector, which sees the column's name and its other values.
func Recognize(v string) (Type, bool) {
	return recognize(strings.TrimSpace(v), DefaultRegion)
}

// recognize tries the recognisers from the most to the least specific, so
// that a value that passes a checksum is never reported as something
// vaguer.
func recognize(v, region string) (Type, bool) {
	if t, ok := recognizeExceptPhone(v); ok {
		return t, true
	}
	if isFormattedPhone(v) && IsPhone(v, region) {
		return Phone, true
	}
	if isAddressShape(v) {
		return StreetAddress, true
	}
	return "", false
}

// recognizeExceptPhone runs the recognisers that are cheap: all but the
// phone number parser, and the address shape test that is tried after it.
func recognizeExceptPhone(v string) (Type, bool) {
	if v == "" || len(v) > 320 {
		return "", false
	}
	switch {
	case IsEmail(v):
		return Email, true
	case IsCreditCard(v):
		return CreditCard, true
	case IsIBAN(v):
		return IBAN, true
	case IsSSN(v, false) || IsNINO(v):
		return NationalID, true
	case IsIP(v):
		return IPAddress, true
	}
	return "", false
}

// ---- email ----

// IsEmail reports whether v is shaped like an RFC 5322 address: a dot-atom
// local part of at most 64 bytes, "@", and a domain of at least two
// dot-separated labels (letters, digits, inner hyphens) ending in an
// alphabetic top-level domain. Quoted local parts and address literals are
// legal but so rare in data that they are not recognised.
func IsEmail(v string) bool {
	if len(v) > 254 {
		return false
	}
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at > 64 || at == len(v)-1 {
		return false
	}
	return isDotAtom(v[:at]) && isDomain(v[at+1:])
}

func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+/=?^_`{|}~-", c) >= 0
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if s[i-1] == '.' {
				return false
			}
			continue
		}
		if !isAtext(c) {
			return false
		}
	}
	return true
}

func isDomain(s string) bool {
	if len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(isASCIILetter(c) || isASCIIDigit(c) || c == '-') {
				return false
			}
		}
	}
	tld := labels[len(labels)-1]
	if strings.HasPrefix(strings.ToLower(tld), "xn--") {
		return true
	}
	if len(tld) < 2 {
		return false
	}
	for i := 0; i < len(tld); i++ {
		if !isASCIILetter(tld[i]) {
			return false
		}
	}
	return true
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isASCIIDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isASCIIUpper(c byte) bool  { return 'A' <= c && c <= 'Z' }

// ---- payment cards ----

// IsCreditCard reports whether v is a payment card number: 13 to 19 digits,
// optionally grouped with single spaces or dashes, starting with an issuer
// identification prefix of a major scheme at a length that scheme issues,
// and passing the Luhn check. A random number of the right length and
// prefix still passes Luhn one time in ten, which is why the Detector
// judges a column by the share of its values that pass.
func IsCreditCard(v string) bool {
	var d [19]byte
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case isASCIIDigit(c):
			if n == len(d) {
				return false
			}
			d[n] = c
			n++
		case c == ' ' || c == '-':
			// A separator must sit between digits, and only one at a time.
			if i == 0 || i == len(v)-1 || !isASCIIDigit(v[i-1]) || !isASCIIDigit(v[i+1]) {
				return false
			}
		default:
			return false
		}
	}
	if n < 13 || !cardGroupsOK(v, n) {
		return false
	}
	digits := d[:n]
	return cardPrefixOK(digits) && luhn(digits)
}

// cardGroupsOK checks how a grouped number is grouped: cards are printed in
// groups of four (the last group shorter on 13- and 19-digit cards), or
// 4-6-5 and 4-6-4 on American Express and Diners Club cards. Other
// groupings ("123-4567890-1234567") are order or reference numbers.
func cardGroupsOK(v string, n int) bool {
	groups := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '-' })
	if len(groups) == 1 {
		return true
	}
	if len(groups) == 3 && len(groups[0]) == 4 && len(groups[1]) == 6 && (len(groups[2]) == 5 || len(groups[2]) == 4) {
		return true
	}
	for i, g := range groups {
		if i < len(groups)-1 && len(g) != 4 || len(g) > 4 {
			return false
		}
	}
	return n > 0
}

// cardPrefixOK checks the issuer prefix against the lengths its scheme uses.
func cardPrefixOK(d []byte) bool {
	n := len(d)
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p3 := p2*10 + int(d[2]-'0')
	p4 := p3*10 + int(d[3]-'0')
	p6 := p4*100 + int(d[4]-'0')*10 + int(d[5]-'0')
	switch {
	case d[0] == '4': // Visa
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34 || p2 == 37: // American Express
		return n == 15
	case p4 == 6011, p3 >= 644 && p3 <= 649, p2 == 65, p6 >= 622126 && p6 <= 622925: // Discover
		return n >= 16 && n <= 19
	case p2 == 62: // UnionPay
		return n >= 16 && n <= 19
	case p4 >= 3528 && p4 <= 3589: // JCB
		return n >= 16 && n <= 19
	case p3 >= 300 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return n >= 14 && n <= 19
	case p2 == 50, p2 >= 56 && p2 <= 69: // Maestro
		return n >= 13 && n <= 19
	}
	return false
}

func luhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		x := int(d[i] - '0')
		if double {
			x *= 2
			if x > 9 {
				x -= 9
			}
		}
		sum += x
		double = !double
	}
	return sum%10 == 0
}

// ---- IBAN ----

// ibanLengths is the length of an IBAN per country (ISO 13616 registry).
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
	"BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
	"DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
	"GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
	"IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
	"ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
	"PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
	"SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
	"TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// IsIBAN reports whether v is an International Bank Account Number: a
// known country code, the length that country uses, and a valid ISO 13616
// mod-97 check. Letters must be upper case (as IBANs are printed); single
// spaces may group the characters, as on paper.
func IsIBAN(v string) bool {
	var buf [34]byte
	n := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if i == 0 || i == len(v)-1 || v[i-1] == ' ' {
				return false
			}
			continue
		}
		if !(isASCIIUpper(c) || isASCIIDigit(c)) || n == len(buf) {
			return false
		}
		buf[n] = c
		n++
	}
	return ibanOK(buf[:n])
}

func ibanOK(s []byte) bool {
	if len(s) < 15 || !isASCIIUpper(s[0]) || !isASCIIUpper(s[1]) || !isASCIIDigit(s[2]) || !isASCIIDigit(s[3]) {
		return false
	}
	if want, ok := ibanLengths[string(s[:2])]; !ok || want != len(s) {
		return false
	}
	// Move the first four characters to the end, turn letters into
	// 10..35, and take the number mod 97 digit by digit.
	rem := 0
	add := func(c byte) {
		if isASCIIDigit(c) {
			rem = (rem*10 + int(c-'0')) % 97
			return
		}
		x := int(c-'A') + 10
		rem = (rem*100 + x) % 97
	}
	for _, c := range s[4:] {
		add(c)
	}
	for _, c := range s[:4] {
		add(c)
	}
	return rem == 1
}

// ---- national identifiers ----

// IsSSN reports whether v is a US social security number as the SSA issues
// them: area not 000, 666 or 900-999; group not 00; serial not 0000. With
// bare false, only the dashed form NNN-NN-NNNN is accepted; with bare true
// nine digits without dashes are accepted too, which the Detector allows
// only when most of a column looks that way, since nine-digit numbers are
// common in other roles.
func IsSSN(v string, bare bool) bool {
	var d [9]byte
	switch {
	case len(v) == 11 && v[3] == '-' && v[6] == '-':
		copy(d[:3], v[:3])
		copy(d[3:5], v[4:6])
		copy(d[5:], v[7:])
	case bare && len(v) == 9:
		copy(d[:], v)
	default:
		return false
	}
	for _, c := range d {
		if !isASCIIDigit(c) {
			return false
		}
	}
	area := string(d[:3])
	if area == "000" || area == "666" || d[0] == '9' {
		return false
	}
	return string(d[3:5]) != "00" && string(d[5:]) != "0000"
}

// IsNINO reports whether v is shaped like a UK National Insurance number:
// two prefix letters (D, F, I, Q, U, V never; O not second; BG, GB, KN, NK,
// NT, TN and ZZ never allocated), six digits, and a suffix A to D, with
// optional single spaces between pairs. There is no checksum, so this is a
// shape test only.
func IsNINO(v string) bool {
	var b [9]byte
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			continue
		}
		if n == len(b) {
			return false
		}
		b[n] = v[i]
		n++
	}
	if n != 9 {
		return false
	}
	p1, p2 := b[0], b[1]
	if !isASCIIUpper(p1) || !isASCIIUpper(p2) || strings.IndexByte("DFIQUV", p1) >= 0 || strings.IndexByte("DFIQUVO", p2) >= 0 {
		return false
	}
	switch string(b[:2]) {
	case "BG", "GB", "KN", "NK", "NT", "TN", "ZZ":
		return false
	}
	for _, c := range b[2:8] {
		if !isASCIIDigit(c) {
			return false
		}
	}
	return b[8] >= 'A' && b[8] <= 'D'
}

// ---- IP addresses ----

// IsIP reports whether v is an IPv4 address in dotted-quad form or an IPv6
// address (without a zone), as net/netip reads them.
func IsIP(v string) bool {
	if len(v) < 7 || len(v) > 45 {
		return false
	}
	hasSep := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '.' || c == ':':
			hasSep = true
		case isASCIIDigit(c), 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	if !hasSep {
		return false
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Zone() != "" {
		return false
	}
	if a.Is6() && !a.Is4In6() {
		// A bare "::" or a handful of colons is more often a separator
		// than an address.
		return strings.Count(v, ":") >= 2 && len(v) >= 7
	}
	return true
}

// ---- phone numbers ----

// CheckRegion returns an error unless region is a region phone numbers can
// be read in (an ISO 3166 alpha-2 code libphonenumber knows, such as "US").
func CheckRegion(region string) error {
	if phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return fmt.Errorf("unknown phone region %q (want an ISO 3166 alpha-2 code such as US or GB)", region)
	}
	return nil
}

// IsPhone reports whether v is a valid phone number, read in region (an
// ISO 3166 alpha-2 code such as "US") unless it carries a "+" country
// code. Validity is libphonenumber's: the number's length and prefix match
// an allocated range of its country.
func IsPhone(v, region string) bool {
	_, ok := NormalizePhone(v, region)
	return ok
}

// NormalizePhone returns v in E.164 form ("+14155552671") if it is a valid
// phone number read in region.
func NormalizePhone(v, region string) (string, bool) {
	if !phoneChars(v) {
		return "", false
	}
	num, err := phonenumbers.Parse(v, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", false
	}
	return phonenumbers.Format(num, phonenumbers.E164), true
}

// phoneChars is a cheap filter run before the phone number parser: 7 to 15
// digits, and nothing but digits, spaces, ".", "-", "(", ")" and a leading
// "+". It keeps the parser from reading letters as a vanity number.
func phoneChars(v string) bool {
	if len(v) < 7 || len(v) > 32 {
		return false
	}
	digits := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case isASCIIDigit(c):
			digits++
		case c == '+':
			if i != 0 {
				return false
			}
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return false
		}
	}
	return digits >= 7 && digits <= 15
}

// isFormattedPhone reports whether v is written as phone numbers are: with
// a "+" country code or with separators between digit groups. Bare digit
// strings are phone numbers only in a column that says so.
func isFormattedPhone(v string) bool {
	if !phoneChars(v) {
		return false
	}
	if v[0] == '+' {
		return true
	}
	if isISODateLike(v) || !dotGroupsOK(v) {
		return false
	}
	groups := 0
	inDigits := false
	for i := 0; i < len(v); i++ {
		if isASCIIDigit(v[i]) {
			if !inDigits {
				groups++
			}
			inDigits = true
		} else {
			inDigits = false
		}
	}
	return groups >= 2
}

// dotGroupsOK rejects dotted values that read as something other than a
// phone number: a group of one digit ("1.20.3456", a version) or four short
// groups ("300.1.2.3", an IPv4 address out of range). Phone numbers written
// with dots use groups of two to four digits: "202.456.1111".
func dotGroupsOK(v string) bool {
	if strings.IndexByte(v, '.') < 0 {
		return true
	}
	groups := strings.FieldsFunc(strings.TrimPrefix(v, "+"), func(r rune) bool { return r == '.' || r == ' ' })
	short := 0
	for _, g := range groups {
		if len(g) < 2 {
			return false
		}
		if len(g) <= 3 {
			short++
		}
	}
	return !(len(groups) == 4 && short == 4)
}

// isISODateLike rejects "2024-01-15" and "2024.01.15", which have a
// phone's characters but a date's shape.
func isISODateLike(v string) bool {
	if len(v) != 10 || (v[4] != '-' && v[4] != '.') || v[7] != v[4] {
		return false
	}
	_, err := time.Parse("2006-01-02", v[:4]+"-"+v[5:7]+"-"+v[8:])
	return err == nil
}

// ---- street addresses ----

// streetSuffixes are the words that end the street part of an address.
var streetSuffixes = map[string]bool{
	"street": true, "st": true, "avenue": true, "ave": true, "av": true, "road": true, "rd": true,
	"boulevard": true, "blvd": true, "lane": true, "ln": true, "drive": true, "dr": true,
	"court": true, "ct": true, "way": true, "place": true, "pl": true, "terrace": true,
	"ter": true, "circle": true, "cir": true, "highway": true, "hwy": true, "parkway": true,
	"pkwy": true, "square": true, "sq": true, "trail": true, "trl": true, "close": true,
	"crescent": true, "row": true, "gardens": true, "grove": true, "mews": true,
}

// isAddressShape reports whether v looks like a street address: a house
// number (digits, optionally with one letter: "12B") followed by words one
// of which is a street suffix ("221B Baker Street", "1600 Pennsylvania Ave
// NW, Washington"). There is no register to check against, so this is a
// shape test: it misses addresses written differently and can match a
// sentence that happens to start that way.
func isAddressShape(v string) bool {
	if len(v) < 8 || len(v) > 200 || !isASCIIDigit(v[0]) {
		return false
	}
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' })
	if len(fields) < 3 {
		return false
	}
	num := fields[0]
	digits := 0
	for i := 0; i < len(num); i++ {
		switch {
		case isASCIIDigit(num[i]):
			digits++
		case i == len(num)-1 && isASCIILetter(num[i]):
		case num[i] == '-' && i > 0:
		default:
			return false
		}
	}
	if digits == 0 || digits > 6 {
		return false
	}
	limit := min(len(fields), 8)
	for _, f := range fields[2:limit] {
		w := strings.ToLower(strings.TrimSuffix(f, "."))
		if streetSuffixes[w] {
			return true
		}
	}
	return false
}
