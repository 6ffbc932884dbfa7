package keyusage

import (
	"context"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Report is one key version (without material), its usage and the hints
// drawn from it.
type Report struct {
	Key   tenant.Key
	Usage Usage
	// Nonces is the nonce state of Usage.Sealed (NoncesOK, NoncesWarning,
	// NoncesExhausted), or NoncesNone for a deterministic key.
	Nonces string
	// SafeToDestroy: the version is archived, has had no server-side
	// decryption and no DEK delivery for QuietWindow, and the last
	// data-at-rest report, made after its last use for new data, found
	// nothing left under it. It is a hint: destruction stays a decision.
	SafeToDestroy bool
	// Hint says why the version is, or is not, safe to destroy.
	Hint string
}

// Assess reports on key version k with usage u at time now.
func Assess(k tenant.Key, u Usage, now time.Time) Report {
	u.Key = k.KeyRef()
	r := Report{Key: k.Meta(), Usage: u, Nonces: Nonces(u.Sealed)}
	if !Probabilistic(k.Type) {
		r.Nonces = NoncesNone
	}
	since := now.Add(-QuietWindow)
	day := func(t time.Time) string { return t.UTC().Format(time.DateOnly) }
	switch {
	case k.State == tenant.StateDestroyed:
		r.Hint = "destroyed"
	case k.State == tenant.StateActive:
		r.Hint = "active: new data is encrypted under it"
	case u.LastDecrypt.After(since):
		r.Hint = fmt.Sprintf("decrypted by the server on %s, within the last %d days", day(u.LastDecrypt), QuietWindow/(24*time.Hour))
	case u.LastDelivery.After(since):
		r.Hint = fmt.Sprintf("its DEK was delivered on %s, within the last %d days: clients may still decrypt with it",
			day(u.LastDelivery), QuietWindow/(24*time.Hour))
	case u.Reported.IsZero():
		r.Hint = "no data-at-rest report yet: whether data is left under it is unknown"
	case !u.Reported.After(u.LastEncrypt.Add(time.Minute)) || !u.Reported.After(u.LastDelivery):
		r.Hint = "the last data-at-rest report is older than its last use for new data"
	case u.RowsLeft > 0:
		r.Hint = fmt.Sprintf("the data-at-rest report of %s found %d items under it", day(u.Reported), u.RowsLeft)
	default:
		r.SafeToDestroy = true
		r.Hint = fmt.Sprintf("archived, quiet for %d days, and the data-at-rest report of %s found nothing under it",
			QuietWindow/(24*time.Hour), day(u.Reported))
	}
	return r
}

// Store is what the reports read (internal/store.Store).
type Store interface {
	Keys(ctx context.Context, tenantID, typ string) ([]tenant.Key, error)
	KeyUsage(ctx context.Context, tenantID, typ string) ([]Usage, error)
}

// Service reports on tenants' key usage.
type Service struct {
	st  Store
	now func() time.Time
}

// New returns a Service over st; now is the clock (nil: time.Now).
func New(st Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{st: st, now: now}
}

// Report reports on every key version of the tenant (of type typ, or of
// every type if typ is ""), ordered by type and version; a version never
// used has zero counts. Counts of the last minutes may be missing: the
// aggregate adds them when the node flushes it.
func (s *Service) Report(ctx context.Context, tenantID, typ string) ([]Report, error) {
	ks, err := s.st.Keys(ctx, tenantID, typ)
	if err != nil {
		return nil, fmt.Errorf("keyusage: %w", err)
	}
	us, err := s.st.KeyUsage(ctx, tenantID, typ)
	if err != nil {
		return nil, fmt.Errorf("keyusage: %w", err)
	}
	by := make(map[tenant.KeyRef]Usage, len(us))
	for _, u := range us {
		by[u.Key] = u
	}
	now := s.now()
	out := make([]Report, 0, len(ks))
	for _, k := range ks {
		out = append(out, Assess(k, by[k.KeyRef()], now))
	}
	return out, nil
}
