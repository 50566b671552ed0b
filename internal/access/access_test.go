package access

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/sqlite"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// recorder is the audit hook: it keeps events, or fails when told to.
type recorder struct {
	mu     sync.Mutex
	events []Event
	fail   error
}

func (r *recorder) record(_ context.Context, e Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, e.Action)
	}
	return out
}

type groups map[string][]string

func (g groups) GroupsOf(_ context.Context, user string) ([]string, error) { return g[user], nil }

type env struct {
	svc   *Service
	db    *sqlite.DB
	clock *clock
	rec   *recorder
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sluice.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newEnv returns a service on a fresh store; mfaUsers have MFA enrolled.
func newEnv(t testing.TB, membership Membership, mfaUsers ...string) *env {
	t.Helper()
	db := openStore(t)
	return newEnvOn(t, db, &clock{t: t0}, membership, mfaUsers...)
}

func newEnvOn(t testing.TB, db *sqlite.DB, c *clock, membership Membership, mfaUsers ...string) *env {
	t.Helper()
	rec := &recorder{}
	enrolled := make(map[string]bool)
	for _, u := range mfaUsers {
		enrolled[u] = true
	}
	svc, err := New(context.Background(), Config{
		Store: db, Record: rec.record, Clock: c.now, Membership: membership,
		MFA: MFAFunc(func(u string) bool { return enrolled[u] }),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{svc: svc, db: db, clock: c, rec: rec}
}

// bind creates a binding directly in the store (test setup, bypassing the
// rules the service enforces) and reloads the index.
func (e *env) bind(t testing.TB, id, kind, subject, role, namespace string, expires time.Time) {
	t.Helper()
	err := e.db.CreateBinding(context.Background(), store.Binding{ID: id, SubjectKind: kind, Subject: subject, Role: role,
		Namespace: namespace, ExpiresAt: expires, GrantedBy: "setup", GrantedAt: e.clock.now()})
	if err != nil {
		t.Fatalf("binding %s: %v", id, err)
	}
	if err := e.svc.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

func user(name string) Subject { return Subject{User: name, MFA: true} }

func res(p Permission, namespace string) Resource {
	info, _ := Lookup(p)
	return Resource{Type: info.Resource, Namespace: namespace}
}

func wantRule(t *testing.T, err error, rule string) {
	t.Helper()
	var se *SoDError
	if !errors.As(err, &se) || !errors.Is(err, ErrSoD) {
		t.Fatalf("error = %v, want a segregation-of-duties refusal under %s", err, rule)
	}
	if se.Rule != rule {
		t.Fatalf("refused under rule %s, want %s (error: %v)", se.Rule, rule, err)
	}
	if !strings.Contains(err.Error(), rule) {
		t.Errorf("error %q does not name rule %s", err, rule)
	}
}

// TestRolePermissionMatrix checks every built-in role against every
// permission. The expected matrix is the persona table of DESIGN.md: what
// each persona does, and none of its "must not"s.
func TestRolePermissionMatrix(t *testing.T) {
	t.Parallel()
	roles := []string{RolePlatformEngineer, RoleDataEngineer, RoleDataAnalyst, RoleOperationsEngineer, RoleSecurityEngineer, RoleViewer}
	// One row per permission, one column per role above (plat = platform-
	// engineer, ...): X allowed, . denied.
	const matrix = `
permission           plat data anal ops  sec  view
pipeline.read        .    X    .    X    .    X
pipeline.write       .    X    .    .    .    .
pipeline.approve     .    X    .    .    .    .
run.read             .    X    X    X    .    X
run.trigger          .    X    .    X    .    .
run.control          .    .    .    X    .    .
log.read             .    X    .    X    .    .
dataset.read_masked  .    X    X    .    .    .
dataset.read_raw     .    .    .    .    .    .
dataset.erase        .    .    .    .    X    .
secret.write         .    X    .    .    .    .
connection.manage    X    .    .    .    .    .
worker.manage        X    .    .    .    .    .
settings.manage      X    .    .    .    .    .
key.manage           X    .    .    .    .    .
user.manage          .    .    .    .    X    .
mfa.manage           .    .    .    .    X    .
role.manage          .    .    .    .    X    .
binding.request      .    .    .    .    X    .
binding.approve      .    .    .    .    X    .
binding.revoke       .    .    .    .    X    .
namespace.protect    .    .    .    .    X    .
audit.read           .    .    .    .    X    .
audit.export         .    .    .    .    X    .
alert.manage         .    .    .    .    X    .
scan.run             .    .    .    .    X    .
incident.manage      .    .    .    X    X    .
`
	rows := strings.Split(strings.TrimSpace(matrix), "\n")[1:]
	if len(rows) != len(Permissions()) {
		t.Fatalf("matrix has %d permissions, the table defines %d", len(rows), len(Permissions()))
	}
	e := newEnv(t, nil)
	for _, r := range roles {
		e.bind(t, "b-"+r, store.SubjectUser, "u-"+r, r, "", time.Time{})
	}
	seen := make(map[Permission]bool)
	for _, row := range rows {
		cols := strings.Fields(row)
		if len(cols) != len(roles)+1 {
			t.Fatalf("row %q: %d columns, want %d", row, len(cols), len(roles)+1)
		}
		perm := Permission(cols[0])
		if _, ok := Lookup(perm); !ok || seen[perm] {
			t.Fatalf("row %q: unknown or repeated permission", row)
		}
		seen[perm] = true
		for i, r := range roles {
			want := cols[i+1] == "X"
			t.Run(r+"/"+string(perm), func(t *testing.T) {
				t.Parallel()
				d := e.svc.Decide(t.Context(), user("u-"+r), perm, res(perm, "crm"))
				if d.Allowed != want {
					t.Errorf("Decide(%s, %s) = %v (%s), want %v", r, perm, d.Allowed, d.Reason, want)
				}
			})
		}
	}
}

func TestDecideScoping(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bind(t, "b-de", store.SubjectUser, "ada", RoleDataEngineer, "crm", time.Time{})
	e.bind(t, "b-view", store.SubjectGroup, "staff", RoleViewer, "", time.Time{})
	e.bind(t, "b-exp", store.SubjectUser, "eve", RoleDataEngineer, "crm", t0.Add(time.Hour))
	e.bind(t, "b-plat", store.SubjectUser, "pat", RolePlatformEngineer, "", time.Time{})

	tests := []struct {
		name       string
		sub        Subject
		perm       Permission
		res        Resource
		want       bool
		wantReason string
	}{
		{"NamespaceBindingInItsNamespace", user("ada"), PipelineWrite, res(PipelineWrite, "crm"), true, "binding b-de (role data-engineer to user ada in namespace crm) grants pipeline.write"},
		{"NamespaceBindingElsewhere", user("ada"), PipelineWrite, res(PipelineWrite, "hr"), false, "no binding grants pipeline.write in namespace hr"},
		{"NamespaceBindingOnGlobalResource", user("ada"), PipelineWrite, res(PipelineWrite, ""), false, "no binding grants pipeline.write globally"},
		{"GroupGlobalBinding", Subject{User: "gus", Groups: []string{"other", "staff"}}, RunRead, res(RunRead, "hr"), true, "binding b-view (role viewer to group staff globally) grants run.read"},
		{"GroupWithoutMembership", Subject{User: "gus"}, RunRead, res(RunRead, "hr"), false, "no binding grants run.read in namespace hr"},
		{"UnknownUser", user("nobody"), PipelineRead, res(PipelineRead, "crm"), false, "no binding grants pipeline.read in namespace crm"},
		{"NoUser", Subject{}, PipelineRead, res(PipelineRead, "crm"), false, "no authenticated user"},
		{"UnknownPermission", user("ada"), "pipeline.delete", Resource{Type: ResPipeline, Namespace: "crm"}, false, `unknown permission "pipeline.delete"`},
		{"WrongResourceType", user("ada"), PipelineWrite, Resource{Type: ResDataset, Namespace: "crm"}, false, "permission pipeline.write applies to pipeline resources, not dataset"},
		{"TokenScopeNarrows", Subject{User: "ada", TokenScope: []Permission{PipelineRead}}, PipelineWrite, res(PipelineWrite, "crm"), false, "token scope does not include pipeline.write"},
		{"TokenScopeAllows", Subject{User: "ada", TokenScope: []Permission{PipelineRead}}, PipelineRead, res(PipelineRead, "crm"), true, "binding b-de (role data-engineer to user ada in namespace crm) grants pipeline.read"},
		{"TokenScopeCannotWiden", Subject{User: "ada", TokenScope: []Permission{KeyManage}, MFA: true}, KeyManage, res(KeyManage, ""), false, "no binding grants key.manage globally"},
		{"EmptyTokenScope", Subject{User: "ada", TokenScope: []Permission{}}, PipelineRead, res(PipelineRead, "crm"), false, "token scope does not include pipeline.read"},
		{"PrivilegedWithoutMFA", Subject{User: "pat"}, KeyManage, res(KeyManage, ""), false, "key.manage is privileged and requires MFA; this session was not authenticated with MFA"},
		{"PrivilegedWithMFA", user("pat"), KeyManage, res(KeyManage, ""), true, "binding b-plat (role platform-engineer to user pat globally) grants key.manage"},
		{"UnprivilegedWithoutMFA", Subject{User: "ada"}, PipelineWrite, res(PipelineWrite, "crm"), true, "binding b-de (role data-engineer to user ada in namespace crm) grants pipeline.write"},
		{"BeforeExpiry", user("eve"), PipelineWrite, res(PipelineWrite, "crm"), true, "binding b-exp (role data-engineer to user eve in namespace crm) grants pipeline.write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := e.svc.Decide(t.Context(), tt.sub, tt.perm, tt.res)
			if d.Allowed != tt.want || d.Reason != tt.wantReason {
				t.Errorf("Decide = %v %q, want %v %q", d.Allowed, d.Reason, tt.want, tt.wantReason)
			}
		})
	}
}

func TestDecideExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bind(t, "b-exp", store.SubjectUser, "eve", RoleDataEngineer, "crm", t0.Add(time.Hour))
	if d := e.svc.Decide(t.Context(), user("eve"), RunTrigger, res(RunTrigger, "crm")); !d.Allowed {
		t.Fatalf("before expiry: denied: %s", d.Reason)
	}
	e.clock.add(time.Hour)
	d := e.svc.Decide(t.Context(), user("eve"), RunTrigger, res(RunTrigger, "crm"))
	want := "binding b-exp (role data-engineer to user eve in namespace crm) granting run.trigger expired at 2026-03-01T13:00:00Z"
	if d.Allowed || d.Reason != want {
		t.Errorf("at expiry: %v %q, want denied %q", d.Allowed, d.Reason, want)
	}
}

// TestAuthorizeRecordsPrivileged checks which decisions reach the audit
// hook, and that a failing hook stops the action.
func TestAuthorizeRecordsPrivileged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bind(t, "b-plat", store.SubjectUser, "pat", RolePlatformEngineer, "", time.Time{})
	e.bind(t, "b-view", store.SubjectUser, "vic", RoleViewer, "", time.Time{})
	ctx := t.Context()
	if _, err := e.svc.Authorize(ctx, user("vic"), RunRead, res(RunRead, "crm")); err != nil {
		t.Fatalf("viewer run.read: %v", err)
	}
	if _, err := e.svc.Authorize(ctx, user("pat"), KeyManage, res(KeyManage, "")); err != nil {
		t.Fatalf("platform key.manage: %v", err)
	}
	_, err := e.svc.Authorize(ctx, user("vic"), KeyManage, res(KeyManage, ""))
	if !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "no binding grants key.manage globally") {
		t.Fatalf("viewer key.manage: %v, want denied with reason", err)
	}
	e.rec.mu.Lock()
	got := make([]string, 0, len(e.rec.events))
	for _, ev := range e.rec.events {
		got = append(got, ev.Actor+" "+ev.Details["permission"]+" "+map[bool]string{true: "allowed", false: "denied"}[ev.Allowed])
	}
	e.rec.mu.Unlock()
	if d := cmp.Diff([]string{"pat key.manage allowed", "vic key.manage denied"}, got); d != "" {
		t.Errorf("recorded decisions (-want +got):\n%s", d)
	}

	e.rec.mu.Lock()
	e.rec.fail = errors.New("audit log unavailable")
	e.rec.mu.Unlock()
	if _, err := e.svc.Authorize(ctx, user("pat"), KeyManage, res(KeyManage, "")); err == nil {
		t.Error("Authorize succeeded with the audit log down")
	}
}

func TestFlushUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.bind(t, "b-view", store.SubjectUser, "vic", RoleViewer, "", time.Time{})
	e.clock.add(time.Minute)
	if d := e.svc.Decide(t.Context(), user("vic"), RunRead, res(RunRead, "crm")); !d.Allowed {
		t.Fatalf("denied: %s", d.Reason)
	}
	b, err := e.db.GetBinding(t.Context(), "b-view")
	if err != nil {
		t.Fatal(err)
	}
	if !b.LastUsedAt.IsZero() {
		t.Fatalf("Decide wrote to the store: last used %v", b.LastUsedAt)
	}
	if err := e.svc.FlushUsage(t.Context()); err != nil {
		t.Fatalf("FlushUsage: %v", err)
	}
	b, err = e.db.GetBinding(t.Context(), "b-view")
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Minute); !b.LastUsedAt.Equal(want) {
		t.Errorf("last used = %v, want %v", b.LastUsedAt, want)
	}
}

// TestRefreshAcrossProcesses runs two services on one store, as two
// processes would: a change made through one is seen by the other once it
// checks the version counter, at most one refresh interval later.
func TestRefreshAcrossProcesses(t *testing.T) {
	t.Parallel()
	db := openStore(t)
	c := &clock{t: t0}
	a := newEnvOn(t, db, c, nil)
	b := newEnvOn(t, db, c, nil)
	ctx := t.Context()
	if d := b.svc.Decide(ctx, user("vic"), RunRead, res(RunRead, "crm")); d.Allowed {
		t.Fatal("allowed before any binding")
	}
	a.bind(t, "b-view", store.SubjectUser, "vic", RoleViewer, "", time.Time{})
	if d := b.svc.Decide(ctx, user("vic"), RunRead, res(RunRead, "crm")); d.Allowed {
		t.Error("the other process saw the change before its refresh interval")
	}
	c.add(time.Second)
	if d := b.svc.Decide(ctx, user("vic"), RunRead, res(RunRead, "crm")); !d.Allowed {
		t.Errorf("the other process still denies after its refresh interval: %s", d.Reason)
	}
}

func TestBootstrap(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	bs, err := e.svc.Bootstrap(t.Context(), RoleSecurityEngineer, "sam", "tess")
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	if len(bs) != 2 || bs[0].GrantedBy != "bootstrap" {
		t.Fatalf("bootstrap bindings = %+v", bs)
	}
	if d := e.svc.Decide(t.Context(), user("tess"), UserManage, res(UserManage, "")); !d.Allowed {
		t.Errorf("bootstrapped security engineer denied: %s", d.Reason)
	}
	_, err = e.svc.Bootstrap(t.Context(), RoleSecurityEngineer, "mallory")
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("second Bootstrap: %v, want ErrConflict", err)
	}
}

func BenchmarkDecideWarm(b *testing.B) {
	e := newEnv(b, nil)
	for i, r := range []string{RoleViewer, RoleDataEngineer, RoleOperationsEngineer} {
		e.bind(b, "b-"+r, store.SubjectGroup, "g"+string(rune('0'+i)), r, "crm", time.Time{})
	}
	e.bind(b, "b-ada", store.SubjectUser, "ada", RoleDataEngineer, "crm", time.Time{})
	sub := Subject{User: "ada", Groups: []string{"g0", "g1", "g2"}, MFA: true}
	r := Resource{Type: ResPipeline, Namespace: "crm", Name: "customers"}
	ctx := context.Background()
	if d := e.svc.Decide(ctx, sub, PipelineWrite, r); !d.Allowed {
		b.Fatalf("denied: %s", d.Reason)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if d := e.svc.Decide(ctx, sub, PipelineWrite, r); !d.Allowed {
			b.Fatal("denied")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/decision")
}
