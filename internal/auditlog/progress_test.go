package auditlog_test

import (
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/auditlog"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
)

// TestProgress: Progress follows the witness (read at Load, signed since)
// and counts Once's rounds by outcome, a refusal included.
func TestProgress(t *testing.T) {
	n := newNode(t, engines["sqlite"](t), "eu1")
	if p := n.cp.Progress(); p != (auditlog.Progress{}) {
		t.Fatalf("Progress() of a new checkpointer = %+v, want zero", p)
	}
	n.append(t, 5)
	before := time.Now().Add(-time.Second)
	n.cp.Once(ctx)
	p := n.cp.Progress()
	if p.Size != 5 || p.Signed.Before(before) || p.Rounds != 1 || p.Refused != 0 || p.Failed != 0 {
		t.Fatalf("Progress() after signing 5 entries = %+v", p)
	}
	n.cp.Once(ctx) // nothing new: a round, no new checkpoint
	if q := n.cp.Progress(); q.Size != 5 || !q.Signed.Equal(p.Signed) || q.Rounds != 2 {
		t.Fatalf("Progress() after a round with nothing to sign = %+v, want %+v with 2 rounds", q, p)
	}

	// A restarted node knows its witness from Load.
	n.restart(t)
	if err := n.cp.Load(); err != nil {
		t.Fatal(err)
	}
	if q := n.cp.Progress(); q.Size != 5 || !q.Signed.Equal(p.Signed) || q.Rounds != 0 {
		t.Fatalf("Progress() after Load = %+v, want size 5 signed at %v", q, p.Signed)
	}

	storetest.ForgeAudit(t, n.st, n.db.raw, 2, "nothing happened")
	n.cp.Once(ctx)
	if q := n.cp.Progress(); q.Rounds != 1 || q.Refused != 1 || q.Size != 5 {
		t.Fatalf("Progress() after a refused round = %+v, want 1 round refused, still size 5", q)
	}
}
