package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// The conformance tests of the entries that lifecycle writes append in their
// own transaction (store.WithAudit).

// auditSize returns the number of entries in the log.
func auditSize(t *testing.T, s store.Store) uint64 {
	t.Helper()
	st, err := s.AuditState(ctx)
	if err != nil {
		t.Fatalf("AuditState() error = %v", err)
	}
	return st.Size()
}

// pending returns a pending entry for action, with its key set, and the
// context that carries it.
func pending(action audit.Action, tenant, key string) (*store.PendingAudit, context.Context) {
	e := audit.Entry{Time: t0, Actor: store.NewID(), Role: "operator", Tenant: tenant, Action: action,
		Outcome: audit.OutcomeRefused, Reason: "stale", Remote: "192.0.2.7", Request: "req-" + string(action)}
	p := store.NewPendingAudit(e)
	p.SetKey(key)
	return p, store.WithAudit(ctx, p)
}

// lifecycleCase is a lifecycle write: refusals that must append nothing,
// then a success that must append its pending entry.
type lifecycleCase struct {
	name    string
	action  audit.Action
	key     string
	refused map[string]func(ctx context.Context) error
	ok      func(ctx context.Context) error
}

// lifecycleCases builds, on s, a tenant with keys, certificates and a token,
// and returns a case for each lifecycle write. They run in order: later
// cases use what earlier ones made.
func lifecycleCases(t *testing.T, s store.Store) (tenantID string, cases []lifecycleCase) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	v1 := mustRotate(t, s, rotateReq(tn.ID, store.TypeData, newKey("r1", "fp-1"), t0))
	pc := mustCert(t, s, pendingCert(tn.ID, "strongroom/acme/upload-1", t0))
	ac := mustCert(t, s, activeCert(tn.ID, "strongroom/acme/upload-2", t0))
	tok := store.Token{Hash: hashOf("secret-1"), Role: store.RoleApp, Tenant: tn.ID, Created: t0}
	var tokID string
	unknown := store.NewID()
	return tn.ID, []lifecycleCase{
		{"CreateTenant", "tenant.create", "", map[string]func(context.Context) error{
			"same name": func(ctx context.Context) error {
				_, err := s.CreateTenant(ctx, store.NewTenant("acme", store.EnvSandbox, t0))
				return err
			},
			"invalid": func(ctx context.Context) error {
				_, err := s.CreateTenant(ctx, store.NewTenant("ACME", store.EnvSandbox, t0))
				return err
			},
		}, func(ctx context.Context) error {
			_, err := s.CreateTenant(ctx, store.NewTenant("beta", store.EnvSandbox, t0))
			return err
		}},
		{"SetDerivationOptOut", "tenant.settings", "", map[string]func(context.Context) error{
			"unknown tenant": func(ctx context.Context) error {
				_, err := s.SetDerivationOptOut(ctx, unknown, false)
				return err
			},
		}, func(ctx context.Context) error {
			_, err := s.SetDerivationOptOut(ctx, tn.ID, false)
			return err
		}},
		{"CreateToken", "token.create", "", map[string]func(context.Context) error{
			"unknown tenant": func(ctx context.Context) error {
				bad := tok
				bad.Tenant = unknown
				_, err := s.CreateToken(ctx, bad)
				return err
			},
		}, func(ctx context.Context) error {
			got, err := s.CreateToken(ctx, tok)
			tokID = got.ID
			return err
		}},
		{"CreateToken again", "token.create", "", map[string]func(context.Context) error{
			"same hash": func(ctx context.Context) error {
				_, err := s.CreateToken(ctx, tok)
				return err
			},
		}, func(ctx context.Context) error {
			other := tok
			other.Hash = hashOf("secret-2")
			_, err := s.CreateToken(ctx, other)
			return err
		}},
		{"DeleteToken", "token.delete", "", map[string]func(context.Context) error{
			"missing": func(ctx context.Context) error { return s.DeleteToken(ctx, unknown) },
		}, func(ctx context.Context) error { return s.DeleteToken(ctx, tokID) }},
		{"InstallRelease", audit.ActionReleaseInstall, "", map[string]func(context.Context) error{
			"other bundle": func(ctx context.Context) error {
				_, err := s.InstallRelease(ctx, store.Release{ID: "r1", Bundle: bundle("else"), Installed: t0})
				return err
			},
		}, func(ctx context.Context) error {
			_, err := s.InstallRelease(ctx, store.Release{ID: "r2", Bundle: bundle("r2"), Installed: t0})
			return err
		}},
		{"Rotate", audit.ActionRotate, "data/2", map[string]func(context.Context) error{
			"rate limited": func(ctx context.Context) error {
				_, err := s.Rotate(ctx, rotateReq(tn.ID, store.TypeData, newKey("r1", ""), t0.Add(day/2)))
				return err
			},
			"duplicate": func(ctx context.Context) error {
				_, err := s.Rotate(ctx, rotateReq(tn.ID, store.TypeData, newKey("r1", "fp-1"), t0.Add(day)))
				return err
			},
			"unknown release": func(ctx context.Context) error {
				_, err := s.Rotate(ctx, rotateReq(tn.ID, store.TypeData, newKey("r9", ""), t0.Add(day)))
				return err
			},
		}, func(ctx context.Context) error {
			_, err := s.Rotate(ctx, rotateReq(tn.ID, store.TypeData, newKey("r1", ""), t0.Add(day)))
			return err
		}},
		{"DestroyKey", audit.ActionDestroy, "data/1", map[string]func(context.Context) error{
			"missing": func(ctx context.Context) error {
				_, err := s.DestroyKey(ctx, tn.ID, store.TypeData, 9, t0.Add(2*day))
				return err
			},
		}, func(ctx context.Context) error {
			_, err := s.DestroyKey(ctx, tn.ID, store.TypeData, 1, t0.Add(2*day))
			return err
		}},
		{"DestroyKey again", audit.ActionDestroy, "data/1", map[string]func(context.Context) error{
			"destroyed": func(ctx context.Context) error {
				_, err := s.DestroyKey(ctx, tn.ID, store.TypeData, 1, t0.Add(2*day))
				return err
			},
		}, func(ctx context.Context) error {
			_, err := s.DestroyKey(ctx, tn.ID, store.TypeData, 2, t0.Add(2*day))
			return err
		}},
		{"RestoreKey", audit.ActionImport, "data/1", map[string]func(context.Context) error{
			"missing": func(ctx context.Context) error {
				req := restoreReq(v1, []byte("restored"))
				req.Version = 9
				_, err := s.RestoreKey(ctx, req)
				return err
			},
			"wrong fingerprint": func(ctx context.Context) error {
				req := restoreReq(v1, []byte("restored"))
				req.Fingerprint = nil
				_, err := s.RestoreKey(ctx, req)
				return err
			},
		}, func(ctx context.Context) error {
			_, err := s.RestoreKey(ctx, restoreReq(v1, []byte("restored")))
			return err
		}},
		{"CreateUploadCert", "upload-cert.create", "", map[string]func(context.Context) error{
			"same label": func(ctx context.Context) error {
				_, err := s.CreateUploadCert(ctx, pendingCert(tn.ID, "strongroom/acme/upload-1", t0))
				return err
			},
			"unknown tenant": func(ctx context.Context) error {
				_, err := s.CreateUploadCert(ctx, pendingCert(unknown, "strongroom/x/upload-1", t0))
				return err
			},
		}, func(ctx context.Context) error {
			_, err := s.CreateUploadCert(ctx, pendingCert(tn.ID, "strongroom/acme/upload-3", t0))
			return err
		}},
		{"ActivateUploadCert", "upload-cert.activate", "", map[string]func(context.Context) error{
			"active already": func(ctx context.Context) error {
				_, err := s.ActivateUploadCert(ctx, tn.ID, ac.ID, certDER, t0, t0.Add(day))
				return err
			},
		}, func(ctx context.Context) error {
			_, err := s.ActivateUploadCert(ctx, tn.ID, pc.ID, certDER, t0, t0.Add(day))
			return err
		}},
		{"RetireUploadCert", "upload-cert.retire", "", map[string]func(context.Context) error{
			"missing": func(ctx context.Context) error {
				_, err := s.RetireUploadCert(ctx, tn.ID, unknown, t0)
				return err
			},
		}, func(ctx context.Context) error {
			_, err := s.RetireUploadCert(ctx, tn.ID, ac.ID, t0)
			return err
		}},
	}
}

// testAuditLifecycle: each lifecycle write appends its pending entry, with
// outcome ok, in its transaction when it succeeds, and nothing when it is
// refused.
func testAuditLifecycle(t *testing.T, s store.Store) {
	tenant, cases := lifecycleCases(t, s)
	if n := auditSize(t, s); n != 0 {
		t.Fatalf("the setup, without pending entries, appended %d audit entries", n)
	}
	var size uint64
	for _, tc := range cases {
		p, pctx := pending(tc.action, tenant, tc.key)
		for name, refuse := range tc.refused {
			if err := refuse(pctx); err == nil {
				t.Fatalf("%s (%s) succeeded, want an error", tc.name, name)
			}
			if p.Recorded() {
				t.Errorf("%s (%s) failed but marked its pending entry recorded", tc.name, name)
			}
			if n := auditSize(t, s); n != size {
				t.Errorf("%s (%s) failed but the log grew from %d to %d entries", tc.name, name, size, n)
			}
		}
		if err := tc.ok(pctx); err != nil {
			t.Fatalf("%s error = %v", tc.name, err)
		}
		size++
		if !p.Recorded() {
			t.Errorf("%s succeeded but its pending entry is not marked recorded", tc.name)
		}
		es := readAudit(t, s, store.AuditFilter{AfterSeq: size - 1})
		if len(es) != 1 {
			t.Fatalf("%s appended %d audit entries, want 1", tc.name, len(es))
		}
		// The pending entry as the caller made it, with outcome ok (the
		// chain is checked by checkLog).
		want := p.Entry()
		want.Outcome, want.Reason = audit.OutcomeOK, ""
		want.Seq, want.Prev, want.Hash = size, es[0].Prev, es[0].Hash
		if want.Key != tc.key || !equalEntry(es[0], want) {
			t.Errorf("%s appended %s, want %s", tc.name, fmtEntry(es[0]), fmtEntry(want))
		}
	}
	checkLog(t, s, size)
}

// testAuditPendingOnce: a pending entry is recorded by the first write
// that succeeds, and not again by later writes with the same context; other
// calls never take it.
func testAuditPendingOnce(t *testing.T, s store.Store) {
	mustRelease(t, s, "r1")
	p, pctx := pending(audit.ActionRotate, "", "")
	// Calls that never take a pending entry.
	tn, err := s.CreateTenant(context.Background(), store.NewTenant("acme", store.EnvProduction, t0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutExportKey(pctx, store.ExportKey{Tenant: tn.ID, Release: "r1", Wrapped: []byte("wrapped"), Created: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TenantByID(pctx, tn.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(pctx, auditEntry("own", t0)); err != nil {
		t.Fatal(err)
	}
	if p.Recorded() || auditSize(t, s) != 1 {
		t.Fatalf("PutExportKey, a read and AppendAudit took the pending entry (recorded %v, %d entries, want 1)", p.Recorded(), auditSize(t, s))
	}

	if _, err := s.Rotate(pctx, rotateReq(tn.ID, store.TypeData, newKey("r1", ""), t0)); err != nil {
		t.Fatal(err)
	}
	if !p.Recorded() || auditSize(t, s) != 2 {
		t.Fatalf("Rotate with a pending entry: recorded %v, %d entries, want true and 2", p.Recorded(), auditSize(t, s))
	}
	// The same context again, for more writes.
	if _, err := s.Rotate(pctx, rotateReq(tn.ID, store.TypeDeterministic, newKey("r1", ""), t0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTenant(pctx, store.NewTenant("beta", store.EnvProduction, t0)); err != nil {
		t.Fatal(err)
	}
	if n := auditSize(t, s); n != 2 {
		t.Errorf("writes reusing a recorded pending entry's context: the log has %d entries, want 2", n)
	}
	es := checkLog(t, s, 2)
	if es[1].Action != audit.ActionRotate || es[1].Request != p.Entry().Request {
		t.Errorf("entry 2 = %s, want the pending rotation's", fmtEntry(es[1]))
	}
}

// testAuditPendingInvalid: a write whose pending entry is invalid fails
// with ErrInvalid and changes nothing: no change without its entry.
func testAuditPendingInvalid(t *testing.T, s store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	e := audit.Entry{Time: t0, Action: audit.ActionRotate} // no actor
	p := store.NewPendingAudit(e)
	pctx := store.WithAudit(ctx, p)
	_, err := s.Rotate(pctx, rotateReq(tn.ID, store.TypeData, newKey("r1", ""), t0))
	wantErr(t, "Rotate(invalid pending entry)", err, store.ErrInvalid)
	if _, err := s.ActiveKey(ctx, tn.ID, store.TypeData); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Rotate(invalid pending entry) failed but made a key: ActiveKey() error = %v", err)
	}
	_, err = s.CreateTenant(pctx, store.NewTenant("beta", store.EnvProduction, t0))
	wantErr(t, "CreateTenant(invalid pending entry)", err, store.ErrInvalid)
	if _, err := s.TenantByName(ctx, "beta"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateTenant(invalid pending entry) failed but made the tenant: TenantByName() error = %v", err)
	}
	if p.Recorded() || auditSize(t, s) != 0 {
		t.Errorf("invalid pending entry: recorded %v, %d entries, want false and none", p.Recorded(), auditSize(t, s))
	}
}
