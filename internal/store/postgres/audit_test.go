package postgres

import (
	"errors"
	"iter"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
)

func auditEntry(request string) audit.Entry {
	return audit.Entry{Time: storeTime, Actor: audit.ActorSystem, Role: "operator", Tenant: store.NewID(),
		Action: audit.ActionRotate, Key: "data/1", Outcome: audit.OutcomeOK, Remote: "192.0.2.1", Request: request,
		Detail: "detail", Count: 7}
}

func entries(s *Store) iter.Seq2[audit.Entry, error] {
	return func(yield func(audit.Entry, error) bool) {
		stop := errors.New("stop")
		err := s.AuditEntries(ctx, store.AuditFilter{}, func(e audit.Entry) error {
			if !yield(e, nil) {
				return stop
			}
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			yield(audit.Entry{}, err)
		}
	}
}

// TestAuditTamper: altering any column of an entry is caught at that entry,
// since verification recomputes its hash from the columns.
func TestAuditTamper(t *testing.T) {
	s := open(t, storetest.Postgres(t))
	if _, err := s.AppendAudit(ctx, auditEntry("one"), auditEntry("two"), auditEntry("three")); err != nil {
		t.Fatal(err)
	}
	if r, err := audit.Verify("strongroom/test/audit", nil, nil, entries(s)); err != nil || r.Entries != 3 {
		t.Fatalf("audit.Verify(untouched log) = %d entries, %v, want 3", r.Entries, err)
	}
	if _, err := s.pool.Exec(ctx, `CREATE TABLE audit_backup AS SELECT * FROM audit_log`); err != nil {
		t.Fatal(err)
	}
	zeros := `decode(repeat('00', 32), 'hex')`
	for col, set := range map[string]string{
		"time": `time + interval '1 microsecond'`, "actor": `actor || 'x'`, "role": `'auditor'`,
		"tenant": `tenant || 'x'`, "action": `'key.destroy'`, "key": `key || 'x'`, "outcome": `'refused'`,
		"reason": `'forbidden'`, "remote": `remote || 'x'`, "request": `request || 'x'`, "detail": `detail || 'x'`,
		"count": `count + 1`, "prev": zeros, "hash": zeros,
	} {
		if _, err := s.pool.Exec(ctx, `UPDATE audit_log SET `+col+` = `+set+` WHERE seq = 2`); err != nil {
			t.Fatalf("altering %s: %v", col, err)
		}
		_, err := audit.Verify("strongroom/test/audit", nil, nil, entries(s))
		var bad *audit.BadEntryError
		if !errors.As(err, &bad) || bad.Seq != 2 {
			t.Errorf("audit.Verify(entry 2's %s altered) error = %v, want entry 2 named", col, err)
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM audit_backup`); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAuditRetried: a lifecycle write whose commit fails with a
// serialization failure is retried, and appends its pending entry in the
// attempt that commits, once.
func TestAuditRetried(t *testing.T) {
	s := open(t, storetest.Postgres(t))
	tn, err := s.CreateTenant(ctx, store.NewTenant("acme", store.EnvProduction, storeTime))
	if err != nil {
		t.Fatal(err)
	}
	// The first commit that inserted an audit entry fails (a sequence is
	// not rolled back).
	if _, err := s.pool.Exec(ctx, `
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
	p := store.NewPendingAudit(e)
	if _, err := s.SetDerivationOptOut(store.WithAudit(ctx, p), tn.ID, false); err != nil {
		t.Fatalf("SetDerivationOptOut() error = %v, want the retry to succeed", err)
	}
	var calls int64
	if err := s.pool.QueryRow(ctx, `SELECT last_value FROM fail_once`).Scan(&calls); err != nil || calls != 2 {
		t.Fatalf("the trigger ran %d times, %v, want 2 (a failed attempt, then the retry)", calls, err)
	}
	if !p.Recorded() {
		t.Error("the retried write did not mark its pending entry recorded")
	}
	r, err := audit.Verify("strongroom/test/audit", nil, nil, entries(s))
	if err != nil || r.Entries != 1 {
		t.Errorf("audit.Verify() = %d entries, %v, want 1", r.Entries, err)
	}
}
