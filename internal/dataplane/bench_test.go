package dataplane_test

import (
	"crypto/ecdh"
	"crypto/hpke"
	"fmt"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/dataplane"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The service-level figures of docs/benchmarks.md, on a SQLite store in a
// file (the data plane reads key rows from the node's row cache, as a
// node does):
//
//	go test -run '^$' -bench . -benchtime 2s ./internal/dataplane
//	go test -run '^$' -bench Cold -benchtime 10x ./internal/dataplane

// BenchmarkDEKFromCache: the active key's row from the row cache, then the
// DEK from the key cache.
func BenchmarkDEKFromCache(b *testing.B) {
	e := nodetest.New(b, nodetest.SQLite(b), nodetest.Options{Policy: nodetest.DefaultPolicy(), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(b, tenant.EnvProduction)
	e.Generate(b, tn.ID, tenant.TypeData)
	if _, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		dek, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0})
		if err != nil {
			b.Fatal(err)
		}
		dek.Destroy()
	}
}

// BenchmarkEncrypt1KiB: Service.Encrypt of 1 KiB with a two-pair context,
// DEK warm.
func BenchmarkEncrypt1KiB(b *testing.B) {
	e := nodetest.New(b, nodetest.SQLite(b), nodetest.Options{Policy: nodetest.DefaultPolicy(), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(b, tenant.EnvProduction)
	e.Generate(b, tn.ID, tenant.TypeData)
	pt := make([]byte, 1024)
	c := map[string]string{"table": "accounts", "field": "ssn"}
	if _, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, pt, c); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.Data.Encrypt(ctx, nil, tn.ID, tenant.TypeData, pt, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkColdDerivation: a DEK not in the cache, under a release at the
// default 600 000 PBKDF2 iterations: store reads, unwrap, one PBKDF2 run.
func BenchmarkColdDerivation(b *testing.B) {
	e := nodetest.New(b, nodetest.SQLite(b), nodetest.Options{Policy: nodetest.DefaultPolicy(), Releases: []nodetest.Release{nodetest.ReleaseBench}})
	tn := e.Tenant(b, tenant.EnvProduction)
	k := e.Generate(b, tn.ID, tenant.TypeData)
	id := fmt.Sprintf("dek/%s/%s/%d", tn.ID, k.Type, k.Version)
	b.ReportAllocs()
	for b.Loop() {
		e.Cache.Evict(id)
		dek, _, err := e.Data.DEK(ctx, nil, tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData, Version: 0})
		if err != nil {
			b.Fatal(err)
		}
		dek.Destroy()
	}
}

// BenchmarkEncryptDeterministic1KiB: Service.EncryptField of 1 KiB under a
// deterministic key (HKDF of the field key, AES-SIV), DEK warm.
func BenchmarkEncryptDeterministic1KiB(b *testing.B) {
	e := nodetest.New(b, nodetest.SQLite(b), nodetest.Options{Policy: nodetest.DefaultPolicy(), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(b, tenant.EnvProduction)
	e.Generate(b, tn.ID, tenant.TypeDeterministic)
	pt := make([]byte, 1024)
	c := map[string]string{"table": "accounts"}
	f := dataplane.Field{Name: "accounts.ssn"}
	if _, _, err := e.Data.EncryptField(ctx, nil, tn.ID, tenant.TypeDeterministic, f, pt, c); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.Data.EncryptField(ctx, nil, tn.ID, tenant.TypeDeterministic, f, pt, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealDEK: Service.SealDEK of a cached DEK to a client's X25519
// key (HPKE: an ephemeral key pair and one Diffie-Hellman), on every core
// at once: DEK delivery from the cache, without HTTP and without its audit
// entry (which the API group-commits).
func BenchmarkSealDEK(b *testing.B) {
	e := nodetest.New(b, nodetest.SQLite(b), nodetest.Options{Policy: nodetest.DefaultPolicy(), Releases: []nodetest.Release{nodetest.Release1}})
	tn := e.Tenant(b, tenant.EnvProduction)
	e.Generate(b, tn.ID, tenant.TypeData)
	priv, err := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	pub := priv.PublicKey().Bytes()
	ref := tenant.KeyRef{Tenant: tn.ID, Type: tenant.TypeData}
	if _, _, err := e.Data.SealDEK(ctx, nil, ref, envelope.KEMX25519, pub); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer() // the node's setup above takes seconds: b.Loop would reset the timer, RunParallel does not
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := e.Data.SealDEK(ctx, nil, ref, envelope.KEMX25519, pub); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
