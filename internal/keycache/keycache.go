// Package keycache is the regional key server's in-memory cache of data
// encryption keys and release secrets.
//
// Keys are cached in memory only, and never in the clear: each entry is
// sealed with AES-256-GCM under a random process key made when the cache is
// created, with the entry's id as associated data, so that a sealed entry
// moved to another id does not open. The cache is an LRU bounded in entries,
// whose entries also expire a fixed time (TTL) after they were stored,
// however often they are read. GetOrLoad collapses concurrent misses for the
// same id into one call of the loader, so that a cold DEK costs one PBKDF2
// run however many requests want it at once.
//
// Evict and EvictPrefix remove keys immediately, and also cancel loads in
// flight for them, so that a load that began before a key was destroyed
// cannot put it back. Close wipes the process key and every entry.
//
// Every Key the cache returns is a fresh copy that the caller owns (and
// should Destroy). Put copies the caller's Key; a Key returned by a
// GetOrLoad loader passes to the cache, which destroys it.
package keycache

import (
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Defaults for the zero Options.
const (
	DefaultMaxEntries = 10_000
	DefaultTTL        = 15 * time.Minute
)

// MaxIDLen is the longest entry id, in bytes.
const MaxIDLen = 512

var (
	// ErrClosed is returned by a cache after Close.
	ErrClosed = errors.New("keycache: closed")
	// ErrEvicted is returned by GetOrLoad when the id was evicted (Evict,
	// EvictPrefix) while its load was in flight: the loaded key is
	// destroyed rather than returned or cached.
	ErrEvicted = errors.New("keycache: evicted while loading")
	// ErrID reports an empty or over-long id.
	ErrID = errors.New("keycache: invalid id")
)

// Options configure a Cache.
type Options struct {
	// MaxEntries bounds the number of cached keys; the least recently
	// used goes first. Zero or less means DefaultMaxEntries.
	MaxEntries int
	// TTL is how long an entry lives after it was stored. Zero or less
	// means DefaultTTL.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Stats are the cache's counters since New.
type Stats struct {
	Entries     int    // entries now cached
	Hits        uint64 // Get and GetOrLoad calls answered from the cache
	Misses      uint64 // Get and GetOrLoad calls not answered from the cache
	Loads       uint64 // calls of a GetOrLoad loader
	LoadErrors  uint64 // loader calls that failed (or whose key was evicted meanwhile)
	Shared      uint64 // GetOrLoad calls that waited for another caller's load
	Evictions   uint64 // entries dropped to stay within MaxEntries
	Expirations uint64 // entries dropped because their TTL had passed
	Removals    uint64 // entries dropped by Evict and EvictPrefix
	Corrupt     uint64 // entries that failed to open (and were dropped)
	Rekeys      uint64 // process key replacements (see maxSeals)
}

// maxSeals is how many entries one process key seals before the cache
// replaces it (and drops every entry): random 96-bit GCM nonces are safe for
// 2^32 messages under one key (NIST SP 800-38D); we stop well before. At a
// thousand cold keys a second that is once every 24 days.
const maxSeals = 1 << 31

// entry is one cached key.
type entry struct {
	id      string
	sealed  []byte // primitive.Seal(process key, key, id): nonce || ciphertext || tag
	expires time.Time
}

// call is a load in flight for one id.
type call struct {
	done chan struct{} // closed when key and err are set
	key  secret.Key    // the loaded key, owned by the call; destroyed by the last reader
	err  error
	refs int  // callers that have not yet taken their result; guarded by Cache.mu
	gone bool // evicted (or the cache closed) while loading
	ttl  time.Duration
}

// Cache is a concurrency-safe LRU cache of keys, sealed in memory.
type Cache struct {
	maxEntries int
	ttl        time.Duration
	now        func() time.Time
	maxSeals   uint64 // maxSeals, lowered by tests

	mu      sync.Mutex
	pkey    secret.Key // the process key; empty after Close
	seals   uint64     // entries sealed under pkey
	entries map[string]*list.Element
	lru     *list.List // of *entry, most recently used at the front
	calls   map[string]*call
	stats   Stats
	closed  bool
}

// New returns an empty cache with a fresh random process key.
func New(o Options) *Cache {
	c := &Cache{
		maxEntries: o.MaxEntries,
		ttl:        o.TTL,
		now:        o.Now,
		entries:    map[string]*list.Element{},
		lru:        list.New(),
		calls:      map[string]*call{},
		maxSeals:   maxSeals,
	}
	if c.maxEntries <= 0 {
		c.maxEntries = DefaultMaxEntries
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.pkey = newProcessKey()
	return c
}

// newProcessKey returns 32 random bytes as a Key. crypto/rand.Read never
// fails (since Go 1.24 it crashes the program rather than return an error).
func newProcessKey() secret.Key {
	var b [secret.Size]byte
	_, _ = rand.Read(b[:])
	k, _ := secret.New(b[:])
	clear(b[:])
	return k
}

func checkID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %d bytes (1 to %d)", ErrID, len(id), MaxIDLen)
	}
	return nil
}

// Put caches a copy of k under id, replacing any entry for id, and makes it
// the most recently used. Its TTL starts now. It fails only for an invalid
// id, an empty k, or a closed cache.
func (c *Cache) Put(id string, k secret.Key) error {
	if err := checkID(id); err != nil {
		return err
	}
	if k.IsZero() {
		return errors.New("keycache: Put of an empty key")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.putLocked(id, k, 0)
}

// putLocked caches k under id for ttl, or for the cache's TTL if ttl is
// zero or longer.
func (c *Cache) putLocked(id string, k secret.Key, ttl time.Duration) error {
	if c.closed {
		return ErrClosed
	}
	if c.seals >= c.maxSeals {
		c.rekeyLocked()
	}
	sealed, err := primitive.Seal(c.pkey, k.Bytes(), []byte(id))
	if err != nil {
		return fmt.Errorf("keycache: %w", err)
	}
	c.seals++
	if ttl <= 0 || ttl > c.ttl {
		ttl = c.ttl
	}
	expires := c.now().Add(ttl)
	if el, ok := c.entries[id]; ok {
		e := el.Value.(*entry)
		clear(e.sealed)
		e.sealed, e.expires = sealed, expires
		c.lru.MoveToFront(el)
		return nil
	}
	c.entries[id] = c.lru.PushFront(&entry{id: id, sealed: sealed, expires: expires})
	for c.lru.Len() > c.maxEntries {
		c.removeLocked(c.lru.Back())
		c.stats.Evictions++
	}
	return nil
}

// rekeyLocked replaces the process key and drops every entry (they were
// sealed under the old key). Loads in flight are not affected: they seal
// under the new key when they finish.
func (c *Cache) rekeyLocked() {
	c.dropAllLocked()
	c.pkey.Destroy()
	c.pkey = newProcessKey()
	c.seals = 0
	c.stats.Rekeys++
}

// Get returns a copy of the key cached under id, and makes it the most
// recently used. An expired entry, or one that does not open, is dropped
// and reported as a miss.
func (c *Cache) Get(id string) (secret.Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.getLocked(id)
	if ok {
		c.stats.Hits++
	} else {
		c.stats.Misses++
	}
	return k, ok
}

func (c *Cache) getLocked(id string) (secret.Key, bool) {
	el, ok := c.entries[id]
	if !ok {
		return secret.Key{}, false
	}
	e := el.Value.(*entry)
	if !c.now().Before(e.expires) {
		c.removeLocked(el)
		c.stats.Expirations++
		return secret.Key{}, false
	}
	raw, err := primitive.Open(c.pkey, e.sealed, []byte(id))
	if err != nil {
		c.removeLocked(el)
		c.stats.Corrupt++
		return secret.Key{}, false
	}
	k, err := secret.New(raw)
	clear(raw)
	if err != nil {
		c.removeLocked(el)
		c.stats.Corrupt++
		return secret.Key{}, false
	}
	c.lru.MoveToFront(el)
	return k, true
}

// GetOrLoad returns a copy of the key cached under id; on a miss it calls
// load, caches its key and returns a copy of it. Concurrent misses for the
// same id call load once: the others wait for it (or for their ctx).
//
// load runs in the goroutine of the first caller, with that caller's ctx. If
// it fails, every caller waiting for it gets its error and nothing is cached,
// except that a waiter whose own ctx is still live retries when the failure
// was the first caller's context ending. If id is evicted (Evict,
// EvictPrefix) or the cache closed while load runs, the loaded key is
// destroyed and every caller gets ErrEvicted or ErrClosed.
//
// load's key passes to the cache, which destroys it once it is sealed and
// copied for the callers: load must not keep or reuse it.
func (c *Cache) GetOrLoad(ctx context.Context, id string, load func(context.Context) (secret.Key, error)) (secret.Key, error) {
	return c.GetOrLoadFor(ctx, id, 0, load)
}

// GetOrLoadFor is GetOrLoad whose loaded key lives at most maxAge in the
// cache (or the cache's TTL, if that is shorter or maxAge is zero): for
// keys that must be fetched again after a while however often they are
// read. Waiters share the first caller's load and its maxAge.
func (c *Cache) GetOrLoadFor(ctx context.Context, id string, maxAge time.Duration, load func(context.Context) (secret.Key, error)) (secret.Key, error) {
	if err := checkID(id); err != nil {
		return secret.Key{}, err
	}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return secret.Key{}, ErrClosed
		}
		if k, ok := c.getLocked(id); ok {
			c.stats.Hits++
			c.mu.Unlock()
			return k, nil
		}
		c.stats.Misses++
		if cl, ok := c.calls[id]; ok {
			cl.refs++
			c.stats.Shared++
			c.mu.Unlock()
			select {
			case <-cl.done:
			case <-ctx.Done():
				c.mu.Lock()
				c.releaseLocked(cl)
				c.mu.Unlock()
				return secret.Key{}, ctx.Err()
			}
			k, err := c.take(cl)
			if err != nil && isContextErr(err) && ctx.Err() == nil {
				continue // the loader's caller gave up; we have not
			}
			return k, err
		}
		cl := &call{done: make(chan struct{}), refs: 1, ttl: maxAge}
		c.calls[id] = cl
		c.stats.Loads++
		c.mu.Unlock()
		c.load(ctx, id, cl, load)
		return c.take(cl)
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// load runs the loader for cl and publishes its outcome, even if the loader
// panics (the panic then continues in the first caller's goroutine, and the
// waiters get an error).
func (c *Cache) load(ctx context.Context, id string, cl *call, load func(context.Context) (secret.Key, error)) {
	var (
		k        secret.Key
		err      error
		finished bool
	)
	defer func() {
		if !finished {
			err = fmt.Errorf("keycache: the loader for %q panicked", id)
		}
		c.finish(id, cl, k, err)
	}()
	k, err = load(ctx)
	finished = true
}

// finish publishes a load's result: caches the key unless the id was
// evicted meanwhile, and wakes the waiters.
func (c *Cache) finish(id string, cl *call, k secret.Key, err error) {
	c.mu.Lock()
	defer close(cl.done)
	defer c.mu.Unlock()
	if c.calls[id] == cl {
		delete(c.calls, id)
	}
	if err == nil && k.IsZero() {
		err = fmt.Errorf("keycache: the loader for %q returned no key", id)
	}
	if err == nil {
		switch {
		case c.closed:
			err = ErrClosed
		case cl.gone:
			err = ErrEvicted
		default:
			err = c.putLocked(id, k, cl.ttl)
		}
	}
	if err != nil {
		if !k.IsZero() {
			k.Destroy()
		}
		c.stats.LoadErrors++
		cl.err = err
		return
	}
	cl.key = k
}

// take returns the caller's copy of a finished load's result.
func (c *Cache) take(cl *call) (secret.Key, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.releaseLocked(cl)
	if cl.err != nil {
		return secret.Key{}, cl.err
	}
	return secret.New(cl.key.Bytes())
}

// releaseLocked drops a caller's reference to cl; the last one, once the
// load has finished, destroys the loaded key.
func (c *Cache) releaseLocked(cl *call) {
	cl.refs--
	if cl.refs == 0 && !cl.key.IsZero() {
		cl.key.Destroy()
	}
}

// Evict drops the entry for id, if any, at once, and makes a load in flight
// for id fail with ErrEvicted instead of caching its key. It reports whether
// there was an entry or a load.
func (c *Cache) Evict(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	found := false
	if el, ok := c.entries[id]; ok {
		c.removeLocked(el)
		c.stats.Removals++
		found = true
	}
	if cl, ok := c.calls[id]; ok {
		cl.gone = true
		delete(c.calls, id)
		found = true
	}
	return found
}

// EvictPrefix drops every entry whose id starts with prefix, and cancels
// loads in flight for such ids, as Evict does. It returns how many entries
// and loads it dropped. The empty prefix drops everything. It takes time
// linear in the number of entries.
func (c *Cache) EvictPrefix(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for id, el := range c.entries {
		if strings.HasPrefix(id, prefix) {
			c.removeLocked(el)
			c.stats.Removals++
			n++
		}
	}
	for id, cl := range c.calls {
		if strings.HasPrefix(id, prefix) {
			cl.gone = true
			delete(c.calls, id)
			n++
		}
	}
	return n
}

// Sweep drops every expired entry and returns how many it dropped. Expired
// entries are otherwise dropped only when read or pushed out by newer ones;
// a server may call Sweep periodically to bound how long they stay in
// memory (sealed).
func (c *Cache) Sweep() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	n := 0
	for _, el := range c.entries {
		if !now.Before(el.Value.(*entry).expires) {
			c.removeLocked(el)
			c.stats.Expirations++
			n++
		}
	}
	return n
}

// removeLocked unlinks an entry and wipes its sealed bytes.
func (c *Cache) removeLocked(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.entries, e.id)
	clear(e.sealed)
	e.sealed = nil
}

func (c *Cache) dropAllLocked() {
	for _, el := range c.entries {
		e := el.Value.(*entry)
		clear(e.sealed)
		e.sealed = nil
	}
	clear(c.entries)
	c.lru.Init()
}

// Has reports whether id has an entry that has not expired, without
// opening it, counting it or moving it in the LRU order: a hint for work
// only a miss needs (the entry may be gone by the time it is read).
func (c *Cache) Has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[id]
	return ok && c.now().Before(el.Value.(*entry).expires)
}

// Len returns the number of entries, expired ones included until they are
// dropped.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = c.lru.Len()
	return s
}

// Close wipes every entry and the process key. Loads in flight finish with
// ErrClosed; every later call fails (Put, GetOrLoad: ErrClosed) or misses
// (Get). Close is idempotent.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.dropAllLocked()
	for id, cl := range c.calls {
		cl.gone = true
		delete(c.calls, id)
	}
	c.pkey.Destroy()
}
