package storetest

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The checks that an engine's own tests run with SQL of their dialect: an
// outsider's writes to the audit log, and a database migrated from schema
// version 1.

// AuditTamper appends three entries to s, then, for each column of the
// audit log, alters entry 2's column through db (a handle of its own, as
// someone with write access to the database would) with the engine's
// expression in alter (column → the new value, e.g. "count + 1"), and
// checks that audit.Verify names entry 2, restoring the log between
// columns. alter must cover every column of an entry.
func AuditTamper(t *testing.T, s *store.Store, db *sql.DB, alter map[string]string) {
	t.Helper()
	for _, col := range []string{"time", "actor", "role", "tenant", "action", "key", "outcome", "reason", "remote",
		"request", "detail", "count", "prev", "hash"} {
		if alter[col] == "" {
			t.Fatalf("AuditTamper: no alteration of column %s", col)
		}
	}
	var es []audit.Entry
	for _, r := range []string{"one", "two", "three"} {
		e := auditEntry(r, t0)
		e.Action, e.Key, e.Count, e.Role, e.Tenant = audit.ActionRotate, "data/1", 7, "operator", tenant.NewID()
		e.Remote, e.Detail = "192.0.2.1", "detail"
		es = append(es, e)
	}
	if _, err := s.AppendAudit(ctx, es...); err != nil {
		t.Fatal(err)
	}
	if r, err := audit.Verify("strongroom/test/audit", nil, nil, AuditEntries(s)); err != nil || r.Entries != 3 {
		t.Fatalf("audit.Verify(untouched log) = %d entries, %v, want 3", r.Entries, err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE audit_backup AS SELECT * FROM audit_log`); err != nil {
		t.Fatal(err)
	}
	for col, set := range alter {
		if _, err := db.ExecContext(ctx, `UPDATE audit_log SET `+col+` = `+set+` WHERE seq = 2`); err != nil {
			t.Fatalf("altering %s: %v", col, err)
		}
		_, err := audit.Verify("strongroom/test/audit", nil, nil, AuditEntries(s))
		var bad *audit.BadEntryError
		if !errors.As(err, &bad) || bad.Seq != 2 {
			t.Errorf("audit.Verify(entry 2's %s altered) error = %v, want entry 2 named", col, err)
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM audit_log`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO audit_log SELECT * FROM audit_backup`); err != nil {
			t.Fatal(err)
		}
	}
}

// ForgeAudit rewrites the log of s as someone with write access to its
// database alone could, through db (a handle of its own): entry seq's
// detail becomes detail, that entry's and every later entry's prev and hash
// are recomputed, the audit_state row is rewritten to match, and every
// checkpoint is deleted. The forged log's chain holds and its state agrees
// with it; only a checkpoint kept outside the database tells. The SQL is
// the same on both engines.
func ForgeAudit(t testing.TB, s *store.Store, db *sql.DB, seq uint64, detail string) {
	t.Helper()
	var es []audit.Entry
	if err := s.AuditEntries(ctx, store.AuditFilter{}, func(e audit.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	var st audit.State
	for _, e := range es {
		content := e
		content.Seq, content.Prev, content.Hash = 0, [32]byte{}, [32]byte{}
		if e.Seq == seq {
			content.Detail = detail
		}
		f, err := st.Append(content)
		if err != nil {
			t.Fatalf("ForgeAudit: chaining entry %d: %v", e.Seq, err)
		}
		if e.Seq < seq {
			continue
		}
		if _, err := db.ExecContext(ctx, `UPDATE audit_log SET detail = $1, prev = $2, hash = $3 WHERE seq = $4`,
			f.Detail, f.Prev[:], f.Hash[:], int64(f.Seq)); err != nil {
			t.Fatalf("ForgeAudit: rewriting entry %d: %v", e.Seq, err)
		}
	}
	if uint64(len(es)) < seq {
		t.Fatalf("ForgeAudit: the log has %d entries, none is %d", len(es), seq)
	}
	state, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE audit_state SET state = $1 WHERE id = 1`, state); err != nil {
		t.Fatalf("ForgeAudit: rewriting the state: %v", err)
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM audit_checkpoints`); err != nil {
		t.Fatalf("ForgeAudit: deleting the checkpoints: %v", err)
	}
}

// MigratedV1 checks a store that was opened on a database of schema
// version 1 holding tenantID with data keys v1 (destroyed at 1 s after the
// epoch) and v2 (active), all under release r1: every migration applied
// once (the count of schema_migrations rows, read through db), the data
// kept, and the later tables usable.
func MigratedV1(t *testing.T, s *store.Store, db *sql.DB, tenantID string, migrations int) {
	t.Helper()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != migrations {
		t.Errorf("schema_migrations has %d rows, %v, want %d", n, err, migrations)
	}
	ks, err := s.DestroyedSince(ctx, time.Time{})
	if err != nil || len(ks) != 1 || ks[0].Version != 1 || !ks[0].Destroyed.Equal(time.Unix(1, 0)) {
		t.Errorf("DestroyedSince() after migrating = %+v, %v, want v1 destroyed at 1 s", ks, err)
	}
	if _, err := s.PutExportKey(ctx, tenant.ExportKey{Tenant: tenantID, Release: "r1", Wrapped: []byte{1}, Created: time.Now()}, rec); err != nil {
		t.Errorf("PutExportKey() after migrating error = %v", err)
	}
	if k, err := s.ActiveKey(ctx, tenantID, tenant.TypeData); err != nil || k.Version != 2 {
		t.Errorf("ActiveKey() after migrating = v%d, %v, want v2", k.Version, err)
	}
	entry := audit.Entry{Time: time.Now(), Actor: audit.ActorCLI, Tenant: tenantID, Action: audit.ActionDestroy, Key: "data/2"}
	if _, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: tenantID, Type: tenant.TypeData, Version: 2}, time.Now(), entry); err != nil {
		t.Errorf("DestroyKey() with an audit entry after migrating: error = %v", err)
	}
	if st, err := s.AuditState(ctx); err != nil || st.Size() != 2 {
		t.Errorf("AuditState() after migrating and two audited writes = size %d, %v, want 2", st.Size(), err)
	}
}
