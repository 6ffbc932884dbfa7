package storetest

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The conformance tests of the audit log: appending, reading, filters,
// checkpoints and concurrency. The entries that lifecycle writes append in
// their own transaction are tested in audit_lifecycle.go.

// auditOrigin is the log name the suite verifies under (no checkpoint is
// signed: audit.Verify then checks the chain only).
const auditOrigin = "strongroom/storetest/audit"

// auditEntry is a valid entry, told apart from others by request.
func auditEntry(request string, at time.Time) audit.Entry {
	return audit.Entry{Time: at, Actor: audit.ActorSystem, Action: audit.ActionGenerate, Outcome: audit.OutcomeOK,
		Request: request}
}

func equalEntry(a, b audit.Entry) bool {
	at, bt := a.Time, b.Time
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b && at.Equal(bt)
}

func fmtEntry(e audit.Entry) string {
	return fmt.Sprintf("{seq=%d %s actor=%q role=%q tenant=%q %s key=%q %s reason=%q remote=%q request=%q detail=%q count=%d prev=%x… hash=%x…}",
		e.Seq, e.Time.Format(time.RFC3339Nano), e.Actor, e.Role, e.Tenant, e.Action, e.Key, e.Outcome, e.Reason,
		e.Remote, e.Request, e.Detail, e.Count, e.Prev[:4], e.Hash[:4])
}

// readAudit returns the entries that f selects.
func readAudit(t *testing.T, s *store.Store, f store.AuditFilter) []audit.Entry {
	t.Helper()
	var es []audit.Entry
	if err := s.AuditEntries(ctx, f, func(e audit.Entry) error {
		es = append(es, e)
		return nil
	}); err != nil {
		t.Fatalf("AuditEntries(%+v) error = %v", f, err)
	}
	return es
}

// AuditEntries streams the whole log of s, for audit.Verify.
func AuditEntries(s *store.Store) iter.Seq2[audit.Entry, error] {
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

// checkLog verifies the whole log (the chain: there are no checkpoints),
// checks that it has size entries, and that AuditState agrees with what
// audit.State computes over the same entries' content. It returns the
// entries.
func checkLog(t *testing.T, s *store.Store, size uint64) []audit.Entry {
	t.Helper()
	r, err := audit.Verify(auditOrigin, nil, nil, AuditEntries(s))
	if err != nil || r.Entries != size {
		t.Fatalf("audit.Verify(the stored log) = %d entries, %v, want %d and no error", r.Entries, err, size)
	}
	es := readAudit(t, s, store.AuditFilter{})
	var want audit.State
	for i, e := range es {
		content := e
		content.Seq, content.Prev, content.Hash = 0, [32]byte{}, [32]byte{}
		c, err := want.Append(content)
		if err != nil || !equalEntry(c, e) {
			t.Fatalf("entry %d as stored = %s, but chaining its content gives %s, %v", i, fmtEntry(e), fmtEntry(c), err)
		}
	}
	st, err := s.AuditState(ctx)
	if err != nil {
		t.Fatalf("AuditState() error = %v", err)
	}
	if st.Size() != want.Size() || st.Head() != want.Head() || st.Root() != want.Root() {
		t.Fatalf("AuditState() = size %d, head %x, root %x; want %d, %x, %x (computed over the stored entries)",
			st.Size(), st.Head().Hash, st.Root(), want.Size(), want.Head().Hash, want.Root())
	}
	if st.Head() != r.Head || st.Root() != r.Root {
		t.Fatalf("AuditState() head/root differ from audit.Verify's report")
	}
	return es
}

func testAuditAppend(t *testing.T, s *store.Store) {
	st, err := s.AuditState(ctx)
	if err != nil || st.Size() != 0 || st.Head() != (audit.Head{}) || st.Root() != audit.EmptyRoot {
		t.Fatalf("AuditState() of a fresh store = size %d, head %+v, root %x, %v; want the empty log's", st.Size(), st.Head(), st.Root(), err)
	}
	if es := readAudit(t, s, store.AuditFilter{}); len(es) != 0 {
		t.Fatalf("AuditEntries() of a fresh store = %d entries, want none", len(es))
	}
	if got, err := s.AppendAudit(ctx); err != nil || len(got) != 0 {
		t.Fatalf("AppendAudit() with no entries = %v, %v, want nothing", got, err)
	}

	// Times are truncated to the microsecond and stored in UTC.
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	first := auditEntry("req-1", time.Date(2026, 3, 1, 15, 0, 0, 123456789, zone))
	first.Role, first.Tenant, first.Key, first.Remote = "operator", tenant.NewID(), "data/3", "192.0.2.10"
	got, err := s.AppendAudit(ctx, first)
	want, _ := audit.Chain(audit.Head{}, first)
	if err != nil || len(got) != 1 || !equalEntry(got[0], want) || got[0].Time.Location() != time.UTC {
		t.Fatalf("AppendAudit(first) = %v, %v, want [%s] in UTC", got, err, fmtEntry(want))
	}
	if want.Seq != 1 || want.Prev != [32]byte{} || want.Time.Nanosecond() != 123456000 {
		t.Fatalf("audit.Chain(first) = %s: the test's expectations are wrong", fmtEntry(want))
	}

	// Several in one call, of every kind of field.
	refused := auditEntry("req-2", t0)
	refused.Action, refused.Outcome, refused.Reason, refused.Actor = audit.ActionTokenUse, audit.OutcomeRefused, "unauthenticated", audit.ActorAnonymous
	agg := auditEntry("req-3", t0.Add(time.Minute))
	agg.Action, agg.Count, agg.Detail = audit.ActionEncrypt, store.MaxAuditCount, "aggregate — 1 minute, ünïcödé"
	failed := auditEntry("", t0.Add(2*time.Minute))
	failed.Action, failed.Outcome, failed.Reason = "ceremony.step", audit.OutcomeError, "hsm_error"
	more, err := s.AppendAudit(ctx, refused, agg, failed)
	if err != nil || len(more) != 3 {
		t.Fatalf("AppendAudit(3 entries) = %d entries, %v, want 3", len(more), err)
	}
	head := got[0].Head()
	for i, e := range more {
		w, _ := audit.Chain(head, []audit.Entry{refused, agg, failed}[i])
		if !equalEntry(e, w) {
			t.Errorf("AppendAudit(3 entries)[%d] = %s, want %s", i, fmtEntry(e), fmtEntry(w))
		}
		head = w.Head()
	}

	stored := checkLog(t, s, 4)
	for i, w := range append(got, more...) {
		if !equalEntry(stored[i], w) || stored[i].Time.Location() != time.UTC {
			t.Errorf("AuditEntries()[%d] = %s, want %s (in UTC), as AppendAudit returned it", i, fmtEntry(stored[i]), fmtEntry(w))
		}
	}
}

// testAuditTimeOrder: time never runs backwards in the log: an entry
// stamped before the last one (a request that began earlier but commits
// later) is stored with the last one's time, alone or in a batch.
func testAuditTimeOrder(t *testing.T, s *store.Store) {
	late := auditEntry("late", t0.Add(time.Hour))
	early := auditEntry("early", t0)
	earlier := auditEntry("earlier", t0.Add(-time.Minute))
	if _, err := s.AppendAudit(ctx, late); err != nil {
		t.Fatal(err)
	}
	got, err := s.AppendAudit(ctx, early, earlier, auditEntry("later", t0.Add(2*time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Time{t0.Add(time.Hour), t0.Add(time.Hour), t0.Add(2 * time.Hour)} {
		if !got[i].Time.Equal(want) {
			t.Errorf("AppendAudit(...)[%d].Time = %s, want %s (never before the entry before it)", i, got[i].Time, want)
		}
	}
	stored := checkLog(t, s, 4)
	for i := 1; i < len(stored); i++ {
		if stored[i].Time.Before(stored[i-1].Time) {
			t.Errorf("entry %d (%s) is stored before entry %d (%s) in time", stored[i].Seq, stored[i].Time, stored[i-1].Seq, stored[i-1].Time)
		}
	}
}

// testAuditInvalid: an invalid entry stores nothing, not even the valid
// entries of the same call, and the error does not quote it.
func testAuditInvalid(t *testing.T, s *store.Store) {
	if _, err := s.AppendAudit(ctx, auditEntry("first", t0)); err != nil {
		t.Fatal(err)
	}
	before, err := s.AuditState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "hunter2-s3cr3t"
	for _, tc := range []struct {
		name, field string
		edit        func(e *audit.Entry)
	}{
		{"no actor", "actor", func(e *audit.Entry) { e.Actor = "" }},
		{"control character", "detail", func(e *audit.Entry) { e.Detail = secret + "\x00" }},
		{"long remote", "remote", func(e *audit.Entry) { e.Remote = secret + strings.Repeat("x", 200) }},
		{"bad action", "action", func(e *audit.Entry) { e.Action = audit.Action("Key.Rotate " + secret) }},
		{"ok with a reason", "reason", func(e *audit.Entry) { e.Reason = "forbidden" }},
		{"refused without a reason", "reason", func(e *audit.Entry) { e.Outcome = audit.OutcomeRefused }},
		{"unknown outcome", "outcome", func(e *audit.Entry) { e.Outcome = audit.Outcome(secret) }},
		{"no time", "time", func(e *audit.Entry) { e.Time = time.Time{} }},
		{"count too large", "count", func(e *audit.Entry) { e.Count = math.MaxUint64 }},
	} {
		bad := auditEntry("bad", t0)
		tc.edit(&bad)
		_, err := s.AppendAudit(ctx, auditEntry("good", t0), bad)
		wantErr(t, "AppendAudit("+tc.name+")", err, store.ErrInvalid)
		if err != nil && (!strings.Contains(err.Error(), tc.field) || strings.Contains(err.Error(), "hunter2")) {
			t.Errorf("AppendAudit(%s) error %q: want it to name the field %s and not to quote the entry", tc.name, err, tc.field)
		}
	}
	after, err := s.AuditState(ctx)
	if err != nil || after.Size() != 1 || after.Head() != before.Head() || after.Root() != before.Root() {
		t.Errorf("AuditState() after refused appends = size %d, %v; want it unchanged (size 1)", after.Size(), err)
	}
	if es := checkLog(t, s, 1); es[0].Request != "first" {
		t.Errorf("the log holds %s, want only the first entry", fmtEntry(es[0]))
	}
	// The next append continues the chain.
	if got, err := s.AppendAudit(ctx, auditEntry("second", t0)); err != nil || got[0].Seq != 2 {
		t.Fatalf("AppendAudit(after refusals) = %v, %v, want seq 2", got, err)
	}
	checkLog(t, s, 2)
}

// matches is the suite's own reading of an AuditFilter.
func matches(f store.AuditFilter, e audit.Entry) bool {
	switch {
	case f.Tenant != "" && e.Tenant != f.Tenant,
		f.Key != "" && strings.Contains(f.Key, "/") && e.Key != f.Key,
		f.Key != "" && !strings.Contains(f.Key, "/") && e.Key != f.Key && !strings.HasPrefix(e.Key, f.Key+"/"),
		!f.Since.IsZero() && e.Time.Before(f.Since),
		!f.Until.IsZero() && !e.Time.Before(f.Until),
		e.Seq <= f.AfterSeq:
		return false
	}
	return true
}

func testAuditFilters(t *testing.T, s *store.Store) {
	a, b := tenant.NewID(), tenant.NewID()
	// Entries 1 µs apart from t0, then a minute apart.
	var in []audit.Entry
	for i, x := range []struct{ tenant, key string }{
		{a, "data/1"}, {a, "data/2"}, {a, "data"}, {a, "database/1"}, {a, "deterministic/1"},
		{b, "data/1"}, {b, ""}, {"", ""}, {a, "data/10"}, {b, "data/2"},
	} {
		at := t0.Add(time.Duration(i) * time.Microsecond)
		if i >= 5 {
			at = t0.Add(time.Duration(i) * time.Minute)
		}
		e := auditEntry(fmt.Sprintf("req-%d", i), at)
		e.Tenant, e.Key = x.tenant, x.key
		in = append(in, e)
	}
	all, err := s.AppendAudit(ctx, in...)
	if err != nil {
		t.Fatal(err)
	}
	t2 := all[2].Time // entry seq 3
	for _, f := range []store.AuditFilter{
		{},
		{Tenant: a},
		{Tenant: b},
		{Tenant: tenant.NewID()},
		{Key: "data/1"},
		{Key: "data"},
		{Key: "data/"},
		{Key: "database"},
		{Tenant: b, Key: "data"},
		{Since: t2},
		{Since: t2.Add(time.Nanosecond)}, // rounded up: entry 3 is before it
		{Until: t2.Add(time.Nanosecond)}, // rounded up: entry 3 is before it
		{Until: t2},                      // entry 3 is not before it
		{Since: t2, Until: t0.Add(7 * time.Minute)},
		{Since: t2.In(time.FixedZone("UTC-8", -8*3600))},
		{AfterSeq: 4},
		{AfterSeq: 10},
		{AfterSeq: math.MaxUint64},
		{Limit: 3},
		{Tenant: a, AfterSeq: 2, Limit: 2},
		{Key: "data", Since: t0.Add(time.Microsecond), Limit: 100},
	} {
		var want []audit.Entry
		for _, e := range all {
			if matches(f, e) && (f.Limit == 0 || len(want) < f.Limit) {
				want = append(want, e)
			}
		}
		got := readAudit(t, s, f)
		if !slices.EqualFunc(got, want, equalEntry) {
			t.Errorf("AuditEntries(%+v) = seqs %v, want %v", f, seqs(got), seqs(want))
		}
	}

	// fn's error stops the walk and is returned; fn may use the store.
	stop := errors.New("enough")
	calls := 0
	err = s.AuditEntries(ctx, store.AuditFilter{}, func(e audit.Entry) error {
		calls++
		if _, err := s.AuditState(ctx); err != nil {
			return err
		}
		if e.Seq == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 3 {
		t.Errorf("AuditEntries(fn fails at seq 3) = %v after %d calls, want %v after 3", err, calls, stop)
	}
	err = s.AuditEntries(ctx, store.AuditFilter{Limit: -1}, func(audit.Entry) error { return nil })
	wantErr(t, "AuditEntries(Limit -1)", err, store.ErrInvalid)
	err = s.AuditEntries(ctx, store.AuditFilter{}, nil)
	wantErr(t, "AuditEntries(nil fn)", err, store.ErrInvalid)
	err = s.AuditEntries(ctx, store.AuditFilter{Since: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, func(audit.Entry) error { return nil })
	wantErr(t, "AuditEntries(Since year 10000)", err, store.ErrInvalid)
}

func seqs(es []audit.Entry) []uint64 {
	s := make([]uint64, len(es))
	for i, e := range es {
		s[i] = e.Seq
	}
	return s
}

// testAuditMany: more entries than the store reads at once, with and without
// filters and limits.
func testAuditMany(t *testing.T, s *store.Store) {
	a, b := tenant.NewID(), tenant.NewID()
	const n = 1234
	var in []audit.Entry
	for i := range n {
		e := auditEntry(fmt.Sprintf("req-%d", i), t0.Add(time.Duration(i)*time.Second))
		e.Tenant = a
		if i%3 == 0 {
			e.Tenant = b
		}
		in = append(in, e)
	}
	for chunk := range slices.Chunk(in, 500) {
		if _, err := s.AppendAudit(ctx, chunk...); err != nil {
			t.Fatal(err)
		}
	}
	all := checkLog(t, s, n)
	for _, f := range []store.AuditFilter{
		{Limit: 500}, {Limit: 501}, {Limit: 1000}, {AfterSeq: 499, Limit: 600},
		{Tenant: a}, {Tenant: b, Limit: 400}, {Tenant: a, Since: t0.Add(100 * time.Second), Until: t0.Add(1100 * time.Second)},
	} {
		var want []audit.Entry
		for _, e := range all {
			if matches(f, e) && (f.Limit == 0 || len(want) < f.Limit) {
				want = append(want, e)
			}
		}
		if got := readAudit(t, s, f); !slices.EqualFunc(got, want, equalEntry) {
			t.Errorf("AuditEntries(%+v) = %d entries (seqs %d…), want %d", f, len(got), seqs(got[:min(3, len(got))]), len(want))
		}
	}
}

func testAuditCheckpoints(t *testing.T, s *store.Store) {
	if cps, err := s.Checkpoints(ctx); err != nil || len(cps) != 0 {
		t.Fatalf("Checkpoints() of a fresh store = %q, %v, want none", cps, err)
	}
	add := func(size uint64, b string) {
		t.Helper()
		if err := s.AddCheckpoint(ctx, size, []byte(b)); err != nil {
			t.Fatalf("AddCheckpoint(%d, %q) error = %v", size, b, err)
		}
	}
	add(2, "checkpoint 2 a")
	add(1, "checkpoint 1")
	add(2, "checkpoint 2 b")
	add(0, "checkpoint 0")
	add(2, "checkpoint 2 a") // again: a no-op
	add(1, "checkpoint 1")
	want := []string{"checkpoint 0", "checkpoint 1", "checkpoint 2 a", "checkpoint 2 b"}
	cps, err := s.Checkpoints(ctx)
	if err != nil || len(cps) != len(want) {
		t.Fatalf("Checkpoints() = %q, %v, want %q", cps, err, want)
	}
	for i, w := range want {
		if string(cps[i]) != w {
			t.Errorf("Checkpoints()[%d] = %q, want %q", i, cps[i], w)
		}
	}
	for _, tc := range []struct {
		name   string
		size   uint64
		signed []byte
	}{
		{"empty", 1, nil},
		{"too long", 1, make([]byte, store.MaxCheckpoint+1)},
		{"size too large", math.MaxUint64, []byte("checkpoint")},
	} {
		wantErr(t, "AddCheckpoint("+tc.name+")", s.AddCheckpoint(ctx, tc.size, tc.signed), store.ErrInvalid)
	}
	if err := s.AddCheckpoint(ctx, 3, make([]byte, store.MaxCheckpoint)); err != nil {
		t.Errorf("AddCheckpoint(MaxCheckpoint bytes) error = %v", err)
	}
}

func testAuditConcurrent(t *testing.T, s *store.Store) { auditConcurrent(t, s, s) }

// auditConcurrent: 8 goroutines × 25 appends, and rotations of two series
// with their entries (some refused), at once, alternating between a and
// b: the log has every entry once, without gaps, and verifies.
func auditConcurrent(t *testing.T, a, b *store.Store) {
	nodes := []*store.Store{a, b}
	tenants := []tenant.Tenant{mustTenant(t, a, "acme"), mustTenant(t, a, "other")}
	mustRelease(t, a, "r1")
	const appenders, appends, rotators, rotations = 8, 25, 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, appenders*appends+2*rotators*rotations)
	for g := range appenders {
		wg.Go(func() {
			s := nodes[g%2]
			for i := range appends {
				if _, err := s.AppendAudit(ctx, auditEntry(fmt.Sprintf("append-%d-%d", g, i), t0)); err != nil {
					errs <- fmt.Errorf("AppendAudit(g%d #%d): %w", g, i, err)
				}
			}
		})
	}
	for g := range rotators {
		wg.Go(func() {
			s, tn := nodes[(g+1)%2], tenants[g%2]
			for i := range rotations {
				e := auditEntry(fmt.Sprintf("rotate-%d-%d", g, i), t0)
				e.Action, e.Tenant, e.Key = audit.ActionRotate, tn.ID, tenant.TypeData
				req := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0)
				req.MinInterval, req.MaxKeys = 0, 1000
				if _, err := s.Rotate(ctx, req, e); err != nil {
					errs <- fmt.Errorf("Rotate(g%d #%d): %w", g, i, err)
				}
				// Refused: the release is not installed.
				e.Request += "-refused"
				_, err := s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeData, newKey("no-such-release", ""), t0), e)
				if !errors.Is(err, store.ErrNotFound) {
					errs <- fmt.Errorf("Rotate(g%d #%d, unknown release) error = %v, want ErrNotFound", g, i, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	const setup = 3 // two tenants and a release, each with the suite's rec
	const size = setup + appenders*appends + rotators*rotations
	for _, s := range nodes {
		es := checkLog(t, s, size)
		seen := make(map[string]bool)
		for _, e := range es[setup:] {
			if seen[e.Request] {
				t.Errorf("entry %q is in the log twice", e.Request)
			}
			seen[e.Request] = true
			if strings.HasSuffix(e.Request, "-refused") {
				t.Errorf("the refused rotation %q is in the log", e.Request)
			}
			if e.Action == audit.ActionRotate && (e.Outcome != audit.OutcomeOK || e.Key != tenant.TypeData) {
				t.Errorf("rotation entry %s: want outcome ok and key %q", fmtEntry(e), tenant.TypeData)
			}
		}
	}
	for _, tn := range tenants {
		if ks, err := a.Keys(ctx, tn.ID, tenant.TypeData); err != nil || len(ks) != rotators/2*rotations {
			t.Errorf("Keys(%s) = %d keys, %v, want %d", tn.Name, len(ks), err, rotators/2*rotations)
		}
	}
}
