package postgres

import (
	"testing"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

func auditEntry(request string) audit.Entry {
	return audit.Entry{Time: storeTime, Actor: audit.ActorSystem, Role: "operator", Tenant: tenant.NewID(),
		Action: audit.ActionRotate, Key: "data/1", Outcome: audit.OutcomeOK, Remote: "192.0.2.1", Request: request,
		Detail: "detail", Count: 7}
}

// TestAuditTamper: altering any column of an entry is caught at that entry,
// since verification recomputes its hash from the columns.
func TestAuditTamper(t *testing.T) {
	s := open(t, storetest.Postgres(t))
	zeros := `decode(repeat('00', 32), 'hex')`
	storetest.AuditTamper(t, s.Store, s.db, map[string]string{
		"time": `time + interval '1 microsecond'`, "actor": `actor || 'x'`, "role": `'auditor'`,
		"tenant": `tenant || 'x'`, "action": `'key.destroy'`, "key": `key || 'x'`, "outcome": `'refused'`,
		"reason": `'forbidden'`, "remote": `remote || 'x'`, "request": `request || 'x'`, "detail": `detail || 'x'`,
		"count": `count + 1`, "prev": zeros, "hash": zeros,
	})
}

// TestAuditRetried: a lifecycle write whose commit fails with a
// serialization failure is retried, and appends its entry in the attempt
// that commits, once.
func TestAuditRetried(t *testing.T) {
	s := open(t, storetest.Postgres(t))
	tn, err := s.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, storeTime), rec)
	if err != nil {
		t.Fatal(err)
	}
	// The first commit that inserted an audit entry fails (a sequence is
	// not rolled back).
	if _, err := s.db.ExecContext(ctx, `
		CREATE SEQUENCE fail_once;
		CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('fail_once') = 1 THEN
				RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = 'serialization_failure';
			END IF;
			RETURN NULL;
		END $$;
		CREATE CONSTRAINT TRIGGER fail_once AFTER INSERT ON audit_log
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_once();`); err != nil {
		t.Fatal(err)
	}
	e := auditEntry("settings")
	e.Action, e.Tenant, e.Key = "tenant.settings", tn.ID, ""
	if _, err := s.SetDerivationOptOut(ctx, tn.ID, false, e); err != nil {
		t.Fatalf("SetDerivationOptOut() error = %v, want the retry to succeed", err)
	}
	var calls int64
	if err := s.db.QueryRowContext(ctx, `SELECT last_value FROM fail_once`).Scan(&calls); err != nil || calls != 2 {
		t.Fatalf("the trigger ran %d times, %v, want 2 (a failed attempt, then the retry)", calls, err)
	}
	// The tenant's creation, then the retried change's entry, once.
	r, err := audit.Verify("strongroom/test/audit", nil, nil, storetest.AuditEntries(s.Store))
	if err != nil || r.Entries != 2 {
		t.Errorf("audit.Verify() = %d entries, %v, want 2", r.Entries, err)
	}
	var got []audit.Entry
	for e, err := range storetest.AuditEntries(s.Store) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[1].Request != "settings" || got[1].Action != "tenant.settings" {
		t.Errorf("the log = %v, want the creation and then the settings change once", got)
	}
}
