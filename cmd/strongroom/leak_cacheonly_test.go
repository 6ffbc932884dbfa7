package main

import (
	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/cacheonly/cacheonlytest"
)

// cacheOnly runs a cache-only key for tenant initech: its key service
// (bearer) registered through the API, encryption, decryption and DEK
// delivery under it. The key service's material, the bearer secret and
// the DEK are secrets for the search: none may be stored, logged or
// written anywhere.
func (r *leakRun) cacheOnly() {
	r.t.Helper()
	ks := cacheonlytest.New(r.t, "initech-data-2026")
	r.add("cache-only key material initech/data/1", ks.Material(), nil)
	r.add("key service bearer secret", []byte(ks.Bearer), nil)

	admin := r.client(r.adminToken("initech"))
	creds, err := admin.KeyServiceCredentials(r.ctx, "initech")
	if err != nil {
		r.t.Fatalf("KeyServiceCredentials(initech) error = %v", err)
	}
	ks.SetRecipient(r.t, []byte(creds.RecipientKey))
	reg, err := admin.RegisterKeyService(r.ctx, "initech", api.RegisterKeyServiceRequest{Type: "data", URL: ks.URL, KID: ks.KID,
		CA: string(ks.CA()), Auth: "bearer", Bearer: ks.Bearer})
	if err != nil {
		r.t.Fatalf("RegisterKeyService(initech) error = %v", err)
	}
	if reg.Key.Source != "cache-only" {
		r.t.Fatalf("the registered key is %+v, want source cache-only", reg.Key)
	}
	tok, err := r.op.CreateToken(r.ctx, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "initech", Name: "leak-test initech app"})
	if err != nil {
		r.t.Fatalf("CreateToken(initech app) error = %v", err)
	}
	r.addToken("initech app token", tok.Secret)
	app := r.client(tok.Secret)
	dec, items := r.encrypt(app, "initech", "data", 3)
	r.decrypt(app, "initech", dec, items)
	r.deliver(app, "initech", "data", 1)
	if ks.Fetches.Load() < 2 {
		r.t.Fatalf("the key service had %d fetches, want the registration's and the data plane's", ks.Fetches.Load())
	}
}

// adminToken makes a tenant-admin token for the tenant, as a secret.
func (r *leakRun) adminToken(tenantName string) string {
	r.t.Helper()
	tok, err := r.op.CreateToken(r.ctx, api.CreateTokenRequest{Role: api.RoleTenantAdmin, Tenant: tenantName, Name: "leak-test " + tenantName + " admin"})
	if err != nil {
		r.t.Fatalf("CreateToken(%s admin) error = %v", tenantName, err)
	}
	r.addToken(tenantName+" admin token", tok.Secret)
	return tok.Secret
}
