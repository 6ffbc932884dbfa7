package keycache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// clock is a settable clock for TTL tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testKey returns a key whose bytes are all b (b != 0) except the first,
// which is i, so that keys made for different i differ.
func testKey(t testing.TB, b byte, i int) secret.Key {
	t.Helper()
	raw := bytes.Repeat([]byte{b}, secret.Size)
	raw[0] = byte(i)
	k, err := secret.New(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustPut(t testing.TB, c *Cache, id string, k secret.Key) {
	t.Helper()
	if err := c.Put(id, k); err != nil {
		t.Fatalf("Put(%q): %v", id, err)
	}
}

func mustGet(t testing.TB, c *Cache, id string, want secret.Key) {
	t.Helper()
	k, ok := c.Get(id)
	if !ok {
		t.Fatalf("Get(%q): miss", id)
	}
	if !k.Equal(want) {
		t.Fatalf("Get(%q): wrong key", id)
	}
}

func mustMiss(t testing.TB, c *Cache, id string) {
	t.Helper()
	if _, ok := c.Get(id); ok {
		t.Fatalf("Get(%q): hit, want a miss", id)
	}
}

// ids returns the cached ids, most recently used first.
func ids(c *Cache) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for el := c.lru.Front(); el != nil; el = el.Next() {
		out = append(out, el.Value.(*entry).id)
	}
	return out
}

func storedEntry(t *testing.T, c *Cache, id string) *entry {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[id]
	if !ok {
		t.Fatalf("no entry %q", id)
	}
	return el.Value.(*entry)
}

func TestPutGet(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	if c.maxEntries != DefaultMaxEntries || c.ttl != DefaultTTL || c.now == nil {
		t.Fatalf("defaults: %d %v", c.maxEntries, c.ttl)
	}
	k := testKey(t, 0xaa, 1)
	want := testKey(t, 0xaa, 1)
	mustMiss(t, c, "dek/a")
	mustPut(t, c, "dek/a", k)
	// The cache holds a copy: destroying the caller's key changes nothing.
	k.Destroy()
	got, ok := c.Get("dek/a")
	if !ok || !got.Equal(want) {
		t.Fatal("Get after Put")
	}
	// And hands out copies: destroying one changes nothing either.
	got.Destroy()
	mustGet(t, c, "dek/a", want)
	// Put replaces.
	other := testKey(t, 0xbb, 2)
	mustPut(t, c, "dek/a", other)
	mustGet(t, c, "dek/a", other)
	if c.Len() != 1 {
		t.Fatalf("Len = %d", c.Len())
	}
	s := c.Stats()
	if s.Hits != 3 || s.Misses != 1 || s.Entries != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	k := testKey(t, 1, 1)
	for _, id := range []string{"", strings.Repeat("x", MaxIDLen+1)} {
		if err := c.Put(id, k); !errors.Is(err, ErrID) {
			t.Errorf("Put(%d bytes): %v", len(id), err)
		}
		if _, err := c.GetOrLoad(t.Context(), id, func(context.Context) (secret.Key, error) { return k, nil }); !errors.Is(err, ErrID) {
			t.Errorf("GetOrLoad(%d bytes): %v", len(id), err)
		}
	}
	if err := c.Put(strings.Repeat("x", MaxIDLen), k); err != nil {
		t.Errorf("Put(MaxIDLen bytes): %v", err)
	}
	if err := c.Put("empty", secret.Key{}); err == nil {
		t.Error("Put of an empty key")
	}
	// A loader that returns no key is an error, and nothing is cached.
	if _, err := c.GetOrLoad(t.Context(), "nokey", func(context.Context) (secret.Key, error) { return secret.Key{}, nil }); err == nil {
		t.Error("loader returned no key: no error")
	}
	if c.Len() != 1 {
		t.Errorf("Len = %d", c.Len())
	}
}

func TestLRU(t *testing.T) {
	t.Parallel()
	c := New(Options{MaxEntries: 3})
	defer c.Close()
	keys := map[string]secret.Key{}
	for i, id := range []string{"a", "b", "c"} {
		keys[id] = testKey(t, 0x11, i)
		mustPut(t, c, id, keys[id])
	}
	if got := strings.Join(ids(c), ""); got != "cba" {
		t.Fatalf("order %q", got)
	}
	mustGet(t, c, "a", keys["a"]) // a becomes the most recent; b the least
	if got := strings.Join(ids(c), ""); got != "acb" {
		t.Fatalf("order after Get(a) %q", got)
	}
	keys["d"] = testKey(t, 0x11, 3)
	mustPut(t, c, "d", keys["d"])
	if c.Len() != 3 {
		t.Fatalf("Len = %d", c.Len())
	}
	mustMiss(t, c, "b")
	if got := strings.Join(ids(c), ""); got != "dac" {
		t.Fatalf("order after Put(d) %q", got)
	}
	// Replacing an entry makes it the most recent without evicting.
	mustPut(t, c, "c", keys["c"])
	if got := strings.Join(ids(c), ""); got != "cda" {
		t.Fatalf("order after Put(c) %q", got)
	}
	// A miss does not change the order.
	mustMiss(t, c, "zz")
	for _, id := range []string{"e", "f"} {
		keys[id] = testKey(t, 0x11, int(id[0]))
		mustPut(t, c, id, keys[id])
	}
	if got := strings.Join(ids(c), ""); got != "fec" {
		t.Fatalf("order after Put(e, f) %q", got)
	}
	for _, id := range []string{"c", "e", "f"} {
		mustGet(t, c, id, keys[id])
	}
	if s := c.Stats(); s.Evictions != 3 || s.Entries != 3 {
		t.Fatalf("stats %+v", s)
	}
	// One entry: each Put evicts the other.
	one := New(Options{MaxEntries: 1})
	defer one.Close()
	mustPut(t, one, "x", keys["a"])
	mustPut(t, one, "y", keys["b"])
	mustMiss(t, one, "x")
	mustGet(t, one, "y", keys["b"])
}

func TestTTL(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := New(Options{TTL: time.Minute, Now: clk.Now})
	defer c.Close()
	k := testKey(t, 0x22, 0)
	mustPut(t, c, "a", k)
	clk.Advance(30 * time.Second)
	mustPut(t, c, "b", k)
	clk.Advance(30*time.Second - time.Nanosecond)
	mustGet(t, c, "a", k) // reading does not extend the TTL...
	clk.Advance(time.Nanosecond)
	mustMiss(t, c, "a") // ...which ends exactly TTL after the Put
	if c.Len() != 1 {
		t.Fatalf("expired entry not dropped: Len = %d", c.Len())
	}
	mustGet(t, c, "b", k)
	// Put restarts the TTL.
	clk.Advance(29 * time.Second)
	mustPut(t, c, "b", k)
	clk.Advance(59 * time.Second)
	mustGet(t, c, "b", k)
	// GetOrLoad reloads an expired entry.
	clk.Advance(time.Second)
	loads := 0
	got, err := c.GetOrLoad(t.Context(), "b", func(context.Context) (secret.Key, error) {
		loads++
		return testKey(t, 0x22, 1), nil
	})
	if err != nil || loads != 1 || !got.Equal(testKey(t, 0x22, 1)) {
		t.Fatalf("GetOrLoad after expiry: %d loads, %v", loads, err)
	}
	// Sweep drops expired entries without reading them.
	mustPut(t, c, "c", k)
	mustPut(t, c, "d", k)
	clk.Advance(30 * time.Second)
	mustPut(t, c, "e", k)
	clk.Advance(30 * time.Second)
	if n := c.Sweep(); n != 3 || c.Len() != 1 {
		t.Fatalf("Sweep dropped %d, Len = %d", n, c.Len())
	}
	mustGet(t, c, "e", k)
	if s := c.Stats(); s.Expirations != 5 {
		t.Fatalf("stats %+v", s)
	}
}

// TestSealed inspects the stored bytes: they are nonce || ciphertext || tag
// under the process key with the id as associated data, and hold neither
// the key nor any 8-byte piece of it.
func TestSealed(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	raw := make([]byte, secret.Size)
	for i := range raw {
		raw[i] = byte(0x30 + i)
	}
	k, _ := secret.New(raw)
	mustPut(t, c, "dek/sealed", k)
	e := storedEntry(t, c, "dek/sealed")
	if len(e.sealed) != secret.Size+primitive.Overhead {
		t.Fatalf("sealed entry of %d bytes", len(e.sealed))
	}
	for i := 0; i+8 <= len(raw); i++ {
		if bytes.Contains(e.sealed, raw[i:i+8]) {
			t.Fatalf("the sealed entry contains key bytes %d..%d", i, i+8)
		}
	}
	pt, err := primitive.Open(c.pkey, e.sealed, []byte("dek/sealed"))
	if err != nil || !bytes.Equal(pt, raw) {
		t.Fatalf("the entry does not open under the process key: %v", err)
	}
	if _, err := primitive.Open(c.pkey, e.sealed, nil); err == nil {
		t.Fatal("the entry opens without its id")
	}
	// The same key under the same id seals differently each time (fresh
	// nonce), and two caches have different process keys.
	first := bytes.Clone(e.sealed)
	mustPut(t, c, "dek/sealed", k)
	if bytes.Equal(first, storedEntry(t, c, "dek/sealed").sealed) {
		t.Fatal("resealing gave the same bytes")
	}
	c2 := New(Options{})
	defer c2.Close()
	if c2.pkey.Equal(c.pkey) {
		t.Fatal("two caches share a process key")
	}
	// The process key itself is neither all zeros nor the cached key.
	if c.pkey.Equal(k) || bytes.Equal(c.pkey.Bytes(), make([]byte, secret.Size)) {
		t.Fatal("bad process key")
	}
}

// TestAADBinding moves the sealed bytes of one entry into another id's
// entry: Get must refuse it and drop the entry, leaving the original intact.
func TestAADBinding(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	ka, kb := testKey(t, 0x44, 1), testKey(t, 0x44, 2)
	mustPut(t, c, "dek/tenant-a", ka)
	mustPut(t, c, "dek/tenant-b", kb)
	a, b := storedEntry(t, c, "dek/tenant-a"), storedEntry(t, c, "dek/tenant-b")
	c.mu.Lock()
	b.sealed = bytes.Clone(a.sealed)
	c.mu.Unlock()
	mustMiss(t, c, "dek/tenant-b")
	if c.Len() != 1 {
		t.Fatalf("swapped entry not dropped: Len = %d", c.Len())
	}
	mustGet(t, c, "dek/tenant-a", ka)
	// A flipped bit is refused the same way.
	a = storedEntry(t, c, "dek/tenant-a")
	c.mu.Lock()
	a.sealed[len(a.sealed)-1] ^= 1
	c.mu.Unlock()
	mustMiss(t, c, "dek/tenant-a")
	if s := c.Stats(); s.Corrupt != 2 || s.Entries != 0 {
		t.Fatalf("stats %+v", s)
	}
	// GetOrLoad treats a corrupt entry as a miss and reloads.
	mustPut(t, c, "x", ka)
	mustPut(t, c, "y", kb)
	x, y := storedEntry(t, c, "x"), storedEntry(t, c, "y")
	c.mu.Lock()
	x.sealed, y.sealed = y.sealed, x.sealed
	c.mu.Unlock()
	got, err := c.GetOrLoad(t.Context(), "x", func(context.Context) (secret.Key, error) { return testKey(t, 0x44, 1), nil })
	if err != nil || !got.Equal(ka) {
		t.Fatalf("reload after corruption: %v", err)
	}
}

// loader is a GetOrLoad loader that blocks until released and counts calls.
type loader struct {
	calls   atomic.Int32
	started chan struct{} // receives once per call
	release chan struct{}
	key     func() secret.Key
	err     error
	keys    []secret.Key // every key returned, to check they get destroyed
	mu      sync.Mutex
}

func newLoader(key func() secret.Key) *loader {
	return &loader{started: make(chan struct{}, 100), release: make(chan struct{}), key: key}
}

func (l *loader) load(ctx context.Context) (secret.Key, error) {
	l.calls.Add(1)
	l.started <- struct{}{}
	select {
	case <-l.release:
	case <-ctx.Done():
		return secret.Key{}, ctx.Err()
	}
	if l.err != nil {
		return secret.Key{}, l.err
	}
	k := l.key()
	l.mu.Lock()
	l.keys = append(l.keys, k)
	l.mu.Unlock()
	return k, nil
}

// waitShared waits until n callers are waiting for another's load.
func waitShared(t *testing.T, c *Cache, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Shared < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d callers waiting", c.Stats().Shared, n)
		}
		runtime.Gosched()
	}
}

func isWiped(k secret.Key) bool { return bytes.Equal(k.Bytes(), make([]byte, secret.Size)) }

func TestSingleflight(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	want := testKey(t, 0x55, 0)
	l := newLoader(func() secret.Key { return testKey(t, 0x55, 0) })
	const n = 64
	var wg sync.WaitGroup
	results := make([]secret.Key, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = c.GetOrLoad(t.Context(), "dek/cold", l.load) })
	}
	<-l.started
	waitShared(t, c, n-1)
	close(l.release)
	wg.Wait()
	if got := l.calls.Load(); got != 1 {
		t.Fatalf("load called %d times", got)
	}
	for i := range n {
		if errs[i] != nil || !results[i].Equal(want) {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	// Every caller got its own copy.
	results[0].Destroy()
	for i := 1; i < n; i++ {
		if !results[i].Equal(want) {
			t.Fatalf("destroying one caller's key wiped caller %d's", i)
		}
	}
	// The loader's own key was destroyed once sealed and copied.
	if !isWiped(l.keys[0]) {
		t.Fatal("the loaded key was not destroyed")
	}
	mustGet(t, c, "dek/cold", want)
	if s := c.Stats(); s.Loads != 1 || s.Shared != n-1 || s.Misses != n || s.Hits != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Warm: no more loads.
	if _, err := c.GetOrLoad(t.Context(), "dek/cold", l.load); err != nil || l.calls.Load() != 1 {
		t.Fatalf("warm GetOrLoad: %v, %d loads", err, l.calls.Load())
	}
}

func TestSingleflightDifferentIDs(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	var calls atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			id := fmt.Sprintf("dek/%d", i%4)
			_, err := c.GetOrLoad(t.Context(), id, func(context.Context) (secret.Key, error) {
				calls.Add(1)
				return testKey(t, 0x66, i%4), nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Each id loads at least once and, with the results cached, at most
	// once per caller; each is cached with its own key.
	if n := calls.Load(); n < 4 || n > 16 {
		t.Fatalf("%d loads", n)
	}
	for i := range 4 {
		mustGet(t, c, fmt.Sprintf("dek/%d", i), testKey(t, 0x66, i))
	}
}

func TestLoadError(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	boom := errors.New("tenant secret unavailable")
	l := newLoader(nil)
	l.err = boom
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = c.GetOrLoad(t.Context(), "dek/x", l.load) })
	}
	<-l.started
	waitShared(t, c, uint64(len(errs)-1))
	close(l.release)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if l.calls.Load() != 1 || c.Len() != 0 {
		t.Fatalf("%d loads, Len %d", l.calls.Load(), c.Len())
	}
	// Errors are not cached: the next call loads again.
	k, err := c.GetOrLoad(t.Context(), "dek/x", func(context.Context) (secret.Key, error) { return testKey(t, 1, 1), nil })
	if err != nil || !k.Equal(testKey(t, 1, 1)) {
		t.Fatal(err)
	}
	if s := c.Stats(); s.LoadErrors != 1 || s.Loads != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestLoadContext(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	want := testKey(t, 0x77, 0)

	// A waiter whose context ends returns at once; the load goes on and
	// its key is cached.
	l := newLoader(func() secret.Key { return testKey(t, 0x77, 0) })
	first := make(chan error, 1)
	go func() { _, err := c.GetOrLoad(t.Context(), "dek/a", l.load); first <- err }()
	<-l.started
	ctx, cancel := context.WithCancel(t.Context())
	waiter := make(chan error, 1)
	go func() { _, err := c.GetOrLoad(ctx, "dek/a", l.load); waiter <- err }()
	waitShared(t, c, 1)
	cancel()
	if err := <-waiter; !errors.Is(err, context.Canceled) {
		t.Fatalf("waiter: %v", err)
	}
	close(l.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "dek/a", want)
	if !isWiped(l.keys[0]) {
		t.Fatal("the loaded key was not destroyed")
	}

	// When the first caller's context ends, its load fails; a waiter
	// whose own context is live loads again instead of failing.
	l2 := newLoader(func() secret.Key { return testKey(t, 0x77, 0) })
	ctx2, cancel2 := context.WithCancel(t.Context())
	go func() { _, err := c.GetOrLoad(ctx2, "dek/b", l2.load); first <- err }()
	<-l2.started
	type result struct {
		k   secret.Key
		err error
	}
	second := make(chan result, 1)
	go func() { k, err := c.GetOrLoad(t.Context(), "dek/b", l2.load); second <- result{k, err} }()
	waitShared(t, c, 2)
	cancel2()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v", err)
	}
	<-l2.started // the waiter's own load
	close(l2.release)
	if r := <-second; r.err != nil || !r.k.Equal(want) {
		t.Fatalf("waiter: %v", r.err)
	}
	if l2.calls.Load() != 2 {
		t.Fatalf("%d loads", l2.calls.Load())
	}
}

func TestLoadPanic(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	started, release := make(chan struct{}), make(chan struct{})
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_, _ = c.GetOrLoad(t.Context(), "dek/p", func(context.Context) (secret.Key, error) {
			close(started)
			<-release
			panic("loader bug")
		})
	}()
	<-started
	waiter := make(chan error, 1)
	go func() {
		_, err := c.GetOrLoad(t.Context(), "dek/p", func(context.Context) (secret.Key, error) {
			return secret.Key{}, errors.New("second loader must not run")
		})
		waiter <- err
	}()
	waitShared(t, c, 1)
	close(release)
	if p := <-panicked; p != "loader bug" {
		t.Fatalf("panic %v did not reach the first caller", p)
	}
	if err := <-waiter; err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("waiter: %v", err)
	}
	if c.Len() != 0 {
		t.Fatal("something cached")
	}
}

// TestEvictDuringLoad: a key evicted (destroyed) while it loads is neither
// cached nor returned.
func TestEvictDuringLoad(t *testing.T) {
	t.Parallel()
	for _, evict := range []struct {
		name string
		f    func(*Cache) bool
	}{
		{"Evict", func(c *Cache) bool { return c.Evict("dek/t1/data/1") }},
		{"EvictPrefix", func(c *Cache) bool { return c.EvictPrefix("dek/t1/") == 1 }},
	} {
		t.Run(evict.name, func(t *testing.T) {
			c := New(Options{})
			defer c.Close()
			l := newLoader(func() secret.Key { return testKey(t, 0x88, 0) })
			errs := make(chan error, 2)
			for range 2 {
				go func() { _, err := c.GetOrLoad(t.Context(), "dek/t1/data/1", l.load); errs <- err }()
			}
			<-l.started
			waitShared(t, c, 1)
			if !evict.f(c) {
				t.Fatal("nothing evicted")
			}
			close(l.release)
			for range 2 {
				if err := <-errs; !errors.Is(err, ErrEvicted) {
					t.Fatalf("GetOrLoad: %v", err)
				}
			}
			mustMiss(t, c, "dek/t1/data/1")
			if !isWiped(l.keys[0]) {
				t.Fatal("the evicted key was not destroyed")
			}
			// A new load after the eviction proceeds normally.
			k, err := c.GetOrLoad(t.Context(), "dek/t1/data/1", func(context.Context) (secret.Key, error) { return testKey(t, 0x88, 1), nil })
			if err != nil || !k.Equal(testKey(t, 0x88, 1)) {
				t.Fatal(err)
			}
		})
	}
}

func TestEvict(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	all := []string{"dek/t1/data/1", "dek/t1/data/2", "dek/t1/search/1", "dek/t10/data/1", "dek/t2/data/1", "release/2026-1/seed"}
	for i, id := range all {
		mustPut(t, c, id, testKey(t, 0x99, i))
	}
	e := storedEntry(t, c, "dek/t2/data/1")
	if !c.Evict("dek/t2/data/1") || c.Evict("dek/t2/data/1") {
		t.Fatal("Evict result")
	}
	if e.sealed != nil {
		t.Fatal("evicted entry not wiped")
	}
	mustMiss(t, c, "dek/t2/data/1")
	// All DEKs of one tenant key; "dek/t10/" must survive "dek/t1/".
	if n := c.EvictPrefix("dek/t1/data/"); n != 2 {
		t.Fatalf("EvictPrefix dropped %d", n)
	}
	if n := c.EvictPrefix("dek/t1/"); n != 1 {
		t.Fatalf("EvictPrefix dropped %d", n)
	}
	if got := strings.Join(ids(c), " "); got != "release/2026-1/seed dek/t10/data/1" {
		t.Fatalf("left %q", got)
	}
	if n := c.EvictPrefix("nothing/"); n != 0 {
		t.Fatalf("EvictPrefix dropped %d", n)
	}
	if n := c.EvictPrefix(""); n != 2 || c.Len() != 0 {
		t.Fatalf("EvictPrefix(\"\") dropped %d", n)
	}
	if s := c.Stats(); s.Removals != 6 {
		t.Fatalf("stats %+v", s)
	}
}

func TestClose(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	var stored []*entry
	for i := range 10 {
		id := fmt.Sprintf("dek/%d", i)
		mustPut(t, c, id, testKey(t, 0xcc, i))
		stored = append(stored, storedEntry(t, c, id))
	}
	var sealed [][]byte
	for _, e := range stored {
		sealed = append(sealed, e.sealed)
	}
	pkey := c.pkey
	// A load in flight when the cache closes.
	l := newLoader(func() secret.Key { return testKey(t, 0xcc, 99) })
	loadErr := make(chan error, 1)
	go func() { _, err := c.GetOrLoad(t.Context(), "dek/inflight", l.load); loadErr <- err }()
	<-l.started

	c.Close()
	if !isWiped(pkey) {
		t.Fatal("the process key was not wiped")
	}
	for i, s := range sealed {
		if !bytes.Equal(s, make([]byte, len(s))) {
			t.Fatalf("entry %d not wiped", i)
		}
	}
	close(l.release)
	if err := <-loadErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("load in flight: %v", err)
	}
	if !isWiped(l.keys[0]) {
		t.Fatal("the key loaded during Close was not destroyed")
	}
	if c.Len() != 0 {
		t.Fatalf("Len = %d", c.Len())
	}
	mustMiss(t, c, "dek/1")
	if err := c.Put("dek/1", testKey(t, 1, 1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if _, err := c.GetOrLoad(t.Context(), "dek/1", l.load); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetOrLoad after Close: %v", err)
	}
	c.Close() // idempotent
}

func TestRekey(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	defer c.Close()
	c.maxSeals = 3
	old := c.pkey
	for i := range 3 {
		mustPut(t, c, fmt.Sprintf("k%d", i), testKey(t, 0xdd, i))
	}
	if c.Len() != 3 || !c.pkey.Equal(old) {
		t.Fatal("rekeyed early")
	}
	mustPut(t, c, "k3", testKey(t, 0xdd, 3))
	if !isWiped(old) || c.pkey.Equal(old) {
		t.Fatal("process key not replaced and wiped")
	}
	if c.Len() != 1 {
		t.Fatalf("old entries kept after rekey: Len = %d", c.Len())
	}
	mustGet(t, c, "k3", testKey(t, 0xdd, 3))
	if s := c.Stats(); s.Rekeys != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestConcurrent hammers one small cache from many goroutines; run it with
// -race. The invariants are checked at the end.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := New(Options{MaxEntries: 8, TTL: time.Second, Now: clk.Now})
	defer c.Close()
	want := func(i int) secret.Key { return testKey(t, 0xee, i) }
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 400 {
				n := (g*7 + i) % 12
				id := fmt.Sprintf("dek/t%d/%d", n%3, n)
				switch i % 10 {
				case 0, 1:
					if err := c.Put(id, want(n)); err != nil {
						t.Error(err)
						return
					}
				case 2, 3, 4:
					if k, ok := c.Get(id); ok && !k.Equal(want(n)) {
						t.Errorf("Get(%s): wrong key", id)
						return
					}
				case 5, 6, 7:
					k, err := c.GetOrLoad(t.Context(), id, func(context.Context) (secret.Key, error) { return want(n), nil })
					if err != nil && !errors.Is(err, ErrEvicted) {
						t.Error(err)
						return
					}
					if err == nil && !k.Equal(want(n)) {
						t.Errorf("GetOrLoad(%s): wrong key", id)
						return
					}
				case 8:
					c.Evict(id)
					if g == 0 {
						clk.Advance(100 * time.Millisecond)
					}
				case 9:
					switch g % 3 {
					case 0:
						c.EvictPrefix(fmt.Sprintf("dek/t%d/", n%3))
					case 1:
						c.Sweep()
					default:
						_ = c.Stats()
						_ = c.Len()
					}
				}
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lru.Len() != len(c.entries) || c.lru.Len() > 8 || len(c.calls) != 0 {
		t.Fatalf("lru %d, map %d, calls %d", c.lru.Len(), len(c.entries), len(c.calls))
	}
	for id, el := range c.entries {
		if el.Value.(*entry).id != id {
			t.Fatalf("entry %q under %q", el.Value.(*entry).id, id)
		}
	}
}

// memoryPerEntry fills a cache with n DEKs under realistic ids and returns
// the heap growth per entry, ids included.
func memoryPerEntry(tb testing.TB, n int) float64 {
	k := testKey(tb, 0xf0, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := New(Options{MaxEntries: n})
	for i := range n {
		// 45 bytes: release, tenant (an 18-character org id), key type, version.
		id := fmt.Sprintf("dek/2026-1/00D5g0000%09d/data/%06d", i, i%1000)
		if err := c.Put(id, k); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if c.Len() != n {
		tb.Fatalf("Len = %d", c.Len())
	}
	per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	runtime.KeepAlive(c)
	c.Close()
	return per
}

// TestMemoryPerEntry: "memory per cached DEK under 1 KiB".
func TestMemoryPerEntry(t *testing.T) {
	// Not parallel: it reads the whole heap.
	per := memoryPerEntry(t, 10_000)
	t.Logf("%.0f bytes per cached DEK (heap growth / 10 000 entries)", per)
	if per <= 0 || per >= 1024 {
		t.Fatalf("%.0f bytes per cached DEK, want under 1 KiB", per)
	}
}

func BenchmarkMemoryPerEntry(b *testing.B) {
	var per float64
	for b.Loop() {
		per = memoryPerEntry(b, 10_000)
	}
	b.ReportMetric(per, "B/entry")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10_000, "ns/put")
}

// BenchmarkMemory1MEntries is BenchmarkMemoryPerEntry at one million
// cached DEKs: "1 million cached DEKs under 1 KiB each". Its ns/put, next
// to BenchmarkMemoryPerEntry's, shows whether the cache's bookkeeping (the
// map, the LRU list, the garbage collector's work over them) grows faster
// than the entries.
func BenchmarkMemory1MEntries(b *testing.B) {
	const n = 1_000_000
	var per float64
	for b.Loop() {
		per = memoryPerEntry(b, n)
	}
	b.ReportMetric(per, "B/entry")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/put")
}

// TestGetOrLoadForMaxAge: a key loaded with GetOrLoadFor lives at most its
// max age, or the cache's TTL when that is shorter.
func TestGetOrLoadForMaxAge(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := New(Options{TTL: time.Hour, Now: clk.Now})
	defer c.Close()
	k := testKey(t, 0x33, 0)
	loads := 0
	load := func(context.Context) (secret.Key, error) { loads++; return testKey(t, 0x33, 0), nil }
	for _, tc := range []struct {
		id     string
		maxAge time.Duration
		lives  time.Duration
	}{
		{"short", 10 * time.Minute, 10 * time.Minute},
		{"long", 3 * time.Hour, time.Hour}, // the cache's TTL is shorter
		{"zero", 0, time.Hour},
	} {
		start := clk.Now()
		loads = 0
		if _, err := c.GetOrLoadFor(t.Context(), tc.id, tc.maxAge, load); err != nil || loads != 1 {
			t.Fatalf("GetOrLoadFor(%s) = %v, %d loads", tc.id, err, loads)
		}
		clk.Advance(tc.lives - time.Nanosecond)
		mustGet(t, c, tc.id, k)
		clk.Advance(time.Nanosecond)
		mustMiss(t, c, tc.id)
		clk.Advance(start.Sub(clk.Now()))
	}
}

// TestHas: Has sees live entries only, and neither counts nor opens them.
func TestHas(t *testing.T) {
	t.Parallel()
	clk := newClock()
	c := New(Options{TTL: time.Minute, Now: clk.Now})
	defer c.Close()
	if c.Has("dek/a") {
		t.Error("Has() of an empty cache")
	}
	mustPut(t, c, "dek/a", testKey(t, 0x41, 0))
	before := c.Stats()
	if !c.Has("dek/a") || c.Has("dek/b") {
		t.Error("Has() after Put: want dek/a only")
	}
	if c.Stats() != before {
		t.Errorf("Has() changed the stats: %+v, then %+v", before, c.Stats())
	}
	clk.Advance(time.Minute)
	if c.Has("dek/a") {
		t.Error("Has() of an expired entry")
	}
}
