package httpapi_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// TestDeterministicEncrypt: through the API, a deterministic key gives equal
// ciphertexts for equal values of one field (in one batch and across
// requests), needs the field to decrypt, and refuses a field for data keys,
// which stay probabilistic.
func TestDeterministicEncrypt(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	e.Tenant(t, "acme")
	app := e.Token(t, api.RoleApp, "acme")
	e.call("POST", "/v1/tenants/acme/keys", e.Operator, api.GenerateKeyRequest{Type: "deterministic"}).want(t, 201, nil)
	e.call("POST", "/v1/tenants/acme/keys", e.Operator, api.GenerateKeyRequest{Type: "data"}).want(t, 201, nil)
	const enc, dec = "/v1/tenants/acme/encrypt", "/v1/tenants/acme/decrypt"
	c := map[string]string{"table": "users"}

	var r1, r2 api.EncryptResponse
	e.call("POST", enc, app, api.EncryptRequest{Type: "deterministic", Items: []api.EncryptItem{
		{Plaintext: []byte("alice@example.com"), Context: c, Field: "users.email"},                               // 0
		{Plaintext: []byte("alice@example.com"), Context: c, Field: "users.email"},                               // 1: = 0
		{Plaintext: []byte("alice@example.com"), Context: c, Field: "users.backup_email"},                        // 2: ≠ 0
		{Plaintext: []byte("Alice@Example.COM"), Context: c, Field: "users.email", CaseInsensitive: true},        // 3
		{Plaintext: []byte("ALICE@EXAMPLE.COM"), Context: c, Field: "users.email", CaseInsensitive: true},        // 4: = 3
		{Plaintext: []byte("alice@example.com"), Context: c, Field: "users.email", CaseInsensitive: true},        // 5: = 3, ≠ 0
		{Plaintext: []byte("alice@example.com"), Context: c},                                                     // 6: no field
		{Plaintext: []byte("alice@example.com"), Context: c, Field: "users email"},                               // 7: bad field
		{Plaintext: []byte{0xff, 0xfe}, Context: c, Field: "users.email", CaseInsensitive: true},                 // 8: not UTF-8
		{Plaintext: []byte("alice@example.com"), Context: map[string]string{"table": "x"}, Field: "users.email"}, // 9: ≠ 0
	}}).want(t, 200, &r1)
	for _, i := range []int{0, 1, 2, 3, 4, 5, 9} {
		if r1.Items[i].Error != nil || r1.Items[i].Type != "deterministic" || r1.Items[i].Version != 1 {
			t.Fatalf("encrypt item %d = %+v", i, r1.Items[i])
		}
	}
	ct := func(i int) []byte { return r1.Items[i].Ciphertext }
	for _, pair := range [][2]int{{0, 1}, {3, 4}, {3, 5}} {
		if !bytes.Equal(ct(pair[0]), ct(pair[1])) {
			t.Errorf("items %d and %d differ, want one ciphertext", pair[0], pair[1])
		}
	}
	for _, pair := range [][2]int{{0, 2}, {0, 5}, {0, 9}} {
		if bytes.Equal(ct(pair[0])[len(ct(pair[0]))-33:], ct(pair[1])[len(ct(pair[1]))-33:]) {
			t.Errorf("items %d and %d have the same AES-SIV output", pair[0], pair[1])
		}
	}
	for i, want := range map[int]string{6: "give the field", 7: "invalid field", 8: "UTF-8"} {
		if er := r1.Items[i].Error; er == nil || er.Code != api.CodeBadRequest || !strings.Contains(er.Message, want) {
			t.Errorf("encrypt item %d error = %+v, want bad_request saying %q", i, er, want)
		}
	}
	// Another request gives the same ciphertext.
	e.call("POST", enc, app, api.EncryptRequest{Type: "deterministic", Items: []api.EncryptItem{
		{Plaintext: []byte("alice@example.com"), Context: c, Field: "users.email"},
	}}).want(t, 200, &r2)
	if !bytes.Equal(r2.Items[0].Ciphertext, ct(0)) {
		t.Error("a second request gave another ciphertext")
	}

	var d api.DecryptResponse
	e.call("POST", dec, app, api.DecryptRequest{Items: []api.DecryptItem{
		{Ciphertext: ct(0), Context: c, Field: "users.email"},                                    // 0
		{Ciphertext: ct(3), Context: c, Field: "users.email"},                                    // 1: folded
		{Ciphertext: ct(0), Context: c, Field: "users.backup_email"},                             // 2: wrong field
		{Ciphertext: ct(0), Context: map[string]string{"table": "orders"}, Field: "users.email"}, // 3: wrong context
		{Ciphertext: ct(0), Context: c},                                                          // 4: no field
	}}).want(t, 200, &d)
	if string(d.Items[0].Plaintext) != "alice@example.com" || d.Items[0].CaseInsensitive || d.Items[0].Type != "deterministic" {
		t.Errorf("decrypt item 0 = %+v", d.Items[0])
	}
	if string(d.Items[1].Plaintext) != "alice@example.com" || !d.Items[1].CaseInsensitive {
		t.Errorf("decrypt item 1 = %+v, want the folded form, case_insensitive", d.Items[1])
	}
	for _, i := range []int{2, 3} {
		if er := d.Items[i].Error; er == nil || er.Code != api.CodeDecrypt {
			t.Errorf("decrypt item %d error = %+v, want decryption_failed", i, er)
		}
	}
	if er := d.Items[4].Error; er == nil || er.Code != api.CodeBadRequest || !strings.Contains(er.Message, "give the field") {
		t.Errorf("decrypt item 4 error = %+v, want bad_request asking for the field", er)
	}

	// Data keys: probabilistic, and no field either way.
	var rd api.EncryptResponse
	e.call("POST", enc, app, api.EncryptRequest{Type: "data", Items: []api.EncryptItem{
		{Plaintext: []byte("alice@example.com"), Context: c},
		{Plaintext: []byte("alice@example.com"), Context: c},
		{Plaintext: []byte("alice@example.com"), Context: c, Field: "users.email"},
		{Plaintext: []byte("alice@example.com"), Context: c, CaseInsensitive: true},
	}}).want(t, 200, &rd)
	if rd.Items[0].Error != nil || rd.Items[1].Error != nil || bytes.Equal(rd.Items[0].Ciphertext, rd.Items[1].Ciphertext) {
		t.Errorf("data encrypt twice = %+v, want two different ciphertexts", rd.Items[:2])
	}
	for _, i := range []int{2, 3} {
		if er := rd.Items[i].Error; er == nil || er.Code != api.CodeBadRequest || !strings.Contains(er.Message, "only for keys of type deterministic") {
			t.Errorf("data encrypt item %d error = %+v, want bad_request", i, er)
		}
	}
	e.call("POST", dec, app, api.DecryptRequest{Items: []api.DecryptItem{
		{Ciphertext: rd.Items[0].Ciphertext, Context: c, Field: "users.email"},
	}}).want(t, 200, &d)
	if er := d.Items[0].Error; er == nil || er.Code != api.CodeBadRequest || !strings.Contains(er.Message, "format 1") {
		t.Errorf("decrypt(data ciphertext, a field) error = %+v, want bad_request", er)
	}
}
