package keycache

import (
	"context"
	"fmt"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// BenchmarkGetHit reads one cached DEK: open the sealed entry, copy it out.
func BenchmarkGetHit(b *testing.B) {
	c := New(Options{})
	defer c.Close()
	if err := c.Put("dek/2026-1/00D5g000000000001/data/1", testKey(b, 1, 1)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		k, ok := c.Get("dek/2026-1/00D5g000000000001/data/1")
		if !ok {
			b.Fatal("miss")
		}
		k.Destroy()
	}
}

// BenchmarkGetHitParallel is BenchmarkGetHit from GOMAXPROCS goroutines at
// once, over 1000 entries: it shows what the cache's one lock costs.
func BenchmarkGetHitParallel(b *testing.B) {
	c := New(Options{})
	defer c.Close()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("dek/2026-1/00D5g0000%09d/data/1", i)
		if err := c.Put(ids[i], testKey(b, 1, i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k, ok := c.Get(ids[i%len(ids)])
			if !ok {
				b.Fatal("miss")
			}
			k.Destroy()
			i++
		}
	})
}

// BenchmarkPut seals and stores one DEK (replacing the previous one).
func BenchmarkPut(b *testing.B) {
	c := New(Options{})
	defer c.Close()
	k := testKey(b, 1, 1)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Put("dek/2026-1/00D5g000000000001/data/1", k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGetOrLoadWarm is the same id every time: a hit.
func BenchmarkGetOrLoadWarm(b *testing.B) {
	c := New(Options{})
	defer c.Close()
	load := func(context.Context) (secret.Key, error) { return testKey(b, 1, 1), nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		k, err := c.GetOrLoad(ctx, "dek/2026-1/00D5g000000000001/data/1", load)
		if err != nil {
			b.Fatal(err)
		}
		k.Destroy()
	}
}

// BenchmarkPutFull is a Put of a new DEK into a full cache (which evicts
// the least recently used) of 10 000, 100 000 and a million entries: the cache's
// bookkeeping should cost the same per entry at either size.
func BenchmarkPutFull(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := New(Options{MaxEntries: n})
			defer c.Close()
			k := testKey(b, 1, 1)
			ids := make([]string, 2*n)
			for i := range ids {
				ids[i] = fmt.Sprintf("dek/2026-1/00D5g0000%09d/data/%06d", i, i%1000)
			}
			for _, id := range ids[:n] {
				if err := c.Put(id, k); err != nil {
					b.Fatal(err)
				}
			}
			i := n
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Put(ids[i], k); err != nil {
					b.Fatal(err)
				}
				if i++; i == len(ids) {
					i = 0
				}
			}
			if c.Len() != n {
				b.Fatalf("Len = %d, want %d", c.Len(), n)
			}
		})
	}
}
