package auditlog_test

import (
	"encoding/pem"
	"fmt"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auditlog"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// refusal is the entry of a request without a valid token.
func refusal(remote, route string) audit.Entry {
	return audit.Entry{Time: t0, Actor: audit.ActorAnonymous, Action: audit.ActionTokenUse, Outcome: audit.OutcomeRefused,
		Reason: "unauthenticated", Remote: remote, Detail: route}
}

// TestCountEntry: refused requests of one minute, address, route and
// reason become one entry with their count, keeping the address and the
// route; past MaxEntryKeys counters, new addresses are counted together,
// under no address.
func TestCountEntry(t *testing.T) {
	l := auditlog.New(openStore(t), "eu1")
	var a auditlog.Aggregate
	for range 5 {
		a.CountEntry(refusal("192.0.2.1", "GET /v1/tenants"))
	}
	a.CountEntry(refusal("192.0.2.1", "POST /v1/tokens"))
	a.CountEntry(refusal("192.0.2.2", "GET /v1/tenants"))
	for i := range auditlog.MaxEntryKeys {
		a.CountEntry(refusal(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&0xff, i&0xff), "GET /v1/tenants"))
	}
	if err := a.Flush(ctx, l); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	n := 0
	for _, e := range entries(t, l) {
		n++
		if e.Action != audit.ActionTokenUse || e.Outcome != audit.OutcomeRefused {
			t.Errorf("aggregate entry %+v: want token.use refused", e)
		}
		got[e.Remote+" "+e.Detail] += e.Count
	}
	const prefix = "aggregate of 2026-11-27T12:00:00Z to 2026-11-27T12:01:00Z: "
	for key, want := range map[string]uint64{
		"192.0.2.1 " + prefix + "GET /v1/tenants": 5,
		"192.0.2.1 " + prefix + "POST /v1/tokens": 1,
		"192.0.2.2 " + prefix + "GET /v1/tenants": 1,
		" " + prefix + "GET /v1/tenants":          3, // past the bound
	} {
		if got[key] != want {
			t.Errorf("aggregate %q = %d, want %d", key, got[key], want)
		}
	}
	if n != auditlog.MaxEntryKeys+1 {
		t.Errorf("%d aggregate entries, want %d (the bound, and one for the addresses past it)", n, auditlog.MaxEntryKeys+1)
	}
}

// usageStore makes, in st, a tenant with data keys v1 (archived) and v2
// (active) and a deterministic v1; it returns the tenant's ID.
func usageStore(t *testing.T, st *store.Store) string {
	t.Helper()
	tn, err := st.CreateTenant(ctx, tenant.New("acme", tenant.EnvProduction, t0), storetest.Rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.InstallRelease(ctx, release.Installation{ID: "r1", Bundle: pem.EncodeToMemory(&pem.Block{Type: "STRONGROOM RELEASE BUNDLE", Bytes: []byte("r1")}), Installed: t0}, storetest.Rec); err != nil {
		t.Fatal(err)
	}
	for i, typ := range []string{tenant.TypeData, tenant.TypeData, tenant.TypeDeterministic} {
		k := tenant.Key{Source: tenant.SourceHSM, Derivation: tenant.DerivationPBKDF2, Release: "r1", Wrapped: []byte{byte(i + 1)}}
		if _, err := st.Rotate(ctx, store.RotateRequest{Tenant: tn.ID, Type: typ, New: k, MaxKeys: 10, Now: t0}, storetest.Rec); err != nil {
			t.Fatal(err)
		}
	}
	return tn.ID
}

// TestAggregateUsage: a flush adds the successful encryptions and
// decryptions of each key version to its usage counters, which then agree
// with the aggregate entries it appended; refusals, unauthenticated
// requests and entries naming no version are not counted.
func TestAggregateUsage(t *testing.T) {
	st := openStore(t)
	tid := usageStore(t, st)
	l := auditlog.New(st, "eu1")
	var a auditlog.Aggregate
	enc := func(actor string, at time.Time) audit.Entry {
		e := request(actor, at)
		e.Tenant = tid
		return e
	}
	dec := func(actor string, at time.Time) audit.Entry {
		e := enc(actor, at)
		e.Action = audit.ActionDecrypt
		return e
	}
	for range 3 {
		a.Count(enc("alice", t0), "data/2", audit.OutcomeOK, "")
	}
	a.Count(enc("bob", t0.Add(2*time.Minute)), "data/2", audit.OutcomeOK, "")
	a.Count(dec("alice", t0), "data/1", audit.OutcomeOK, "")
	a.Count(dec("bob", t0.Add(time.Minute)), "data/1", audit.OutcomeOK, "")
	a.Count(dec("bob", t0.Add(5*time.Minute)), "data/1", audit.OutcomeRefused, "key_destroyed")
	a.Count(dec("bob", t0), "", audit.OutcomeRefused, "decryption_failed")
	a.Count(enc("bob", t0), "data", audit.OutcomeRefused, "no_active_key")
	a.CountEntry(refusal("192.0.2.1", "POST /v1/tenants/acme/encrypt"))
	// A rewrap from v1 to v2: a decryption under v1 in its aggregate
	// entry, and an encryption under v2 in the counters only.
	rw := enc("carol", t0.Add(3*time.Minute))
	rw.Action = audit.ActionRewrap
	a.Count(rw, "data/1", audit.OutcomeOK, "")
	a.CountEncryption(rw, tenant.KeyRef{Tenant: tid, Type: tenant.TypeData, Version: 2})
	// A deterministic key's encryptions are AES-SIV: not sealed.
	a.Count(enc("alice", t0), "deterministic/1", audit.OutcomeOK, "")
	if err := a.Flush(ctx, l); err != nil {
		t.Fatal(err)
	}
	minute := func(d time.Duration) time.Time { return t0.Add(d).Truncate(time.Minute) }
	v1 := tenant.KeyRef{Tenant: tid, Type: tenant.TypeData, Version: 1}
	v2 := tenant.KeyRef{Tenant: tid, Type: tenant.TypeData, Version: 2}
	d1 := tenant.KeyRef{Tenant: tid, Type: tenant.TypeDeterministic, Version: 1}
	want := []keyusage.Usage{
		{Count: keyusage.Count{Key: v1, Decryptions: 3, LastDecrypt: minute(3 * time.Minute)}},
		{Count: keyusage.Count{Key: v2, Encryptions: 5, Sealed: 5, LastEncrypt: minute(3 * time.Minute)}},
		{Count: keyusage.Count{Key: d1, Encryptions: 1, LastEncrypt: minute(0)}},
	}
	storetest.CheckKeyUsage(t, st, tid, tenant.TypeData, want[:2]...)
	storetest.CheckKeyUsage(t, st, tid, tenant.TypeDeterministic, want[2])
	want = want[:2]

	// The counters agree with the log's successful aggregate entries.
	logged := map[string]uint64{}
	for _, e := range entries(t, l) {
		if e.Outcome == audit.OutcomeOK && e.Count > 0 {
			logged[string(e.Action)+" "+e.Key] += e.Count
		}
	}
	if logged["key.encrypt data/2"] != 4 || logged["key.decrypt data/1"] != 2 || logged["key.rewrap data/1"] != 1 ||
		logged["key.encrypt deterministic/1"] != 1 || len(logged) != 4 {
		t.Errorf("the log's successful aggregates = %v, want 4 encryptions under data/2, 2 decryptions and 1 rewrap under data/1, 1 encryption under deterministic/1", logged)
	}

	// A flush that fails adds nothing; the next one adds everything once.
	fs := &failingStore{Store: st}
	l = auditlog.New(fs, "eu1")
	a.Count(enc("alice", t0.Add(4*time.Minute)), "data/2", audit.OutcomeOK, "")
	a.CountEncryption(rw, v2)
	if err := a.Flush(ctx, l); err == nil {
		t.Fatal("Flush() with a failing store succeeded")
	}
	storetest.CheckKeyUsage(t, st, tid, tenant.TypeData, want...)
	fs.ok = true
	if err := a.Flush(ctx, l); err != nil {
		t.Fatal(err)
	}
	want[1].Encryptions, want[1].Sealed, want[1].LastEncrypt = 7, 7, minute(4*time.Minute)
	storetest.CheckKeyUsage(t, st, tid, tenant.TypeData, want...)
}
