package keyusage

import (
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/tenant"
)

var t0 = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

func TestNonces(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, NoncesOK}, {SealWarning - 1, NoncesOK}, {SealWarning, NoncesWarning},
		{SealLimit - 1, NoncesWarning}, {SealLimit, NoncesExhausted}, {1 << 40, NoncesExhausted},
	} {
		if got := Nonces(tc.n); got != tc.want {
			t.Errorf("Nonces(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestMerge(t *testing.T) {
	a := tenant.KeyRef{Tenant: "b", Type: "data", Version: 2}
	b := tenant.KeyRef{Tenant: "a", Type: "data", Version: 1}
	got := Merge([]Count{
		{Key: a, Encryptions: 2, Sealed: 2, LastEncrypt: t0},
		{Key: b, Decryptions: 1, LastDecrypt: t0},
		{Key: a, Encryptions: 3, Sealed: 3, Decryptions: 4, LastEncrypt: t0.Add(-time.Hour), LastDecrypt: t0.Add(time.Minute)},
		{Key: a, Deliveries: 1, LastDelivery: t0},
	})
	want := []Count{
		{Key: b, Decryptions: 1, LastDecrypt: t0},
		{Key: a, Encryptions: 5, Sealed: 5, Decryptions: 4, Deliveries: 1, LastEncrypt: t0, LastDecrypt: t0.Add(time.Minute), LastDelivery: t0},
	}
	if len(got) != len(want) {
		t.Fatalf("Merge() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Merge()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestAssess(t *testing.T) {
	now := t0
	old := now.Add(-QuietWindow - time.Hour)
	recent := now.Add(-QuietWindow + time.Hour)
	archived := tenant.Key{Tenant: "t", Type: "data", Version: 1, State: tenant.StateArchived, Wrapped: []byte{1}}
	key := func(s tenant.KeyState) tenant.Key { k := archived; k.State = s; return k }
	report := func(rows uint64, at time.Time) Usage { return Usage{RowsLeft: rows, Reported: at} }
	for _, tc := range []struct {
		name string
		k    tenant.Key
		u    Usage
		safe bool
		hint string
	}{
		{"active", key(tenant.StateActive), report(0, now), false, "active"},
		{"destroyed", key(tenant.StateDestroyed), report(0, now), false, "destroyed"},
		{"no report", archived, Usage{}, false, "no data-at-rest report"},
		{"decrypted recently", archived, Usage{Count: Count{LastDecrypt: recent}, Reported: now}, false, "decrypted by the server"},
		{"delivered recently", archived, Usage{Count: Count{LastDelivery: recent}, Reported: now}, false, "delivered"},
		{"rows left", archived, Usage{Count: Count{LastDecrypt: old}, RowsLeft: 3, Reported: now}, false, "found 3 items"},
		{"report before last encryption", archived, Usage{Count: Count{LastEncrypt: old}, Reported: old.Add(30 * time.Second)}, false, "older than its last use"},
		{"report before last delivery", archived, Usage{Count: Count{LastDelivery: old}, Reported: old.Add(-time.Second)}, false, "older than its last use"},
		{"safe", archived, Usage{Count: Count{LastEncrypt: old, LastDecrypt: old, LastDelivery: old}, Reported: now}, true, "found nothing"},
		{"safe, never used", archived, report(0, now), true, "found nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Assess(tc.k, tc.u, now)
			if r.Nonces != NoncesOK {
				t.Errorf("Assess() nonces = %q, want %q", r.Nonces, NoncesOK)
			}
			if r.SafeToDestroy != tc.safe || !strings.Contains(r.Hint, tc.hint) {
				t.Errorf("Assess() = safe %v, hint %q; want safe %v, hint containing %q", r.SafeToDestroy, r.Hint, tc.safe, tc.hint)
			}
			if r.Usage.Key != tc.k.KeyRef() || r.Key.Wrapped != nil {
				t.Errorf("Assess() = key %v (wrapped %d bytes), usage of %v; want %v without material", r.Key.KeyRef(), len(r.Key.Wrapped), r.Usage.Key, tc.k.KeyRef())
			}
		})
	}
}

// TestAssessDeterministic: a deterministic key seals with AES-SIV, which
// has no nonce: its nonce state is none whatever is counted.
func TestAssessDeterministic(t *testing.T) {
	k := tenant.Key{Tenant: "t", Type: tenant.TypeDeterministic, Version: 1, State: tenant.StateActive}
	if r := Assess(k, Usage{Count: Count{Encryptions: SealLimit}}, t0); r.Nonces != NoncesNone {
		t.Errorf("Assess(deterministic) nonces = %q, want %q", r.Nonces, NoncesNone)
	}
	if Probabilistic(tenant.TypeDeterministic) || !Probabilistic(tenant.TypeData) {
		t.Error("Probabilistic() is wrong for deterministic or data")
	}
}
