package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// TestAuditTamper: altering any column of an entry is caught at that entry,
// since verification recomputes its hash from the columns.
func TestAuditTamper(t *testing.T) {
	s, e, err := open(ctx, filepath.Join(t.TempDir(), "strongroom.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.AuditTamper(t, s, e.db, map[string]string{
		"time": `time + 1`, "actor": `actor || 'x'`, "role": `'auditor'`,
		"tenant": `tenant || 'x'`, "action": `'key.destroy'`, "key": `key || 'x'`, "outcome": `'refused'`,
		"reason": `'forbidden'`, "remote": `remote || 'x'`, "request": `request || 'x'`, "detail": `detail || 'x'`,
		"count": `count + 1`, "prev": `zeroblob(32)`, "hash": `zeroblob(32)`,
	})
}

// TestAppendPreparedAcrossSchemaChange: the durable append's statements,
// prepared once per connection (store/stmts.go), keep working on every
// connection of the pool, from two stores on one file, after another
// connection changed the schema (SQLite recompiles them).
func TestAppendPreparedAcrossSchemaChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strongroom.db")
	a, e, err := open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenPath(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const tenantID = "0123456789abcdef0123456789abcdef"
	ref := tenant.KeyRef{Tenant: tenantID, Type: tenant.TypeData, Version: 1}
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	appendSome := func(round int) {
		t.Helper()
		errs := storetest.AtOnce(8, func(i int) error {
			s := a
			if i%2 == 1 {
				s = b
			}
			_, err := s.AppendAuditUsage(ctx, []keyusage.Count{{Key: ref, Deliveries: 1, LastDelivery: at}},
				audit.Entry{Time: at, Actor: fmt.Sprintf("app-%d-%d", round, i), Role: "app", Tenant: tenantID,
					Action: audit.ActionDeliver, Key: "data/1", Outcome: audit.OutcomeOK})
			return err
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: append %d: %v", round, i, err)
			}
		}
	}
	appendSome(1)
	if _, err := e.db.ExecContext(ctx, `CREATE TABLE scratch (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	appendSome(2)
	var seqs []uint64
	for en, err := range storetest.AuditEntries(a) {
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, en.Seq)
	}
	if len(seqs) != 16 || seqs[0] != 1 || seqs[15] != 16 {
		t.Errorf("the log holds entries %v, want 1 to 16", seqs)
	}
	if r, err := audit.Verify("strongroom/test/audit", nil, nil, storetest.AuditEntries(b)); err != nil || r.Entries != 16 {
		t.Errorf("audit.Verify() = %d entries, %v; want 16 and a whole chain", r.Entries, err)
	}
}
