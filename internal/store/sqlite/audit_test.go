package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/store/storetest"
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
