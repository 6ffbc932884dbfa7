// Package keyusage is what each key version has been used for
// (docs/keys-usage.md): durable counters of server-side encryptions and
// decryptions, DEK deliveries and AES-256-GCM seals, the last time of each,
// and what a data-at-rest report (strongroom sync) says is left under it;
// and, from them, two hints: whether a version's DEK is near the bound on
// random-nonce AES-GCM invocations (NIST SP 800-38D), and whether an
// archived version looks safe to destroy.
//
// The counters are never written per request: encryptions and decryptions
// are added when the node's audit aggregate is flushed, in the transaction
// that appends its aggregate entries (auditlog.Aggregate); each delivery is
// added in the transaction that appends its audit entry. So the counters
// and the audit log agree, and a crash loses neither without the other.
package keyusage

import (
	"cmp"
	"slices"
	"time"

	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Count is what one key version did: the counts to add to its counters
// and the last time of each kind of use (zero: none). The times are
// minutes for encryptions and decryptions (the aggregate counts per
// minute: the start of the last minute with one), and the audit entry's
// time for a delivery.
type Count struct {
	Key                                    tenant.KeyRef
	Encryptions, Decryptions, Deliveries   uint64
	Sealed                                 uint64 // AES-256-GCM seals with a random nonce, by the server
	LastEncrypt, LastDecrypt, LastDelivery time.Time
}

// Usage is a key version's counters as stored: the sums of every Count
// added, the latest times, and the last data-at-rest report.
type Usage struct {
	Count
	// RowsLeft is how many stored items the last data-at-rest report
	// found still under this version; it means something only when
	// Reported is set.
	RowsLeft uint64
	// Reported is when that report was made; zero: never.
	Reported time.Time
}

// Add adds c's counts to u's and keeps the later of each time.
func (u *Count) Add(c Count) {
	u.Encryptions += c.Encryptions
	u.Decryptions += c.Decryptions
	u.Deliveries += c.Deliveries
	u.Sealed += c.Sealed
	u.LastEncrypt = later(u.LastEncrypt, c.LastEncrypt)
	u.LastDecrypt = later(u.LastDecrypt, c.LastDecrypt)
	u.LastDelivery = later(u.LastDelivery, c.LastDelivery)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Merge sums counts of the same key version into one Count each, ordered by
// tenant, type and version (the order in which the store locks their rows).
func Merge(counts []Count) []Count {
	by := map[tenant.KeyRef]Count{}
	for _, c := range counts {
		m, ok := by[c.Key]
		if !ok {
			m.Key = c.Key
		}
		m.Add(c)
		by[c.Key] = m
	}
	out := make([]Count, 0, len(by))
	for _, c := range by {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Count) int {
		return cmp.Or(cmp.Compare(a.Key.Tenant, b.Key.Tenant), cmp.Compare(a.Key.Type, b.Key.Type),
			cmp.Compare(a.Key.Version, b.Key.Version))
	})
	return out
}

// The bounds on one DEK's AES-256-GCM seals with random 96-bit nonces: NIST
// SP 800-38D §8.3 allows at most 2³² invocations under one key, beyond
// which the chance of a repeated nonce (which breaks GCM's confidentiality
// and authenticity) exceeds 2⁻³². The warning comes at 2³⁰, a quarter of
// the bound, to leave time to rotate.
const (
	SealWarning = 1 << 30
	SealLimit   = 1 << 32
)

// Probabilistic reports whether keys of type typ encrypt with AES-256-GCM
// under a random nonce, whose invocations are bounded: every type but
// deterministic, whose fields are sealed with AES-SIV (no nonce).
func Probabilistic(typ string) bool { return typ != tenant.TypeDeterministic }

// The nonce states of a key version (Nonces).
const (
	NoncesNone      = "none" // a deterministic key: AES-SIV has no nonce to run out of
	NoncesOK        = "ok"
	NoncesWarning   = "warning"   // at or past SealWarning: rotate soon
	NoncesExhausted = "exhausted" // at or past SealLimit: rotate now
)

// Nonces is the nonce state of a version that the server sealed n messages
// under. Messages that clients seal locally with a delivered DEK are not in
// n: the server cannot count them (see Usage.Deliveries).
func Nonces(n uint64) string {
	switch {
	case n >= SealLimit:
		return NoncesExhausted
	case n >= SealWarning:
		return NoncesWarning
	}
	return NoncesOK
}

// QuietWindow is how long an archived version must have had no server-side
// decryption and no DEK delivery before it can be called safe to destroy.
const QuietWindow = 30 * 24 * time.Hour
