package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/cacheonly/cacheonlytest"
)

// TestRevocationAcrossServers runs two server processes on one PostgreSQL
// database, and a tenant's key service. Node B caches a cache-only key's
// DEK; the key service revokes the key (410), which node A hears on its
// next fetch; node B must drop the DEK and answer key_revoked within
// destroyBound, through the destroy notification.
func TestRevocationAcrossServers(t *testing.T) {
	t.Parallel() // mostly waits for its server processes or the database
	ctx := context.Background()
	r, a, b, opA := twoNodesWithTenant(t, "acme")
	adminTok, err := opA.CreateToken(ctx, api.CreateTokenRequest{Role: api.RoleTenantAdmin, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	adminA := a.client(t, r, adminTok.Secret)
	ks := cacheonlytest.New(t, "acme-data")
	creds, err := adminA.KeyServiceCredentials(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ks.SetRecipient(t, []byte(creds.RecipientKey))
	if _, err := adminA.RegisterKeyService(ctx, "acme", api.RegisterKeyServiceRequest{URL: ks.URL, KID: ks.KID, CA: string(ks.CA()),
		Auth: "bearer", Bearer: ks.Bearer}); err != nil {
		t.Fatalf("RegisterKeyService on A: %v", err)
	}
	tok, err := opA.CreateToken(ctx, api.CreateTokenRequest{Role: "app", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	appA, appB := a.client(t, r, tok.Secret), b.client(t, r, tok.Secret)
	fields := map[string]string{"field": "ssn"}
	enc, err := appB.Encrypt(ctx, "acme", "data", api.EncryptItem{Plaintext: []byte("123-45-6789"), Context: fields})
	if err != nil || enc[0].Error != nil {
		t.Fatalf("Encrypt on B: %v %+v", err, enc)
	}
	decrypt := func(c interface {
		Decrypt(context.Context, string, ...api.DecryptItem) ([]api.DecryptResult, error)
	}) *api.Error {
		t.Helper()
		res, err := c.Decrypt(ctx, "acme", api.DecryptItem{Ciphertext: enc[0].Ciphertext, Context: fields})
		if err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		return res[0].Error
	}
	if e := decrypt(appB); e != nil {
		t.Fatalf("Decrypt on B before the revocation: %+v", e)
	}
	before := ks.Fetches.Load()

	ks.Set(cacheonlytest.Behaviour{Status: http.StatusGone})
	if e := decrypt(appA); e == nil || e.Code != api.CodeKeyRevoked {
		t.Fatalf("Decrypt on A after the 410 = %+v, want key_revoked", e)
	}
	acked := time.Now()
	attempts := 0
	for {
		attempts++
		e := decrypt(appB)
		if e != nil && e.Code == api.CodeKeyRevoked {
			break
		}
		if time.Since(acked) > destroyBound {
			t.Fatalf("node B still decrypts %v after node A detected the revocation (%d attempts; last %+v)", destroyBound, attempts, e)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("node B refused the revoked key %v after node A's answer (attempt %d)", time.Since(acked), attempts)
	if n := ks.Fetches.Load() - before; n != 2 {
		t.Errorf("the key service had %d fetches after the revocation, want 2 (one per node)", n)
	}
	if e := decrypt(appB); e == nil || e.Code != api.CodeKeyRevoked {
		t.Errorf("Decrypt on B again = %+v, want key_revoked", e)
	}
	if n := ks.Fetches.Load() - before; n != 2 {
		t.Errorf("node B asked the key service again within a minute (%d fetches)", n)
	}
	keys, err := adminA.Keys(ctx, "acme", "data")
	if err != nil || len(keys) != 1 || keys[0].Source != "cache-only" || keys[0].Availability != "revoked" {
		t.Errorf("Keys() = %+v, %v, want the cache-only key, revoked", keys, err)
	}
	if strings.Contains(string(b.log.Bytes()), "re-checking") {
		t.Errorf("node B's watch failed:\n%s", b.log.Bytes())
	}
}
