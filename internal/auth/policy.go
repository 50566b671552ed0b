package auth

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Password length bounds, in characters. 12 follows NIST SP 800-63B and
// OWASP for accounts without a second factor; the upper bound keeps a
// login from hashing megabytes while leaving room for passphrases.
const (
	MinPasswordLength = 12
	MaxPasswordLength = 256
)

//go:embed common_passwords.txt
var commonPasswordsFile string

// commonPasswords parses the embedded list once. It is read-only after
// that; sync.OnceValue keeps it out of package initialisation.
var commonPasswords = sync.OnceValue(func() map[string]bool {
	m := make(map[string]bool)
	for line := range strings.Lines(commonPasswordsFile) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m[line] = true
	}
	return m
})

// sequences are runs people type instead of choosing: a password that is a
// piece of one (or of its reverse) is refused.
var sequences = []string{
	strings.Repeat("0123456789", 30),
	"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
	"qwertyuiopasdfghjklzxcvbnm",
	"qwertzuiopasdfghjklyxcvbnm",
	"azertyuiopqsdfghjklmwxcvbn",
	"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
	"qazwsxedcrfvtgbyhnujmikolp",
	"1q2w3e4r5t6y7u8i9o0p",
}

var leet = strings.NewReplacer("@", "a", "4", "a", "0", "o", "$", "s", "5", "s", "3", "e", "1", "i", "!", "i", "7", "t")

// CheckPassword applies the password policy to password for the account
// username. The error wraps ErrWeakPassword and says what is wrong in words
// a user can act on.
//
// The policy (NIST SP 800-63B, ASVS 2.1): 12 to 256 characters, any
// characters allowed and no composition rules; not the username nor
// containing it; not a common password, nor one built from a common
// password by case, letter substitutions, or digits and symbols before or
// after; not a keyboard or alphabet sequence; at least 5 distinct
// characters.
func CheckPassword(password, username string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case !utf8.ValidString(password):
		return fmt.Errorf("%w: it is not valid UTF-8", ErrWeakPassword)
	case n < MinPasswordLength:
		return fmt.Errorf("%w: it must be at least %d characters long (it has %d)", ErrWeakPassword, MinPasswordLength, n)
	case n > MaxPasswordLength:
		return fmt.Errorf("%w: it must be at most %d characters long", ErrWeakPassword, MaxPasswordLength)
	}
	lower := strings.ToLower(password)
	if username != "" && strings.Contains(lower, strings.ToLower(username)) {
		return fmt.Errorf("%w: it must not contain the username", ErrWeakPassword)
	}
	distinct := map[rune]bool{}
	for _, r := range lower {
		distinct[r] = true
	}
	if len(distinct) < 5 {
		return fmt.Errorf("%w: it uses only %d distinct characters; use at least 5", ErrWeakPassword, len(distinct))
	}
	for _, seq := range sequences {
		if strings.Contains(seq, lower) || strings.Contains(reverse(seq), lower) {
			return fmt.Errorf("%w: it is a keyboard or alphabet sequence", ErrWeakPassword)
		}
	}
	common := commonPasswords()
	if common[lower] || common[strings.Join(strings.Fields(lower), "")] {
		return fmt.Errorf("%w: it is on the list of commonly used passwords", ErrWeakPassword)
	}
	base := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	for _, b := range []string{base, leet.Replace(base), leet.Replace(lower)} {
		b = strings.TrimFunc(b, func(r rune) bool { return !unicode.IsLetter(r) })
		if b != "" && (common[b] || repeatsCommon(b, common)) {
			return fmt.Errorf("%w: it is a commonly used password with characters added or substituted", ErrWeakPassword)
		}
	}
	return nil
}

// repeatsCommon reports whether s is a common password written twice or
// more ("passwordpassword").
func repeatsCommon(s string, common map[string]bool) bool {
	for d := 1; d <= len(s)/2; d++ {
		if len(s)%d == 0 && common[s[:d]] && strings.Repeat(s[:d], len(s)/d) == s {
			return true
		}
	}
	return false
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
