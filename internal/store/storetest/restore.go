package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The conformance tests of key restoration and of the destruction watch.

// watchTimeout bounds the wait for a watcher to hear of a destruction.
const watchTimeout = 10 * time.Second

func restoreReq(k tenant.Key, wrapped []byte) store.RestoreRequest {
	return store.RestoreRequest{Tenant: k.Tenant, Type: k.Type, Version: k.Version, Release: k.Release,
		Wrapped: wrapped, Fingerprint: k.Fingerprint, MaxKeys: 10, Now: t0.Add(10 * day)}
}

func mustDestroy(t *testing.T, s *store.Store, k tenant.Key, at time.Time) tenant.Key {
	t.Helper()
	d, err := s.DestroyKey(ctx, tenant.KeyRef{Tenant: k.Tenant, Type: k.Type, Version: k.Version}, at, rec)
	if err != nil {
		t.Fatalf("DestroyKey(%s v%d) error = %v", k.Type, k.Version, err)
	}
	return d
}

func testRestore(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	mustRelease(t, s, "r2")
	v1 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", "fp-1"), t0))
	v2 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r2", ""), t0.Add(day)))
	v3 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r2", "fp-3"), t0.Add(2*day)))
	backup := []byte("v1 from the backup file, wrapped anew")

	// Not destroyed: archived, and active.
	for _, k := range []tenant.Key{v1, v3} {
		_, err := s.RestoreKey(ctx, restoreReq(k, backup), rec)
		wantErr(t, fmt.Sprintf("RestoreKey(v%d, not destroyed)", k.Version), err, store.ErrConflict)
		if err != nil && !strings.Contains(err.Error(), "not destroyed") {
			t.Errorf("RestoreKey(not destroyed) error %q does not say the key is not destroyed", err)
		}
	}

	d1 := mustDestroy(t, s, v1, t0.Add(3*day))
	d2 := mustDestroy(t, s, v2, t0.Add(3*day))
	if d1.Fingerprint == nil || !bytes.Equal(d1.Fingerprint, v1.Fingerprint) {
		t.Fatal("DestroyKey dropped the fingerprint: it must keep it")
	}

	// Refusals, none of which changes anything.
	wrongRelease := restoreReq(v1, backup)
	wrongRelease.Release = "r2"
	wrongFP := restoreReq(v1, backup)
	wrongFP.Fingerprint = bytes.Clone(v1.Fingerprint)
	wrongFP.Fingerprint[0] ^= 1
	shortFP := restoreReq(v1, backup)
	shortFP.Fingerprint = v1.Fingerprint[:8]
	noFP := restoreReq(v1, backup)
	noFP.Fingerprint = nil
	otherFP := restoreReq(v1, backup)
	otherFP.Fingerprint = v3.Fingerprint
	for name, req := range map[string]store.RestoreRequest{
		"other release":                wrongRelease,
		"wrong fingerprint":            wrongFP,
		"fingerprint prefix":           shortFP,
		"no fingerprint":               noFP,
		"another key's fingerprint":    otherFP,
		"empty fingerprint":            func() store.RestoreRequest { r := noFP; r.Fingerprint = []byte{}; return r }(),
		"release not installed":        func() store.RestoreRequest { r := restoreReq(v1, backup); r.Release = "r9"; return r }(),
		"other release, no key fp":     func() store.RestoreRequest { r := restoreReq(v2, backup); r.Release = "r1"; return r }(),
		"not destroyed and wrong fp":   func() store.RestoreRequest { r := restoreReq(v3, backup); r.Fingerprint = v1.Fingerprint; return r }(),
		"not destroyed, other release": func() store.RestoreRequest { r := restoreReq(v3, backup); r.Release = "r1"; return r }(),
	} {
		_, err := s.RestoreKey(ctx, req, rec)
		wantErr(t, "RestoreKey("+name+")", err, store.ErrConflict)
	}
	for name, req := range map[string]store.RestoreRequest{
		"missing version":   func() store.RestoreRequest { r := restoreReq(v1, backup); r.Version = 9; return r }(),
		"type without keys": func() store.RestoreRequest { r := restoreReq(v1, backup); r.Type = tenant.TypeAnalytics; return r }(),
		"unknown tenant":    func() store.RestoreRequest { r := restoreReq(v1, backup); r.Tenant = tenant.NewID(); return r }(),
	} {
		_, err := s.RestoreKey(ctx, req, rec)
		wantErr(t, "RestoreKey("+name+")", err, store.ErrNotFound)
	}
	checkSeries(t, s, tn.ID, tenant.TypeData, d1, d2, v3)

	// Restore v1: archived, with the backup's wrapped key, fingerprint and
	// everything else as stored.
	r1, err := s.RestoreKey(ctx, restoreReq(v1, backup), rec)
	want1 := v1
	want1.State, want1.Wrapped = tenant.StateArchived, backup
	if err != nil {
		t.Fatalf("RestoreKey(v1) error = %v", err)
	}
	checkKey(t, "RestoreKey(v1)", r1, want1)
	if got, err := s.Key(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}); err != nil {
		t.Errorf("Key(restored v1) error = %v", err)
	} else {
		checkKey(t, "Key(restored v1)", got, want1)
	}
	// The restored key is never active: v3 still is.
	checkSeries(t, s, tn.ID, tenant.TypeData, want1, d2, v3)
	_, err = s.RestoreKey(ctx, restoreReq(v1, backup), rec)
	wantErr(t, "RestoreKey(restored already)", err, store.ErrConflict)

	// A key without a fingerprint accepts a backup with one, and keeps none.
	req2 := restoreReq(v2, []byte("v2 from the backup"))
	req2.Fingerprint = bytes.Repeat([]byte{7}, 32)
	r2, err := s.RestoreKey(ctx, req2, rec)
	want2 := v2
	want2.State, want2.Wrapped = tenant.StateArchived, req2.Wrapped
	if err != nil {
		t.Fatalf("RestoreKey(v2, no stored fingerprint) error = %v", err)
	}
	checkKey(t, "RestoreKey(v2)", r2, want2)
	checkSeries(t, s, tn.ID, tenant.TypeData, want1, want2, v3)

	// A restored key can be destroyed again, and restored again.
	mustDestroy(t, s, r1, t0.Add(4*day))
	if r, err := s.RestoreKey(ctx, restoreReq(v1, []byte("again")), rec); err != nil || !bytes.Equal(r.Wrapped, []byte("again")) {
		t.Errorf("RestoreKey(v1, the second time) = %s, %v", fmtKey(r), err)
	}

	// Destroying the active key and restoring it: archived, and no key is
	// active until the next rotation.
	mustDestroy(t, s, v3, t0.Add(5*day))
	r3, err := s.RestoreKey(ctx, restoreReq(v3, []byte("v3 back")), rec)
	if err != nil || r3.State != tenant.StateArchived {
		t.Fatalf("RestoreKey(v3, destroyed while active) = %s, %v, want archived", fmtKey(r3), err)
	}
	_, err = s.ActiveKey(ctx, tn.ID, tenant.TypeData)
	wantErr(t, "ActiveKey(after restoring the destroyed active key)", err, store.ErrNotFound)
	v4 := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(6*day)))
	if v4.Version != 4 {
		t.Errorf("the rotation after restores made version %d, want 4", v4.Version)
	}
	if a, err := s.ActiveKey(ctx, tn.ID, tenant.TypeData); err != nil || a.Version != 4 {
		t.Errorf("ActiveKey() = v%d, %v, want v4", a.Version, err)
	}
	// The restored key's fingerprint is still the tenant's.
	_, err = s.Rotate(ctx, rotateReq(tn.ID, tenant.TypeAnalytics, newKey("r1", "fp-3"), t0.Add(6*day)), rec)
	wantErr(t, "Rotate(fingerprint of a restored key)", err, store.ErrDuplicate)
}

func testRestoreMaxKeys(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	var ks []tenant.Key
	for i := range 4 {
		r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(time.Duration(i)*day))
		ks = append(ks, mustRotate(t, s, r))
	}
	mustDestroy(t, s, ks[0], t0.Add(4*day))
	mustDestroy(t, s, ks[1], t0.Add(4*day))
	// Two live keys (v3 archived, v4 active): MaxKeys 2 refuses, 3 allows one.
	req := restoreReq(ks[0], []byte("v1"))
	req.MaxKeys = 2
	_, err := s.RestoreKey(ctx, req, rec)
	wantErr(t, "RestoreKey(2 live keys, MaxKeys 2)", err, store.ErrTooManyKeys)
	req.MaxKeys = 3
	if _, err := s.RestoreKey(ctx, req, rec); err != nil {
		t.Fatalf("RestoreKey(2 live keys, MaxKeys 3) error = %v", err)
	}
	req = restoreReq(ks[1], []byte("v2"))
	req.MaxKeys = 3
	_, err = s.RestoreKey(ctx, req, rec)
	wantErr(t, "RestoreKey(3 live keys, MaxKeys 3)", err, store.ErrTooManyKeys)
	// Identity comes before the count: the wrong backup is a conflict.
	req.Release = "r9"
	_, err = s.RestoreKey(ctx, req, rec)
	wantErr(t, "RestoreKey(too many and the wrong release)", err, store.ErrConflict)
	// Restored keys count for Rotate too.
	r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(5*day))
	r.MaxKeys = 3
	_, err = s.Rotate(ctx, r, rec)
	wantErr(t, "Rotate(3 live keys with a restored one, MaxKeys 3)", err, store.ErrTooManyKeys)
	// The count is per type.
	a := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeAnalytics, newKey("r1", ""), t0))
	mustDestroy(t, s, a, t0.Add(day))
	req = restoreReq(a, []byte("analytics v1"))
	req.MaxKeys = 1
	if _, err := s.RestoreKey(ctx, req, rec); err != nil {
		t.Errorf("RestoreKey(analytics, MaxKeys 1, none live) error = %v", err)
	}
}

func testRestoreValidation(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	k := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", "fp"), t0))
	d := mustDestroy(t, s, k, t0.Add(day))
	for name, mod := range map[string]func(*store.RestoreRequest){
		"invalid tenant":    func(r *store.RestoreRequest) { r.Tenant = "acme" },
		"invalid type":      func(r *store.RestoreRequest) { r.Type = "Data" },
		"version 0":         func(r *store.RestoreRequest) { r.Version = 0 },
		"empty release":     func(r *store.RestoreRequest) { r.Release = "" },
		"invalid release":   func(r *store.RestoreRequest) { r.Release = "r/1" },
		"no wrapped":        func(r *store.RestoreRequest) { r.Wrapped = nil },
		"empty wrapped":     func(r *store.RestoreRequest) { r.Wrapped = []byte{} },
		"huge wrapped":      func(r *store.RestoreRequest) { r.Wrapped = make([]byte, store.MaxWrapped+1) },
		"huge fingerprint":  func(r *store.RestoreRequest) { r.Fingerprint = make([]byte, store.MaxFingerprint+1) },
		"MaxKeys 0":         func(r *store.RestoreRequest) { r.MaxKeys = 0 },
		"negative MaxKeys":  func(r *store.RestoreRequest) { r.MaxKeys = -1 },
		"zero Now":          func(r *store.RestoreRequest) { r.Now = time.Time{} },
		"Now in year 10000": func(r *store.RestoreRequest) { r.Now = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		r := restoreReq(k, []byte("backup"))
		mod(&r)
		_, err := s.RestoreKey(ctx, r, rec)
		wantErr(t, "RestoreKey("+name+")", err, store.ErrInvalid)
	}
	checkSeries(t, s, tn.ID, tenant.TypeData, d)
	// The largest wrapped key fits.
	big := bytes.Repeat([]byte{0x5a}, store.MaxWrapped)
	if r, err := s.RestoreKey(ctx, restoreReq(k, big), rec); err != nil || !bytes.Equal(r.Wrapped, big) {
		t.Errorf("RestoreKey(MaxWrapped bytes) = %d bytes, %v", len(r.Wrapped), err)
	}
}

// testConcurrentRestoreRotate: restorations and rotations of one series at
// once are serialised: MaxKeys holds, one key is active, the newest.
func testConcurrentRestoreRotate(t *testing.T, s *store.Store) {
	concurrentRestoreRotate(t, s, s)
}

func concurrentRestoreRotate(t *testing.T, a, b *store.Store) {
	tn := mustTenant(t, a, "acme")
	mustRelease(t, a, "r1")
	const maxKeys = 5
	var destroyed []tenant.Key
	for i := range maxKeys {
		r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", fmt.Sprint("fp", i)), t0)
		r.MinInterval = 0
		k := mustRotate(t, a, r)
		if i < maxKeys-1 {
			destroyed = append(destroyed, k)
		}
	}
	for _, k := range destroyed {
		mustDestroy(t, a, k, t0.Add(day))
	}
	// One live key (v5, active); 4 restorations and 6 rotations compete for
	// the 4 free places.
	const rotations = 6
	n := len(destroyed) + rotations
	errs := atOnce(n, a, b, func(s *store.Store, i int) error {
		if i < len(destroyed) {
			req := restoreReq(destroyed[i], []byte(fmt.Sprint("restored ", i)))
			req.MaxKeys = maxKeys
			_, err := s.RestoreKey(ctx, req, rec)
			return err
		}
		r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0.Add(2*day))
		r.MinInterval, r.MaxKeys = 0, maxKeys
		_, err := s.Rotate(ctx, r, rec)
		return err
	})
	won := Succeeded(t, "restoration or rotation", errs, store.ErrTooManyKeys)
	if won != maxKeys-1 {
		t.Errorf("%d restorations and rotations succeeded, want %d", won, maxKeys-1)
	}
	ks, err := a.Keys(ctx, tn.ID, tenant.TypeData)
	if err != nil {
		t.Fatal(err)
	}
	live, active := 0, []uint32{}
	for _, k := range ks {
		if k.State != tenant.StateDestroyed {
			live++
		}
		if k.State == tenant.StateActive {
			active = append(active, k.Version)
		}
	}
	if live != maxKeys || len(active) != 1 || active[0] != ks[len(ks)-1].Version {
		t.Errorf("after concurrent restorations and rotations: %d live keys, active versions %v of %d; want %d live and exactly one active, the newest",
			live, active, len(ks), maxKeys)
	}
}

func testDestroyedSince(t *testing.T, s *store.Store) {
	if ks, err := s.DestroyedSince(ctx, t0); err != nil || len(ks) != 0 {
		t.Fatalf("DestroyedSince() on a fresh store = %v, %v, want none", ks, err)
	}
	a := mustTenant(t, s, "a")
	b := mustTenant(t, s, "b")
	mustRelease(t, s, "r1")
	ad1 := mustRotate(t, s, rotateReq(a.ID, tenant.TypeData, newKey("r1", "a-data-1"), t0))
	ad2 := mustRotate(t, s, rotateReq(a.ID, tenant.TypeData, newKey("r1", ""), t0.Add(day)))
	mustRotate(t, s, rotateReq(a.ID, tenant.TypeData, newKey("r1", ""), t0.Add(2*day)))
	aa1 := mustRotate(t, s, rotateReq(a.ID, tenant.TypeAnalytics, newKey("r1", "a-analytics-1"), t0))
	bd1 := mustRotate(t, s, rotateReq(b.ID, tenant.TypeData, newKey("r1", "b-data-1"), t0))
	bd2 := mustRotate(t, s, rotateReq(b.ID, tenant.TypeData, newKey("r1", ""), t0.Add(day)))

	at := t0.Add(10 * day)
	// Destroyed in another order than their times.
	x1 := mustDestroy(t, s, ad1, at.Add(3*time.Hour))
	x2 := mustDestroy(t, s, bd1, at.Add(time.Hour))
	x3 := mustDestroy(t, s, ad2, at.Add(2*time.Hour))
	x4 := mustDestroy(t, s, aa1, at.Add(2*time.Hour)) // same time: analytics before data
	mustDestroy(t, s, bd2, at.Add(4*time.Hour))
	mustRestore := func(k tenant.Key) {
		t.Helper()
		if _, err := s.RestoreKey(ctx, restoreReq(k, []byte("back")), rec); err != nil {
			t.Fatalf("RestoreKey() error = %v", err)
		}
	}
	mustRestore(bd2) // no longer destroyed: not listed

	strip := func(ks ...tenant.Key) []tenant.Key {
		for i := range ks {
			ks[i].Wrapped, ks[i].Fingerprint = nil, nil
		}
		return ks
	}
	for _, tc := range []struct {
		name  string
		since time.Time
		want  []tenant.Key
	}{
		{"zero", time.Time{}, strip(x2, x4, x3, x1)},
		{"long before", t0, strip(x2, x4, x3, x1)},
		{"at the first", at.Add(time.Hour), strip(x2, x4, x3, x1)},
		{"just after the first", at.Add(time.Hour + time.Microsecond), strip(x4, x3, x1)},
		{"at a tie", at.Add(2 * time.Hour), strip(x4, x3, x1)},
		{"1 ns before the last", at.Add(3*time.Hour - time.Nanosecond), strip(x1)}, // truncated: 1 µs before
		{"at the last", at.Add(3 * time.Hour), strip(x1)},
		{"after the last", at.Add(3*time.Hour + time.Microsecond), nil},
		{"other zone", at.Add(2 * time.Hour).In(time.FixedZone("UTC+9", 9*3600)), strip(x4, x3, x1)},
	} {
		got, err := s.DestroyedSince(ctx, tc.since)
		if err != nil {
			t.Errorf("DestroyedSince(%s) error = %v", tc.name, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("DestroyedSince(%s) = %d keys, want %d", tc.name, len(got), len(tc.want))
			continue
		}
		for i := range got {
			checkKey(t, fmt.Sprintf("DestroyedSince(%s)[%d]", tc.name, i), got[i], tc.want[i])
		}
	}
	_, err := s.DestroyedSince(ctx, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	wantErr(t, "DestroyedSince(year 10000)", err, store.ErrInvalid)
}

// watch starts a watcher that sends what it hears on the returned channel,
// until the test ends or cancel is called.
func watch(t *testing.T, s *store.Store) (<-chan tenant.KeyRef, context.CancelFunc) {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel) // before the store's Close, which was registered earlier
	ch := make(chan tenant.KeyRef, 100)
	if err := s.WatchDestroyed(wctx, func(ref tenant.KeyRef) { ch <- ref }); err != nil {
		t.Fatalf("WatchDestroyed() error = %v", err)
	}
	return ch, cancel
}

func refOf(k tenant.Key) tenant.KeyRef {
	return tenant.KeyRef{Tenant: k.Tenant, Type: k.Type, Version: k.Version}
}

// hear waits for the next destruction a watcher hears of, and checks it.
func hear(t *testing.T, what string, ch <-chan tenant.KeyRef, want tenant.KeyRef) {
	t.Helper()
	timer := time.NewTimer(watchTimeout)
	defer timer.Stop()
	select {
	case got := <-ch:
		if got != want {
			t.Errorf("%s: the watcher heard of %+v, want %+v", what, got, want)
		}
	case <-timer.C:
		t.Fatalf("%s: the watcher did not hear of %+v within %v", what, want, watchTimeout)
	}
}

func testWatchDestroyed(t *testing.T, s *store.Store) {
	watchAcross(t, s, s)

	// Starting errors.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.WatchDestroyed(done, func(tenant.KeyRef) {}); err == nil {
		t.Error("WatchDestroyed(done context) succeeded, want an error")
	}
	wantErr(t, "WatchDestroyed(nil function)", s.WatchDestroyed(ctx, nil), store.ErrInvalid)
}

// watchAcross checks that watchers of a and b hear of what is destroyed
// through either (a and b may be the same store).
func watchAcross(t *testing.T, a, b *store.Store) {
	tn := mustTenant(t, a, "acme")
	mustRelease(t, a, "r1")
	var ks []tenant.Key
	for range 6 {
		r := rotateReq(tn.ID, tenant.TypeData, newKey("r1", ""), t0)
		r.MinInterval = 0
		ks = append(ks, mustRotate(t, a, r))
	}
	wa1, cancelA1 := watch(t, a)
	wa2, _ := watch(t, a)
	wb, _ := watch(t, b)

	// Through b: every watcher hears, in order.
	mustDestroy(t, b, ks[0], t0.Add(day))
	mustDestroy(t, b, ks[1], t0.Add(day))
	for _, w := range []struct {
		name string
		ch   <-chan tenant.KeyRef
	}{{"a #1", wa1}, {"a #2", wa2}, {"b", wb}} {
		hear(t, "destroyed through b, watcher "+w.name, w.ch, refOf(ks[0]))
		hear(t, "destroyed through b, watcher "+w.name, w.ch, refOf(ks[1]))
	}

	// A refused destruction is not announced: the next one heard of is the
	// next one made.
	if _, err := a.DestroyKey(ctx, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: ks[0].Version}, t0.Add(day), rec); !errors.Is(err, store.ErrDestroyed) {
		t.Fatalf("DestroyKey(destroyed) error = %v, want ErrDestroyed", err)
	}
	mustDestroy(t, a, ks[2], t0.Add(day))
	hear(t, "destroyed through a, watcher a #1", wa1, refOf(ks[2]))
	hear(t, "destroyed through a, watcher b", wb, refOf(ks[2]))
	hear(t, "destroyed through a, watcher a #2", wa2, refOf(ks[2]))

	// A cancelled watcher stops; the others go on.
	cancelA1()
	mustDestroy(t, a, ks[3], t0.Add(day))
	hear(t, "after cancelling another watcher, watcher a #2", wa2, refOf(ks[3]))
	hear(t, "after cancelling another watcher, watcher b", wb, refOf(ks[3]))
	select {
	case r := <-wa1:
		t.Errorf("the cancelled watcher heard of %+v", r)
	default:
	}

	// Many at once: each watcher hears of each, once.
	mustDestroy(t, b, ks[4], t0.Add(day))
	mustDestroy(t, a, ks[5], t0.Add(day))
	for name, ch := range map[string]<-chan tenant.KeyRef{"a #2": wa2, "b": wb} {
		got := map[tenant.KeyRef]int{}
		for range 2 {
			timer := time.NewTimer(watchTimeout)
			select {
			case r := <-ch:
				got[r]++
			case <-timer.C:
				t.Fatalf("watcher %s heard of %d of 2 destructions within %v", name, len(got), watchTimeout)
			}
			timer.Stop()
		}
		if got[refOf(ks[4])] != 1 || got[refOf(ks[5])] != 1 {
			t.Errorf("watcher %s heard of %v, want v5 and v6 once each", name, got)
		}
	}
}

// testBYOKErrorMessages: the errors of restoration and export keys hold no
// key material nor fingerprint.
func testBYOKErrorMessages(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	mustRelease(t, s, "r1")
	k := mustRotate(t, s, rotateReq(tn.ID, tenant.TypeData, newKey("r1", "secret-fp"), t0))
	ek, err := s.PutExportKey(ctx, tenant.ExportKey{Tenant: tn.ID, Release: "r1", Wrapped: []byte("export-key-wrapped-secret"), Created: t0}, rec)
	if err != nil {
		t.Fatal(err)
	}
	backup := []byte("restored-wrapped-secret-bytes")
	wrongFP := sha256.Sum256([]byte("wrong fingerprint"))
	var errs []error
	add := func(_ any, err error) { errs = append(errs, err) }
	add(s.RestoreKey(ctx, restoreReq(k, backup), rec)) // not destroyed
	mustDestroy(t, s, k, t0.Add(day))
	r := restoreReq(k, backup)
	r.Fingerprint = wrongFP[:]
	add(s.RestoreKey(ctx, r, rec))
	r.Fingerprint = nil
	add(s.RestoreKey(ctx, r, rec))
	r = restoreReq(k, backup)
	r.Release = "r9"
	add(s.RestoreKey(ctx, r, rec))
	r = restoreReq(k, make([]byte, store.MaxWrapped+1))
	copy(r.Wrapped, backup)
	add(s.RestoreKey(ctx, r, rec))
	r = restoreReq(k, backup)
	r.MaxKeys = 0
	add(s.RestoreKey(ctx, r, rec))
	add(s.PutExportKey(ctx, tenant.ExportKey{Tenant: tn.ID, Release: "r9", Wrapped: ek.Wrapped, Created: t0}, rec))
	add(s.PutExportKey(ctx, tenant.ExportKey{Tenant: tn.ID, Release: "r1", Wrapped: append(bytes.Clone(ek.Wrapped), make([]byte, store.MaxWrapped)...), Created: t0}, rec))
	secrets := [][]byte{k.Wrapped, k.Fingerprint, wrongFP[:], backup, ek.Wrapped, k.Fingerprint[:8], wrongFP[:8]}
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d succeeded, want an error", i)
			continue
		}
		msg := err.Error() + fmt.Sprintf(" %v %+v %#v", err, err, err)
		if !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("error %q does not start with \"store: \"", err)
		}
		for _, sec := range secrets {
			for _, form := range []string{string(sec), hex.EncodeToString(sec), strings.ToUpper(hex.EncodeToString(sec)), fmt.Sprint(sec)} {
				if strings.Contains(msg, form) {
					t.Errorf("error %q contains key material or a fingerprint", err.Error())
				}
			}
		}
	}
}
