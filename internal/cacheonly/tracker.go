package cacheonly

import (
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The retry schedule of a key that could not be fetched
// (docs/cache-only.md): after the first failure at t0, every minute until
// t0+5m, then every 5 minutes until t0+24h; then no more, until a request
// needs the key again (which tries once, and a failure starts the schedule
// anew).
const (
	fastRetry    = time.Minute
	fastUntil    = 5 * time.Minute
	slowRetry    = 5 * time.Minute
	ScheduleSpan = 24 * time.Hour
)

// NextRetry is the first retry of the schedule that started at t0 that is
// after now; false once the schedule is over (now at or after t0+24h).
func NextRetry(t0, now time.Time) (time.Time, bool) {
	since := now.Sub(t0)
	if since >= ScheduleSpan {
		return time.Time{}, false
	}
	if since < fastUntil {
		return t0.Add((since/fastRetry + 1) * fastRetry), true
	}
	return t0.Add((since/slowRetry + 1) * slowRetry), true
}

// Tracker is one node's record of the cache-only keys it could not fetch:
// when the schedule of each started, when it may try again, and why it
// failed. The zero value is ready to use; it is safe for concurrent use.
type Tracker struct {
	mu sync.Mutex
	m  map[tenant.KeyRef]*outage
}

type outage struct {
	t0, next time.Time
	over     bool // the schedule ended: the next request tries once more
	err      error
}

// Due reports whether the key may be fetched now: it never failed, or
// failed and its next retry has come, or its schedule is over. If not, it
// returns the error of the last failure.
func (t *Tracker) Due(ref tenant.KeyRef, now time.Time) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.m[ref]
	if o == nil || o.over || !now.Before(o.next) {
		return true, nil
	}
	return false, o.err
}

// Failed records a failed fetch of the key at now: the first failure
// starts the schedule (as does the first after it ended); later ones set
// the next retry.
func (t *Tracker) Failed(ref tenant.KeyRef, now time.Time, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[tenant.KeyRef]*outage{}
	}
	o := t.m[ref]
	if o == nil || o.over {
		o = &outage{t0: now}
		t.m[ref] = o
	}
	o.err = err
	o.next, o.over = NextRetry(o.t0, now)
	o.over = !o.over
}

// Succeeded records a successful fetch: the key is available.
func (t *Tracker) Succeeded(ref tenant.KeyRef) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, ref)
}

// Forget drops what is known of the key (destroyed, or revoked).
func (t *Tracker) Forget(ref tenant.KeyRef) { t.Succeeded(ref) }

// Unavailable reports whether the key's last fetch failed.
func (t *Tracker) Unavailable(ref tenant.KeyRef) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[ref] != nil
}

// Pending lists the keys whose schedule has a retry due at now: what a
// node retries by itself, without waiting for a request.
func (t *Tracker) Pending(now time.Time) []tenant.KeyRef {
	t.mu.Lock()
	defer t.mu.Unlock()
	var refs []tenant.KeyRef
	for ref, o := range t.m {
		if !o.over && !now.Before(o.next) {
			refs = append(refs, ref)
		}
	}
	return refs
}
