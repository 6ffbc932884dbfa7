package derive

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// BenchmarkGetOrLoadCold is a cold DEK through the key cache: one PBKDF2 run
// at the minimum 100 000 iterations, then sealing and caching it.
func BenchmarkGetOrLoadCold(b *testing.B) {
	c := keycache.New(keycache.Options{})
	defer c.Close()
	key := func(fill byte) secret.Key { k, _ := secret.New(bytes.Repeat([]byte{fill}, secret.Size)); return k }
	seed, salt, ts := key(0x10), key(0x20), key(0x30)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		tenant := fmt.Sprintf("00D5g0000%09d", i)
		id := "dek/2026-1/" + tenant + "/data/1"
		k, err := c.GetOrLoad(context.Background(), id, func(context.Context) (secret.Key, error) {
			return Key(Input{
				Release: "2026-1", Iterations: MinIterations, Seed: seed, Salt: salt,
				TenantID: tenant, KeyType: "data", Version: 1, TenantSecret: ts,
			})
		})
		if err != nil {
			b.Fatal(err)
		}
		k.Destroy()
	}
	if s := c.Stats(); s.Hits != 0 {
		b.Fatalf("not cold: %+v", s)
	}
}
