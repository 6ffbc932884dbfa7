package sqlite

import (
	"errors"
	"iter"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
)

var auditTime = time.Date(2026, 3, 1, 9, 30, 0, 123456000, time.UTC)

func auditEntry(request string) audit.Entry {
	return audit.Entry{Time: auditTime, Actor: audit.ActorSystem, Role: "operator", Tenant: store.NewID(),
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
	s := openFile(t).(*Store)
	if _, err := s.AppendAudit(ctx, auditEntry("one"), auditEntry("two"), auditEntry("three")); err != nil {
		t.Fatal(err)
	}
	if r, err := audit.Verify("strongroom/test/audit", nil, nil, entries(s)); err != nil || r.Entries != 3 {
		t.Fatalf("audit.Verify(untouched log) = %d entries, %v, want 3", r.Entries, err)
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE audit_backup AS SELECT * FROM audit_log`); err != nil {
		t.Fatal(err)
	}
	for col, set := range map[string]string{
		"time": `time + 1`, "actor": `actor || 'x'`, "role": `'auditor'`,
		"tenant": `tenant || 'x'`, "action": `'key.destroy'`, "key": `key || 'x'`, "outcome": `'refused'`,
		"reason": `'forbidden'`, "remote": `remote || 'x'`, "request": `request || 'x'`, "detail": `detail || 'x'`,
		"count": `count + 1`, "prev": `zeroblob(32)`, "hash": `zeroblob(32)`,
	} {
		if _, err := s.db.ExecContext(ctx, `UPDATE audit_log SET `+col+` = `+set+` WHERE seq = 2`); err != nil {
			t.Fatalf("altering %s: %v", col, err)
		}
		_, err := audit.Verify("strongroom/test/audit", nil, nil, entries(s))
		var bad *audit.BadEntryError
		if !errors.As(err, &bad) || bad.Seq != 2 {
			t.Errorf("audit.Verify(entry 2's %s altered) error = %v, want entry 2 named", col, err)
		}
		if _, err := s.db.ExecContext(ctx, `DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM audit_backup`); err != nil {
			t.Fatal(err)
		}
	}
}
