package secrets_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/sluicehq/sluice/internal/secrets"
)

func ExampleRedactor_Writer() {
	r := secrets.NewRedactor()
	r.Add("hunter2-pass")
	w := r.Writer(os.Stdout)
	// The value arrives split across two writes, as output of a child
	// process often does.
	fmt.Fprint(w, "connecting with hunter2-")
	fmt.Fprint(w, "pass\n")
	w.Close()
	// Output: connecting with [REDACTED]
}

func ExampleRedactor_Handler() {
	r := secrets.NewRedactor()
	r.Add("hunter2-pass")
	logger := slog.New(r.Handler(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})))
	logger.Error("login failed", "err", fmt.Errorf("bad password %q", "hunter2-pass"))
	// Output: level=ERROR msg="login failed" err="bad password \"[REDACTED]\""
}

func ExampleExpand() {
	resolve := func(name string) ([]byte, error) { return []byte("s3cr3t"), nil }
	s, err := secrets.Expand(context.Background(), "postgres://app:${secret:crm_pw}@db/crm $${secret:kept}", resolve)
	fmt.Println(s, err)
	// Output: postgres://app:s3cr3t@db/crm ${secret:kept} <nil>
}
