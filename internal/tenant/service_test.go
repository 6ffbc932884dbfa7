package tenant_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

var ctx = context.Background()

const day = 24 * time.Hour

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s error = %v, want %v", what, err, want)
	}
}

func TestGenerateAndRateLimits(t *testing.T) {
	e := newEnv(t, openSQLite(t), defaultPolicy(), rel1)
	for _, tc := range []struct {
		env      store.Environment
		typ      string
		interval time.Duration
	}{
		{store.EnvProduction, store.TypeData, day},
		{store.EnvDeveloper, store.TypeData, day},
		{store.EnvSandbox, store.TypeData, 4 * time.Hour},
		{store.EnvProduction, store.TypeSearchIndex, 7 * day},
		{store.EnvSandbox, store.TypeEventBus, 7 * day},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.env, tc.typ), func(t *testing.T) {
			e.clock.Set(t0)
			tn := e.tenant(t, tc.env)
			v1 := e.generate(t, tn.ID, tc.typ)
			if v1.Version != 1 || v1.State != store.StateActive || v1.Source != store.SourceHSM ||
				v1.Derivation != store.DerivationPBKDF2 || v1.Release != rel1.id || !v1.Created.Equal(t0) {
				t.Errorf("Generate() = v%d %s %s %s %s at %s, want v1 active hsm pbkdf2 %s at %s",
					v1.Version, v1.State, v1.Source, v1.Derivation, v1.Release, v1.Created, rel1.id, t0)
			}
			if v1.Wrapped != nil || v1.Fingerprint != nil {
				t.Error("Generate() returned key material")
			}

			e.clock.Set(t0.Add(tc.interval - time.Microsecond))
			_, err := e.svc.Generate(ctx, tn.ID, tc.typ)
			var rl *store.RateLimitedError
			if !errors.As(err, &rl) || !errors.Is(err, store.ErrRateLimited) {
				t.Fatalf("Generate() again = %v, want a *store.RateLimitedError", err)
			}
			if want := v1.Created.Add(tc.interval); !rl.Next.Equal(want) {
				t.Errorf("RateLimitedError.Next = %s, want v1.Created + %v = %s", rl.Next, tc.interval, want)
			}

			e.clock.Set(rl.Next)
			v2 := e.generate(t, tn.ID, tc.typ)
			if v2.Version != 2 || v2.State != store.StateActive {
				t.Errorf("Generate() at Next = v%d %s, want v2 active", v2.Version, v2.State)
			}
			checkStates(t, e, tn.ID, tc.typ, store.StateArchived, store.StateActive)
		})
	}
}

// checkStates checks the states of a tenant's keys of typ, by version.
func checkStates(t *testing.T, e *env, tenantID, typ string, want ...store.KeyState) {
	t.Helper()
	ks, err := e.svc.Keys(ctx, tenantID, typ)
	if err != nil {
		t.Fatalf("Keys() error = %v", err)
	}
	var got []store.KeyState
	for i, k := range ks {
		got = append(got, k.State)
		if k.Version != uint32(i+1) {
			t.Errorf("Keys()[%d].Version = %d, want %d", i, k.Version, i+1)
		}
		if k.Wrapped != nil || k.Fingerprint != nil {
			t.Errorf("Keys()[%d] has key material", i)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Keys() states = %v, want %v", got, want)
	}
}

func TestRotationWithShortPolicy(t *testing.T) {
	e := newEnv(t, openSQLite(t), shortPolicy(time.Minute, 3), rel1)
	tn := e.tenant(t, store.EnvProduction)
	v1 := e.generate(t, tn.ID, store.TypeData)
	e.clock.Add(time.Minute)
	v2 := e.generate(t, tn.ID, store.TypeData)
	if v2.Version != 2 {
		t.Fatalf("second key = v%d, want v2", v2.Version)
	}
	checkStates(t, e, tn.ID, store.TypeData, store.StateArchived, store.StateActive)
	d1, _, err := e.svc.DEK(ctx, tn.ID, store.TypeData, v1.Version)
	if err != nil {
		t.Fatalf("DEK(archived v1) error = %v", err)
	}
	d2, k, err := e.svc.DEK(ctx, tn.ID, store.TypeData, 0)
	if err != nil || k.Version != 2 {
		t.Fatalf("DEK(active) = v%d, %v, want v2", k.Version, err)
	}
	if d1.Equal(d2) {
		t.Error("v1 and v2 have the same DEK")
	}
	// Other types are separate series.
	if k := e.generate(t, tn.ID, store.TypeAnalytics); k.Version != 1 {
		t.Errorf("first analytics key = v%d, want v1", k.Version)
	}
	// MaxKeys 3: a third data key is fine, a fourth is refused.
	e.clock.Add(time.Minute)
	e.generate(t, tn.ID, store.TypeData)
	e.clock.Add(time.Minute)
	_, err = e.svc.Generate(ctx, tn.ID, store.TypeData)
	wantErr(t, "Generate(over MaxKeys)", err, store.ErrTooManyKeys)
	checkStates(t, e, tn.ID, store.TypeData, store.StateArchived, store.StateArchived, store.StateActive)
}

func TestGenerateRefuses(t *testing.T) {
	e := newEnv(t, openSQLite(t), defaultPolicy(), rel1)
	tn := e.tenant(t, store.EnvProduction)
	_, err := e.svc.Generate(ctx, store.NewID(), store.TypeData)
	wantErr(t, "Generate(unknown tenant)", err, store.ErrNotFound)
	_, err = e.svc.Generate(ctx, "acme", store.TypeData)
	wantErr(t, "Generate(invalid tenant id)", err, store.ErrInvalid)
	_, err = e.svc.Generate(ctx, tn.ID, "blob")
	wantErr(t, "Generate(unknown type)", err, store.ErrInvalid)

	// No release loaded: nothing to wrap under.
	bare := newEnv(t, openSQLite(t), defaultPolicy())
	tb := bare.tenant(t, store.EnvProduction)
	if _, err := bare.svc.Generate(ctx, tb.ID, store.TypeData); err == nil {
		t.Error("Generate(no release loaded) error = nil")
	}
}

// TestConcurrentGenerate: twenty concurrent Generates of one tenant and
// type, on two nodes sharing the database, make exactly one key; the others
// are rate limited. On both drivers.
func TestConcurrentGenerate(t *testing.T) {
	for name, open := range map[string]func(testing.TB) store.Store{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, open(t), defaultPolicy(), rel1)
			nodes := []*tenant.Service{e.svc, e.node(t)}
			tn := e.tenant(t, store.EnvProduction)
			const n = 20
			errs := make([]error, n)
			keys := make([]store.Key, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					keys[i], errs[i] = nodes[i%2].Generate(ctx, tn.ID, store.TypeData)
				})
			}
			close(start)
			wg.Wait()
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
			checkStates(t, e, tn.ID, store.TypeData, store.StateActive)
			for i, node := range nodes {
				if _, _, err := node.DEK(ctx, tn.ID, store.TypeData, 0); err != nil {
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
	for name, open := range map[string]func(testing.TB) store.Store{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, open(t), shortPolicy(0, 100), rel1)
			tn := e.tenant(t, store.EnvProduction)
			const n = 8
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					<-start
					_, errs[i] = e.svc.Generate(ctx, tn.ID, store.TypeData)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("Generate #%d error = %v", i, err)
				}
			}
			want := make([]store.KeyState, n)
			for i := range want {
				want[i] = store.StateArchived
			}
			want[n-1] = store.StateActive
			checkStates(t, e, tn.ID, store.TypeData, want...)
			for v := uint32(1); v <= n; v++ {
				if _, _, err := e.svc.DEK(ctx, tn.ID, store.TypeData, v); err != nil {
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
	for name, open := range map[string]func(testing.TB) store.Store{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			hs := &hookStore{Store: open(t)}
			e := newEnv(t, hs, shortPolicy(0, 50), rel1)
			tn := e.tenant(t, store.EnvProduction)
			b := e.node(t)
			var bKey store.Key
			var bErr error
			f := func() { bKey, bErr = b.Generate(ctx, tn.ID, store.TypeData) }
			hs.rotateHook.Store(&f)
			aKey, err := e.svc.Generate(ctx, tn.ID, store.TypeData)
			if bErr != nil || bKey.Version != 1 {
				t.Fatalf("node B: Generate() = v%d, %v, want v1", bKey.Version, bErr)
			}
			if err != nil || aKey.Version != 2 {
				t.Fatalf("node A: Generate() = v%d, %v, want v2 after a retry", aKey.Version, err)
			}
			checkStates(t, e, tn.ID, store.TypeData, store.StateArchived, store.StateActive)
			for v := uint32(1); v <= 2; v++ {
				if _, _, err := e.svc.DEK(ctx, tn.ID, store.TypeData, v); err != nil {
					t.Errorf("DEK(v%d) error = %v", v, err)
				}
			}
		})
	}
}

func TestEncryptDecryptAcrossRotationAndDestruction(t *testing.T) {
	e := newEnv(t, openSQLite(t), shortPolicy(time.Hour, 50), rel1)
	tn := e.tenant(t, store.EnvProduction)
	other := e.tenant(t, store.EnvProduction)
	c := map[string]string{"table": "accounts", "field": "ssn"}

	_, _, err := e.svc.Encrypt(ctx, tn.ID, store.TypeData, []byte("x"), c)
	wantErr(t, "Encrypt(before any key)", err, tenant.ErrNoActiveKey)

	e.generate(t, tn.ID, store.TypeData)
	ct1, k1, err := e.svc.Encrypt(ctx, tn.ID, store.TypeData, []byte("under v1"), c)
	if err != nil || k1.Version != 1 {
		t.Fatalf("Encrypt() = v%d, %v, want v1", k1.Version, err)
	}
	e.clock.Add(time.Hour)
	e.generate(t, tn.ID, store.TypeData)
	ct2, k2, err := e.svc.Encrypt(ctx, tn.ID, store.TypeData, []byte("under v2"), c)
	if err != nil || k2.Version != 2 {
		t.Fatalf("Encrypt() after rotation = v%d, %v, want v2", k2.Version, err)
	}
	for ct, want := range map[*[]byte]envelope.Header{
		&ct1: {Tenant: tn.ID, Type: store.TypeData, Version: 1},
		&ct2: {Tenant: tn.ID, Type: store.TypeData, Version: 2},
	} {
		if h, err := envelope.ParseHeader(*ct); err != nil || h != want {
			t.Errorf("ParseHeader() = %+v, %v, want %+v", h, err, want)
		}
	}
	for _, tc := range []struct {
		ct      []byte
		pt      string
		version uint32
	}{{ct1, "under v1", 1}, {ct2, "under v2", 2}} {
		pt, k, err := e.svc.Decrypt(ctx, tn.ID, tc.ct, c)
		if err != nil || string(pt) != tc.pt || k.Version != tc.version {
			t.Errorf("Decrypt(v%d ciphertext) = %q, v%d, %v, want %q", tc.version, pt, k.Version, err, tc.pt)
		}
	}

	// Opaque failures.
	altered := bytes.Clone(ct2)
	altered[len(altered)-1] ^= 1
	relabelled, _ := envelope.ParseHeader(ct2)
	relabelled.Version = 99
	hb, _ := relabelled.Marshal()
	v99 := append(hb, ct2[len(hb):]...)
	for name, try := range map[string]func() error{
		"other context": func() error { _, _, err := e.svc.Decrypt(ctx, tn.ID, ct2, nil); return err },
		"other tenant":  func() error { _, _, err := e.svc.Decrypt(ctx, other.ID, ct2, c); return err },
		"altered":       func() error { _, _, err := e.svc.Decrypt(ctx, tn.ID, altered, c); return err },
		"no such key":   func() error { _, _, err := e.svc.Decrypt(ctx, tn.ID, v99, c); return err },
		"garbage":       func() error { _, _, err := e.svc.Decrypt(ctx, tn.ID, []byte("hello"), c); return err },
	} {
		wantErr(t, "Decrypt("+name+")", try(), envelope.ErrDecrypt)
	}

	// Destroy v1: its data is gone, v2's is not.
	d, err := e.svc.Destroy(ctx, tn.ID, store.TypeData, 1)
	if err != nil || d.State != store.StateDestroyed || !d.Destroyed.Equal(e.clock.Now()) {
		t.Fatalf("Destroy(v1) = %s at %s, %v", d.State, d.Destroyed, err)
	}
	if _, ok := e.cache.Get(fmt.Sprintf("dek/%s/data/1", tn.ID)); ok {
		t.Error("v1's DEK is still cached after Destroy")
	}
	_, _, err = e.svc.Decrypt(ctx, tn.ID, ct1, c)
	wantErr(t, "Decrypt(v1 ciphertext after Destroy)", err, tenant.ErrKeyDestroyed)
	_, _, err = e.svc.DEK(ctx, tn.ID, store.TypeData, 1)
	wantErr(t, "DEK(destroyed v1)", err, tenant.ErrKeyDestroyed)
	_, _, err = e.svc.SealDEK(ctx, tn.ID, store.TypeData, 1, envelope.KEMX25519, x25519Public(t))
	wantErr(t, "SealDEK(destroyed v1)", err, tenant.ErrKeyDestroyed)
	if pt, _, err := e.svc.Decrypt(ctx, tn.ID, ct2, c); err != nil || string(pt) != "under v2" {
		t.Errorf("Decrypt(v2 ciphertext after destroying v1) = %q, %v", pt, err)
	}
	if _, k, err := e.svc.Encrypt(ctx, tn.ID, store.TypeData, []byte("more"), c); err != nil || k.Version != 2 {
		t.Errorf("Encrypt() after destroying v1 = v%d, %v, want v2", k.Version, err)
	}
	_, err = e.svc.Destroy(ctx, tn.ID, store.TypeData, 1)
	wantErr(t, "Destroy(v1 again)", err, tenant.ErrKeyDestroyed)
	wantErr(t, "Destroy(v1 again)", err, store.ErrDestroyed)
	_, err = e.svc.Destroy(ctx, tn.ID, store.TypeData, 7)
	wantErr(t, "Destroy(missing version)", err, store.ErrNotFound)
	checkStates(t, e, tn.ID, store.TypeData, store.StateDestroyed, store.StateActive)
}

func TestDestroyActiveKey(t *testing.T) {
	e := newEnv(t, openSQLite(t), shortPolicy(time.Hour, 50), rel1)
	tn := e.tenant(t, store.EnvSandbox)
	e.generate(t, tn.ID, store.TypeData)
	ct, _, err := e.svc.Encrypt(ctx, tn.ID, store.TypeData, []byte("p"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Destroy(ctx, tn.ID, store.TypeData, 1); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.Encrypt(ctx, tn.ID, store.TypeData, []byte("p"), nil)
	wantErr(t, "Encrypt(active key destroyed)", err, tenant.ErrNoActiveKey)
	_, _, err = e.svc.DEK(ctx, tn.ID, store.TypeData, 0)
	wantErr(t, "DEK(0, active key destroyed)", err, tenant.ErrNoActiveKey)
	_, _, err = e.svc.SealDEK(ctx, tn.ID, store.TypeData, 0, envelope.KEMX25519, x25519Public(t))
	wantErr(t, "SealDEK(0, active key destroyed)", err, tenant.ErrNoActiveKey)
	_, _, err = e.svc.Decrypt(ctx, tn.ID, ct, nil)
	wantErr(t, "Decrypt(under the destroyed key)", err, tenant.ErrKeyDestroyed)

	// The rate limit still counts from v1's creation.
	_, err = e.svc.Generate(ctx, tn.ID, store.TypeData)
	wantErr(t, "Generate(too soon after v1)", err, store.ErrRateLimited)
	e.clock.Add(time.Hour)
	if k := e.generate(t, tn.ID, store.TypeData); k.Version != 2 {
		t.Errorf("Generate() after destroying v1 = v%d, want v2", k.Version)
	}
	ct2, k, err := e.svc.Encrypt(ctx, tn.ID, store.TypeData, []byte("p"), nil)
	if err != nil || k.Version != 2 {
		t.Fatalf("Encrypt() after a new Generate = v%d, %v, want v2", k.Version, err)
	}
	if pt, _, err := e.svc.Decrypt(ctx, tn.ID, ct2, nil); err != nil || string(pt) != "p" {
		t.Errorf("Decrypt(v2) = %q, %v", pt, err)
	}

	// An unknown tenant is not found, not "no active key".
	_, _, err = e.svc.Encrypt(ctx, store.NewID(), store.TypeData, []byte("p"), nil)
	wantErr(t, "Encrypt(unknown tenant)", err, store.ErrNotFound)
	_, _, err = e.svc.Encrypt(ctx, tn.ID, store.TypeData, nil, map[string]string{"": "x"})
	wantErr(t, "Encrypt(invalid context)", err, envelope.ErrContext)
}

// x25519Public is a fresh, valid X25519 public key for SealDEK calls that
// must fail for other reasons than the key.
func x25519Public(t *testing.T) []byte {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv.PublicKey().Bytes()
}
