package lifecycle_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/storetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

const day = 24 * time.Hour

func TestGenerateAndRateLimits(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.DefaultPolicy(), Releases: []nodetest.Release{nodetest.Release1}})
	for _, tc := range []struct {
		env      tenant.Environment
		typ      string
		interval time.Duration
	}{
		{tenant.EnvProduction, tenant.TypeData, day},
		{tenant.EnvDeveloper, tenant.TypeData, day},
		{tenant.EnvSandbox, tenant.TypeData, 4 * time.Hour},
		{tenant.EnvProduction, tenant.TypeSearchIndex, 7 * day},
		{tenant.EnvSandbox, tenant.TypeEventBus, 7 * day},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.env, tc.typ), func(t *testing.T) {
			e.Clock.Set(nodetest.T0)
			tn := e.Tenant(t, tc.env)
			v1 := e.Generate(t, tn.ID, tc.typ)
			if v1.Version != 1 || v1.State != tenant.StateActive || v1.Source != tenant.SourceHSM ||
				v1.Derivation != tenant.DerivationPBKDF2 || v1.Release != nodetest.Release1.ID || !v1.Created.Equal(nodetest.T0) {
				t.Errorf("Generate() = v%d %s %s %s %s at %s, want v1 active hsm pbkdf2 %s at %s",
					v1.Version, v1.State, v1.Source, v1.Derivation, v1.Release, v1.Created, nodetest.Release1.ID, nodetest.T0)
			}
			if v1.Wrapped != nil || v1.Fingerprint != nil {
				t.Error("Generate() returned key material")
			}

			e.Clock.Set(nodetest.T0.Add(tc.interval - time.Microsecond))
			_, err := e.Keys.Generate(ctx, nodetest.Rec(tn.ID), tn.ID, tc.typ)
			var rl *store.RateLimitedError
			if !errors.As(err, &rl) || !errors.Is(err, store.ErrRateLimited) {
				t.Fatalf("Generate() again = %v, want a *store.RateLimitedError", err)
			}
			if want := v1.Created.Add(tc.interval); !rl.Next.Equal(want) {
				t.Errorf("RateLimitedError.Next = %s, want v1.Created + %v = %s", rl.Next, tc.interval, want)
			}

			e.Clock.Set(rl.Next)
			v2 := e.Generate(t, tn.ID, tc.typ)
			if v2.Version != 2 || v2.State != tenant.StateActive {
				t.Errorf("Generate() at Next = v%d %s, want v2 active", v2.Version, v2.State)
			}
			e.CheckStates(t, tn.ID, tc.typ, tenant.StateArchived, tenant.StateActive)
		})
	}
}

func TestRotationWithShortPolicy(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.ShortPolicy(time.Minute, 3), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	v1 := e.Generate(t, tn.ID, tenant.TypeData)
	e.Clock.Add(time.Minute)
	v2 := e.Generate(t, tn.ID, tenant.TypeData)
	if v2.Version != 2 {
		t.Fatalf("second key = v%d, want v2", v2.Version)
	}
	e.CheckStates(t, tn.ID, tenant.TypeData, tenant.StateArchived, tenant.StateActive)
	d1, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: v1.Version})
	if err != nil {
		t.Fatalf("DEK(archived v1) error = %v", err)
	}
	d2, k, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0})
	if err != nil || k.Version != 2 {
		t.Fatalf("DEK(active) = v%d, %v, want v2", k.Version, err)
	}
	if d1.Equal(d2) {
		t.Error("v1 and v2 have the same DEK")
	}
	// Other types are separate series.
	if k := e.Generate(t, tn.ID, tenant.TypeAnalytics); k.Version != 1 {
		t.Errorf("first analytics key = v%d, want v1", k.Version)
	}
	// MaxKeys 3: a third data key is fine, a fourth is refused.
	e.Clock.Add(time.Minute)
	e.Generate(t, tn.ID, tenant.TypeData)
	e.Clock.Add(time.Minute)
	_, err = e.Keys.Generate(ctx, nodetest.Rec(tn.ID), tn.ID, tenant.TypeData)
	nodetest.WantErr(t, "Generate(over MaxKeys)", err, store.ErrTooManyKeys)
	e.CheckStates(t, tn.ID, tenant.TypeData, tenant.StateArchived, tenant.StateArchived, tenant.StateActive)
}

func TestGenerateRefuses(t *testing.T) {
	e := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.DefaultPolicy(), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(t, tenant.EnvProduction)
	_, err := e.Keys.Generate(ctx, nodetest.Rec(tenant.NewID()), tenant.NewID(), tenant.TypeData)
	nodetest.WantErr(t, "Generate(unknown tenant)", err, store.ErrNotFound)
	_, err = e.Keys.Generate(ctx, nodetest.Rec("acme"), "acme", tenant.TypeData)
	nodetest.WantErr(t, "Generate(invalid tenant id)", err, store.ErrInvalid)
	_, err = e.Keys.Generate(ctx, nodetest.Rec(tn.ID), tn.ID, "blob")
	nodetest.WantErr(t, "Generate(unknown type)", err, store.ErrInvalid)

	// No release loaded: nothing to wrap under.
	bare := nodetest.New(t, nodetest.SQLite(t), nodetest.Options{Policy: nodetest.DefaultPolicy()})
	tb := bare.Tenant(t, tenant.EnvProduction)
	if _, err := bare.Keys.Generate(ctx, nodetest.Rec(tb.ID), tb.ID, tenant.TypeData); err == nil {
		t.Error("Generate(no release loaded) error = nil")
	}
}

// TestConcurrentGenerate: twenty concurrent Generates of one tenant and
// type, on two nodes sharing the database, make exactly one key; the others
// are rate limited. On both drivers.
func TestConcurrentGenerate(t *testing.T) {
	for name, open := range nodetest.Engines() {
		t.Run(name, func(t *testing.T) {
			e := nodetest.New(t, open(t), nodetest.Options{Policy: nodetest.DefaultPolicy(), Releases: []nodetest.Release{nodetest.Release1}})
			nodes := []*nodetest.Node{e, e.Peer(t, e.Store)}
			tn := e.Tenant(t, tenant.EnvProduction)
			const n = 20
			keys := make([]tenant.Key, n)
			errs := storetest.AtOnce(n, func(i int) (err error) {
				keys[i], err = nodes[i%2].Keys.Generate(ctx, nodetest.Rec(tn.ID), tn.ID, tenant.TypeData)
				return err
			})
			won := 0
			for i, err := range errs {
				var rl *store.RateLimitedError
				switch {
				case err == nil:
					won++
					if keys[i].Version != 1 {
						t.Errorf("the winner made v%d, want v1", keys[i].Version)
					}
				case !errors.As(err, &rl):
					t.Errorf("Generate #%d error = %v, want success or a *store.RateLimitedError", i, err)
				}
			}
			if won != 1 {
				t.Errorf("%d of %d concurrent Generates succeeded, want exactly 1", won, n)
			}
			e.CheckStates(t, tn.ID, tenant.TypeData, tenant.StateActive)
			for i, node := range nodes {
				if _, _, err := node.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0}); err != nil {
					t.Errorf("node %d: DEK() error = %v", i, err)
				}
			}
		})
	}
}

// TestConcurrentGenerateUnlimited: without a rate limit, concurrent
// Generates on one node all succeed, each with its own version, and every
// stored secret unwraps (its wrapping names the version the store gave it).
func TestConcurrentGenerateUnlimited(t *testing.T) {
	for name, open := range nodetest.Engines() {
		t.Run(name, func(t *testing.T) {
			e := nodetest.New(t, open(t), nodetest.Options{Policy: nodetest.ShortPolicy(0, 100), Releases: []nodetest.Release{nodetest.Release1}})
			tn := e.Tenant(t, tenant.EnvProduction)
			const n = 8
			errs := storetest.AtOnce(n, func(int) error {
				_, err := e.Keys.Generate(ctx, nodetest.Rec(tn.ID), tn.ID, tenant.TypeData)
				return err
			})
			if ok := storetest.Succeeded(t, "Generate", errs, nil); ok != n {
				t.Errorf("%d of %d concurrent Generates succeeded", ok, n)
			}
			want := make([]tenant.KeyState, n)
			for i := range want {
				want[i] = tenant.StateArchived
			}
			want[n-1] = tenant.StateActive
			e.CheckStates(t, tn.ID, tenant.TypeData, want...)
			for v := uint32(1); v <= n; v++ {
				if _, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: v}); err != nil {
					t.Errorf("DEK(v%d) error = %v", v, err)
				}
			}
		})
	}
}

// TestGenerateRetriesWhenAnotherNodeWins: node A reads the series and wraps
// its secret for v1; node B rotates first and takes v1; A's rotation is
// refused, and A reads again, wraps for v2 and succeeds. Both secrets unwrap.
func TestGenerateRetriesWhenAnotherNodeWins(t *testing.T) {
	for name, open := range nodetest.Engines() {
		t.Run(name, func(t *testing.T) {
			hs := &nodetest.HookStore{Store: open(t)}
			e := nodetest.New(t, hs, nodetest.Options{Policy: nodetest.ShortPolicy(0, 50), Releases: []nodetest.Release{nodetest.Release1}})
			tn := e.Tenant(t, tenant.EnvProduction)
			b := e.Peer(t, e.Store)
			var bKey tenant.Key
			var bErr error
			f := func() { bKey, bErr = b.Keys.Generate(ctx, nodetest.Rec(tn.ID), tn.ID, tenant.TypeData) }
			hs.BeforeRotate(f)
			aKey, err := e.Keys.Generate(ctx, nodetest.Rec(tn.ID), tn.ID, tenant.TypeData)
			if bErr != nil || bKey.Version != 1 {
				t.Fatalf("node B: Generate() = v%d, %v, want v1", bKey.Version, bErr)
			}
			if err != nil || aKey.Version != 2 {
				t.Fatalf("node A: Generate() = v%d, %v, want v2 after a retry", aKey.Version, err)
			}
			e.CheckStates(t, tn.ID, tenant.TypeData, tenant.StateArchived, tenant.StateActive)
			for v := uint32(1); v <= 2; v++ {
				if _, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: v}); err != nil {
					t.Errorf("DEK(v%d) error = %v", v, err)
				}
			}
		})
	}
}
