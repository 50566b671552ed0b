// Command apiseed prepares a state directory for the API benchmark
// (bench/api.sh): it records N finished runs spread over a few namespaces
// and pipelines, in one transaction, and a user "bench" bound globally to
// the viewer role with an API token scoped to run.read. It prints the
// token's secret on the first line of its output and a session secret for
// the same user on the second, and nothing else.
//
// The binding is written straight to the store: a seed for a benchmark,
// not the way bindings are granted (that goes through the access service's
// two-person rule).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sluicehq/sluice/internal/app"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/config"
	"github.com/sluicehq/sluice/internal/store"
)

func main() {
	home := flag.String("home", "", "state directory to seed (created)")
	n := flag.Int("runs", 100_000, "number of runs")
	flag.Parse()
	if *home == "" {
		fmt.Fprintln(os.Stderr, "apiseed: -home is required")
		os.Exit(2)
	}
	if err := seed(context.Background(), *home, *n); err != nil {
		fmt.Fprintln(os.Stderr, "apiseed:", err)
		os.Exit(1)
	}
}

func seed(ctx context.Context, home string, n int) error {
	cfg := config.Default()
	cfg.Home = home
	a, err := app.Open(ctx, cfg, app.Options{LogOutput: io.Discard})
	if err != nil {
		return err
	}
	defer a.Close()

	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	namespaces := []string{"crm", "finance", "marketing", "ops", "sales"}
	err = a.Store.InTx(ctx, func(tx store.Store) error {
		for i := range n {
			at := start.Add(time.Duration(i) * 5 * time.Minute)
			ns := namespaces[i%len(namespaces)]
			id := fmt.Sprintf("%s-%06d", at.Format("20060102T150405Z"), i)
			if _, err := tx.CreateRun(ctx, store.NewRun{ID: id, Namespace: ns, Pipeline: fmt.Sprintf("pipeline_%d", i%20),
				PipelineHash: "0000000000000000000000000000000000000000000000000000000000000000", LogicalDate: at.Format(time.DateOnly),
				Trigger: "schedule", Tasks: []string{"extract", "load"}, CreatedAt: at}); err != nil {
				return err
			}
			end := store.RunSuccess
			if i%17 == 0 {
				end = store.RunFailed
			}
			if _, err := tx.SetRunState(ctx, store.SetRunState{RunID: id, From: []store.RunState{store.RunQueued}, To: store.RunRunning, At: at}); err != nil {
				return err
			}
			if _, err := tx.SetRunState(ctx, store.SetRunState{RunID: id, From: []store.RunState{store.RunRunning}, To: end, At: at.Add(time.Minute)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recording runs: %w", err)
	}

	u, err := a.Auth.CreateUser(ctx, auth.NewUser{Actor: "bench", Username: "bench", Password: "Quiet-Lantern-Orbit-42"})
	if err != nil {
		return err
	}
	if err := a.Store.CreateBinding(ctx, store.Binding{ID: "b_bench_viewer", SubjectKind: store.SubjectUser, Subject: "bench",
		Role: "viewer", GrantedBy: "bench", GrantedAt: time.Now().UTC()}); err != nil {
		return err
	}
	token, _, err := a.Auth.CreateAPIToken(ctx, auth.NewAPIToken{Actor: u.ID, OwnerID: u.ID, Name: "bench",
		Scopes: []string{"run.read"}, ExpiresAt: time.Now().Add(24 * time.Hour)})
	if err != nil {
		return err
	}
	session, _, err := a.Auth.NewSession(ctx, u.ID, auth.MethodPassword, false)
	if err != nil {
		return err
	}
	fmt.Println(token)
	fmt.Println(session)
	return nil
}
