package client

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/envelope"
)

// Defaults of DEKCacheOptions.
const (
	DefaultDEKCacheEntries = 100
	DefaultDEKCacheTTL     = 5 * time.Minute
	// MaxDEKCacheTTL bounds DEKCacheOptions.TTL.
	MaxDEKCacheTTL = 24 * time.Hour
)

// ErrCacheClosed: the DEKCache was closed.
var ErrCacheClosed = errors.New("client: the DEK cache is closed")

// DEKCacheOptions configures a DEKCache; the zero value is the defaults.
type DEKCacheOptions struct {
	// MaxEntries bounds the number of DEKs held (default
	// DefaultDEKCacheEntries); the least recently used is evicted first.
	MaxEntries int
	// TTL bounds how long a DEK is held after it was fetched (default
	// DefaultDEKCacheTTL, at most MaxDEKCacheTTL): this is how long a key
	// version destroyed on the server, or an active key replaced by a new
	// one, may still be used from the cache.
	TTL time.Duration
	// KEM is the HPKE KEM the DEKs are delivered to (0 = KEMX25519).
	KEM uint16
}

// DEKCache fetches DEKs (Client.DEK) and keeps them, for a program that
// encrypts and decrypts locally: Encrypt, Decrypt, EncryptWriter and
// DecryptReader cost a request only when the DEK they need is not cached.
// It is bounded in entries (least recently used out first) and in age: a
// DEK is dropped TTL after it was fetched, so a destroyed key version stops
// working here at most TTL after its destruction, and a new active key is
// used from at most TTL after it was made. Every DEK that leaves the cache,
// by age, by the bound or by Close, is destroyed (DEK.Destroy) as soon as
// the calls using it at that moment return.
//
// It is safe for concurrent use; concurrent calls that need the same key
// version wait for one fetch between them (a caller that gives up does not
// cancel it for the others).
type DEKCache struct {
	fetch     func(ctx context.Context, tenant, typ string, version uint32) (DEK, error)
	fetchMany func(ctx context.Context, tenant string, keys []api.DEKKey) ([]DEKResult, error)
	max       int
	ttl       time.Duration

	mu      sync.Mutex
	entries map[cacheKey]*list.Element // of *cacheEntry
	calls   map[cacheKey]*call         // fetches in flight
	lru     list.List                  // most recently used at the front
	closed  bool
}

// cacheKey names a cached DEK as it was asked for: version 0 is the active
// key at the time of the fetch.
type cacheKey struct {
	tenant, typ string
	version     uint32
}

type cacheEntry struct {
	key     cacheKey
	dek     DEK
	expires time.Time
	timer   *time.Timer
	// refs counts the calls using dek now; gone is set (with c.mu held)
	// when the entry leaves the cache. Whichever of remove and the last
	// release sees the other's write destroys dek (both may: harmless).
	refs atomic.Int64
	gone atomic.Bool
}

// NewDEKCache returns a cache of the DEKs c fetches. Close it when done.
func NewDEKCache(c *Client, opts DEKCacheOptions) (*DEKCache, error) {
	switch opts.KEM {
	case 0, KEMX25519, KEMMLKEM768X25519:
	default:
		return nil, fmt.Errorf("client: HPKE KEM %#04x: use %#04x (X25519) or %#04x (ML-KEM-768+X25519)",
			opts.KEM, KEMX25519, KEMMLKEM768X25519)
	}
	return newDEKCache(func(ctx context.Context, tenant, typ string, version uint32) (DEK, error) {
		return c.DEK(ctx, tenant, typ, version, opts.KEM)
	}, func(ctx context.Context, tenant string, keys []api.DEKKey) ([]DEKResult, error) {
		return c.DEKs(ctx, tenant, opts.KEM, keys...)
	}, opts)
}

func newDEKCache(fetch func(context.Context, string, string, uint32) (DEK, error),
	fetchMany func(context.Context, string, []api.DEKKey) ([]DEKResult, error), opts DEKCacheOptions) (*DEKCache, error) {
	switch {
	case opts.MaxEntries < 0:
		return nil, fmt.Errorf("client: DEK cache of %d entries", opts.MaxEntries)
	case opts.TTL < 0 || opts.TTL > MaxDEKCacheTTL:
		return nil, fmt.Errorf("client: DEK cache TTL %v (at most %v)", opts.TTL, MaxDEKCacheTTL)
	}
	c := &DEKCache{fetch: fetch, fetchMany: fetchMany, max: opts.MaxEntries, ttl: opts.TTL, entries: map[cacheKey]*list.Element{}, calls: map[cacheKey]*call{}}
	if c.max == 0 {
		c.max = DefaultDEKCacheEntries
	}
	if c.ttl == 0 {
		c.ttl = DefaultDEKCacheTTL
	}
	return c, nil
}

// acquire returns the cached entry of k, or fetches it, with a reference
// that the caller releases.
func (c *DEKCache) acquire(ctx context.Context, k cacheKey) (*cacheEntry, error) {
	if k.typ == "" {
		k.typ = "data"
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrCacheClosed
	}
	if el, ok := c.entries[k]; ok {
		e := el.Value.(*cacheEntry)
		if time.Now().Before(e.expires) {
			e.refs.Add(1)
			if c.lru.Front() != el {
				c.lru.MoveToFront(el)
			}
			c.mu.Unlock()
			return e, nil
		}
	}
	// One fetch for every caller that needs k now; it is not cancelled when
	// the first of them gives up (the client's timeout bounds it).
	cl, ok := c.calls[k]
	if !ok {
		cl = &call{done: make(chan struct{})}
		c.calls[k] = cl
		go c.load(context.WithoutCancel(ctx), k, cl)
	}
	cl.waiters++
	c.mu.Unlock()
	select {
	case <-cl.done:
		return cl.e, cl.err
	case <-ctx.Done():
		c.mu.Lock()
		select {
		case <-cl.done: // done meanwhile, with a reference for this caller
			c.mu.Unlock()
			if cl.e != nil {
				c.release(cl.e)
			}
		default:
			cl.waiters--
			c.mu.Unlock()
		}
		return nil, ctx.Err()
	}
}

// call is a fetch in flight and the callers that wait for it.
type call struct {
	done    chan struct{} // closed with c.mu held, once e or err is set
	waiters int
	e       *cacheEntry // with a reference for each waiter
	err     error
}

// load fetches the DEK of k and caches it, with a reference for each caller
// waiting for it, destroying what it replaces or evicts.
func (c *DEKCache) load(ctx context.Context, k cacheKey, cl *call) {
	d, err := c.fetch(ctx, k.tenant, k.typ, k.version)
	out := []DEK{}
	c.mu.Lock()
	delete(c.calls, k)
	switch {
	case err != nil:
		cl.err = err
	case c.closed:
		cl.err = ErrCacheClosed
		out = append(out, d)
	default:
		cl.e, out = c.insert(k, d, cl.waiters, out)
	}
	// Destroyed before the waiters go on, so that an eviction is over when
	// the call that caused it returns. No call uses these DEKs (remove
	// keeps those in use for their last caller), so Destroy does not wait.
	for _, d := range out {
		d.Destroy()
	}
	close(cl.done)
	c.mu.Unlock()
}

// insert caches d as the DEK of k with refs references, replacing what k
// had and evicting the least recently used beyond the bound; it returns the
// entry and out with the DEKs to destroy added. c.mu is held.
func (c *DEKCache) insert(k cacheKey, d DEK, refs int, out []DEK) (*cacheEntry, []DEK) {
	if el, ok := c.entries[k]; ok {
		out = append(out, c.remove(el))
	}
	e := &cacheEntry{key: k, dek: d, expires: time.Now().Add(c.ttl)}
	e.refs.Store(int64(refs))
	el := c.lru.PushFront(e)
	c.entries[k] = el
	e.timer = time.AfterFunc(c.ttl, func() { c.expire(el) })
	for c.lru.Len() > c.max {
		out = append(out, c.remove(c.lru.Back()))
	}
	return e, out
}

// Prefetch fetches the DEKs of a tenant's keys that are not cached, in one
// request (Client.DEKs: one HPKE encapsulation for all of them), and caches
// them as Encrypt and Decrypt would one at a time: e.g. at a program's
// start, the active key of each type it uses (version 0) and the versions
// its data is under. Keys cached or being fetched are left alone, and at
// most 64 others may be asked for (the server refuses the request beyond).
// A key the server refuses is not cached, and its error is returned, joined
// with the others', once the rest are cached.
func (c *DEKCache) Prefetch(ctx context.Context, tenant string, keys ...api.DEKKey) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrCacheClosed
	}
	var want []cacheKey
	now := time.Now()
	for _, k := range keys {
		ck := cacheKey{tenant: tenant, typ: cmp.Or(k.Type, "data"), version: k.Version}
		if slices.Contains(want, ck) || c.calls[ck] != nil {
			continue
		}
		if el, ok := c.entries[ck]; ok && now.Before(el.Value.(*cacheEntry).expires) {
			continue
		}
		want = append(want, ck)
	}
	c.mu.Unlock()
	if len(want) == 0 {
		return nil
	}
	asked := make([]api.DEKKey, len(want))
	for i, k := range want {
		asked[i] = api.DEKKey{Type: k.typ, Version: k.version}
	}
	res, err := c.fetchMany(ctx, tenant, asked)
	if err != nil {
		return err
	}
	var errs []error
	var out []DEK
	c.mu.Lock()
	for i, r := range res {
		switch {
		case r.Error != nil:
			errs = append(errs, fmt.Errorf("client: the DEK of %s version %d: %s: %s", want[i].typ, want[i].version, r.Error.Code, r.Error.Message))
		case c.closed:
			out = append(out, r.DEK)
		default:
			_, out = c.insert(want[i], r.DEK, 0, out)
		}
	}
	for _, d := range out {
		d.Destroy()
	}
	c.mu.Unlock()
	return errors.Join(errs...)
}

// release drops a reference to e, and destroys its DEK if it left the cache
// and this was the last one.
func (c *DEKCache) release(e *cacheEntry) {
	if e.refs.Add(-1) == 0 && e.gone.Load() {
		e.dek.Destroy()
	}
}

// expire drops el at its TTL, unless it left the cache already.
func (c *DEKCache) expire(el *list.Element) {
	e := el.Value.(*cacheEntry)
	var d DEK
	c.mu.Lock()
	if cur, ok := c.entries[e.key]; ok && cur == el {
		d = c.remove(el)
	}
	c.mu.Unlock()
	d.Destroy()
}

// remove takes el out of the cache and returns its DEK for the caller to
// destroy once c.mu is released (Destroy waits for calls in flight), or the
// zero DEK if callers still use it: the last of them destroys it.
func (c *DEKCache) remove(el *list.Element) DEK {
	e := el.Value.(*cacheEntry)
	e.timer.Stop()
	c.lru.Remove(el)
	delete(c.entries, e.key)
	e.gone.Store(true)
	if e.refs.Load() > 0 {
		return DEK{}
	}
	return e.dek
}

// Close destroys every cached DEK (those in use once their calls return);
// every call fails with ErrCacheClosed from then on. Streams started before
// go on to their end.
func (c *DEKCache) Close() {
	c.mu.Lock()
	c.closed = true
	var out []DEK
	for c.lru.Len() > 0 {
		out = append(out, c.remove(c.lru.Back()))
	}
	c.mu.Unlock()
	for _, d := range out {
		d.Destroy()
	}
}

// with calls f with the DEK of k, which stays alive until f returns.
func (c *DEKCache) with(ctx context.Context, k cacheKey, f func(DEK) error) error {
	e, err := c.acquire(ctx, k)
	if err != nil {
		return err
	}
	defer c.release(e)
	return f(e.dek)
}

// Encrypt encrypts plaintext under the tenant's active key of type typ (""
// = data), bound to context, as DEK.Encrypt does: the server decrypts it.
func (c *DEKCache) Encrypt(ctx context.Context, tenant, typ string, plaintext []byte, context map[string]string) ([]byte, error) {
	var ct []byte
	err := c.with(ctx, cacheKey{tenant: tenant, typ: typ}, func(d DEK) error {
		var err error
		ct, err = d.Encrypt(plaintext, context)
		return err
	})
	return ct, err
}

// Decrypt decrypts a ciphertext of the tenant (the server's or Encrypt's)
// with the DEK of the key version its header names. Every failure to open it
// is ErrDecrypt; a destroyed key is the server's key_destroyed *Error.
func (c *DEKCache) Decrypt(ctx context.Context, tenant string, ciphertext []byte, context map[string]string) ([]byte, error) {
	h, err := envelope.ParseHeader(ciphertext)
	if err != nil {
		return nil, ErrDecrypt
	}
	var pt []byte
	err = c.with(ctx, cacheKey{tenant: tenant, typ: h.Type, version: h.Version}, func(d DEK) error {
		var err error
		pt, err = d.Decrypt(ciphertext, context)
		return err
	})
	return pt, err
}

// EncryptWriter is DEK.EncryptWriter with the DEK of the tenant's active
// key of type typ ("" = data).
func (c *DEKCache) EncryptWriter(ctx context.Context, tenant, typ string, dst io.Writer, context map[string]string) (io.WriteCloser, error) {
	var w io.WriteCloser
	err := c.with(ctx, cacheKey{tenant: tenant, typ: typ}, func(d DEK) error {
		var err error
		w, err = d.EncryptWriter(dst, context)
		return err
	})
	return w, err
}

// DecryptReader is DEK.DecryptReader with the DEK of the key version the
// stream names: it reads the stream's header from src first.
func (c *DEKCache) DecryptReader(ctx context.Context, tenant string, src io.Reader, context map[string]string) (io.Reader, error) {
	h, err := readStreamHeader(src)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	err = c.with(ctx, cacheKey{tenant: tenant, typ: h.Type, version: h.Version}, func(d DEK) error {
		var err error
		r, err = d.openStream(h, src, context)
		return err
	})
	return r, err
}
