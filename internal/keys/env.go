package keys

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"
)

// EnvVar is the environment variable the environment KEK source reads: the
// standard base64 of a Tink JSON keyset of AEAD keys.
const EnvVar = "SLUICE_KEK"

// FromEnv returns the KEK in EnvVar, and false if the variable is not set.
// The keyset is read-only here: rotate it where it is managed (for example
// with tinkey), deploy the new value, restart, then rewrap.
func FromEnv() (KEK, bool, error) {
	v, ok := os.LookupEnv(EnvVar)
	if !ok {
		return nil, false, nil
	}
	k, err := ParseEnv(v)
	if err != nil {
		return nil, true, err
	}
	return k, true, nil
}

// ParseEnv parses a value of EnvVar. Errors name the variable, never the
// value.
func ParseEnv(value string) (KEK, error) {
	source := "environment variable " + EnvVar
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		return nil, fmt.Errorf("%s: want the base64 of a Tink JSON keyset: %w", source, err)
	}
	h, err := parseJSONKeyset(source, b)
	if err != nil {
		return nil, err
	}
	return newKeysetKEK(source, h)
}
