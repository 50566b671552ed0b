package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file string
		env        map[string]string
		cert, key  string
		invalid    bool
	}{
		{"neither", "", nil, "", "", false},
		{"both from the file", "tls_cert: a.crt\ntls_key: a.key\n", nil, "a.crt", "a.key", false},
		{"environment over file", "tls_cert: a.crt\ntls_key: a.key\n", map[string]string{"SLUICE_TLS_CERT": "b.crt", "SLUICE_TLS_KEY": "b.key"}, "b.crt", "b.key", false},
		{"certificate alone", "tls_cert: a.crt\n", nil, "a.crt", "", true},
		{"key alone", "", map[string]string{"SLUICE_TLS_KEY": "b.key"}, "", "b.key", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(home, FileName), []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load(home, func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if c.TLSCert != tt.cert || c.TLSKey != tt.key {
				t.Errorf("TLSCert, TLSKey = %q, %q; want %q, %q", c.TLSCert, c.TLSKey, tt.cert, tt.key)
			}
			err = c.Validate()
			if tt.invalid != (err != nil) || (err != nil && !strings.Contains(err.Error(), "tls_cert, tls_key")) {
				t.Errorf("Validate = %v, want invalid=%v naming tls_cert, tls_key", err, tt.invalid)
			}
		})
	}
}
