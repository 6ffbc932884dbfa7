package dataplane_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// TestEvictAcrossNodes: a destroy on one node evicts the DEK that another
// node sharing the database has cached, by notification.
func TestEvictAcrossNodes(t *testing.T) {
	for name, open := range nodetest.SharedStores() {
		t.Run(name, func(t *testing.T) {
			a, b := open(t)
			e := nodetest.New(t, a, nodetest.Options{Policy: nodetest.ShortPolicy(time.Hour, 50), Releases: []nodetest.Release{nodetest.Release1}})
			eb := e.Peer(t, b)
			watch, stop := context.WithCancel(ctx)
			defer stop()
			if err := eb.Data.EvictDestroyed(watch, time.Hour, nil); err != nil {
				t.Fatalf("EvictDestroyed() error = %v", err)
			}
			tn := e.Tenant(t, tenant.EnvProduction)
			e.Generate(t, tn.ID, tenant.TypeData)
			c := map[string]string{"k": "v"}
			ct, _, err := eb.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, []byte("x"), c)
			if err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("dek/%s/data/1", tn.ID)
			if _, ok := eb.Cache.Get(id); !ok {
				t.Fatal("node B did not cache the DEK")
			}
			start := time.Now()
			if _, err := e.Keys.Destroy(ctx, nodetest.Rec(tn.ID), tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 1}); err != nil {
				t.Fatal(err)
			}
			// Node B refuses at once: it reads the key's state first.
			_, _, err = eb.Data.Decrypt(ctx, nil, tn.ID, ct, c)
			nodetest.WantErr(t, "node B Decrypt(after destroy on A)", err, tenant.ErrKeyDestroyed)
			// And its cached copy is gone by notification, well within the
			// documented bound (the re-check is an hour away here).
			for {
				if _, ok := eb.Cache.Get(id); !ok {
					break
				}
				if time.Since(start) > 5*time.Second {
					t.Fatal("node B still holds the DEK 5 s after the destroy")
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("node B evicted the DEK %v after the destroy on node A", time.Since(start))
		})
	}
}
