package httpapi_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/cacheonly/cacheonlytest"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// TestCacheOnlyErrors: a cache-only key whose service fails is
// key_unavailable, per item in a batch and as HTTP 503 for a whole
// request (DEK delivery); one its service revoked is key_revoked; the key
// list shows each state.
func TestCacheOnlyErrors(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	op := e.Operator
	e.call("POST", "/v1/tenants", op, api.CreateTenantRequest{Name: "acme", Env: "production"}).want(t, 201, nil)
	admin := e.Token(t, api.RoleTenantAdmin, "acme")
	app := e.Token(t, api.RoleApp, "acme")
	ks := cacheonlytest.New(t, "acme-data")
	var creds api.KeyServiceCredentials
	e.call("POST", "/v1/tenants/acme/key-services/credentials", admin, nil).want(t, 200, &creds)
	ks.SetRecipient(t, []byte(creds.RecipientKey))
	var reg api.KeyServiceRegistration
	e.call("POST", "/v1/tenants/acme/key-services", admin, api.RegisterKeyServiceRequest{URL: ks.URL, KID: ks.KID,
		CA: string(ks.CA()), Auth: "bearer", Bearer: ks.Bearer}).want(t, 201, &reg)
	var enc api.EncryptResponse
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: []api.EncryptItem{{Plaintext: []byte("x")}}}).want(t, 200, &enc)
	ref := tenant.KeyRef{Tenant: reg.Service.ID, Type: "data", Version: 1}
	keys := func() string {
		var kl api.KeyList
		e.call("GET", "/v1/tenants/acme/keys", admin, nil).want(t, 200, &kl)
		return kl.Keys[0].Availability
	}
	tenantID := func() string {
		var tn api.Tenant
		e.call("GET", "/v1/tenants/acme", op, nil).want(t, 200, &tn)
		return tn.ID
	}()
	ref.Tenant = tenantID

	ks.Set(cacheonlytest.Behaviour{Status: http.StatusBadGateway})
	e.Node.Data.Evict(ref)
	var dec api.DecryptResponse
	items := []api.DecryptItem{{Ciphertext: enc.Items[0].Ciphertext}, {Ciphertext: enc.Items[0].Ciphertext}}
	e.call("POST", "/v1/tenants/acme/decrypt", app, api.DecryptRequest{Items: items}).want(t, 200, &dec)
	for i, it := range dec.Items {
		if it.Error == nil || it.Error.Code != api.CodeKeyUnavailable {
			t.Errorf("decrypt item %d = %+v, want key_unavailable", i, it)
		}
	}
	if n := ks.Fetches.Load(); n != 3 {
		t.Errorf("the key service had %d fetches, want 3 (registration, encrypt, one failed decrypt)", n)
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.call("POST", "/v1/tenants/acme/dek", app, api.DEKRequest{KEM: 0x20, PublicKey: priv.PublicKey().Bytes()}).
		wantError(t, http.StatusServiceUnavailable, api.CodeKeyUnavailable)
	// In a batch, the item fails alone, and its entry is an error, as the
	// single delivery's is.
	var dks api.DEKsResponse
	e.call("POST", "/v1/tenants/acme/deks", app, api.DEKsRequest{KEM: 0x20, PublicKey: priv.PublicKey().Bytes(), Keys: []api.DEKKey{{}, {Type: "analytics"}}}).
		want(t, 200, &dks)
	if len(dks.Items) != 2 || dks.Items[0].Error == nil || dks.Items[0].Error.Code != api.CodeKeyUnavailable ||
		dks.Items[1].Error == nil || dks.Items[1].Error.Code != api.CodeNoActiveKey {
		t.Errorf("deks = %+v, want key_unavailable then no_active_key", dks)
	}
	var log api.AuditList
	e.call("GET", "/v1/audit?limit=10000", e.Operator, nil).want(t, 200, &log)
	var outcomes []string
	for _, a := range log.Entries {
		if a.Action == "key.deliver" {
			outcomes = append(outcomes, a.Key+" "+a.Outcome+" "+a.Reason)
		}
	}
	if want := []string{"data error key_unavailable", "data error key_unavailable", "analytics refused no_active_key"}; !slices.Equal(outcomes, want) {
		t.Errorf("key.deliver entries = %q, want %q", outcomes, want)
	}
	if got := keys(); got != "unavailable" {
		t.Errorf("key list availability = %q, want unavailable", got)
	}

	e.Clock.Add(61 * time.Second) // the first retry
	ks.Set(cacheonlytest.Behaviour{Status: http.StatusGone})
	e.call("POST", "/v1/tenants/acme/decrypt", app, api.DecryptRequest{Items: items}).want(t, 200, &dec)
	for i, it := range dec.Items {
		if it.Error == nil || it.Error.Code != api.CodeKeyRevoked {
			t.Errorf("decrypt item %d after the 410 = %+v, want key_revoked", i, it)
		}
	}
	if got := keys(); got != "revoked" {
		t.Errorf("key list availability = %q, want revoked", got)
	}
}
