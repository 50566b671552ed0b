package secrets

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func parseYAML(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatalf("parsing test YAML: %v", err)
	}
	return &n
}

// pos is a finding without its message, for comparison.
type pos struct {
	Line, Col int
	Kind      string
}

func TestScan(t *testing.T) {
	t.Parallel()
	// Token-shaped test values are assembled at run time so that this file
	// does not itself trip secret scanners.
	aws := "AKIA" + "Z7QW3RT5YU8IOP2A"
	ghp := "ghp_" + strings.Repeat("a1B2", 9)
	slack := "xoxb-" + "123456789012-abcdefABCDEF"
	stripe := "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
	google := "AIza" + "SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"
	jwt := "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	tests := []struct {
		name string
		src  string
		want []pos
	}{
		// (a) credential keys
		{"password literal", "password: hunter2\n", []pos{{1, 11, KindCredentialKey}}},
		{"suffix with underscore", "db_password: 'x'\n", []pos{{1, 14, KindCredentialKey}}},
		{"camel case", "dbPassword: x\n", []pos{{1, 13, KindCredentialKey}}},
		{"upper case env var", "env: {PGPASSWORD: hunter2}\n", []pos{{1, 19, KindCredentialKey}}},
		{"api key", "stripe-api-key: abc\n", []pos{{1, 17, KindCredentialKey}}},
		{"client secret nested", "auth:\n  client_secret: abc\n", []pos{{2, 18, KindCredentialKey}}},
		{"authorization header", "headers: {Authorization: \"Basic dXNlcjpwYXNz\"}\n", []pos{{1, 26, KindCredentialKey}}},
		{"numeric password", "pin_password: 123456\n", []pos{{1, 15, KindCredentialKey}}},
		{"token", "token: abcdef\n", []pos{{1, 8, KindCredentialKey}}},
		{"credentials", "gcp_credentials: '{\"type\": \"x\"}'\n", []pos{{1, 18, KindCredentialKey}}},
		// (b) URLs and connection strings
		{"url with password", "dsn: postgres://app:hunter2@db:5432/crm\n", []pos{{1, 21, KindURLPassword}}},
		{"dsn key=value", "dsn: \"host=db user=app password=hunter2 dbname=crm\"\n", []pos{{1, 33, KindURLPassword}}},
		{"odbc pwd", "conn: \"Server=s;Uid=u;Pwd=hunter2;\"\n", []pos{{1, 27, KindURLPassword}}},
		{"flag in argv", "shell: [psql, --password=hunter2]\n", []pos{{1, 26, KindURLPassword}}},
		{"script line", "script: |\n  echo start\n  export PGPASSWORD=hunter2\n", []pos{{3, 9, KindURLPassword}}},
		{"url under a password key reported once", "password: https://u:p@h/\n", []pos{{1, 21, KindURLPassword}}},
		// (c) token shapes
		{"aws key id", "note: \"key " + aws + " here\"\n", []pos{{1, 12, KindToken}}},
		{"github token in argv", "shell: [gh, --token, " + ghp + "]\n", []pos{{1, 22, KindToken}}},
		{"slack", "hook: " + slack + "\n", []pos{{1, 7, KindToken}}},
		{"stripe", "x: " + stripe + "\n", []pos{{1, 4, KindToken}}},
		{"google", "x: " + google + "\n", []pos{{1, 4, KindToken}}},
		{"jwt", "x: " + jwt + "\n", []pos{{1, 4, KindToken}}},
		{"pem", "key_file_contents: |\n  -----BEGIN RSA PRIVATE KEY-----\n  MIIE\n", []pos{{2, 20, KindToken}}},
		{"token under credential key reported once", "api_key: " + stripe + "\n", []pos{{1, 10, KindToken}}},
		{"two findings in a list", "args: [\"" + aws + "\", \"" + aws + "\"]\n", []pos{{1, 9, KindToken}, {1, 33, KindToken}}},

		// look-alikes that must not fire
		{"reference", "password: ${secret:db}\n", nil},
		{"quoted reference", "db_password: \"${secret:db}\"\n", nil},
		{"framed reference", "Authorization: \"Bearer ${secret:api}\"\n", nil},
		{"url with referenced password", "dsn: postgres://app:${secret:pw}@db/crm\n", nil},
		{"url entirely referenced", "dsn: ${secret:crm_dsn}\n", nil},
		{"url without password", "dsn: postgres://app@db:5432/crm?sslmode=verify-full\n", nil},
		{"url with port only", "url: https://example.com:8443/path\n", nil},
		{"dsn without password", "dsn: \"host=db user=app dbname=crm\"\n", nil},
		{"dsn with env variable", "script: psql \"password=$PGPW host=db\"\n", nil},
		{"dsn with reference", "dsn: \"host=db password=${secret:pw}\"\n", nil},
		{"password hint", "password_hint: ask the admin\n", nil},
		{"password file", "password_file: /run/keys/db\n", nil},
		{"token count", "token_count: 5\n", nil},
		{"max tokens", "max_tokens: 100\n", nil},
		{"path containing auth", "path: /etc/auth/config.yaml\n", nil},
		{"oauth flag", "oauth: true\n", nil},
		{"auth scheme", "auth: basic\n", nil},
		{"auth mapping", "auth: {type: bearer}\n", nil},
		{"empty password", "password: \"\"\n", nil},
		{"null password", "password: ~\n", nil},
		{"boolean secret flag", "secret: false\n", nil},
		{"pii tokenize operator", "pii: {email: tokenize}\n", nil},
		{"working directory var", "env: {PWD: /data}\n", nil},
		{"short aws-like", "x: AKIA1234\n", nil},
		{"stripe test key", "x: sk_test_4eC39HqLyjWDarjtT1zdp7dc\n", nil},
		{"password word in prose", "description: reset the password weekly\n", nil},
		{"eyJ without segments", "x: eyJhbGciOiJIUzI1NiJ9\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			findings := Scan(parseYAML(t, tt.src))
			var got []pos
			for _, f := range findings {
				got = append(got, pos{f.Line, f.Col, f.Kind})
				if !strings.Contains(f.Message, "sluice secret set ") || !strings.Contains(f.Message, "${secret:") {
					t.Errorf("message %q does not tell how to fix it", f.Message)
				}
				for _, leaked := range []string{"hunter2", aws, ghp, stripe, jwt, "dXNlcjpwYXNz"} {
					if strings.Contains(f.Message, leaked) {
						t.Errorf("message %q repeats the credential", f.Message)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Scan(%q) (-want +got):\n%s", tt.src, diff)
			}
		})
	}
}

func TestScanSuggestsANameFromTheKey(t *testing.T) {
	t.Parallel()
	f := Scan(parseYAML(t, "env: {DB-Password: hunter2}\n"))
	if len(f) != 1 {
		t.Fatalf("got %d findings, want 1", len(f))
	}
	for _, want := range []string{"sluice secret set db_password", "${secret:db_password}"} {
		if !strings.Contains(f[0].Message, want) {
			t.Errorf("message %q lacks %q", f[0].Message, want)
		}
	}
}

func TestScanAliasesOnce(t *testing.T) {
	t.Parallel()
	src := "a: &pw {password: hunter2}\nb: *pw\n"
	if got := len(Scan(parseYAML(t, src))); got != 1 {
		t.Errorf("got %d findings for one aliased literal, want 1", got)
	}
}
