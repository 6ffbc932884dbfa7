package client_test

import (
	"crypto/x509"
	"net/http/httptest"
	"testing"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// BenchmarkEncrypt1KiBHTTP encrypts 1 KiB through the whole stack: the Go
// client, TLS on loopback, authentication, the route policy, the tenant
// service (store read, DEK from the cache) and the envelope. The first call
// derives the DEK; the loop measures the warm path.
func BenchmarkEncrypt1KiBHTTP(b *testing.B) {
	c, item := benchServer(b, false)
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.Encrypt(ctx, "acme", "data", item)
		if err != nil || res[0].Error != nil {
			b.Fatalf("Encrypt() = %v, %v", res, err)
		}
	}
}

// benchServer starts an API server over TLS (with HTTP/2 if h2) with
// tenant acme and its data key, and returns an app token's client and a
// 1 KiB item whose DEK is warm.
func benchServer(b *testing.B, h2 bool) (*client.Client, api.EncryptItem) {
	b.Helper()
	s := apitest.NewServer(b, apitest.Options{})
	ts := httptest.NewUnstartedServer(s.Handler)
	ts.EnableHTTP2 = h2
	ts.StartTLS()
	b.Cleanup(ts.Close)
	s.Tenant(b, "acme")
	admin, err := client.New(ts.URL, s.Operator, client.WithRootCAs(pool(ts)))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.GenerateKey(ctx, "acme", "data"); err != nil {
		b.Fatal(err)
	}
	c, err := client.New(ts.URL, s.Token(b, api.RoleApp, "acme"), client.WithRootCAs(pool(ts)))
	if err != nil {
		b.Fatal(err)
	}
	item := api.EncryptItem{Plaintext: make([]byte, 1024), Context: map[string]string{"field": "card"}}
	if _, err := c.Encrypt(ctx, "acme", "data", item); err != nil {
		b.Fatal(err)
	}
	return c, item
}

func pool(ts *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ts.Certificate())
	return p
}

// BenchmarkHTTPParallel runs 32 concurrent clients (16 per core on two
// cores) through the whole stack: encrypt of 1 KiB, DEK delivery (an HPKE
// seal to a fresh X25519 key of the client's, opened by it, its audit entry
// committed before the answer), and DEK delivery in batches of 16. Profile
// with -cpuprofile.
func BenchmarkHTTPParallel(b *testing.B) {
	c, item := benchServer(b, true) // HTTP/2, as the server: one connection, streams
	b.Run("encrypt", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := c.Encrypt(ctx, "acme", "data", item)
				if err != nil || res[0].Error != nil {
					b.Errorf("Encrypt() = %v, %v", res, err)
					return
				}
			}
		})
	})
	b.Run("dek", func(b *testing.B) {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				d, err := c.DEK(ctx, "acme", "data", 0, 0)
				if err != nil {
					b.Errorf("DEK() = %v", err)
					return
				}
				d.Destroy()
			}
		})
	})
	// 16 DEKs per request (DEKs): one encapsulation, 16 audit entries.
	// Reported per DEK.
	b.Run("deks-16", func(b *testing.B) {
		keys := make([]api.DEKKey, 16)
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := c.DEKs(ctx, "acme", 0, keys...)
				if err != nil || len(res) != len(keys) || res[0].Error != nil {
					b.Errorf("DEKs() = %d results, %v", len(res), err)
					return
				}
				for _, r := range res {
					r.DEK.Destroy()
				}
			}
		})
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(keys)), "ns/dek")
	})
}
