package dataplane

import (
	"context"
	"fmt"
	"time"
)

// Eviction bounds. A destroy on one node reaches the others through the
// store's notifications (PostgreSQL LISTEN/NOTIFY) within milliseconds; the
// periodic re-check is the fallback when a notification is lost (a dropped
// connection), so no cached DEK outlives a destroy on another node by more
// than RecheckInterval (plus one store query). Independently, every request
// reads the key's row first (from the row cache, true within its MaxAge of
// 5 s whatever happens to notifications), so a destroyed key is refused on
// every node within that bound, its DEK cached or not.
const (
	// RecheckInterval is how often a node re-reads the recent
	// destructions.
	RecheckInterval = 10 * time.Second
	// recheckOverlap is how far back each re-check looks beyond the
	// previous one: destruction times come from the destroying node's
	// clock, which may lag this node's.
	recheckOverlap = 5 * time.Minute
)

// RetryUnavailable fetches again, at their retries, the cache-only keys
// this node could not fetch (a success puts the DEK in the cache, so that
// the key is available before a request needs it). EvictDestroyed calls it
// at each re-check.
func (s *Service) RetryUnavailable(ctx context.Context) {
	if s.cok == nil {
		return
	}
	for _, ref := range s.cok.Pending() {
		k, err := s.key(ctx, ref)
		if err != nil {
			s.cok.Forget(ref) // destroyed, most likely
			continue
		}
		if d, err := s.dek(ctx, nil, k); err == nil {
			d.Destroy()
		}
	}
}

// EvictDestroyed keeps this node's key cache free of destroyed keys'
// DEKs, and of cache-only keys' DEKs once their key service revoked them,
// however that happened (on this node or another sharing the store): it
// evicts on every destroy or revocation notification, and re-checks the
// recent destructions and revocations every interval (0 =
// RecheckInterval), when it also drops expired cache entries and retries
// the unavailable cache-only keys that are due. It returns once the
// watch has started; the work goes on until ctx is done. onError, if not
// nil, hears of a failed re-check (the next one tries again).
func (s *Service) EvictDestroyed(ctx context.Context, interval time.Duration, onError func(error)) error {
	if interval <= 0 {
		interval = RecheckInterval
	}
	if err := s.st.WatchDestroyed(ctx, s.Evict); err != nil {
		return fmt.Errorf("dataplane: watching for destroyed keys: %w", err)
	}
	since := s.now().Add(-recheckOverlap)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			start := s.now()
			ks, err := s.st.DestroyedSince(ctx, since)
			if err != nil {
				if onError != nil && ctx.Err() == nil {
					onError(fmt.Errorf("dataplane: re-checking destroyed keys: %w", err))
				}
				continue
			}
			for _, k := range ks {
				s.Evict(k.KeyRef())
			}
			revoked, err := s.st.RevokedSince(ctx, since)
			if err != nil {
				if onError != nil && ctx.Err() == nil {
					onError(fmt.Errorf("dataplane: re-checking revoked keys: %w", err))
				}
				continue
			}
			for _, r := range revoked {
				s.Evict(r)
			}
			since = start.Add(-recheckOverlap)
			s.cache.Sweep()
			s.RetryUnavailable(ctx)
		}
	}()
	return nil
}
