// Package access is the authorization of sluice: permissions, built-in and
// custom roles, bindings of users and groups to roles (global or per
// namespace, optionally expiring), the segregation-of-duties rules, access
// requests under the two-person rule, approval of pipeline versions, and
// access reviews.
//
// Every entry point (API, CLI, scheduler) asks one function, Service.Decide,
// before acting; it denies unless a binding allows. Decisions on privileged
// permissions, and every change this package makes, are handed to the
// caller's Config.Record hook as an Event before anything happens: an action
// whose audit record cannot be written does not happen. Callers that act on
// a Decide answer themselves must likewise record a privileged decision
// before acting; Authorize does both.
package access

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Permission is an action on a type of resource, written "resource.action".
type Permission string

// ResourceType is the kind of thing a permission acts on.
type ResourceType string

// Resource types.
const (
	ResPipeline   ResourceType = "pipeline"
	ResRun        ResourceType = "run"
	ResLog        ResourceType = "log"
	ResDataset    ResourceType = "dataset"
	ResSecret     ResourceType = "secret"
	ResConnection ResourceType = "connection"
	ResWorker     ResourceType = "worker"
	ResSettings   ResourceType = "settings"
	ResKey        ResourceType = "key"
	ResUser       ResourceType = "user"
	ResRole       ResourceType = "role"
	ResBinding    ResourceType = "binding"
	ResNamespace  ResourceType = "namespace"
	ResAudit      ResourceType = "audit"
	ResAlert      ResourceType = "alert"
	ResScan       ResourceType = "scan"
	ResIncident   ResourceType = "incident"
)

// Permissions. The table below (permissionTable) is their one definition:
// resource type, whether privileged, and what they allow.
const (
	PipelineRead      Permission = "pipeline.read"
	PipelineWrite     Permission = "pipeline.write"
	PipelineApprove   Permission = "pipeline.approve"
	RunRead           Permission = "run.read"
	RunTrigger        Permission = "run.trigger"
	RunControl        Permission = "run.control"
	LogRead           Permission = "log.read"
	DatasetReadMasked Permission = "dataset.read_masked"
	DatasetReadRaw    Permission = "dataset.read_raw"
	DatasetErase      Permission = "dataset.erase"
	SecretWrite       Permission = "secret.write"
	ConnectionManage  Permission = "connection.manage"
	WorkerManage      Permission = "worker.manage"
	SettingsManage    Permission = "settings.manage"
	KeyManage         Permission = "key.manage"
	UserManage        Permission = "user.manage"
	MFAManage         Permission = "mfa.manage"
	RoleManage        Permission = "role.manage"
	BindingRequest    Permission = "binding.request"
	BindingApprove    Permission = "binding.approve"
	BindingRevoke     Permission = "binding.revoke"
	NamespaceProtect  Permission = "namespace.protect"
	AuditRead         Permission = "audit.read"
	AuditExport       Permission = "audit.export"
	AlertManage       Permission = "alert.manage"
	ScanRun           Permission = "scan.run"
	IncidentManage    Permission = "incident.manage"
)

// PermissionInfo describes one permission.
type PermissionInfo struct {
	Permission Permission
	Resource   ResourceType
	// Privileged permissions (platform administration, security
	// administration, raw data) require a session authenticated with MFA,
	// and a role holding one is granted only under the two-person rule.
	Privileged  bool
	Description string
}

// permissionTable defines every permission once. Its order is the bit
// order of permSet; it is never modified.
var permissionTable = [...]PermissionInfo{
	{PipelineRead, ResPipeline, false, "read pipeline definitions and their versions"},
	{PipelineWrite, ResPipeline, false, "push new pipeline versions"},
	{PipelineApprove, ResPipeline, false, "approve another person's pipeline version"},
	{RunRead, ResRun, false, "read runs, task runs and their history"},
	{RunTrigger, ResRun, false, "trigger a run manually"},
	{RunControl, ResRun, false, "retry, pause, resume, cancel and backfill runs"},
	{LogRead, ResLog, false, "read task logs (redacted)"},
	{DatasetReadMasked, ResDataset, false, "read datasets with PII masked by policy"},
	{DatasetReadRaw, ResDataset, true, "read datasets unmasked, PII included"},
	{DatasetErase, ResDataset, true, "erase a data subject: destroy their key and remove their rows (reads nothing)"},
	{SecretWrite, ResSecret, false, "set and delete secrets (never read them back)"},
	{ConnectionManage, ResConnection, true, "define connections to external systems"},
	{WorkerManage, ResWorker, true, "register, drain and remove workers"},
	{SettingsManage, ResSettings, true, "change platform settings"},
	{KeyManage, ResKey, true, "rotate keys, re-wrap data keys, retire key versions"},
	{UserManage, ResUser, true, "create and disable users, revoke their tokens and sessions"},
	{MFAManage, ResUser, true, "set the MFA policy and reset a user's MFA enrolment"},
	{RoleManage, ResRole, true, "create and delete custom roles"},
	{BindingRequest, ResBinding, true, "request a binding that needs a second person's approval"},
	{BindingApprove, ResBinding, true, "grant bindings and approve access requests"},
	{BindingRevoke, ResBinding, true, "revoke bindings and record access reviews"},
	{NamespaceProtect, ResNamespace, true, "mark a namespace protected (approved versions only run on schedule)"},
	{AuditRead, ResAudit, true, "read the audit log"},
	{AuditExport, ResAudit, true, "export the audit log and its signed checkpoints"},
	{AlertManage, ResAlert, true, "define, mute and delete alert rules"},
	{ScanRun, ResScan, true, "run security scans of pipelines and configuration"},
	{IncidentManage, ResIncident, false, "open, update and close incidents; use the kill switch"},
}

// permIndex maps a permission to its bit in permSet; built once, never
// modified.
var permIndex = func() map[Permission]int {
	m := make(map[Permission]int, len(permissionTable))
	for i, p := range permissionTable {
		m[p.Permission] = i
	}
	return m
}()

// permSet is a set of permissions, one bit per permissionTable entry, so
// that a decision is a few AND operations.
type permSet uint64

var _ [64 - len(permissionTable)]struct{} // permSet must hold every permission

func (s permSet) has(i int) bool { return s&(1<<uint(i)) != 0 }

// list returns the permissions in s in table order.
func (s permSet) list() []Permission {
	out := make([]Permission, 0, bits.OnesCount64(uint64(s)))
	for i, p := range permissionTable {
		if s.has(i) {
			out = append(out, p.Permission)
		}
	}
	return out
}

func (s permSet) privileged() bool { return s&privilegedSet != 0 }

func setOf(ps ...Permission) permSet {
	var s permSet
	for _, p := range ps {
		if i, ok := permIndex[p]; ok {
			s |= 1 << uint(i)
		}
	}
	return s
}

var privilegedSet = func() permSet {
	var s permSet
	for i, p := range permissionTable {
		if p.Privileged {
			s |= 1 << uint(i)
		}
	}
	return s
}()

// Permissions returns every permission, in a stable order.
func Permissions() []PermissionInfo { return slices.Clone(permissionTable[:]) }

// Lookup returns the description of a permission; false if there is none
// by that name.
func Lookup(p Permission) (PermissionInfo, bool) {
	i, ok := permIndex[p]
	if !ok {
		return PermissionInfo{}, false
	}
	return permissionTable[i], true
}

// ParsePermissions checks permission names, naming the first unknown one.
func ParsePermissions(names []string) ([]Permission, error) {
	out := make([]Permission, 0, len(names))
	for _, n := range names {
		p := Permission(strings.TrimSpace(n))
		if _, ok := permIndex[p]; !ok {
			return nil, fmt.Errorf("permission %q: %w", n, ErrUnknownPermission)
		}
		out = append(out, p)
	}
	return out, nil
}

// Built-in role names.
const (
	RolePlatformEngineer   = "platform-engineer"
	RoleDataEngineer       = "data-engineer"
	RoleDataAnalyst        = "data-analyst"
	RoleOperationsEngineer = "operations-engineer"
	RoleSecurityEngineer   = "security-engineer"
	RoleViewer             = "viewer"
)

// Role is a named set of permissions.
type Role struct {
	Name        string
	Description string
	Permissions []Permission
	BuiltIn     bool
	// Privileged: the role holds a privileged permission, so granting it
	// needs the two-person rule.
	Privileged bool
}

// builtinRole is one row of the persona table in DESIGN.md.
type builtinRole struct {
	name, description string
	perms             permSet
}

// builtinRoles follow the persona table: what each persona does, and none
// of its "must not"s. Raw data is in no built-in role: it is granted
// through a custom role under the two-person rule, for a limited time.
var builtinRoles = [...]builtinRole{
	{RolePlatformEngineer, "runs the platform: settings, workers, connections, key rotation",
		setOf(SettingsManage, WorkerManage, ConnectionManage, KeyManage)},
	{RoleDataEngineer, "writes pipelines, sets their secrets, triggers runs, reads their datasets (masked), approves colleagues' versions",
		setOf(PipelineRead, PipelineWrite, PipelineApprove, RunRead, RunTrigger, LogRead, DatasetReadMasked, SecretWrite)},
	{RoleDataAnalyst, "reads curated datasets (masked by policy) and run history",
		setOf(RunRead, DatasetReadMasked)},
	{RoleOperationsEngineer, "triggers, retries, pauses and backfills runs; reads logs; handles incidents",
		setOf(PipelineRead, RunRead, RunTrigger, RunControl, LogRead, IncidentManage)},
	{RoleSecurityEngineer, "users, roles, bindings, MFA policy, audit log, alert rules, scans, incidents, revocation",
		setOf(UserManage, MFAManage, RoleManage, BindingRequest, BindingApprove, BindingRevoke, NamespaceProtect,
			AuditRead, AuditExport, AlertManage, ScanRun, IncidentManage, DatasetErase)},
	{RoleViewer, "reads pipelines and runs", setOf(PipelineRead, RunRead)},
}

func builtinPerms(name string) (permSet, bool) {
	for _, r := range builtinRoles {
		if r.name == name {
			return r.perms, true
		}
	}
	return 0, false
}

// BuiltinRoles returns the built-in roles.
func BuiltinRoles() []Role {
	out := make([]Role, 0, len(builtinRoles))
	for _, r := range builtinRoles {
		out = append(out, Role{Name: r.name, Description: r.description, Permissions: r.perms.list(), BuiltIn: true,
			Privileged: r.perms.privileged()})
	}
	return out
}

// Segregation-of-duties rules, named in every refusal they cause.
const (
	// RuleSelfApproveVersion: nobody approves their own pipeline version.
	RuleSelfApproveVersion = "sod.self-approve-version"
	// RuleSelfGrant: nobody grants, or approves a grant of, anything to
	// themselves (or to a group they belong to).
	RuleSelfGrant = "sod.self-grant"
	// RuleTwoPerson: a privileged role (platform, security, raw data) is
	// granted only on a request by one person approved by a different
	// security engineer.
	RuleTwoPerson = "sod.two-person"
	// RuleSecurityPipelineWrite: whoever administers security (users,
	// roles, bindings, audit) cannot also hold pipeline.write.
	RuleSecurityPipelineWrite = "sod.security-pipeline-write"
	// RuleSecurityDataRead: whoever administers security cannot also read
	// datasets, masked or raw.
	RuleSecurityDataRead = "sod.security-data-read"
	// RuleSelfReview: nobody confirms their own binding in an access review.
	RuleSelfReview = "sod.self-review"
)

// conflictRule forbids one subject holding any of a together with any of b.
// Where a subject holds both anyway (through groups the store does not know
// about), Decide denies the b side: the a side is what repairs it.
type conflictRule struct {
	id, description string
	a, b            permSet
}

var securityAdmin = setOf(UserManage, MFAManage, RoleManage, BindingRequest, BindingApprove, BindingRevoke,
	AuditRead, AuditExport)

var conflictRules = [...]conflictRule{
	{RuleSecurityPipelineWrite, "security administration excludes writing pipelines", securityAdmin, setOf(PipelineWrite)},
	{RuleSecurityDataRead, "security administration excludes reading data", securityAdmin, setOf(DatasetReadMasked, DatasetReadRaw)},
}

// conflicts returns the first conflict rule that held violates and that
// added takes part in (added = held when checking a whole set).
func conflicts(held, added permSet) (conflictRule, bool) {
	for _, r := range conflictRules {
		if held&r.a != 0 && held&r.b != 0 && added&(r.a|r.b) != 0 {
			return r, true
		}
	}
	return conflictRule{}, false
}
