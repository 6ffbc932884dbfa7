package auditlog_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auditlog"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/sqlite"
)

var ctx = context.Background()

var t0 = time.Date(2026, 11, 27, 12, 0, 30, 0, time.UTC)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := sqlite.OpenPath(ctx, sqlite.Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func entries(t *testing.T, l *auditlog.Log) []audit.Entry {
	t.Helper()
	var es []audit.Entry
	for e, err := range l.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	return es
}

func request(actor string, at time.Time) audit.Entry {
	return audit.Entry{Time: at, Actor: actor, Role: "app", Tenant: "t1", Action: audit.ActionEncrypt, Outcome: audit.OutcomeOK, Request: "r-" + actor}
}

// TestAggregate: operations of one caller, key, outcome and minute become
// one entry with their count; other minutes, callers and outcomes their own.
func TestAggregate(t *testing.T) {
	l := auditlog.New(openStore(t), "eu1")
	flushed := t0.Add(2 * time.Minute)
	a := auditlog.Aggregate{Now: func() time.Time { return flushed }}
	for range 3 {
		a.Count(request("alice", t0), "data/1", audit.OutcomeOK, "")
	}
	a.Count(request("alice", t0.Add(time.Minute)), "data/1", audit.OutcomeOK, "")
	a.Count(request("bob", t0), "data/1", audit.OutcomeOK, "")
	a.Count(request("alice", t0), "data/1", audit.OutcomeRefused, "decryption_failed")
	if err := a.Flush(ctx, l); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, e := range entries(t, l) {
		if !e.Time.Equal(flushed) || e.Request != "" || e.Action != audit.ActionEncrypt {
			t.Errorf("aggregate entry %+v: want the flush's time %s, no request, action %s", e, flushed, audit.ActionEncrypt)
		}
		got[e.Actor+" "+e.Detail+" "+string(e.Outcome)+" "+e.Reason] += e.Count
	}
	const m0, m1 = "aggregate of 2026-11-27T12:00:00Z to 2026-11-27T12:01:00Z", "aggregate of 2026-11-27T12:01:00Z to 2026-11-27T12:02:00Z"
	want := map[string]uint64{"alice " + m0 + " ok ": 3, "alice " + m1 + " ok ": 1, "bob " + m0 + " ok ": 1, "alice " + m0 + " refused decryption_failed": 1}
	if len(got) != len(want) {
		t.Errorf("aggregate entries = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("aggregate %q = %d, want %d", k, got[k], n)
		}
	}
	// Nothing more to flush.
	if err := a.Flush(ctx, l); err != nil || len(entries(t, l)) != 4 {
		t.Errorf("a second Flush() = %v, %d entries, want nil and still 4", err, len(entries(t, l)))
	}
}

// TestAggregateTimeNeverRunsBack: an aggregate appended after entries of
// its own minute carries a time at or after theirs (the flush's), while
// its detail keeps the minute it counts; the next entry's time is at or
// after the aggregate's.
func TestAggregateTimeNeverRunsBack(t *testing.T) {
	l := auditlog.New(openStore(t), "eu1")
	now := t0 // 12:00:30
	a := auditlog.Aggregate{Now: func() time.Time { return now }}
	a.Count(request("alice", now), "data/1", audit.OutcomeOK, "")
	now = now.Add(10 * time.Second)
	if err := l.Append(ctx, request("bob", now)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(5 * time.Second) // flushed at shutdown, within the minute
	if err := a.Flush(ctx, l); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	if err := l.Append(ctx, request("carol", now)); err != nil {
		t.Fatal(err)
	}
	es := entries(t, l)
	if len(es) != 3 || es[1].Count != 1 {
		t.Fatalf("the log = %+v, want bob's entry, the aggregate, carol's entry", es)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Time.Before(es[i-1].Time) {
			t.Errorf("entry %d at %s is before entry %d at %s", es[i].Seq, es[i].Time, es[i-1].Seq, es[i-1].Time)
		}
	}
	if want := "aggregate of 2026-11-27T12:00:00Z to 2026-11-27T12:01:00Z"; es[1].Detail != want || !es[1].Time.Equal(t0.Add(15*time.Second)) {
		t.Errorf("the aggregate = %s %q, want the flush's time and detail %q", es[1].Time, es[1].Detail, want)
	}
}

// failingStore's appends fail until ok is set.
type failingStore struct {
	*store.Store
	ok bool
}

func (f *failingStore) AppendAudit(ctx context.Context, es ...audit.Entry) ([]audit.Entry, error) {
	if !f.ok {
		return nil, errors.New("the database is gone")
	}
	return f.Store.AppendAudit(ctx, es...)
}

func (f *failingStore) AppendAuditUsage(ctx context.Context, counts []keyusage.Count, es ...audit.Entry) ([]audit.Entry, error) {
	if !f.ok {
		return nil, errors.New("the database is gone")
	}
	return f.Store.AppendAuditUsage(ctx, counts, es...)
}

// TestAggregateKeptOnFailure: counts that could not be appended are kept
// for the next flush, added to what was counted meanwhile.
func TestAggregateKeptOnFailure(t *testing.T) {
	fs := &failingStore{Store: openStore(t)}
	l := auditlog.New(fs, "eu1")
	var a auditlog.Aggregate
	a.Count(request("alice", t0), "data/1", audit.OutcomeOK, "")
	if err := a.Flush(ctx, l); err == nil {
		t.Fatal("Flush() with a failing store succeeded")
	}
	a.Count(request("alice", t0), "data/1", audit.OutcomeOK, "")
	fs.ok = true
	if err := a.Flush(ctx, l); err != nil {
		t.Fatal(err)
	}
	if es := entries(t, l); len(es) != 1 || es[0].Count != 2 {
		t.Errorf("after a failed flush, the log = %+v, want one entry counting 2", es)
	}
}

// TestCheckpointer: a checkpoint is signed when the log grew, and only then,
// the witness holds the last one, and the log verifies against its key;
// another key is not trusted.
func TestCheckpointer(t *testing.T) {
	st := openStore(t)
	l := auditlog.New(st, "eu1")
	h, err := soft.Open(ctx, filepath.Join(t.TempDir(), "eu1.hsm"), []byte("pass"), soft.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	key, err := auditlog.SigningKey(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	again, err := auditlog.SigningKey(ctx, h)
	if err != nil || !again.ECDSAPublicKey().Equal(key.ECDSAPublicKey()) {
		t.Fatalf("SigningKey() again = %v, or another key", err)
	}
	witness := filepath.Join(t.TempDir(), "audit-witness")
	cp := auditlog.NewCheckpointer(l, key, witness, nil, nil)
	count := func() int {
		cps, err := st.Checkpoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(cps)
	}
	if err := cp.Checkpoint(ctx); err != nil || count() != 0 {
		t.Fatalf("Checkpoint(empty log) = %v, %d checkpoints, want none", err, count())
	}
	for i, n := range []int{3, 0, 2} {
		for range n {
			if err := l.Append(ctx, request("alice", t0)); err != nil {
				t.Fatal(err)
			}
		}
		cp.Once(ctx)
		if want := []int{1, 1, 2}[i]; count() != want {
			t.Errorf("round %d: %d checkpoints, want %d", i, count(), want)
		}
	}
	w, err := l.ReadWitness(witness, key.ECDSAPublicKey())
	if err != nil || w.Checkpoint.Size != 5 {
		t.Fatalf("ReadWitness() = %v, %v, want the checkpoint of 5 entries", w, err)
	}
	r, err := l.Verify(ctx, []*ecdsa.PublicKey{key.ECDSAPublicKey()}, w)
	if err != nil || r.Entries != 5 || r.Checkpoints != 2 {
		t.Errorf("Verify() = %+v, %v, want 5 entries and 2 checkpoints", r, err)
	}
	if _, err := l.Verify(ctx, nil, nil); err == nil {
		t.Error("Verify(no trusted key) succeeded")
	}
}
