package httpapi_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// POST …/rewrap moves a batch to the active key, item by item, never
// answering plaintext; a second rewrap changes nothing; a destroyed
// version's item fails alone; the moves are counted in the audit log
// under the version left.
func TestRewrapRoute(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	e.Tenant(t, "acme")
	app := e.Token(t, api.RoleApp, "acme")
	ctx1 := map[string]string{"table": "users"}
	e.call("POST", "/v1/tenants/acme/keys", e.Operator, api.GenerateKeyRequest{Type: "data"}).want(t, 201, nil)
	var enc api.EncryptResponse
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: []api.EncryptItem{
		{Plaintext: []byte("one"), Context: ctx1}, {Plaintext: []byte("two")}}}).want(t, 200, &enc)
	e.Clock.Add(25 * time.Hour)
	e.call("POST", "/v1/tenants/acme/keys", e.Operator, api.GenerateKeyRequest{Type: "data"}).want(t, 201, nil)

	var rw api.RewrapResponse
	e.call("POST", "/v1/tenants/acme/rewrap", app, api.RewrapRequest{Items: []api.RewrapItem{
		{Ciphertext: enc.Items[0].Ciphertext, Context: ctx1},
		{Ciphertext: enc.Items[1].Ciphertext, Context: ctx1}, // the wrong context
		{},
	}}).want(t, 200, &rw)
	if r := rw.Items[0]; r.Error != nil || !r.Rewrapped || r.From != 1 || r.Version != 2 || r.Type != "data" || bytes.Equal(r.Ciphertext, enc.Items[0].Ciphertext) {
		t.Errorf("item 0 = %+v, want v1→v2 rewrapped", r)
	}
	if r := rw.Items[1]; r.Error == nil || r.Error.Code != api.CodeDecrypt || r.Ciphertext != nil {
		t.Errorf("item 1 (wrong context) = %+v, want decryption_failed", r)
	}
	if r := rw.Items[2]; r.Error == nil || r.Error.Code != api.CodeBadRequest {
		t.Errorf("item 2 (empty) = %+v, want bad_request", r)
	}
	if bytes.Contains(e.call("POST", "/v1/tenants/acme/rewrap", app, api.RewrapRequest{Items: []api.RewrapItem{
		{Ciphertext: enc.Items[0].Ciphertext, Context: ctx1}}}).body, []byte("b25l")) { // base64 of "one"
		t.Error("a rewrap answer holds the plaintext")
	}

	var dec api.DecryptResponse
	e.call("POST", "/v1/tenants/acme/decrypt", app, api.DecryptRequest{Items: []api.DecryptItem{
		{Ciphertext: rw.Items[0].Ciphertext, Context: ctx1}}}).want(t, 200, &dec)
	if d := dec.Items[0]; d.Error != nil || string(d.Plaintext) != "one" || d.Version != 2 {
		t.Errorf("decrypting the rewrapped item: %+v", d)
	}
	var again api.RewrapResponse
	e.call("POST", "/v1/tenants/acme/rewrap", app, api.RewrapRequest{Items: []api.RewrapItem{
		{Ciphertext: rw.Items[0].Ciphertext, Context: ctx1}}}).want(t, 200, &again)
	if r := again.Items[0]; r.Error != nil || r.Rewrapped || r.From != 2 || r.Version != 2 || !bytes.Equal(r.Ciphertext, rw.Items[0].Ciphertext) {
		t.Errorf("rewrapping again = %+v, want it unchanged", r)
	}

	// Destroy v1: its other item can no longer move; nothing else changes.
	e.call("POST", "/v1/tenants/acme/keys/data/1/destroy", e.Operator, api.DestroyKeyRequest{Confirm: "acme/data/1"}).want(t, 200, nil)
	var gone api.RewrapResponse
	e.call("POST", "/v1/tenants/acme/rewrap", app, api.RewrapRequest{Items: []api.RewrapItem{
		{Ciphertext: enc.Items[1].Ciphertext}, {Ciphertext: rw.Items[0].Ciphertext, Context: ctx1}}}).want(t, 200, &gone)
	if r := gone.Items[0]; r.Error == nil || r.Error.Code != api.CodeKeyDestroyed {
		t.Errorf("rewrap under a destroyed version = %+v, want key_destroyed", r)
	}
	if r := gone.Items[1]; r.Error != nil || r.Version != 2 {
		t.Errorf("the other item = %+v", r)
	}

	// Counted under the version left, like decryptions.
	if err := e.Node.Aggregate.Flush(ctx, e.Node.Audit); err != nil {
		t.Fatal(err)
	}
	var log api.AuditList
	e.call("GET", "/v1/tenants/acme/audit?key=data/1", e.Operator, nil).want(t, 200, &log)
	var moved, refused uint64
	for _, en := range log.Entries {
		switch {
		case en.Action == "key.rewrap" && en.Outcome == "ok":
			moved += en.Count
		case en.Action == "key.rewrap" && en.Reason == api.CodeKeyDestroyed:
			refused += en.Count
		}
	}
	if refused != 1 {
		t.Errorf("%d rewraps under the destroyed data/1 listed with it, want 1", refused)
	}
	if moved != 2 { // item 0, twice: the leak check moved it again
		t.Errorf("%d rewraps counted under data/1, want 2", moved)
	}
}
