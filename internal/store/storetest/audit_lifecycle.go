package storetest

import (
	"errors"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The conformance tests of the entries that lifecycle writes append in their
// own transaction (their rec audit.Entry argument).

// auditSize returns the number of entries in the log.
func auditSize(t *testing.T, s *store.Store) uint64 {
	t.Helper()
	st, err := s.AuditState(ctx)
	if err != nil {
		t.Fatalf("AuditState() error = %v", err)
	}
	return st.Size()
}

// changeEntry returns the entry of a change: action, tenant and key as
// given, and an outcome that the store must replace with ok.
func changeEntry(action audit.Action, tenantID, key string) audit.Entry {
	return audit.Entry{Time: t0, Actor: tenant.NewID(), Role: "operator", Tenant: tenantID, Action: action, Key: key,
		Outcome: audit.OutcomeRefused, Reason: "stale", Remote: "192.0.2.7", Request: "req-" + string(action)}
}

// lifecycleCase is a lifecycle write: refusals that must append nothing,
// then a success that must append its entry.
type lifecycleCase struct {
	name    string
	action  audit.Action
	key     string
	refused map[string]func(rec audit.Entry) error
	ok      func(rec audit.Entry) error
	// detail, if set, is the Detail the store gives the entry of ok (the
	// caller's is empty).
	detail func() string
}

// setupWrites is how many lifecycle writes lifecycleCases makes before its
// cases: each appends the suite's rec.
const setupWrites = 5

// lifecycleCases builds, on s, a tenant with keys, certificates and a token,
// and returns a case for each lifecycle write. They run in order: later
// cases use what earlier ones made.
func lifecycleCases(t *testing.T, s *store.Store) (tenantID string, cases []lifecycleCase) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	v1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", "fp-1"), t0))
	pc := mustCert(t, s, pendingCert(tn.ID, "strongroom/acme/upload-1", t0))
	ac := mustCert(t, s, activeCert(tn.ID, "strongroom/acme/upload-2", t0))
	tok := auth.Token{Hash: hashOf("secret-1"), Role: auth.RoleApp, Tenant: tn.ID, Created: t0}
	var tokID, otherID string
	unknown := tenant.NewID()
	return tn.ID, []lifecycleCase{
		{"CreateTenant", "tenant.create", "", map[string]func(audit.Entry) error{
			"same name": func(rec audit.Entry) error {
				_, err := s.CreateTenant(ctx, tenant.New("acme", tenant.EnvSandbox, t0), rec)
				return err
			},
			"invalid": func(rec audit.Entry) error {
				_, err := s.CreateTenant(ctx, tenant.New("ACME", tenant.EnvSandbox, t0), rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, err := s.CreateTenant(ctx, tenant.New("beta", tenant.EnvSandbox, t0), rec)
			return err
		}, nil},
		{"SetDerivationOptOut", "tenant.settings", "", map[string]func(audit.Entry) error{
			"unknown tenant": func(rec audit.Entry) error {
				_, err := s.SetDerivationOptOut(ctx, unknown, false, rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, err := s.SetDerivationOptOut(ctx, tn.ID, false, rec)
			return err
		}, nil},
		{"CreateToken", "token.create", "", map[string]func(audit.Entry) error{
			"unknown tenant": func(rec audit.Entry) error {
				bad := tok
				bad.Tenant = unknown
				_, err := s.CreateToken(ctx, bad, 0, rec)
				return err
			},
		}, func(rec audit.Entry) error {
			got, err := s.CreateToken(ctx, tok, 0, rec)
			tokID = got.ID
			return err
		}, nil},
		{"CreateToken again", "token.create", "", map[string]func(audit.Entry) error{
			"same hash": func(rec audit.Entry) error {
				_, err := s.CreateToken(ctx, tok, 0, rec)
				return err
			},
		}, func(rec audit.Entry) error {
			other := tok
			other.Hash = hashOf("secret-2")
			got, err := s.CreateToken(ctx, other, 0, rec)
			otherID = got.ID
			return err
		}, nil},
		{"RevokeToken", "token.revoke", "", map[string]func(audit.Entry) error{
			"missing": func(rec audit.Entry) error {
				_, _, err := s.RevokeToken(ctx, unknown, "", t0, rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, _, err := s.RevokeToken(ctx, tokID, "", t0, rec)
			return err
		}, func() string { return "token " + tokID }},
		{"RevokeToken again", "token.revoke", "", map[string]func(audit.Entry) error{
			"revoked already": func(rec audit.Entry) error {
				_, _, err := s.RevokeToken(ctx, tokID, "", t0, rec)
				return err
			},
		}, func(rec audit.Entry) error {
			got, _, err := s.RevokeToken(ctx, otherID, "", t0, rec)
			if err == nil && got.ID != otherID {
				return errors.New("RevokeToken returned another token")
			}
			return err
		}, func() string { return "token " + otherID }},
		{"InstallRelease", audit.ActionReleaseInstall, "", map[string]func(audit.Entry) error{
			"other bundle": func(rec audit.Entry) error {
				_, err := s.InstallRelease(ctx, release.Installation{ID: "r1", Bundle: bundle("else"), Installed: t0}, rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, err := s.InstallRelease(ctx, release.Installation{ID: "r2", Bundle: bundle("r2"), Installed: t0}, rec)
			return err
		}, nil},
		{"Rotate", audit.ActionRotate, "data/2", map[string]func(audit.Entry) error{
			"rate limited": func(rec audit.Entry) error {
				_, err := s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(day/2)), rec)
				return err
			},
			"duplicate": func(rec audit.Entry) error {
				_, err := s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r1", "fp-1"), t0.Add(day)), rec)
				return err
			},
			"unknown release": func(rec audit.Entry) error {
				_, err := s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r9", ""), t0.Add(day)), rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, err := s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(day)), rec)
			return err
		}, nil},
		{"DestroyKey", audit.ActionDestroy, "data/1", map[string]func(audit.Entry) error{
			"missing": func(rec audit.Entry) error {
				_, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 9}, t0.Add(2*day), rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, t0.Add(2*day), rec)
			return err
		}, nil},
		{"DestroyKey again", audit.ActionDestroy, "data/1", map[string]func(audit.Entry) error{
			"destroyed": func(rec audit.Entry) error {
				_, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}, t0.Add(2*day), rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 2}, t0.Add(2*day), rec)
			return err
		}, nil},
		{"RestoreKey", audit.ActionImport, "data/1", map[string]func(audit.Entry) error{
			"missing": func(rec audit.Entry) error {
				req := restoreReq(v1, []byte("restored"))
				req.Version = 9
				_, err := s.RestoreKey(ctx, req, rec)
				return err
			},
			"wrong fingerprint": func(rec audit.Entry) error {
				req := restoreReq(v1, []byte("restored"))
				req.Fingerprint = nil
				_, err := s.RestoreKey(ctx, req, rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, err := s.RestoreKey(ctx, restoreReq(v1, []byte("restored")), rec)
			return err
		}, nil},
		{"CreateUploadCert", "upload-cert.create", "", map[string]func(audit.Entry) error{
			"same label": func(rec audit.Entry) error {
				_, err := s.CreateUploadCert(ctx, pendingCert(tn.ID, "strongroom/acme/upload-1", t0), maxCerts, rec)
				return err
			},
			"unknown tenant": func(rec audit.Entry) error {
				_, err := s.CreateUploadCert(ctx, pendingCert(unknown, "strongroom/x/upload-1", t0), maxCerts, rec)
				return err
			},
			"over the limit": func(rec audit.Entry) error {
				_, err := s.CreateUploadCert(ctx, pendingCert(tn.ID, "strongroom/acme/upload-4", t0), 1, rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, err := s.CreateUploadCert(ctx, pendingCert(tn.ID, "strongroom/acme/upload-3", t0), maxCerts, rec)
			return err
		}, nil},
		{"ActivateUploadCert", "upload-cert.activate", "", map[string]func(audit.Entry) error{
			"active already": func(rec audit.Entry) error {
				_, err := s.ActivateUploadCert(ctx, tn.ID, ac.ID, certDER, t0, t0.Add(day), rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, err := s.ActivateUploadCert(ctx, tn.ID, pc.ID, certDER, t0, t0.Add(day), rec)
			return err
		}, nil},
		{"RetireUploadCert", "upload-cert.retire", "", map[string]func(audit.Entry) error{
			"missing": func(rec audit.Entry) error {
				_, err := s.RetireUploadCert(ctx, tn.ID, unknown, t0, rec)
				return err
			},
		}, func(rec audit.Entry) error {
			_, err := s.RetireUploadCert(ctx, tn.ID, ac.ID, t0, rec)
			return err
		}, nil},
	}
}

// testAuditLifecycle: each lifecycle write appends its entry, with outcome
// ok, in its transaction when it succeeds, and nothing when it is refused.
func testAuditLifecycle(t *testing.T, s *store.Store) {
	base := auditSize(t, s)
	tenantID, cases := lifecycleCases(t, s)
	size := auditSize(t, s)
	if size != base+uint64(setupWrites) {
		t.Fatalf("the setup's %d writes appended %d audit entries", setupWrites, size-base)
	}
	for _, tc := range cases {
		e := changeEntry(tc.action, tenantID, tc.key)
		for name, refuse := range tc.refused {
			if err := refuse(e); err == nil {
				t.Fatalf("%s (%s) succeeded, want an error", tc.name, name)
			}
			if n := auditSize(t, s); n != size {
				t.Errorf("%s (%s) failed but the log grew from %d to %d entries", tc.name, name, size, n)
			}
		}
		if err := tc.ok(e); err != nil {
			t.Fatalf("%s error = %v", tc.name, err)
		}
		size++
		es := readAudit(t, s, store.AuditFilter{AfterSeq: size - 1})
		if len(es) != 1 {
			t.Fatalf("%s appended %d audit entries, want 1", tc.name, len(es))
		}
		// The entry as the caller made it, with outcome ok (the chain is
		// checked by checkLog).
		want := e
		want.Outcome, want.Reason = audit.OutcomeOK, ""
		if tc.detail != nil {
			want.Detail = tc.detail()
		}
		want.Seq, want.Prev, want.Hash = size, es[0].Prev, es[0].Hash
		if !equalEntry(es[0], want) {
			t.Errorf("%s appended %s, want %s", tc.name, fmtEntry(es[0]), fmtEntry(want))
		}
	}
	checkLog(t, s, size)
}

// testAuditEntryPerWrite: every write appends its own entry and no other;
// PutExportKey appends its entry only when it stored the key (the first
// writer), and reads append nothing.
func testAuditEntryPerWrite(t *testing.T, s *store.Store) {
	mustRelease(t, s, "r1")
	tn := mustTenant(t, s, "acme")
	size := auditSize(t, s)
	first := changeEntry("tenant.export-key.create", tn.ID, "")
	if _, err := s.PutExportKey(ctx, tenant.ExportKey{Tenant: tn.ID, Release: "r1", Wrapped: []byte("wrapped"), Created: t0}, first); err != nil {
		t.Fatal(err)
	}
	second := first
	second.Request = "req-second"
	got, err := s.PutExportKey(ctx, tenant.ExportKey{Tenant: tn.ID, Release: "r1", Wrapped: []byte("another"), Created: t0}, second)
	if err != nil || string(got.Wrapped) != "wrapped" {
		t.Fatalf("PutExportKey(second) = %q, %v, want the first key", got.Wrapped, err)
	}
	if _, err := s.TenantByID(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExportKey(ctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	if n := auditSize(t, s); n != size+1 {
		t.Fatalf("two PutExportKeys and two reads appended %d entries, want 1 (the first writer's)", n-size)
	}
	es := readAudit(t, s, store.AuditFilter{AfterSeq: size})
	if es[0].Request != first.Request || es[0].Outcome != audit.OutcomeOK {
		t.Errorf("PutExportKey appended %s, want the first writer's entry with outcome ok", fmtEntry(es[0]))
	}
	own := auditEntry("own", t0)
	if _, err := s.AppendAudit(ctx, own); err != nil {
		t.Fatal(err)
	}
	r := changeEntry(audit.ActionRotate, tn.ID, "data/1")
	if _, err := s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0), r); err != nil {
		t.Fatal(err)
	}
	es = checkLog(t, s, size+3)
	if es[size+1].Request != own.Request || es[size+2].Request != r.Request || es[size+2].Action != audit.ActionRotate {
		t.Errorf("entries %d and %d = %s, %s, want AppendAudit's, then the rotation's", size+2, size+3,
			fmtEntry(es[size+1]), fmtEntry(es[size+2]))
	}
}

// testAuditInvalidEntry: a write whose entry is invalid (a zero entry, an
// entry without an actor) fails with ErrInvalid and changes nothing: no
// change without its entry.
func testAuditInvalidEntry(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	size := auditSize(t, s)
	for name, e := range map[string]audit.Entry{
		"zero":     {},
		"no actor": {Time: t0, Action: audit.ActionRotate},
	} {
		_, err := s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0), e)
		wantErr(t, "Rotate(entry "+name+")", err, store.ErrInvalid)
		if _, err := s.ActiveKey(ctx, tn.ID, tenant.TypeData); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Rotate(entry %s) failed but made a key: ActiveKey() error = %v", name, err)
		}
		_, err = s.CreateTenant(ctx, tenant.New("beta", tenant.EnvProduction, t0), e)
		wantErr(t, "CreateTenant(entry "+name+")", err, store.ErrInvalid)
		if _, err := s.TenantByName(ctx, "beta"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CreateTenant(entry %s) failed but made the tenant: TenantByName() error = %v", name, err)
		}
		_, err = s.PutExportKey(ctx, tenant.ExportKey{Tenant: tn.ID, Release: "r1", Wrapped: []byte("w"), Created: t0}, e)
		wantErr(t, "PutExportKey(entry "+name+")", err, store.ErrInvalid)
		if _, err := s.ExportKey(ctx, tn.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PutExportKey(entry %s) failed but stored the key: ExportKey() error = %v", name, err)
		}
	}
	if n := auditSize(t, s); n != size {
		t.Errorf("writes with invalid entries appended %d entries, want none", n-size)
	}
}
