package auditlog

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// aggKey is one counter of the aggregate.
type aggKey struct {
	minute                                 int64 // Unix minutes
	actor, role, tenant, key, outcome, why string
	action                                 audit.Action
	remote, detail                         string // CountEntry's only
}

// Aggregate counts data-plane operations (encryptions, decryptions) per
// caller, tenant, key, outcome and minute, and requests refused before any
// work (CountEntry) per minute, address, route and reason, until Flush
// appends them as aggregate entries (audit.Entry.Count). It is safe for
// concurrent use.
//
// An aggregate entry's time is when Flush appended it, so that the log's
// times never run backwards: it is at or after the time of every entry
// appended before it, and at or after the end of its minute unless the
// node flushed within that minute (at shutdown). Its detail names the
// minute, start and end ("aggregate of 12:00:00Z to 12:01:00Z").
type Aggregate struct {
	// Now is the clock that stamps the entries Flush appends; nil means
	// time.Now.
	Now func() time.Time

	mu     sync.Mutex
	counts map[aggKey]uint64
	// sealed are encryptions that no aggregate entry names by their key
	// version (CountEncryption), for the usage counters only.
	sealed map[tenant.KeyRef]keyusage.Count
}

// MaxEntryKeys bounds the distinct counters that CountEntry keeps between
// two flushes: past it, a new address is counted under an empty Remote
// ("other addresses"), so that requests from many addresses cannot make
// the aggregate grow without bound.
const MaxEntryKeys = 10_000

// Count adds one operation of the request whose entry is e (its time,
// actor, role, tenant and action), on key, to the aggregate: with outcome
// ok, or, for a refusal, outcome and reason as given.
func (a *Aggregate) Count(e audit.Entry, key string, outcome audit.Outcome, reason string) {
	k := aggKey{minute: e.Time.Unix() / 60, actor: e.Actor, role: e.Role, tenant: e.Tenant, key: key,
		outcome: string(outcome), why: reason, action: e.Action}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts == nil {
		a.counts = map[aggKey]uint64{}
	}
	a.counts[k]++
}

// CountEntry adds the request whose entry is e, refused before any work
// (one without a valid token), to the aggregate: counted per minute of
// e.Time, actor, role, tenant, action, key, outcome, reason, remote
// address and detail (the route), instead of costing an append of its own.
func (a *Aggregate) CountEntry(e audit.Entry) {
	k := aggKey{minute: e.Time.Unix() / 60, actor: e.Actor, role: e.Role, tenant: e.Tenant, key: e.Key,
		outcome: string(e.Outcome), why: e.Reason, action: e.Action, remote: e.Remote, detail: e.Detail}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.counts == nil {
		a.counts = map[aggKey]uint64{}
	}
	if _, ok := a.counts[k]; !ok && len(a.counts) >= MaxEntryKeys {
		k.remote = ""
	}
	a.counts[k]++
}

// CountEncryption adds one server-side encryption under key version to,
// made by the request whose entry is e, that the request's aggregate entry
// does not name (a rewrap is counted under the version it moved from, and
// seals under the active one): it goes to to's usage counters only, at
// the next Flush.
func (a *Aggregate) CountEncryption(e audit.Entry, to tenant.KeyRef) {
	c := keyusage.Count{Key: to, Encryptions: 1, LastEncrypt: time.Unix(e.Time.Unix()/60*60, 0).UTC()}
	if keyusage.Probabilistic(to.Type) {
		c.Sealed = 1
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sealed == nil {
		a.sealed = map[tenant.KeyRef]keyusage.Count{}
	}
	m := a.sealed[to]
	m.Key = to
	m.Add(c)
	a.sealed[to] = m
}

// Flush appends the aggregate entries of the operations counted so far to
// l, stamped with the current time (see Aggregate), and, in the same
// transaction, adds the successful encryptions and decryptions to the
// usage counters of their key versions (Usage). On failure the counts are
// kept for the next flush.
func (a *Aggregate) Flush(ctx context.Context, l *Log) error {
	a.mu.Lock()
	counts, sealed := a.counts, a.sealed
	a.counts, a.sealed = nil, nil
	a.mu.Unlock()
	if len(counts) == 0 && len(sealed) == 0 {
		return nil
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	// Taken after the counts: every entry appended before this flush was
	// stamped before it.
	at := now().UTC()
	keys := make([]aggKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.minute != b.minute {
			return a.minute < b.minute
		}
		return fmt.Sprint(a) < fmt.Sprint(b)
	})
	entries := make([]audit.Entry, 0, len(keys))
	for _, k := range keys {
		start := time.Unix(k.minute*60, 0).UTC()
		detail := "aggregate of " + start.Format(time.RFC3339) + " to " + start.Add(time.Minute).Format(time.RFC3339)
		if k.detail != "" {
			detail += ": " + k.detail
		}
		entries = append(entries, audit.Entry{
			Time: at, Actor: k.actor, Role: k.role, Tenant: k.tenant,
			Action: k.action, Key: k.key, Outcome: audit.Outcome(k.outcome), Reason: k.why, Count: counts[k],
			Remote: k.remote, Detail: detail,
		})
	}
	use := usage(counts)
	for _, c := range sealed {
		use = append(use, c)
	}
	if err := l.AppendUsage(ctx, use, entries...); err != nil {
		a.mu.Lock()
		if a.counts == nil {
			a.counts = map[aggKey]uint64{}
		}
		for k, n := range counts {
			a.counts[k] += n
		}
		if a.sealed == nil {
			a.sealed = map[tenant.KeyRef]keyusage.Count{}
		}
		for ref, c := range sealed {
			m := a.sealed[ref]
			m.Key = ref
			m.Add(c)
			a.sealed[ref] = m
		}
		a.mu.Unlock()
		return fmt.Errorf("auditlog: appending %d aggregate entries: %w", len(entries), err)
	}
	return nil
}

// usage is what the counts say of each key version: the successful
// encryptions and decryptions, and the minute of the last of each. A
// rewrap is a decryption under the version it names (the one it moved
// from; its new ciphertext is CountEncryption's). An encryption under a
// key of a probabilistic type seals one message with AES-256-GCM under a
// random nonce (internal/envelope format 1), so it is also counted as
// sealed.
func usage(counts map[aggKey]uint64) []keyusage.Count {
	var out []keyusage.Count
	for k, n := range counts {
		if k.outcome != string(audit.OutcomeOK) ||
			k.action != audit.ActionEncrypt && k.action != audit.ActionDecrypt && k.action != audit.ActionRewrap {
			continue
		}
		ref, ok := keyRef(k.tenant, k.key)
		if !ok || store.ValidKeyRef(ref) != nil {
			continue // names no key version: the entry alone records it
		}
		c := keyusage.Count{Key: ref}
		minute := time.Unix(k.minute*60, 0).UTC()
		if k.action == audit.ActionEncrypt {
			c.Encryptions, c.LastEncrypt = n, minute
			if keyusage.Probabilistic(ref.Type) {
				c.Sealed = n
			}
		} else {
			c.Decryptions, c.LastDecrypt = n, minute
		}
		out = append(out, c)
	}
	return keyusage.Merge(out)
}

// keyRef parses the key version an entry names ("data/3").
func keyRef(tenantID, key string) (tenant.KeyRef, bool) {
	typ, v, ok := strings.Cut(key, "/")
	if !ok || tenantID == "" || typ == "" {
		return tenant.KeyRef{}, false
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 {
		return tenant.KeyRef{}, false
	}
	return tenant.KeyRef{Tenant: tenantID, Type: typ, Version: uint32(n)}, true
}
