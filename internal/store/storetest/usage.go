package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The conformance tests of key usage: counters added with the audit entries
// that record the same operations, in one transaction.

// usageEntry is an aggregate entry of n operations of action on key.
func usageEntry(tenantID string, action audit.Action, key string, n uint64) audit.Entry {
	return audit.Entry{Time: t0, Actor: tenant.NewID(), Role: "app", Tenant: tenantID, Action: action, Key: key,
		Outcome: audit.OutcomeOK, Count: n, Detail: "aggregate"}
}

func fmtUsage(u keyusage.Usage) string {
	f := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	return fmt.Sprintf("{%s enc=%d dec=%d del=%d sealed=%d last enc=%s dec=%s del=%s rows=%d reported=%s}",
		u.Key, u.Encryptions, u.Decryptions, u.Deliveries, u.Sealed, f(u.LastEncrypt), f(u.LastDecrypt), f(u.LastDelivery),
		u.RowsLeft, f(u.Reported))
}

func equalUsage(a, b keyusage.Usage) bool {
	return a.Key == b.Key && a.Encryptions == b.Encryptions && a.Decryptions == b.Decryptions &&
		a.Deliveries == b.Deliveries && a.Sealed == b.Sealed && a.LastEncrypt.Equal(b.LastEncrypt) &&
		a.LastDecrypt.Equal(b.LastDecrypt) && a.LastDelivery.Equal(b.LastDelivery) && a.RowsLeft == b.RowsLeft &&
		a.Reported.Equal(b.Reported)
}

// CheckKeyUsage fails t unless the usage of tenantID's keys of type typ
// ("" = all) is want, in order.
func CheckKeyUsage(t *testing.T, s *store.Store, tenantID, typ string, want ...keyusage.Usage) {
	t.Helper()
	got, err := s.KeyUsage(ctx, tenantID, typ)
	if err != nil {
		t.Fatalf("KeyUsage(%q) error = %v", typ, err)
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = equalUsage(got[i], want[i])
	}
	if !ok {
		var g, w []string
		for _, u := range got {
			g = append(g, fmtUsage(u))
		}
		for _, u := range want {
			w = append(w, fmtUsage(u))
		}
		t.Errorf("KeyUsage(%q) = %v, want %v", typ, g, w)
	}
}

// SeedKeyUsage makes a tenant with data keys v1 (archived) and v2 (active),
// adds usage to both and reports rows left under v1; it returns the tenant
// and the usage KeyUsage must return, for CheckKeyUsage after a reopen.
func SeedKeyUsage(t *testing.T, s *store.Store) (tenantID string, want []keyusage.Usage) {
	t.Helper()
	tn := mustTenant(t, s, "usage")
	mustRelease(t, s, "r1")
	v1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0)).KeyRef()
	v2 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(day))).KeyRef()
	counts := []keyusage.Count{
		{Key: v1, Encryptions: 7, Sealed: 7, Decryptions: 3, LastEncrypt: t0, LastDecrypt: t0.Add(time.Minute)},
		{Key: v2, Encryptions: 2, Sealed: 2, Deliveries: 1, LastEncrypt: t0.Add(day), LastDelivery: t0.Add(day)},
	}
	if _, err := s.AppendAuditUsage(ctx, counts, usageEntry(tn.ID, audit.ActionEncrypt, "data/1", 7)); err != nil {
		t.Fatalf("AppendAuditUsage() error = %v", err)
	}
	if err := s.ReportRowsLeft(ctx, v1, 42, t0.Add(2*day), rec); err != nil {
		t.Fatalf("ReportRowsLeft() error = %v", err)
	}
	return tn.ID, []keyusage.Usage{{Count: counts[0], RowsLeft: 42, Reported: t0.Add(2 * day)}, {Count: counts[1]}}
}

// testKeyUsage: counts add up per version, times keep the latest, entries
// are appended in the same transaction; unknown versions are skipped; an
// invalid count or entry stores neither; tenants and types are apart.
func testKeyUsage(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	other := mustTenant(t, s, "globex")
	mustRelease(t, s, "r1")
	v1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0)).KeyRef()
	v2 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(day))).KeyRef()
	ev1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeEventBus, newKey("r1", ""), t0)).KeyRef()
	o1 := mustRotate(t, s, rotateReq(other.ID, tenant.TypeData, newKey("r1", ""), t0)).KeyRef()

	CheckKeyUsage(t, s, tn.ID, "") // nothing yet
	size := auditSize(t, s)
	at := t0.Add(123 * time.Nanosecond) // truncated to t0 by the store
	_, err := s.AppendAuditUsage(ctx, []keyusage.Count{
		{Key: v2, Encryptions: 5, Sealed: 5, LastEncrypt: at},
		{Key: v1, Decryptions: 2, LastDecrypt: t0},
		{Key: v2, Encryptions: 1, Sealed: 1, LastEncrypt: t0.Add(-time.Hour)},
		{Key: tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 9}, Encryptions: 1}, // no such version: skipped
		{Key: ev1, Deliveries: 1, LastDelivery: t0},
		{Key: o1, Encryptions: 4, Sealed: 4, LastEncrypt: t0},
	}, usageEntry(tn.ID, audit.ActionEncrypt, "data/2", 6), usageEntry(tn.ID, audit.ActionDecrypt, "data/1", 2))
	if err != nil {
		t.Fatalf("AppendAuditUsage() error = %v", err)
	}
	if got := auditSize(t, s); got != size+2 {
		t.Errorf("AppendAuditUsage() appended %d entries, want 2", got-size)
	}
	wantV1 := keyusage.Usage{Count: keyusage.Count{Key: v1, Decryptions: 2, LastDecrypt: t0}}
	wantV2 := keyusage.Usage{Count: keyusage.Count{Key: v2, Encryptions: 6, Sealed: 6, LastEncrypt: t0}}
	wantEv := keyusage.Usage{Count: keyusage.Count{Key: ev1, Deliveries: 1, LastDelivery: t0}}
	CheckKeyUsage(t, s, tn.ID, "", wantV1, wantV2, wantEv)
	CheckKeyUsage(t, s, tn.ID, tenant.TypeEventBus, wantEv)
	CheckKeyUsage(t, s, other.ID, "", keyusage.Usage{Count: keyusage.Count{Key: o1, Encryptions: 4, Sealed: 4, LastEncrypt: t0}})

	// Again, later: sums, and the later times.
	later := t0.Add(2 * time.Minute)
	if _, err := s.AppendAuditUsage(ctx, []keyusage.Count{{Key: v1, Decryptions: 3, LastDecrypt: later}},
		usageEntry(tn.ID, audit.ActionDecrypt, "data/1", 3)); err != nil {
		t.Fatalf("AppendAuditUsage() error = %v", err)
	}
	wantV1.Decryptions, wantV1.LastDecrypt = 5, later
	CheckKeyUsage(t, s, tn.ID, tenant.TypeData, wantV1, wantV2)

	// Invalid: nothing counted, nothing appended.
	size = auditSize(t, s)
	for name, call := range map[string]func() error{
		"version 0": func() error {
			_, err := s.AppendAuditUsage(ctx, []keyusage.Count{{Key: v1, Decryptions: 1}, {Key: tenant.KeyRef{Tenant: tn.ID, Type: "data"}}},
				usageEntry(tn.ID, audit.ActionDecrypt, "data/1", 1))
			return err
		},
		"count too large": func() error {
			_, err := s.AppendAuditUsage(ctx, []keyusage.Count{{Key: v1, Decryptions: 1 << 63}})
			return err
		},
		"invalid entry": func() error {
			bad := usageEntry(tn.ID, audit.ActionDecrypt, "data/1", 1)
			bad.Actor = ""
			_, err := s.AppendAuditUsage(ctx, []keyusage.Count{{Key: v1, Decryptions: 1, LastDecrypt: later.Add(time.Hour)}}, bad)
			return err
		},
	} {
		wantErr(t, "AppendAuditUsage("+name+")", call(), store.ErrInvalid)
	}
	if got := auditSize(t, s); got != size {
		t.Errorf("refused AppendAuditUsage() calls appended %d entries, want 0", got-size)
	}
	CheckKeyUsage(t, s, tn.ID, tenant.TypeData, wantV1, wantV2)
	_, err = s.KeyUsage(ctx, tn.ID, "Data")
	wantErr(t, "KeyUsage(bad type)", err, store.ErrInvalid)
}

// testKeyUsageReport: a data-at-rest report is stored with its entry, an
// older one changes nothing, an unknown version is ErrNotFound and appends
// nothing; the counters stay.
func testKeyUsageReport(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	v1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0)).KeyRef()
	size := auditSize(t, s)
	err := s.ReportRowsLeft(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 2}, 1, t0, rec)
	wantErr(t, "ReportRowsLeft(unknown version)", err, store.ErrNotFound)
	wantErr(t, "ReportRowsLeft(zero entry)", s.ReportRowsLeft(ctx, v1, 1, t0, audit.Entry{}), store.ErrInvalid)
	wantErr(t, "ReportRowsLeft(no time)", s.ReportRowsLeft(ctx, v1, 1, time.Time{}, rec), store.ErrInvalid)
	if got := auditSize(t, s); got != size {
		t.Errorf("refused reports appended %d entries, want 0", got-size)
	}
	if err := s.ReportRowsLeft(ctx, v1, 10, t0.Add(time.Hour), rec); err != nil {
		t.Fatalf("ReportRowsLeft() error = %v", err)
	}
	want := keyusage.Usage{Count: keyusage.Count{Key: v1}, RowsLeft: 10, Reported: t0.Add(time.Hour)}
	CheckKeyUsage(t, s, tn.ID, "", want)
	if _, err := s.AppendAuditUsage(ctx, []keyusage.Count{{Key: v1, Decryptions: 4, LastDecrypt: t0}}); err != nil {
		t.Fatalf("AppendAuditUsage() error = %v", err)
	}
	want.Decryptions, want.LastDecrypt = 4, t0
	if err := s.ReportRowsLeft(ctx, v1, 99, t0, rec); err != nil { // older: ignored
		t.Fatalf("ReportRowsLeft(older) error = %v", err)
	}
	CheckKeyUsage(t, s, tn.ID, "", want)
	if err := s.ReportRowsLeft(ctx, v1, 0, t0.Add(2*time.Hour), rec); err != nil {
		t.Fatalf("ReportRowsLeft(newer) error = %v", err)
	}
	want.RowsLeft, want.Reported = 0, t0.Add(2*time.Hour)
	CheckKeyUsage(t, s, tn.ID, "", want)
	if got := auditSize(t, s); got != size+3 {
		t.Errorf("three reports appended %d entries, want 3", got-size)
	}
}

// testKeyUsageConcurrent: 8 goroutines × 10 flushes of one encryption each
// lose none, and the log holds one entry per flush.
func testKeyUsageConcurrent(t *testing.T, s *store.Store) { keyUsageConcurrent(t, s, s) }

func keyUsageConcurrent(t *testing.T, a, b *store.Store) {
	tn := mustTenant(t, a, "acme")
	mustRelease(t, a, "r1")
	v1 := mustRotate(t, a, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0)).KeyRef()
	size := auditSize(t, a)
	const workers, each = 8, 10
	errs := atOnce(workers, a, b, func(s *store.Store, i int) error {
		for j := range each {
			at := t0.Add(time.Duration(i*each+j) * time.Minute)
			if _, err := s.AppendAuditUsage(ctx, []keyusage.Count{{Key: v1, Encryptions: 1, Sealed: 1, LastEncrypt: at}},
				usageEntry(tn.ID, audit.ActionEncrypt, "data/1", 1)); err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatalf("AppendAuditUsage() error = %v", err)
		}
	}
	CheckKeyUsage(t, b, tn.ID, "", keyusage.Usage{Count: keyusage.Count{Key: v1, Encryptions: workers * each, Sealed: workers * each,
		LastEncrypt: t0.Add((workers*each - 1) * time.Minute)}})
	checkLog(t, a, size+workers*each)
}
