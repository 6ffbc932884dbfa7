package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
)

// fakeKMS hands out DEKs of one tenant, counts the fetches, and keeps every
// DEK it made, to see which ones the cache destroyed.
type fakeKMS struct {
	mu        sync.Mutex
	active    uint32
	keys      map[uint32][]byte
	destroyed map[uint32]bool
	fetches   atomic.Int32
	delay     time.Duration
	handed    []client.DEK
}

func newFakeKMS() *fakeKMS {
	return &fakeKMS{keys: map[uint32][]byte{}, destroyed: map[uint32]bool{}}
}

// rotate makes a new active version.
func (f *fakeKMS) rotate() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.active++
	k := make([]byte, 32)
	rand.Read(k)
	f.keys[f.active] = k
	return f.active
}

func (f *fakeKMS) destroy(v uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.destroyed[v] = true
}

func (f *fakeKMS) fetch(ctx context.Context, tenantName, typ string, version uint32) (client.DEK, error) {
	f.fetches.Add(1)
	if f.delay > 0 {
		time.Sleep(f.delay) // a request in flight (fake time in a synctest bubble)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if version == 0 {
		version = f.active
	}
	if f.destroyed[version] {
		return client.DEK{}, &client.Error{Status: 409, Code: api.CodeKeyDestroyed, Message: "destroyed"}
	}
	k, ok := f.keys[version]
	if !ok {
		return client.DEK{}, &client.Error{Status: 404, Code: api.CodeNotFound}
	}
	d := client.NewTestDEK(tenant, typ, version, k)
	f.handed = append(f.handed, d)
	return d, nil
}

// destroyedCount is how many DEKs handed out are destroyed.
func (f *fakeKMS) destroyedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, d := range f.handed {
		if _, err := d.Encrypt(nil, nil); err == client.ErrDestroyed {
			n++
		}
	}
	return n
}

// sealUnder encrypts pt under version v of f's key.
func sealUnder(t *testing.T, f *fakeKMS, v uint32, pt []byte) []byte {
	d := client.NewTestDEK(tenant, "data", v, f.keys[v])
	defer d.Destroy()
	ct, err := d.Encrypt(pt, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func newCache(t *testing.T, f *fakeKMS, opts client.DEKCacheOptions) *client.DEKCache {
	t.Helper()
	c, err := client.NewDEKCacheWith(f.fetch, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestDEKCacheRoundTrip(t *testing.T) {
	f := newFakeKMS()
	f.rotate()
	c := newCache(t, f, client.DEKCacheOptions{})
	pt := []byte("4111 1111 1111 1111")
	ct, err := c.Encrypt(ctx, "acme", "", pt, streamCtx)
	if err != nil {
		t.Fatal(err)
	}
	f.rotate() // data under version 1 still decrypts, with version 1's DEK
	for range 3 {
		if got, err := c.Decrypt(ctx, "acme", ct, streamCtx); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Decrypt() = %q, %v", got, err)
		}
	}
	var stream bytes.Buffer
	w, err := c.EncryptWriter(ctx, "acme", "data", &stream, streamCtx)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pattern(chunk + 1))
	w.Close()
	r, err := c.DecryptReader(ctx, "acme", &stream, streamCtx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, pattern(chunk+1)) {
		t.Errorf("DecryptReader() = %d bytes, %v", len(got), err)
	}
	// The active entry (version 1 at its fetch) and version 1 by number.
	if n := f.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}
	if _, err := c.Decrypt(ctx, "acme", ct, nil); !errors.Is(err, client.ErrDecrypt) {
		t.Errorf("Decrypt(another context) = %v, want ErrDecrypt", err)
	}
	if _, err := c.Decrypt(ctx, "acme", []byte("junk"), nil); !errors.Is(err, client.ErrDecrypt) {
		t.Errorf("Decrypt(junk) = %v, want ErrDecrypt", err)
	}
	c.Close()
	if got := f.destroyedCount(); got != len(f.handed) {
		t.Errorf("after Close, %d of %d DEKs destroyed", got, len(f.handed))
	}
	if _, err := c.Encrypt(ctx, "acme", "", pt, nil); err != client.ErrCacheClosed {
		t.Errorf("Encrypt after Close = %v, want ErrCacheClosed", err)
	}
}

func TestDEKCacheEntries(t *testing.T) {
	f := newFakeKMS()
	for range 5 {
		f.rotate()
	}
	c := newCache(t, f, client.DEKCacheOptions{MaxEntries: 3})
	cts := map[uint32][]byte{}
	for v := uint32(1); v <= 5; v++ {
		cts[v] = sealUnder(t, f, v, nil)
	}
	for v := uint32(1); v <= 5; v++ {
		if _, err := c.Decrypt(ctx, "acme", cts[v], nil); err != nil {
			t.Fatal(err)
		}
		if got, want := c.Len(), min(int(v), 3); got != want {
			t.Errorf("after %d versions, Len() = %d, want %d", v, got, want)
		}
	}
	// Versions 1 and 2, the least recently used, were evicted and
	// destroyed; 3 to 5 are cached.
	if got := f.destroyedCount(); got != 2 {
		t.Errorf("%d DEKs destroyed, want 2", got)
	}
	before := f.fetches.Load()
	c.Decrypt(ctx, "acme", cts[3], nil) // 3 is now the most recently used
	c.Decrypt(ctx, "acme", cts[1], nil) // evicts 4
	c.Decrypt(ctx, "acme", cts[3], nil)
	c.Decrypt(ctx, "acme", cts[5], nil)
	if got := f.fetches.Load() - before; got != 1 {
		t.Errorf("%d fetches, want 1 (only version 1)", got)
	}
}

func TestDEKCacheTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKMS()
		v1 := f.rotate()
		c := newCache(t, f, client.DEKCacheOptions{TTL: time.Minute})
		ct, err := c.Encrypt(ctx, "acme", "", []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Decrypt(ctx, "acme", ct, nil)
		if c.Len() != 2 || f.fetches.Load() != 2 {
			t.Fatalf("Len() = %d after %d fetches, want 2 and 2", c.Len(), f.fetches.Load())
		}
		// A new active key is used once the TTL is over; until then, the old.
		f.rotate()
		time.Sleep(59 * time.Second)
		ct2, _ := c.Encrypt(ctx, "acme", "", []byte("x"), nil)
		if ct2[len(ct2)-29-4+3] != byte(v1) { // the header's version, before nonce and tag
			t.Errorf("within the TTL, Encrypt used another version than %d", v1)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		// Nothing was used meanwhile, yet the DEKs are gone and destroyed.
		if c.Len() != 0 || f.destroyedCount() != 2 {
			t.Errorf("after the TTL, Len() = %d and %d of 2 DEKs destroyed, want 0 and 2", c.Len(), f.destroyedCount())
		}
		ct3, err := c.Encrypt(ctx, "acme", "", []byte("x"), nil)
		if err != nil || ct3[len(ct3)-29-4+3] != byte(v1+1) {
			t.Errorf("after the TTL, Encrypt = %v, want version %d", err, v1+1)
		}
	})
}

// TestDEKCacheDestroyedKey: a key version destroyed on the server stops
// working here within the TTL, and its DEK is destroyed.
func TestDEKCacheDestroyedKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKMS()
		f.rotate()
		c := newCache(t, f, client.DEKCacheOptions{TTL: 30 * time.Second})
		ct, err := c.Encrypt(ctx, "acme", "", []byte("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.Decrypt(ctx, "acme", ct, nil)
		f.destroy(1)
		time.Sleep(30*time.Second + time.Millisecond)
		synctest.Wait()
		if f.destroyedCount() != len(f.handed) {
			t.Errorf("%d of %d DEKs of the destroyed key destroyed", f.destroyedCount(), len(f.handed))
		}
		_, err = c.Decrypt(ctx, "acme", ct, nil)
		var ae *client.Error
		if !errors.As(err, &ae) || ae.Code != api.CodeKeyDestroyed {
			t.Errorf("Decrypt() after the TTL = %v, want key_destroyed", err)
		}
		if c.Len() != 0 {
			t.Errorf("Len() = %d: a failed fetch was cached", c.Len())
		}
	})
}

// TestDEKCacheConcurrent: many callers of one cold DEK wait for one fetch;
// callers of several keys, with evictions, race with each other (run with
// -race).
func TestDEKCacheConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKMS()
		f.rotate()
		f.delay = time.Second
		c := newCache(t, f, client.DEKCacheOptions{})
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				if _, err := c.Encrypt(ctx, "acme", "", []byte("x"), nil); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := f.fetches.Load(); n != 1 {
			t.Errorf("50 concurrent callers made %d fetches, want 1", n)
		}
		// A caller that gives up does not cancel the fetch of the others.
		f.fetches.Store(0)
		f.rotate()
		c2 := newCache(t, f, client.DEKCacheOptions{})
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { _, err := c2.Encrypt(cctx, "acme", "", nil, nil); errc <- err }()
		synctest.Wait()
		go func() { _, err := c2.Encrypt(ctx, "acme", "", nil, nil); errc <- err }()
		synctest.Wait()
		cancel()
		if err := <-errc; err != context.Canceled {
			t.Errorf("the cancelled caller: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("the other caller: %v", err)
		}
	})

	// Real time: several keys, a small cache, so that entries are evicted
	// (and their DEKs destroyed) while other goroutines use them.
	f := newFakeKMS()
	for range 4 {
		f.rotate()
	}
	c := newCache(t, f, client.DEKCacheOptions{MaxEntries: 2})
	cts := map[uint32][]byte{}
	for v := uint32(1); v <= 4; v++ {
		cts[v] = sealUnder(t, f, v, []byte(fmt.Sprint(v)))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				v := uint32((g+i)%4 + 1)
				pt, err := c.Decrypt(ctx, "acme", cts[v], nil)
				if err != nil || string(pt) != fmt.Sprint(v) {
					t.Errorf("Decrypt(version %d) = %q, %v", v, pt, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 2 {
		t.Errorf("Len() = %d, want at most 2", c.Len())
	}
}

func TestNewDEKCacheRefuses(t *testing.T) {
	for _, o := range []client.DEKCacheOptions{{MaxEntries: -1}, {TTL: -1}, {TTL: 25 * time.Hour}} {
		if _, err := client.NewDEKCacheWith(newFakeKMS().fetch, o); err == nil {
			t.Errorf("NewDEKCache(%+v) = nil error", o)
		}
	}
	if _, err := client.NewDEKCache(nil, client.DEKCacheOptions{KEM: 0x0010}); err == nil {
		t.Error("NewDEKCache(KEM P-256) = nil error")
	}
}

// Prefetch fetches what is not cached (once per key), caches it for Encrypt
// and Decrypt, and returns the refusals after caching the rest.
func TestDEKCachePrefetch(t *testing.T) {
	f := newFakeKMS()
	f.rotate()
	old := sealUnder(t, f, 1, []byte("old"))
	f.rotate()
	c := newCache(t, f, client.DEKCacheOptions{})
	err := c.Prefetch(ctx, "acme", api.DEKKey{}, api.DEKKey{Type: "data", Version: 1}, api.DEKKey{Version: 1}, api.DEKKey{Version: 9})
	if err == nil || !strings.Contains(err.Error(), "data version 9: not_found") {
		t.Errorf("Prefetch() = %v, want version 9's not_found", err)
	}
	if n, l := f.fetches.Load(), c.Len(); n != 3 || l != 2 {
		t.Errorf("after Prefetch: %d fetches, %d cached, want 3 and 2", n, l)
	}
	if _, err := c.Encrypt(ctx, "acme", "", []byte("new"), nil); err != nil {
		t.Fatal(err)
	}
	if pt, err := c.Decrypt(ctx, "acme", old, nil); err != nil || string(pt) != "old" {
		t.Fatalf("Decrypt(under version 1) = %q, %v", pt, err)
	}
	if err := c.Prefetch(ctx, "acme", api.DEKKey{}, api.DEKKey{Version: 1}); err != nil {
		t.Errorf("Prefetch(cached keys) = %v", err)
	}
	if n := f.fetches.Load(); n != 3 {
		t.Errorf("%d fetches after using and prefetching what was prefetched, want 3", n)
	}
	c.Close()
	if got := f.destroyedCount(); got != len(f.handed) {
		t.Errorf("after Close, %d of %d DEKs destroyed", got, len(f.handed))
	}
	if err := c.Prefetch(ctx, "acme", api.DEKKey{}); err != client.ErrCacheClosed {
		t.Errorf("Prefetch after Close = %v, want ErrCacheClosed", err)
	}
}
