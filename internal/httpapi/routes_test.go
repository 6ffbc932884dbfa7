package httpapi_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/cacheonly/cacheonlytest"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/httpapi"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// TestEveryRoute walks every route of the table through its happy path,
// with real components, and fails if a route was not called.
func TestEveryRoute(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	called := map[string]bool{}
	call := func(method, pattern, path, token string, body any) *response {
		t.Helper()
		called[method+" "+pattern] = true
		return e.call(method, path, token, body)
	}
	op := e.Operator
	auditor := e.Token(t, api.RoleAuditor, "")

	// Health, readiness, the document.
	var h api.Health
	call("GET", "/v1/health", "/v1/health", "", nil).want(t, 200, &h)
	if h.Status != "ok" || h.Region != apitest.Region {
		t.Errorf("health = %+v", h)
	}
	var ready api.Ready
	call("GET", "/v1/ready", "/v1/ready", "", nil).want(t, 200, &ready)
	if ready.Status != "ok" || ready.Region != apitest.Region || ready.Releases != 1 || ready.Problems != 0 {
		t.Errorf("ready = %+v", ready)
	}
	var st api.Status
	call("GET", "/v1/status", "/v1/status", auditor, nil).want(t, 200, &st)
	if st.Status != "ok" || len(st.Releases) != 1 || st.Releases[0].ID != apitest.Release1 || !st.Releases[0].Loaded ||
		st.Releases[0].Iterations == 0 || len(st.Problems) != 0 {
		t.Errorf("status = %+v", st)
	}
	scrape := call("GET", "/v1/metrics", "/v1/metrics", auditor, nil)
	if ct := scrape.header.Get("Content-Type"); scrape.status != 200 || !strings.HasPrefix(ct, "text/plain") ||
		!strings.Contains(string(scrape.body), "strongroom_ready 1") {
		t.Errorf("metrics: %d %q %.200s", scrape.status, ct, scrape.body)
	}
	var doc map[string]any
	call("GET", "/v1/openapi.json", "/v1/openapi.json", "", nil).want(t, 200, &doc)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v", doc["openapi"])
	}

	// Releases: install the second one, twice (idempotent).
	var rel api.Release
	bundle := e.Site.Bundles[apitest.Release2]
	call("POST", "/v1/releases", "/v1/releases", op, api.InstallReleaseRequest{Bundle: bundle}).want(t, 200, &rel)
	if rel.ID != apitest.Release2 || !rel.Loaded || rel.Iterations == 0 || rel.Installed.IsZero() {
		t.Errorf("installed release = %+v", rel)
	}
	e.Clock.Add(time.Minute)
	var again api.Release
	call("POST", "/v1/releases", "/v1/releases", op, api.InstallReleaseRequest{Bundle: bundle}).want(t, 200, &again)
	if !again.Installed.Equal(rel.Installed) {
		t.Errorf("installing again changed the installation time: %v, then %v", rel.Installed, again.Installed)
	}
	var rels api.ReleaseList
	call("GET", "/v1/releases", "/v1/releases", auditor, nil).want(t, 200, &rels)
	if len(rels.Releases) != 2 || rels.Releases[0].ID != apitest.Release1 || rels.Releases[1].ID != apitest.Release2 {
		t.Errorf("releases = %+v", rels)
	}

	// Tenants.
	var acme api.Tenant
	call("POST", "/v1/tenants", "/v1/tenants", op, api.CreateTenantRequest{Name: "acme", Env: "production"}).want(t, 201, &acme)
	if acme.Name != "acme" || acme.Env != "production" || acme.ID == "" || !acme.DerivationOptOut {
		t.Errorf("tenant = %+v", acme)
	}
	e.call("POST", "/v1/tenants", op, api.CreateTenantRequest{Name: "acme", Env: "sandbox"}).wantError(t, 409, api.CodeExists)
	e.call("POST", "/v1/tenants", op, api.CreateTenantRequest{Name: "Acme!", Env: "sandbox"}).wantError(t, 400, api.CodeBadRequest)
	e.call("POST", "/v1/tenants", op, api.CreateTenantRequest{Name: "beta"}).wantError(t, 400, api.CodeBadRequest)
	var list api.TenantList
	call("GET", "/v1/tenants", "/v1/tenants", auditor, nil).want(t, 200, &list)
	if len(list.Tenants) != 1 || list.Tenants[0].ID != acme.ID {
		t.Errorf("tenants = %+v", list)
	}

	// Tokens: the operator makes a tenant-admin, which makes an app token.
	var adminTok, appTok api.Token
	call("POST", "/v1/tokens", "/v1/tokens", op, api.CreateTokenRequest{Role: "tenant-admin", Tenant: "acme", Name: "acme admin", TTL: "720h"}).
		want(t, 201, &adminTok)
	if adminTok.Role != "tenant-admin" || adminTok.Tenant != "acme" || adminTok.Expires == nil ||
		!adminTok.Expires.Equal(e.Clock.Now().Add(720*time.Hour)) || !strings.HasPrefix(adminTok.Secret, "srt_") {
		t.Errorf("token = %+v", adminTok)
	}
	admin := adminTok.Secret
	call("POST", "/v1/tokens", "/v1/tokens", admin, api.CreateTokenRequest{Role: "app", Tenant: "acme", Name: "web", TTL: "720h"}).want(t, 201, &appTok)
	if appTok.Role != "app" || appTok.Tenant != "acme" || appTok.Expires == nil {
		t.Errorf("app token = %+v", appTok)
	}
	appSecret := appTok.Secret
	// A token revoked is refused at once, as revoked; revoking twice is
	// 409 already_revoked; the list shows it revoked.
	var spare, selfish api.Token
	call("POST", "/v1/tokens", "/v1/tokens", admin, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "1h"}).want(t, 201, &spare)
	var rev api.Revocation
	call("POST", "/v1/tokens/{id}/revoke", "/v1/tokens/"+spare.ID+"/revoke", op, nil).want(t, 200, &rev)
	if rev.Token.ID != spare.ID || rev.Token.State != api.TokenRevoked || rev.Token.Revoked == nil ||
		!rev.Token.Revoked.Equal(e.Clock.Now().Truncate(time.Microsecond)) || rev.Token.RevokedBy == "" || len(rev.Cascaded) != 0 {
		t.Errorf("revocation = %+v", rev)
	}
	e.call("GET", "/v1/tenants/acme/keys", spare.Secret, nil).wantError(t, 401, api.CodeTokenRevoked)
	e.call("POST", "/v1/tokens/"+spare.ID+"/revoke", op, nil).wantError(t, 409, api.CodeAlreadyRevoked)
	e.call("POST", "/v1/tokens/"+strings.Repeat("0", 32)+"/revoke", op, nil).wantError(t, 404, api.CodeNotFound)
	e.call("POST", "/v1/tokens/not-an-id/revoke", op, nil).wantError(t, 400, api.CodeBadRequest)
	call("POST", "/v1/tokens", "/v1/tokens", admin, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "30d"}).want(t, 201, &selfish)
	var me api.TokenInfo
	call("GET", "/v1/tokens/self", "/v1/tokens/self", selfish.Secret, nil).want(t, 200, &me)
	if me.ID != selfish.ID || me.Role != "app" || me.Tenant != "acme" || me.State != api.TokenLive || me.Expires == nil {
		t.Errorf("GET /v1/tokens/self = %+v, want the app token of acme, live, with its expiry", me)
	}
	call("POST", "/v1/tokens/self/revoke", "/v1/tokens/self/revoke", selfish.Secret, nil).want(t, 200, &rev)
	if rev.Token.ID != selfish.ID || rev.Token.State != api.TokenRevoked || rev.Token.RevokedBy != selfish.ID {
		t.Errorf("self revocation = %+v", rev)
	}
	e.call("POST", "/v1/tokens/self/revoke", selfish.Secret, nil).wantError(t, 401, api.CodeTokenRevoked)
	var toks api.TokenList
	call("GET", "/v1/tokens", "/v1/tokens?tenant=acme", auditor, nil).want(t, 200, &toks)
	states := map[string]string{}
	for _, tok := range toks.Tokens {
		states[tok.ID] = tok.State + " " + tok.Tenant
	}
	if want := map[string]string{adminTok.ID: "live acme", appTok.ID: "live acme", spare.ID: "revoked acme", selfish.ID: "revoked acme"}; !maps.Equal(states, want) {
		t.Errorf("tokens of acme = %v, want %v", states, want)
	}
	var got api.Tenant
	call("GET", "/v1/tenants/{tenant}", "/v1/tenants/acme", admin, nil).want(t, 200, &got)
	if got != acme {
		t.Errorf("GET tenant = %+v, want %+v", got, acme)
	}

	// Keys: generate, rate limited, generate again later, list.
	keysPath := "/v1/tenants/acme/keys"
	var k1 api.Key
	call("POST", "/v1/tenants/{tenant}/keys", keysPath, admin, api.GenerateKeyRequest{Type: "data"}).want(t, 201, &k1)
	if k1.Tenant != "acme" || k1.Type != "data" || k1.Version != 1 || k1.State != "active" || k1.Source != "hsm" ||
		k1.Derivation != "pbkdf2" || k1.Release != apitest.Release2 {
		t.Errorf("key = %+v", k1)
	}
	r := e.call("POST", keysPath, admin, api.GenerateKeyRequest{})
	rl := r.wantError(t, 429, api.CodeRateLimited)
	wantNext := k1.Created.Add(24 * time.Hour)
	if rl.NextAllowed == nil || !rl.NextAllowed.Equal(wantNext) {
		t.Errorf("next_allowed = %v, want %v", rl.NextAllowed, wantNext)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra != int(wantNext.Sub(e.Clock.Now()).Seconds()) {
		t.Errorf("Retry-After = %q, want %v s", r.header.Get("Retry-After"), wantNext.Sub(e.Clock.Now()).Seconds())
	}
	// Encrypt under version 1 before rotating.
	encPath := "/v1/tenants/acme/encrypt"
	var enc1 api.EncryptResponse
	call("POST", "/v1/tenants/{tenant}/encrypt", encPath, appSecret, api.EncryptRequest{Items: []api.EncryptItem{
		{Plaintext: []byte("card 4111"), Context: map[string]string{"field": "card"}},
	}}).want(t, 200, &enc1)
	if len(enc1.Items) != 1 || enc1.Items[0].Error != nil || enc1.Items[0].Version != 1 {
		t.Fatalf("encrypt = %+v", enc1)
	}
	e.Clock.Add(24 * time.Hour)
	var k2 api.Key
	call("POST", "/v1/tenants/{tenant}/keys", keysPath, op, api.GenerateKeyRequest{Type: "data"}).want(t, 201, &k2)
	if k2.Version != 2 {
		t.Errorf("second key = %+v", k2)
	}
	var keys api.KeyList
	call("GET", "/v1/tenants/{tenant}/keys", keysPath, auditor, nil).want(t, 200, &keys)
	if len(keys.Keys) != 2 || keys.Keys[0].State != "archived" || keys.Keys[1].State != "active" {
		t.Errorf("keys = %+v", keys)
	}
	e.call("GET", keysPath+"?type=search_index", admin, nil).want(t, 200, &keys)
	if len(keys.Keys) != 0 || keys.Keys == nil {
		t.Errorf("search_index keys = %+v", keys)
	}

	// The data plane: a batch of two, then decrypt both (two key versions).
	var enc api.EncryptResponse
	e.call("POST", encPath, appSecret, api.EncryptRequest{Type: "data", Items: []api.EncryptItem{
		{Plaintext: []byte("hello")},
		{Plaintext: []byte("with context"), Context: map[string]string{"row": "42"}},
	}}).want(t, 200, &enc)
	if len(enc.Items) != 2 || enc.Items[0].Version != 2 || enc.Items[1].Error != nil {
		t.Fatalf("encrypt = %+v", enc)
	}
	decPath := "/v1/tenants/acme/decrypt"
	var dec api.DecryptResponse
	call("POST", "/v1/tenants/{tenant}/decrypt", decPath, appSecret, api.DecryptRequest{Items: []api.DecryptItem{
		{Ciphertext: enc.Items[0].Ciphertext},
		{Ciphertext: enc.Items[1].Ciphertext, Context: map[string]string{"row": "42"}},
		{Ciphertext: enc.Items[1].Ciphertext, Context: map[string]string{"row": "43"}},
		{Ciphertext: enc1.Items[0].Ciphertext, Context: map[string]string{"field": "card"}},
	}}).want(t, 200, &dec)
	if string(dec.Items[0].Plaintext) != "hello" || string(dec.Items[1].Plaintext) != "with context" ||
		dec.Items[2].Error == nil || dec.Items[2].Error.Code != api.CodeDecrypt ||
		string(dec.Items[3].Plaintext) != "card 4111" || dec.Items[3].Version != 1 {
		t.Errorf("decrypt = %+v", dec)
	}

	// Rewrap: data under v1 moves to v2, the active key.
	var rw api.RewrapResponse
	call("POST", "/v1/tenants/{tenant}/rewrap", "/v1/tenants/acme/rewrap", appSecret, api.RewrapRequest{Items: []api.RewrapItem{
		{Ciphertext: enc1.Items[0].Ciphertext, Context: map[string]string{"field": "card"}},
	}}).want(t, 200, &rw)
	if r := rw.Items[0]; r.Error != nil || !r.Rewrapped || r.From != 1 || r.Version != 2 {
		t.Errorf("rewrap = %+v", rw)
	}
	var census api.KeyUsageList
	call("POST", "/v1/tenants/{tenant}/data-reports", "/v1/tenants/acme/data-reports", appSecret, api.DataReportRequest{
		Dataset: "cards(number)", Versions: []api.DataReportCount{{Version: 2, Values: 1}}}).want(t, 200, &census)
	if len(census.Usage) != 2 || census.Usage[0].RowsLeft == nil || *census.Usage[0].RowsLeft != 0 || *census.Usage[1].RowsLeft != 1 {
		t.Errorf("data report = %+v", census)
	}

	// A DEK delivered with HPKE opens locally and decrypts server ciphertexts.
	priv, err := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var dk api.DEKResponse
	call("POST", "/v1/tenants/{tenant}/dek", "/v1/tenants/acme/dek", appSecret,
		api.DEKRequest{KEM: envelope.KEMX25519, PublicKey: priv.PublicKey().Bytes()}).want(t, 200, &dk)
	if dk.TenantID != acme.ID || dk.Type != "data" || dk.Version != 2 {
		t.Errorf("dek = %+v", dk)
	}
	dek, err := envelope.OpenDEK(priv, envelope.KEMX25519, envelope.Header{Tenant: dk.TenantID, Type: dk.Type, Version: dk.Version}, dk.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := envelope.Open(dek, enc.Items[0].Ciphertext, nil); err != nil || string(pt) != "hello" {
		t.Errorf("opening a server ciphertext with the delivered DEK = %q, %v", pt, err)
	}
	// A batch: the same DEK, and a refusal in its place.
	var dks api.DEKsResponse
	call("POST", "/v1/tenants/{tenant}/deks", "/v1/tenants/acme/deks", appSecret,
		api.DEKsRequest{KEM: envelope.KEMX25519, PublicKey: priv.PublicKey().Bytes(), Keys: []api.DEKKey{{Version: 7}, {}}}).want(t, 200, &dks)
	if len(dks.Items) != 2 || dks.Items[0].Error == nil || dks.Items[0].Error.Code != api.CodeNotFound || dks.Items[1].Version != 2 {
		t.Fatalf("deks = %+v", dks)
	}
	batch, err := envelope.OpenDEKs(priv, envelope.KEMX25519, dks.Enc, []envelope.Header{{Tenant: acme.ID, Type: "data", Version: 2}}, [][]byte{dks.Items[1].Sealed})
	if err != nil || !batch[0].Equal(dek) {
		t.Errorf("OpenDEKs(deks) = %v, or not the DEK", err)
	}
	e.call("POST", "/v1/tenants/acme/deks", appSecret, api.DEKsRequest{KEM: envelope.KEMX25519, PublicKey: []byte{1, 2, 3}, Keys: []api.DEKKey{{}}}).
		wantError(t, 400, api.CodeBadRequest)
	e.call("POST", "/v1/tenants/acme/dek", appSecret, api.DEKRequest{KEM: 0x0010, PublicKey: priv.PublicKey().Bytes()}).
		wantError(t, 400, api.CodeBadRequest)
	e.call("POST", "/v1/tenants/acme/dek", appSecret, api.DEKRequest{KEM: envelope.KEMX25519, PublicKey: []byte{1, 2, 3}}).
		wantError(t, 400, api.CodeBadRequest)

	// Destroy version 1: confirmation first; then its data is gone, per item.
	destroyPath := "/v1/tenants/acme/keys/data/1/destroy"
	before := e.snapshot()
	for _, confirm := range []string{"", "acme/data/2", acme.ID + "/data/1", "ACME/data/1", "acme/data/1 "} {
		e.call("POST", destroyPath, admin, api.DestroyKeyRequest{Confirm: confirm}).wantError(t, 400, api.CodeBadRequest)
	}
	if !before.equal(e.snapshot()) {
		t.Fatal("a refused destroy changed the store")
	}
	var destroyed api.Key
	call("POST", "/v1/tenants/{tenant}/keys/{type}/{version}/destroy", destroyPath, admin,
		api.DestroyKeyRequest{Confirm: "acme/data/1"}).want(t, 200, &destroyed)
	if destroyed.State != "destroyed" || destroyed.Version != 1 || destroyed.Destroyed == nil {
		t.Errorf("destroyed = %+v", destroyed)
	}
	e.call("POST", destroyPath, admin, api.DestroyKeyRequest{Confirm: "acme/data/1"}).wantError(t, 409, api.CodeKeyDestroyed)
	e.call("POST", "/v1/tenants/acme/keys/data/9/destroy", admin, api.DestroyKeyRequest{Confirm: "acme/data/9"}).
		wantError(t, 404, api.CodeNotFound)
	dec = api.DecryptResponse{}
	e.call("POST", decPath, appSecret, api.DecryptRequest{Items: []api.DecryptItem{
		{Ciphertext: enc1.Items[0].Ciphertext, Context: map[string]string{"field": "card"}},
		{Ciphertext: enc.Items[0].Ciphertext},
	}}).want(t, 200, &dec)
	if dec.Items[0].Error == nil || dec.Items[0].Error.Code != api.CodeKeyDestroyed || dec.Items[0].Plaintext != nil ||
		string(dec.Items[1].Plaintext) != "hello" {
		t.Errorf("decrypt after destroy = %+v", dec)
	}

	// Destroying the active key: encrypt says no_active_key, per item.
	e.call("POST", "/v1/tenants/acme/keys/data/2/destroy", op, api.DestroyKeyRequest{Confirm: "acme/data/2"}).want(t, 200, nil)
	enc = api.EncryptResponse{}
	e.call("POST", encPath, appSecret, api.EncryptRequest{Items: []api.EncryptItem{{Plaintext: []byte("x")}}}).want(t, 200, &enc)
	if enc.Items[0].Error == nil || enc.Items[0].Error.Code != api.CodeNoActiveKey {
		t.Errorf("encrypt without an active key = %+v", enc)
	}

	// BYOK: the operator's opt-out switch, upload certificates (self-signed
	// and CA-signed), an upload, export, destroy, import.
	var set api.Tenant
	f := false
	call("POST", "/v1/tenants/{tenant}/settings", "/v1/tenants/acme/settings", op, api.SetTenantRequest{DerivationOptOut: &f}).want(t, 200, &set)
	if set.DerivationOptOut {
		t.Errorf("settings = %+v", set)
	}
	e.call("POST", "/v1/tenants/acme/settings", admin, api.SetTenantRequest{DerivationOptOut: &f}).wantError(t, 403, api.CodeForbidden)
	e.call("POST", "/v1/tenants/acme/settings", op, api.SetTenantRequest{}).wantError(t, 400, api.CodeBadRequest)
	certsPath := "/v1/tenants/acme/upload-certificates"
	var uc api.UploadCert
	call("POST", "/v1/tenants/{tenant}/upload-certificates", certsPath, admin, api.CreateUploadCertRequest{ValidDays: 30}).want(t, 201, &uc)
	if uc.State != "active" || uc.NotAfter == nil || uc.CSR != "" || !strings.HasPrefix(uc.Certificate, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("upload certificate = %+v", uc)
	}
	e.call("POST", certsPath, admin, api.CreateUploadCertRequest{ValidDays: 731}).wantError(t, 400, api.CodeBadRequest)
	var pending api.UploadCert
	e.call("POST", certsPath, admin, api.CreateUploadCertRequest{CSR: true}).want(t, 201, &pending)
	if pending.State != "pending" || pending.CSR == "" || pending.Certificate != "" {
		t.Fatalf("pending certificate = %+v", pending)
	}
	var certs api.UploadCertList
	call("GET", "/v1/tenants/{tenant}/upload-certificates", certsPath, auditor, nil).want(t, 200, &certs)
	if len(certs.Certificates) != 2 {
		t.Errorf("certificates = %+v", certs)
	}
	var one api.UploadCert
	call("GET", "/v1/tenants/{tenant}/upload-certificates/{id}", certsPath+"/"+uc.ID, admin, nil).want(t, 200, &one)
	if one.ID != uc.ID || one.Certificate != uc.Certificate {
		t.Errorf("certificate = %+v", one)
	}
	signed := signCSR(t, pending.CSR, e.Clock.Now())
	call("POST", "/v1/tenants/{tenant}/upload-certificates/{id}/complete", certsPath+"/"+pending.ID+"/complete", admin,
		api.CompleteUploadCertRequest{Certificate: string(signed)}).want(t, 200, &one)
	if one.State != "active" || one.Certificate == "" {
		t.Errorf("completed certificate = %+v", one)
	}
	e.call("POST", certsPath+"/"+pending.ID+"/complete", admin, api.CompleteUploadCertRequest{Certificate: string(signed)}).
		wantError(t, 409, api.CodeCertState)
	call("POST", "/v1/tenants/{tenant}/upload-certificates/{id}/retire", certsPath+"/"+pending.ID+"/retire", admin, nil).want(t, 200, &one)
	if one.State != "retired" || one.Retired == nil {
		t.Errorf("retired certificate = %+v", one)
	}

	e.Clock.Add(24 * time.Hour)
	value := bytes.Repeat([]byte{0x5a}, 32)
	up := uploadRequest(t, uc.Certificate, value)
	up.Derivation = "none"
	e.call("POST", keysPath+"/data/upload", admin, up).wantError(t, 403, api.CodeOptOutDisabled)
	up.Derivation = "pbkdf2"
	bad := up
	bad.SHA256 = strings.Repeat("0", 64)
	e.call("POST", keysPath+"/data/upload", admin, bad).wantError(t, 400, api.CodeUploadRefused)
	e.call("POST", keysPath+"/data/upload", admin, api.UploadKeyRequest{Wrapped: up.Wrapped, SHA256: "zz"}).wantError(t, 400, api.CodeBadRequest)
	var k3 api.Key
	call("POST", "/v1/tenants/{tenant}/keys/{type}/upload", keysPath+"/data/upload", admin, up).want(t, 201, &k3)
	if k3.Version != 3 || k3.State != "active" || k3.Source != "uploaded" || k3.Derivation != "pbkdf2" {
		t.Errorf("uploaded key = %+v", k3)
	}
	e.call("POST", keysPath+"/analytics/upload", admin, up).wantError(t, 409, api.CodeDuplicateKey)
	e.call("POST", keysPath+"/data/upload", op, up).wantError(t, 403, api.CodeForbidden)

	var backup api.KeyBackup
	call("POST", "/v1/tenants/{tenant}/keys/{type}/{version}/export", keysPath+"/data/3/export", admin, nil).want(t, 200, &backup)
	if backup.Key.Version != 3 || !strings.HasPrefix(backup.Backup, "-----BEGIN STRONGROOM KEY BACKUP-----") {
		t.Fatalf("backup = %+v", backup)
	}
	e.call("POST", keysPath+"/import", admin, api.ImportKeyRequest{Backup: backup.Backup}).wantError(t, 409, api.CodeImportRefused)
	e.call("POST", keysPath+"/import", admin, api.ImportKeyRequest{Backup: "garbage"}).wantError(t, 400, api.CodeBadRequest)
	e.call("POST", keysPath+"/data/3/destroy", admin, api.DestroyKeyRequest{Confirm: "acme/data/3"}).want(t, 200, nil)
	var imported api.Key
	call("POST", "/v1/tenants/{tenant}/keys/import", keysPath+"/import", admin, api.ImportKeyRequest{Backup: backup.Backup}).want(t, 201, &imported)
	if imported.Version != 3 || imported.State != "archived" || imported.Destroyed != nil {
		t.Errorf("imported key = %+v", imported)
	}

	// Cache-only keys: the tenant's credentials, a registration refused
	// until the key service has the recipient key, then made; the list;
	// encryption under the fetched key; the key list with its availability.
	ks := cacheonlytest.New(t, "acme-analytics")
	var creds api.KeyServiceCredentials
	call("POST", "/v1/tenants/{tenant}/key-services/credentials", "/v1/tenants/acme/key-services/credentials", admin, nil).want(t, 200, &creds)
	if !strings.HasPrefix(creds.RecipientKey, "-----BEGIN PUBLIC KEY-----") || !strings.HasPrefix(creds.ClientCertificate, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("credentials = %+v", creds)
	}
	regReq := api.RegisterKeyServiceRequest{Type: "analytics", URL: ks.URL, KID: ks.KID, CA: string(ks.CA()), Auth: "bearer", Bearer: ks.Bearer}
	e.call("POST", "/v1/tenants/acme/key-services", admin, regReq).wantError(t, 400, api.CodeKeyServiceRefused)
	ks.SetRecipient(t, []byte(creds.RecipientKey))
	var reg api.KeyServiceRegistration
	call("POST", "/v1/tenants/{tenant}/key-services", "/v1/tenants/acme/key-services", admin, regReq).want(t, 201, &reg)
	if reg.Key.Source != "cache-only" || reg.Key.Version != 1 || reg.Key.State != "active" || reg.Service.Availability != "available" ||
		reg.Service.KID != ks.KID || reg.Credentials != creds {
		t.Errorf("registration = %+v", reg)
	}
	var kss api.KeyServiceList
	call("GET", "/v1/tenants/{tenant}/key-services", "/v1/tenants/acme/key-services", auditor, nil).want(t, 200, &kss)
	if len(kss.Services) != 1 || kss.Services[0].ID != reg.Service.ID || strings.Contains(string(e.call("GET", "/v1/tenants/acme/key-services", admin, nil).body), ks.Bearer) {
		t.Errorf("key services = %+v", kss)
	}
	var cokEnc api.EncryptResponse
	e.call("POST", "/v1/tenants/acme/encrypt", e.Token(t, api.RoleApp, "acme"), api.EncryptRequest{Type: "analytics",
		Items: []api.EncryptItem{{Plaintext: []byte("cache-only")}}}).want(t, 200, &cokEnc)
	if len(cokEnc.Items) != 1 || cokEnc.Items[0].Error != nil || cokEnc.Items[0].Version != 1 {
		t.Errorf("encrypt under the cache-only key = %+v", cokEnc)
	}
	var cokKeys api.KeyList
	e.call("GET", keysPath+"?type=analytics", admin, nil).want(t, 200, &cokKeys)
	if len(cokKeys.Keys) != 1 || cokKeys.Keys[0].Source != "cache-only" || cokKeys.Keys[0].Availability != "available" {
		t.Errorf("analytics keys = %+v", cokKeys)
	}

	// The audit log: every change above, in order, with who and which key;
	// refusals too; the data plane as per-minute aggregates once flushed.
	if err := e.Node.Aggregate.Flush(t.Context(), e.Node.Audit); err != nil {
		t.Fatal(err)
	}
	var log api.AuditList
	call("GET", "/v1/audit", "/v1/audit?limit=10000", auditor, nil).want(t, 200, &log)
	seen := map[string]int{}
	for i, a := range log.Entries {
		if a.Seq != uint64(i+1) || len(a.Hash) != 64 {
			t.Errorf("audit entry %d = %+v", i, a)
		}
		seen[a.Action+" "+a.Outcome+" "+a.Key]++
		if a.Action == "tenant.create" && a.Outcome == "ok" && a.Tenant != acme.ID {
			t.Errorf("the tenant.create entry names tenant %q, want %q", a.Tenant, acme.ID)
		}
		if a.Outcome != "ok" {
			seen[a.Action+" "+a.Outcome+" "]++
		}
	}
	for _, want := range []string{
		"release.install ok ", "tenant.create ok ", "token.create ok ", "token.revoke ok ",
		"key.generate ok data/1", "key.generate refused ", "key.generate ok data/2", "key.encrypt ok data/1",
		"key.decrypt ok data/2", "key.decrypt refused ", "key.rewrap ok data/1", "key.data-report ok data", "key.deliver ok data/2", "key.destroy refused data/1",
		"key.destroy ok data/1", "key.destroy ok data/2", "tenant.settings ok ", "cert.create ok ", "cert.complete ok ",
		"cert.retire ok ", "key.upload refused ", "key.upload ok data/3", "key.export ok data/3", "key.import refused data/3",
		"key.import ok data/3", "token.use refused ", "key.derive ok data/1", "key.derive ok data/2",
		"key.register refused ", "key.register ok analytics/1", "key.fetch error analytics", "key.fetch ok analytics",
		"key.fetch ok analytics/1", "key-service.credentials ok ",
	} {
		if seen[want] == 0 {
			t.Errorf("no audit entry %q", want)
		}
	}
	// Key usage: the counters agree with the log's successful aggregates
	// and deliveries, version by version; a rewrap is a decryption under
	// the version it left, and its new ciphertext (the one rewrap above,
	// to data/2) an encryption under the active one.
	logged := map[string]uint64{"key.encrypt data/2": 1}
	for _, a := range log.Entries {
		if a.Tenant != acme.ID || a.Outcome != "ok" {
			continue
		}
		switch a.Action {
		case "key.encrypt", "key.decrypt":
			logged[a.Action+" "+a.Key] += a.Count
		case "key.rewrap":
			logged["key.decrypt "+a.Key] += a.Count
		case "key.deliver":
			logged[a.Action+" "+a.Key]++
		}
	}
	var usage api.KeyUsageList
	call("GET", "/v1/tenants/{tenant}/keys/usage", "/v1/tenants/acme/keys/usage", auditor, nil).want(t, 200, &usage)
	counted := map[string]uint64{}
	for _, u := range usage.Usage {
		name := fmt.Sprintf("%s/%d", u.Type, u.Version)
		if u.Encryptions > 0 {
			counted["key.encrypt "+name] = u.Encryptions
		}
		if u.Decryptions > 0 {
			counted["key.decrypt "+name] = u.Decryptions
		}
		if u.Deliveries > 0 {
			counted["key.deliver "+name] = u.Deliveries
		}
		wantSealed, wantNonces := u.Encryptions, "ok"
		if u.Type == "deterministic" {
			wantSealed, wantNonces = 0, "none" // AES-SIV
		}
		if u.Sealed != wantSealed || u.Nonces != wantNonces || u.Tenant != "acme" {
			t.Errorf("usage of %s = %+v: want sealed %d, nonces %s, tenant acme", name, u, wantSealed, wantNonces)
		}
	}
	if len(logged) < 3 || !maps.Equal(logged, counted) {
		t.Errorf("key usage = %v, want what the audit log records: %v", counted, logged)
	}
	e.call("GET", "/v1/tenants/acme/keys/usage?type=Data", admin, nil).wantError(t, 400, api.CodeBadRequest)

	var mine api.AuditList
	call("GET", "/v1/tenants/{tenant}/audit", "/v1/tenants/acme/audit?key=data", admin, nil).want(t, 200, &mine)
	if len(mine.Entries) == 0 {
		t.Error("acme's admin sees no audit entries of its data keys")
	}
	for _, a := range mine.Entries {
		if a.Tenant != acme.ID || (a.Key != "data" && !strings.HasPrefix(a.Key, "data/")) {
			t.Errorf("acme's admin sees entry %+v", a)
		}
	}
	e.call("GET", "/v1/audit?since=yesterday", auditor, nil).wantError(t, 400, api.CodeBadRequest)
	var page api.AuditList
	e.call("GET", "/v1/audit?limit=2", auditor, nil).want(t, 200, &page)
	if len(page.Entries) != 2 || page.Next != 2 {
		t.Errorf("a page of 2 = %+v", page)
	}

	for _, rt := range httpapi.RoutesOf(e.Handler) {
		if !called[rt.Method+" "+rt.Pattern] {
			t.Errorf("route %s %s was not called", rt.Method, rt.Pattern)
		}
	}
}

// TestInstallReleaseInvalid: a bundle that fails verification is 400
// invalid_bundle, is not stored, and leaves the node ready: a refused upload
// is not an installed bundle.
func TestInstallReleaseInvalid(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	good := e.Site.Bundles[apitest.Release2]
	block, _ := pem.Decode(good)
	block.Bytes[len(block.Bytes)/2] ^= 0x10
	tampered := pem.EncodeToMemory(block)
	before := e.snapshot()
	for name, b := range map[string][]byte{
		"not PEM":  []byte("hello"),
		"bad DER":  pem.EncodeToMemory(&pem.Block{Type: "STRONGROOM RELEASE BUNDLE", Bytes: []byte("garbage")}),
		"tampered": tampered,
	} {
		r := e.call("POST", "/v1/releases", e.Operator, api.InstallReleaseRequest{Bundle: b})
		r.wantError(t, 400, api.CodeInvalidBundle)
		_ = name
	}
	e.call("POST", "/v1/releases", e.Operator, api.InstallReleaseRequest{}).wantError(t, 400, api.CodeBadRequest)
	if !before.equal(e.snapshot()) {
		t.Error("an invalid bundle changed the store")
	}
	var h api.Ready
	e.call("GET", "/v1/ready", "", nil).want(t, 200, &h)
	// The genuine bundle of that release installs.
	e.call("POST", "/v1/releases", e.Operator, api.InstallReleaseRequest{Bundle: good}).want(t, 200, nil)
	e.call("GET", "/v1/ready", "", nil).want(t, 200, &h)
	// A different bundle under an installed id: 409, and still ready.
	e.call("POST", "/v1/releases", e.Operator, api.InstallReleaseRequest{Bundle: tampered}).wantError(t, 409, api.CodeConflict)
	e.call("GET", "/v1/ready", "", nil).want(t, 200, &h)
}

func TestReadyWithoutReleases(t *testing.T) {
	e := newEnv(t, apitest.Options{Releases: []string{}})
	var h api.Ready
	r := e.call("GET", "/v1/ready", "", nil).want(t, 503, &h)
	if h.Status != "not_ready" || h.Releases != 0 || h.Problems != 1 || strings.Contains(string(r.body), "release:") {
		t.Errorf("ready = %s, want not_ready with counts only", r.body)
	}
	var st api.Status
	e.call("GET", "/v1/status", e.Operator, nil).want(t, 200, &st)
	if st.Status != "not_ready" || len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "no release") {
		t.Errorf("status = %+v", st)
	}
	e.call("GET", "/v1/health", "", nil).want(t, 200, nil)
	// Keys cannot be made without a release: a server-side condition, not 500.
	e.Tenant(t, "acme")
	r = e.call("POST", "/v1/tenants/acme/keys", e.Operator, api.GenerateKeyRequest{})
	if r.status != 503 || r.apiError(t).Code != api.CodeNotReady {
		t.Errorf("generate without a release: %d %s", r.status, r.body)
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	e.Tenant(t, "acme")
	e.Tenant(t, "beta")
	admin := e.Token(t, api.RoleTenantAdmin, "acme")
	op := e.Operator
	before := e.snapshot()
	for _, c := range []struct {
		token  string
		req    api.CreateTokenRequest
		status int
		code   string
	}{
		// Operators: any role, with the right scope.
		{op, api.CreateTokenRequest{Role: "operator"}, 201, ""},
		{op, api.CreateTokenRequest{Role: "auditor", Name: "audit"}, 201, ""},
		{op, api.CreateTokenRequest{Role: "app", Tenant: "beta"}, 201, ""},
		{op, api.CreateTokenRequest{Role: "operator", Tenant: "acme"}, 400, api.CodeBadRequest},
		{op, api.CreateTokenRequest{Role: "app"}, 400, api.CodeBadRequest},
		{op, api.CreateTokenRequest{Role: "root"}, 400, api.CodeBadRequest},
		{op, api.CreateTokenRequest{Role: "app", Tenant: "nope"}, 404, api.CodeNotFound},
		{op, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "soon"}, 400, api.CodeBadRequest},
		{op, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "-1h"}, 400, api.CodeBadRequest},
		{op, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "0d"}, 400, api.CodeBadRequest},
		{op, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "1.5d"}, 400, api.CodeBadRequest},
		{op, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "30d"}, 201, ""},
		{op, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "720h"}, 201, ""},
		{op, api.CreateTokenRequest{Role: "app", Tenant: "acme", Name: "bad\x00name"}, 400, api.CodeBadRequest},
		// A tenant-admin: app tokens of its own tenant only.
		{admin, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "1h"}, 201, ""},
		{admin, api.CreateTokenRequest{Role: "app", Tenant: "acme"}, 400, api.CodeBadRequest},
		{admin, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "2161h"}, 400, api.CodeBadRequest},
		{admin, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "91d"}, 400, api.CodeBadRequest},
		{admin, api.CreateTokenRequest{Role: "app", Tenant: "acme", TTL: "90d"}, 201, ""},
		{admin, api.CreateTokenRequest{Role: "app", Tenant: "beta"}, 403, api.CodeForbidden},
		{admin, api.CreateTokenRequest{Role: "app", Tenant: "nope"}, 403, api.CodeForbidden},
		{admin, api.CreateTokenRequest{Role: "tenant-admin", Tenant: "acme"}, 403, api.CodeForbidden},
		{admin, api.CreateTokenRequest{Role: "operator"}, 403, api.CodeForbidden},
		{admin, api.CreateTokenRequest{Role: "auditor"}, 403, api.CodeForbidden},
	} {
		r := e.call("POST", "/v1/tokens", c.token, c.req)
		if c.status == 201 {
			var tok api.Token
			r.want(t, 201, &tok)
			// The new token works, with its role.
			if tok.Role == "app" {
				e.call("POST", "/v1/tenants/"+tok.Tenant+"/encrypt", tok.Secret,
					api.EncryptRequest{Items: []api.EncryptItem{{Plaintext: []byte("x")}}}).want(t, 200, nil)
			} else {
				e.call("GET", "/v1/tenants", tok.Secret, nil).want(t, 200, nil)
			}
			continue
		}
		if r.status != c.status || r.apiError(t).Code != c.code {
			t.Errorf("%+v: %d %s, want %d %s", c.req, r.status, r.body, c.status, c.code)
		}
		if msg := r.apiError(t).Message; c.req.TTL != "" && c.status == 400 && (!strings.Contains(msg, "30d") || !strings.Contains(msg, "720h")) {
			t.Errorf("%+v: the message %q does not name the forms of a ttl", c.req, msg)
		}
	}
	after := e.snapshot()
	before.Tokens, after.Tokens = nil, nil
	if !before.equal(after) {
		t.Error("creating tokens changed tenants or keys")
	}
	// A ttl in days.
	var days api.Token
	e.call("POST", "/v1/tokens", op, api.CreateTokenRequest{Role: "auditor", TTL: "30d"}).want(t, 201, &days)
	if days.Expires == nil || !days.Expires.Equal(e.Clock.Now().Add(30*24*time.Hour)) {
		t.Errorf("a token with a ttl of 30d expires at %v, want %v", days.Expires, e.Clock.Now().Add(30*24*time.Hour))
	}
	// An expired token is refused, as expired.
	var tok api.Token
	e.call("POST", "/v1/tokens", op, api.CreateTokenRequest{Role: "auditor", TTL: "1h"}).want(t, 201, &tok)
	e.call("GET", "/v1/tenants", tok.Secret, nil).want(t, 200, nil)
	expiry := e.Clock.Now().Add(time.Hour)
	e.Clock.Add(time.Hour)
	if m := e.call("GET", "/v1/tenants", tok.Secret, nil).wantError(t, 401, api.CodeTokenExpired).Message; !strings.Contains(m, expiry.Format(time.RFC3339)) {
		t.Errorf("an expired token's refusal %q does not say when it expired (%s)", m, expiry.Format(time.RFC3339))
	}
}

// TestBatchLimits: batches over limits.max_batch are refused whole.
func TestBatchLimits(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	e.Tenant(t, "acme")
	app := e.Token(t, api.RoleApp, "acme")
	e.call("POST", "/v1/tenants/acme/keys", e.Operator, api.GenerateKeyRequest{}).want(t, 201, nil)
	max := 1000 // the default
	items := make([]api.EncryptItem, max+1)
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: items}).wantError(t, 413, api.CodeTooLarge)
	ditems := make([]api.DecryptItem, max+1)
	for i := range ditems {
		ditems[i].Ciphertext = []byte{1}
	}
	e.call("POST", "/v1/tenants/acme/decrypt", app, api.DecryptRequest{Items: ditems}).wantError(t, 413, api.CodeTooLarge)
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{}).wantError(t, 400, api.CodeBadRequest)
	var res api.EncryptResponse
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: items[:max]}).want(t, 200, &res)
	if len(res.Items) != max || res.Items[max-1].Error != nil {
		t.Errorf("a full batch: %d items, last %+v", len(res.Items), res.Items[max-1])
	}
	var dres api.DecryptResponse
	e.call("POST", "/v1/tenants/acme/decrypt", app, api.DecryptRequest{Items: []api.DecryptItem{
		{Ciphertext: res.Items[0].Ciphertext}, {Ciphertext: []byte("junk")}, {},
	}}).want(t, 200, &dres)
	if dres.Items[0].Error != nil || dres.Items[0].Plaintext != nil && len(dres.Items[0].Plaintext) != 0 ||
		dres.Items[1].Error.Code != api.CodeDecrypt || dres.Items[2].Error.Code != api.CodeBadRequest {
		t.Errorf("decrypt = %+v", dres)
	}
}

func TestSmallLimits(t *testing.T) {
	e := newEnv(t, apitest.Options{Limits: configLimits(2048, 3, 0)})
	e.Tenant(t, "acme")
	app := e.Token(t, api.RoleApp, "acme")
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: make([]api.EncryptItem, 4)}).
		wantError(t, 413, api.CodeTooLarge)
	big := api.EncryptRequest{Items: []api.EncryptItem{{Plaintext: bytes.Repeat([]byte("a"), 2048)}}}
	e.call("POST", "/v1/tenants/acme/encrypt", app, big).wantError(t, 413, api.CodeTooLarge)
	// Under the limit, it gets to the service (no key yet: per item).
	var res api.EncryptResponse
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: make([]api.EncryptItem, 3)}).want(t, 200, &res)
	for _, it := range res.Items {
		if it.Error == nil || it.Error.Code != api.CodeNoActiveKey {
			t.Errorf("item = %+v", it)
		}
	}
}

func TestUnknownRouteAndMethod(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	e.call("GET", "/v1/nope", "", nil).wantError(t, 404, api.CodeNotFound)
	e.call("GET", "/", e.Operator, nil).wantError(t, 404, api.CodeNotFound)
	r := e.call("DELETE", "/v1/tenants", e.Operator, nil)
	r.wantError(t, 405, api.CodeMethodNotAllowed)
	if a := r.header.Get("Allow"); a != "GET, POST" {
		t.Errorf("Allow = %q", a)
	}
	e.call("PUT", "/v1/health", "", nil).wantError(t, 405, api.CodeMethodNotAllowed)
	// An unclean path that no route has is a JSON 404, not a redirect to
	// its clean form; one that a route has is redirected, as net/http does
	// (and the client follows).
	noRedirect := *e.hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(p string) (int, string, string) {
		t.Helper()
		res, err := noRedirect.Get(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Location"), string(body)
	}
	for _, p := range []string{"/v1//nope", "/v1/x/../../etc", "//evil.example/x"} {
		if status, loc, body := get(p); status != 404 || loc != "" || !strings.Contains(body, `"code":"not_found"`) {
			t.Errorf("GET %s = %d, Location %q, %s; want a JSON 404", p, status, loc, body)
		}
	}
	if status, loc, _ := get("/v1//health"); status != 307 || loc != "/v1/health" {
		t.Errorf("GET /v1//health = %d, Location %q; want the redirect to /v1/health", status, loc)
	}
	if r := e.call("HEAD", "/v1/health", "", nil); r.status != 200 {
		t.Errorf("HEAD /v1/health = %d", r.status)
	}
}

func TestErrorMessagesAreStable(t *testing.T) {
	// Refusals do not depend on why (role, other tenant, unknown tenant):
	// they name what the route needs, and the tenant of the path.
	e := newEnv(t, apitest.Options{})
	e.Tenant(t, "acme")
	e.Tenant(t, "beta")
	app := e.Token(t, api.RoleApp, "acme")
	admin := e.Token(t, api.RoleTenantAdmin, "acme")
	for _, c := range []struct {
		token, path, want string
	}{
		{admin, "/v1/tenants/acme/encrypt", "key encrypt needs an app token for beta"},
		{app, "/v1/tenants/beta/encrypt", "key encrypt needs an app token for beta"},
		{app, "/v1/tenants/nope/encrypt", "key encrypt needs an app token for nope"},
		{admin, "/v1/tenants/nope/encrypt", "key encrypt needs an app token for nope"},
		{app, "/v1/tenants/NOPE!/encrypt", "key encrypt needs an app token for that tenant"},
	} {
		if c.token == admin && strings.Contains(c.path, "/acme/") {
			c.want = "key encrypt needs an app token for acme"
		}
		r := e.call("POST", c.path, c.token, api.EncryptRequest{Items: []api.EncryptItem{{}}})
		if got := r.wantError(t, 403, api.CodeForbidden).Message; got != c.want {
			t.Errorf("POST %s: refusal %q, want %q", c.path, got, c.want)
		}
	}
	for _, c := range []struct {
		token, method, path string
		body                any
		want                string
	}{
		{app, "GET", "/v1/tenants", nil, "tenant list needs an auditor or operator token"},
		{admin, "GET", "/v1/status", nil, "node status needs an auditor or operator token"},
		{app, "GET", "/v1/tenants/acme/keys", nil, "key list needs an auditor, operator or tenant-admin token for acme"},
		{app, "POST", "/v1/tenants/acme/keys/data/upload", api.UploadKeyRequest{}, "key upload needs a tenant-admin token for acme"},
		{admin, "POST", "/v1/tenants/acme/settings", api.SetTenantRequest{}, "tenant settings needs an operator token for acme"},
		{admin, "POST", "/v1/tokens", api.CreateTokenRequest{Role: "operator"}, "token create needs an operator or tenant-admin token " +
			"(a tenant-admin may create only app tokens, only for its own tenant, with a ttl of at most 90 days)"},
		{app, "GET", "/v1/tokens", nil, "token list needs an auditor, operator or tenant-admin token " +
			"(a tenant-admin sees only its own tenant's app tokens, and itself)"},
	} {
		r := e.call(c.method, c.path, c.token, c.body)
		if got := r.wantError(t, 403, api.CodeForbidden).Message; got != c.want {
			t.Errorf("%s %s: refusal %q, want %q", c.method, c.path, got, c.want)
		}
	}
	// Global callers learn that a tenant does not exist.
	e.call("GET", "/v1/tenants/nope", e.Operator, nil).wantError(t, 404, api.CodeNotFound)
	e.call("GET", "/v1/tenants/nope/keys", e.Token(t, api.RoleAuditor, ""), nil).wantError(t, 404, api.CodeNotFound)
	// ...but not an auditor on a route it may not call at all.
	e.call("POST", "/v1/tenants/nope/keys", e.Token(t, api.RoleAuditor, ""), api.GenerateKeyRequest{}).
		wantError(t, 403, api.CodeForbidden)
}
