// Package rowcache keeps a node's copies of the rows that every request
// reads: API tokens (by the SHA-256 of their secret), tenants (by name and
// by ID), key versions and the active key of each series, so that a warm
// request does not touch the store.
//
// # Staying true
//
// A copy is dropped as soon as the store announces a change of its row
// ([store.Change], Store.WatchChanges): a token revoked, a key series
// rotated or restored, a key destroyed, a tenant's settings changed. A
// change made through this node drops the copies before the write returns,
// so this node never answers from a stale row after its own write; a
// change made by another node sharing the database is heard within
// milliseconds (PostgreSQL LISTEN/NOTIFY). Delivery from other nodes is best
// effort (a dropped connection loses what was announced meanwhile), so
// every copy is also read again once it is MaxAge old: no change of another
// node goes unseen here for longer than MaxAge (DefaultMaxAge, 5 s), the
// bound docs/architecture.md ("The hot path") states for revocation and
// destruction.
//
// A fill that raced with a change never stores its row: each change bumps
// a generation, and a row read before the change is dropped when it
// arrives.
//
// Only rows found are kept: an unknown token, tenant or key version is
// asked of the store every time (so that a row created on another node is
// found at once), and errors are never kept.
//
// # What is kept
//
// Rows as the store returns them: token records (a hash and metadata,
// never a secret), tenants, and key rows, whose Wrapped material is
// wrapped under a release's tenant wrapping key (the store's own form; no
// plaintext key material is ever kept here). Tokens, tenants and key rows
// are each bounded (MaxEntries); when one is full, an arbitrary eighth of
// it is dropped (of the key series, for key rows).
//
// Written by hand: the caches in the Go ecosystem (ristretto, otter,
// golang-lru) bound size and age, but none ties entries to change
// notifications with the generation check a security cache needs, and
// the maps here are small.
package rowcache

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// DefaultMaxAge is how long a copy is used before it is read again.
const DefaultMaxAge = 5 * time.Second

// DefaultMaxEntries bounds each of the cache's maps (tokens, tenants, key
// series).
const DefaultMaxEntries = 100_000

// Source is where rows come from (internal/store.Store).
type Source interface {
	TokenByHash(ctx context.Context, hash [32]byte) (tok auth.Token, found bool, err error)
	TenantByName(ctx context.Context, name string) (tenant.Tenant, error)
	TenantByID(ctx context.Context, id string) (tenant.Tenant, error)
	Key(ctx context.Context, ref tenant.KeyRef) (tenant.Key, error)
	ActiveKey(ctx context.Context, tenantID, typ string) (tenant.Key, error)
}

// Options are a Cache's settings; zero fields take the defaults.
type Options struct {
	MaxAge     time.Duration
	MaxEntries int
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Cache is a node's copies of token, tenant and key rows over a Source. It
// is safe for concurrent use. Changes reach it through Invalidate (Watch
// wires it to a store).
type Cache struct {
	src    Source
	maxAge time.Duration
	max    int
	now    func() time.Time

	mu      sync.RWMutex
	gen     uint64 // bumped by every change; a fill older than it is dropped
	tokens  map[[32]byte]entry[auth.Token]
	tokenID map[string][32]byte // token ID → hash, for revocations
	names   map[string]entry[tenant.Tenant]
	ids     map[string]entry[tenant.Tenant]
	series  map[seriesID]*series
	nkeys   int // key rows kept, across every series

	hits, misses, invalidations atomic.Uint64
}

// entry is a copy of a row and when it was read.
type entry[T any] struct {
	v    T
	read time.Time
}

// seriesID names a key series.
type seriesID struct{ tenant, typ string }

// series are the kept rows of one key series.
type series struct {
	active   *entry[tenant.Key]
	versions map[uint32]entry[tenant.Key]
}

// Stats count the cache's answers, and the rows it keeps now.
type Stats struct {
	Hits, Misses, Invalidations uint64
	// Tokens, Tenants (by name and by ID) and Keys (versions and active
	// keys) are the rows kept now (Len).
	Tokens, Tenants, Keys int
}

// New returns an empty Cache over src.
func New(src Source, o Options) *Cache {
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Cache{src: src, maxAge: o.MaxAge, max: o.MaxEntries, now: o.Now,
		tokens: map[[32]byte]entry[auth.Token]{}, tokenID: map[string][32]byte{},
		names: map[string]entry[tenant.Tenant]{}, ids: map[string]entry[tenant.Tenant]{},
		series: map[seriesID]*series{}}
}

// Watcher is what Watch needs of a store (internal/store.Store).
type Watcher interface {
	WatchChanges(ctx context.Context, fn func(store.Change)) error
}

// Watch makes c drop its copies on every change w announces, until ctx is
// done.
func (c *Cache) Watch(ctx context.Context, w Watcher) error {
	return w.WatchChanges(ctx, c.Invalidate)
}

// fresh reports whether a copy read at read may still be used at now.
func (c *Cache) fresh(read, now time.Time) bool {
	age := now.Sub(read)
	return age >= 0 && age < c.maxAge
}

// begin starts a fill: the generation to check at its end, and the time
// its row is read.
func (c *Cache) begin() (uint64, time.Time) {
	c.misses.Add(1)
	c.mu.RLock()
	g := c.gen
	c.mu.RUnlock()
	return g, c.now()
}

// hit counts an answer from a copy.
func (c *Cache) hit() { c.hits.Add(1) }

// TokenByHash implements auth.TokenFinder.
func (c *Cache) TokenByHash(ctx context.Context, hash [32]byte) (auth.Token, bool, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.tokens[hash]
	c.mu.RUnlock()
	if ok && c.fresh(e.read, now) {
		c.hit()
		return e.v, true, nil
	}
	g, read := c.begin()
	tok, found, err := c.src.TokenByHash(ctx, hash)
	if err != nil || !found {
		return tok, found, err
	}
	c.mu.Lock()
	if c.gen == g {
		prune(c.tokens, c.max)
		if len(c.tokenID) > 2*c.max {
			c.rebuildTokenIDs()
		}
		c.tokens[hash] = entry[auth.Token]{tok, read}
		c.tokenID[tok.ID] = hash
	}
	c.mu.Unlock()
	return tok, true, nil
}

// rebuildTokenIDs drops the token IDs whose token is no longer kept.
func (c *Cache) rebuildTokenIDs() {
	c.tokenID = make(map[string][32]byte, len(c.tokens))
	for h, e := range c.tokens {
		c.tokenID[e.v.ID] = h
	}
}

// Touched records that the store now has at as the LastUsed of the token
// with an ID (auth.Tokens records a use once a minute), so that its copy
// does not ask for the same write again.
func (c *Cache) Touched(id string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.tokenID[id]
	if !ok {
		return
	}
	if e, ok := c.tokens[h]; ok && e.v.ID == id && e.v.LastUsed.Before(at) {
		e.v.LastUsed = at
		c.tokens[h] = e
	}
}

// TenantByName is the store's TenantByName.
func (c *Cache) TenantByName(ctx context.Context, name string) (tenant.Tenant, error) {
	return c.tenant(ctx, c.names, name, c.src.TenantByName)
}

// TenantByID is the store's TenantByID.
func (c *Cache) TenantByID(ctx context.Context, id string) (tenant.Tenant, error) {
	return c.tenant(ctx, c.ids, id, c.src.TenantByID)
}

func (c *Cache) tenant(ctx context.Context, m map[string]entry[tenant.Tenant], k string,
	read func(context.Context, string) (tenant.Tenant, error)) (tenant.Tenant, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := m[k]
	c.mu.RUnlock()
	if ok && c.fresh(e.read, now) {
		c.hit()
		return e.v, nil
	}
	g, at := c.begin()
	t, err := read(ctx, k)
	if err != nil {
		return t, err
	}
	c.mu.Lock()
	if c.gen == g {
		prune(m, c.max)
		m[k] = entry[tenant.Tenant]{t, at}
	}
	c.mu.Unlock()
	return t, nil
}

// Key is the store's Key.
func (c *Cache) Key(ctx context.Context, ref tenant.KeyRef) (tenant.Key, error) {
	return c.key(ctx, seriesID{ref.Tenant, ref.Type}, ref.Version, func(ctx context.Context) (tenant.Key, error) {
		return c.src.Key(ctx, ref)
	})
}

// ActiveKey is the store's ActiveKey.
func (c *Cache) ActiveKey(ctx context.Context, tenantID, typ string) (tenant.Key, error) {
	return c.key(ctx, seriesID{tenantID, typ}, 0, func(ctx context.Context) (tenant.Key, error) {
		return c.src.ActiveKey(ctx, tenantID, typ)
	})
}

// key answers version v of a series (0: the active key) from its copy, or
// reads it.
func (c *Cache) key(ctx context.Context, id seriesID, v uint32, read func(context.Context) (tenant.Key, error)) (tenant.Key, error) {
	now := c.now()
	c.mu.RLock()
	var e entry[tenant.Key]
	ok := false
	if s := c.series[id]; s != nil {
		if v == 0 && s.active != nil {
			e, ok = *s.active, true
		} else if v != 0 {
			e, ok = s.versions[v]
		}
	}
	c.mu.RUnlock()
	if ok && c.fresh(e.read, now) {
		c.hit()
		return own(e.v), nil
	}
	g, at := c.begin()
	k, err := read(ctx)
	if err != nil {
		return k, err
	}
	c.mu.Lock()
	if c.gen == g {
		c.keep(id, v, entry[tenant.Key]{own(k), at})
	}
	c.mu.Unlock()
	return k, nil
}

// keep stores a key row of a series (v 0: its active key), dropping an
// arbitrary eighth of the series first when MaxEntries key rows are kept.
// The caller holds mu.
func (c *Cache) keep(id seriesID, v uint32, e entry[tenant.Key]) {
	if c.nkeys >= c.max {
		drop := len(c.series)/8 + 1
		for sid := range c.series {
			if drop == 0 {
				break
			}
			c.dropSeries(sid)
			drop--
		}
	}
	s := c.series[id]
	if s == nil {
		s = &series{versions: map[uint32]entry[tenant.Key]{}}
		c.series[id] = s
	}
	if v == 0 {
		if s.active == nil {
			c.nkeys++
		}
		s.active = &e
		return
	}
	if _, ok := s.versions[v]; !ok {
		c.nkeys++
	}
	s.versions[v] = e
}

// dropSeries forgets a series' rows. The caller holds mu.
func (c *Cache) dropSeries(id seriesID) {
	s := c.series[id]
	if s == nil {
		return
	}
	c.nkeys -= len(s.versions)
	if s.active != nil {
		c.nkeys--
	}
	delete(c.series, id)
}

// own copies a key row's byte slices, so that no caller shares the kept
// copy's.
func own(k tenant.Key) tenant.Key {
	k.Wrapped, k.Fingerprint = bytes.Clone(k.Wrapped), bytes.Clone(k.Fingerprint)
	return k
}

// Invalidate drops the copies a change makes stale. Changes of other kinds
// are ignored.
func (c *Cache) Invalidate(ch store.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.invalidations.Add(1)
	switch ch.Kind {
	case store.TokenRevoked:
		if h, ok := c.tokenID[ch.Token]; ok {
			delete(c.tokens, h)
			delete(c.tokenID, ch.Token)
		}
	case store.TenantChanged:
		delete(c.ids, ch.Tenant)
		for name, e := range c.names {
			if e.v.ID == ch.Tenant {
				delete(c.names, name)
			}
		}
	case store.KeyDestroyed, store.KeysChanged:
		c.dropSeries(seriesID{ch.Key.Tenant, ch.Key.Type})
	}
}

// Stats returns the counts so far, and the rows kept now.
func (c *Cache) Stats() Stats {
	s := Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Invalidations: c.invalidations.Load()}
	s.Tokens, s.Tenants, s.Keys = c.Len()
	return s
}

// prune makes room in m for one more entry: when it holds max, an
// arbitrary eighth of it goes (Go's map order is unspecified).
func prune[K comparable, V any](m map[K]V, max int) {
	if len(m) < max {
		return
	}
	drop := max/8 + 1
	for k := range m {
		if drop == 0 {
			return
		}
		delete(m, k)
		drop--
	}
}

// Len counts the rows kept: tokens, tenants (by name and by ID) and key
// versions (active keys included).
func (c *Cache) Len() (tokens, tenants, keys int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.tokens), len(c.names) + len(c.ids), c.nkeys
}
