package httpapi_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// internalChain matches what must never reach a user in an error message:
// a chain of package prefixes ("tenant: store: …"), a package prefix
// anywhere ("store: ", "byok: "…), a formatting slip ("%!"), and Go type or
// driver names.
var internalChain = []*regexp.Regexp{
	regexp.MustCompile(`^[a-z0-9]+: [a-z0-9]+:`),
	regexp.MustCompile(`(^|: )(store|byok|backup|tenant|directory|lifecycle|dataplane|envelope|release|auth|uploadcert|exportkey|hsm|soft|pkcs11|auditlog|audit|keycache|derive|httpapi|sqlite|postgres|cryptobyte|x509|asn1|pem|json|sql): `),
	regexp.MustCompile(`%!`),
	regexp.MustCompile(`\*[a-z0-9]+\.[A-Z]|\[\][a-z]|map\[|\bsql\b|errors\.|<nil>|0x[0-9a-f]{6,}`),
	regexp.MustCompile(`\ba [aeiou]`),
}

// message is one error answer of the API: top-level or a batch item's.
type message struct {
	what, code, msg string
}

// TestErrorMessages drives the API's error paths, top-level and per item,
// and fails if a message carries an internal chain of package prefixes, a
// Go type name, a formatting slip, a tenant's internal id, or "a" before a
// vowel; and checks what the messages of a decryption failure and of an
// altered backup say.
func TestErrorMessages(t *testing.T) {
	e := newEnv(t, apitest.Options{})
	acme := e.Tenant(t, "acme")
	beta := e.Tenant(t, "beta")
	op := e.Operator
	admin := e.Token(t, api.RoleTenantAdmin, "acme")
	app := e.Token(t, api.RoleApp, "acme")
	betaAdmin := e.Token(t, api.RoleTenantAdmin, "beta")
	betaApp := e.Token(t, api.RoleApp, "beta")
	auditor := e.Token(t, api.RoleAuditor, "")
	e.call("POST", "/v1/tenants/acme/keys", admin, api.GenerateKeyRequest{}).want(t, 201, nil)
	e.call("POST", "/v1/tenants/beta/keys", betaAdmin, api.GenerateKeyRequest{}).want(t, 201, nil)

	var got []message
	top := func(what, method, path, token string, body any, status int, code string) api.Error {
		t.Helper()
		ae := e.call(method, path, token, body).wantError(t, status, code)
		got = append(got, message{what, ae.Code, ae.Message})
		return ae
	}
	item := func(what string, ae *api.Error, code string) *api.Error {
		t.Helper()
		if ae == nil || ae.Code != code {
			t.Fatalf("%s: item error %+v, want %s", what, ae, code)
		}
		got = append(got, message{what, ae.Code, ae.Message})
		return ae
	}

	// Tenants and tokens.
	top("tenant bad name", "POST", "/v1/tenants", op, api.CreateTenantRequest{Name: "Acme!", Env: "sandbox"}, 400, api.CodeBadRequest)
	top("tenant duplicate", "POST", "/v1/tenants", op, api.CreateTenantRequest{Name: "acme", Env: "sandbox"}, 409, api.CodeExists)
	top("tenant no env", "POST", "/v1/tenants", op, api.CreateTenantRequest{Name: "gamma"}, 400, api.CodeBadRequest)
	top("tenant bad env", "POST", "/v1/tenants", op, api.CreateTenantRequest{Name: "gamma", Env: "staging"}, 400, api.CodeBadRequest)
	top("token bad role", "POST", "/v1/tokens", op, api.CreateTokenRequest{Role: "root"}, 400, api.CodeBadRequest)
	top("token auditor with tenant", "POST", "/v1/tokens", op, api.CreateTokenRequest{Role: api.RoleAuditor, Tenant: "acme"}, 400, api.CodeBadRequest)
	top("token operator with tenant", "POST", "/v1/tokens", op, api.CreateTokenRequest{Role: api.RoleOperator, Tenant: "acme"}, 400, api.CodeBadRequest)
	top("token app without tenant", "POST", "/v1/tokens", op, api.CreateTokenRequest{Role: api.RoleApp}, 400, api.CodeBadRequest)
	top("token unknown tenant", "POST", "/v1/tokens", op, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "nope"}, 404, api.CodeNotFound)
	top("token bad ttl", "POST", "/v1/tokens", op, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", TTL: "forever"}, 400, api.CodeBadRequest)
	top("token long name", "POST", "/v1/tokens", op, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme", Name: strings.Repeat("n", 300)}, 400, api.CodeBadRequest)
	top("token admin no ttl", "POST", "/v1/tokens", admin, api.CreateTokenRequest{Role: api.RoleApp, Tenant: "acme"}, 400, api.CodeBadRequest)
	top("revoke bad id", "POST", "/v1/tokens/not-an-id/revoke", op, nil, 400, api.CodeBadRequest)
	top("revoke unknown", "POST", "/v1/tokens/0123456789abcdef0123456789abcdef/revoke", op, nil, 404, api.CodeNotFound)
	top("unknown tenant", "GET", "/v1/tenants/nope/keys", op, nil, 404, api.CodeNotFound)
	top("settings nothing", "POST", "/v1/tenants/acme/settings", op, api.SetTenantRequest{}, 400, api.CodeBadRequest)

	// Keys.
	top("generate too soon", "POST", "/v1/tenants/acme/keys", admin, api.GenerateKeyRequest{}, 429, api.CodeRateLimited)
	top("destroy unconfirmed", "POST", "/v1/tenants/acme/keys/data/1/destroy", admin, api.DestroyKeyRequest{Confirm: "acme"}, 400, api.CodeBadRequest)
	top("destroy unknown version", "POST", "/v1/tenants/acme/keys/data/9/destroy", admin, api.DestroyKeyRequest{Confirm: "acme/data/9"}, 404, api.CodeNotFound)
	top("export unknown version", "POST", "/v1/tenants/acme/keys/data/9/export", admin, nil, 404, api.CodeNotFound)

	// The data plane.
	var enc, betaEnc api.EncryptResponse
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Items: []api.EncryptItem{
		{Plaintext: []byte("card 4111"), Context: map[string]string{"field": "card"}}}}).want(t, 200, &enc)
	e.call("POST", "/v1/tenants/beta/encrypt", betaApp, api.EncryptRequest{Items: []api.EncryptItem{{Plaintext: []byte("b")}}}).want(t, 200, &betaEnc)
	ct := enc.Items[0].Ciphertext
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-5] ^= 0x01
	var noKey api.EncryptResponse
	e.call("POST", "/v1/tenants/acme/encrypt", app, api.EncryptRequest{Type: "search_index", Items: []api.EncryptItem{{Plaintext: []byte("x")}}}).
		want(t, 200, &noKey)
	item("encrypt without a key", noKey.Items[0].Error, api.CodeNoActiveKey)
	var dec api.DecryptResponse
	e.call("POST", "/v1/tenants/acme/decrypt", app, api.DecryptRequest{Items: []api.DecryptItem{
		{Ciphertext: flipped, Context: map[string]string{"field": "card"}},
		{Ciphertext: ct, Context: map[string]string{"field": "name"}},
		{Ciphertext: ct},
		{Ciphertext: betaEnc.Items[0].Ciphertext},
		{Ciphertext: []byte("not a ciphertext")},
		{Ciphertext: ct[:10]},
	}}).want(t, 200, &dec)
	decryptCases := []string{"decrypt altered", "decrypt other context", "decrypt without context", "decrypt another tenant's", "decrypt garbage", "decrypt truncated"}
	for i, what := range decryptCases {
		if ae := dec.Items[i].Error; ae != nil {
			got = append(got, message{what, ae.Code, ae.Message})
		} else {
			t.Errorf("%s: no error", what)
		}
	}
	for _, i := range []int{0, 1, 2} {
		ae := item(decryptCases[i], dec.Items[i].Error, api.CodeDecrypt)
		for _, cause := range []string{"altered", "context", "another tenant or key"} {
			if !strings.Contains(ae.Message, cause) {
				t.Errorf("%s: message %q does not name the cause %q", decryptCases[i], ae.Message, cause)
			}
		}
	}
	priv, err := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	top("dek bad kem", "POST", "/v1/tenants/acme/dek", app, api.DEKRequest{KEM: 0x10, PublicKey: priv.PublicKey().Bytes()}, 400, api.CodeBadRequest)
	top("dek bad key", "POST", "/v1/tenants/acme/dek", app, api.DEKRequest{KEM: envelope.KEMX25519, PublicKey: []byte{1, 2, 3}}, 400, api.CodeBadRequest)
	top("dek unknown version", "POST", "/v1/tenants/acme/dek", app, api.DEKRequest{KEM: envelope.KEMX25519, PublicKey: priv.PublicKey().Bytes(), Version: 9}, 404, api.CodeNotFound)
	top("dek no key", "POST", "/v1/tenants/acme/dek", app, api.DEKRequest{Type: "event_bus", KEM: envelope.KEMX25519, PublicKey: priv.PublicKey().Bytes()}, 409, api.CodeNoActiveKey)

	// Upload certificates and uploads.
	certs := "/v1/tenants/acme/upload-certificates"
	var uc, pending api.UploadCert
	e.call("POST", certs, admin, api.CreateUploadCertRequest{}).want(t, 201, &uc)
	e.call("POST", certs, admin, api.CreateUploadCertRequest{CSR: true}).want(t, 201, &pending)
	top("cert bad validity", "POST", certs, admin, api.CreateUploadCertRequest{ValidDays: 731}, 400, api.CodeBadRequest)
	top("cert unknown", "GET", certs+"/0123456789abcdef0123456789abcdef", admin, nil, 404, api.CodeNotFound)
	top("cert bad id", "GET", certs+"/xyz", admin, nil, 400, api.CodeBadRequest)
	top("complete not PEM", "POST", certs+"/"+pending.ID+"/complete", admin, api.CompleteUploadCertRequest{Certificate: "hello"}, 400, api.CodeBadRequest)
	top("complete bad DER", "POST", certs+"/"+pending.ID+"/complete", admin,
		api.CompleteUploadCertRequest{Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")}))}, 400, api.CodeBadRequest)
	top("complete another key's", "POST", certs+"/"+pending.ID+"/complete", admin, api.CompleteUploadCertRequest{Certificate: uc.Certificate}, 400, api.CodeBadRequest)
	top("complete active", "POST", certs+"/"+uc.ID+"/complete", admin, api.CompleteUploadCertRequest{Certificate: uc.Certificate}, 409, api.CodeCertState)
	upload := "/v1/tenants/acme/keys/data/upload"
	e.Clock.Add(24 * time.Hour)
	up := uploadRequest(t, uc.Certificate, bytes.Repeat([]byte{0x5a}, 32))
	wrongSum := up
	wrongSum.SHA256 = strings.Repeat("0", 64)
	top("upload wrong sha256", "POST", upload, admin, wrongSum, 400, api.CodeUploadRefused)
	short := up
	short.Wrapped = up.Wrapped[:100]
	top("upload short", "POST", upload, admin, short, 400, api.CodeUploadRefused)
	top("upload pending cert", "POST", upload, admin, api.UploadKeyRequest{Certificate: pending.ID, Wrapped: up.Wrapped, SHA256: up.SHA256}, 409, api.CodeNoUploadCert)
	top("upload unknown cert", "POST", upload, admin, api.UploadKeyRequest{Certificate: "0123456789abcdef0123456789abcdef", Wrapped: up.Wrapped, SHA256: up.SHA256}, 409, api.CodeNoUploadCert)
	f := false
	e.call("POST", "/v1/tenants/acme/settings", op, api.SetTenantRequest{DerivationOptOut: &f}).want(t, 200, nil)
	none := up
	none.Derivation = "none"
	top("upload opt-out disabled", "POST", upload, admin, none, 403, api.CodeOptOutDisabled)
	e.call("POST", upload, admin, up).want(t, 201, nil)
	top("upload duplicate", "POST", "/v1/tenants/acme/keys/analytics/upload", admin, up, 409, api.CodeDuplicateKey)
	e.call("POST", certs+"/"+pending.ID+"/retire", admin, nil).want(t, 200, nil)
	top("retire twice", "POST", certs+"/"+pending.ID+"/retire", admin, nil, 409, api.CodeCertState)

	// Export and import.
	var backup, betaBackup api.KeyBackup
	e.call("POST", "/v1/tenants/acme/keys/data/2/export", admin, nil).want(t, 200, &backup)
	e.call("POST", "/v1/tenants/beta/keys/data/1/export", betaAdmin, nil).want(t, 200, &betaBackup)
	imp := "/v1/tenants/acme/keys/import"
	top("import live key", "POST", imp, admin, api.ImportKeyRequest{Backup: backup.Backup}, 409, api.CodeImportRefused)
	top("import another tenant's", "POST", imp, admin, api.ImportKeyRequest{Backup: betaBackup.Backup}, 409, api.CodeImportRefused)
	top("import garbage", "POST", imp, admin, api.ImportKeyRequest{Backup: "garbage"}, 400, api.CodeBadRequest)
	e.call("POST", "/v1/tenants/acme/keys/data/2/destroy", admin, api.DestroyKeyRequest{Confirm: "acme/data/2"}).want(t, 200, nil)
	top("export destroyed", "POST", "/v1/tenants/acme/keys/data/2/export", admin, nil, 409, api.CodeKeyDestroyed)
	block, _ := pem.Decode([]byte(backup.Backup))
	for _, at := range []int{2, 8, 20, len(block.Bytes) / 2, len(block.Bytes) - 3} {
		b := bytes.Clone(block.Bytes)
		b[at] ^= 0x04
		r := e.call("POST", imp, admin, api.ImportKeyRequest{Backup: string(pem.EncodeToMemory(&pem.Block{Type: block.Type, Headers: block.Headers, Bytes: b}))})
		if r.status < 400 || r.status >= 500 {
			t.Fatalf("import of a backup altered at byte %d: %d %s", at, r.status, r.body)
		}
		ae := r.apiError(t)
		got = append(got, message{"import altered backup", ae.Code, ae.Message})
		if !strings.Contains(ae.Message, "altered or corrupted") {
			t.Errorf("import of a backup altered at byte %d: %d %q, want it said to be altered or corrupted", at, r.status, ae.Message)
		}
	}

	// Releases and the audit log.
	top("release not PEM", "POST", "/v1/releases", op, api.InstallReleaseRequest{Bundle: []byte("hello")}, 400, api.CodeInvalidBundle)
	top("release bad DER", "POST", "/v1/releases", op,
		api.InstallReleaseRequest{Bundle: pem.EncodeToMemory(&pem.Block{Type: "STRONGROOM RELEASE BUNDLE", Bytes: []byte("garbage")})}, 400, api.CodeInvalidBundle)
	top("audit bad since", "GET", "/v1/audit?since=yesterday", auditor, nil, 400, api.CodeBadRequest)
	top("audit bad limit", "GET", "/v1/audit?limit=0", auditor, nil, 400, api.CodeBadRequest)
	top("audit unknown tenant", "GET", "/v1/audit?tenant=nope", auditor, nil, 404, api.CodeNotFound)

	for _, m := range got {
		t.Logf("%-28s %-24s %s", m.what, m.code, m.msg)
		for _, re := range internalChain {
			if re.MatchString(m.msg) {
				t.Errorf("%s: message %q matches %s", m.what, m.msg, re)
			}
		}
		for _, id := range []string{acme.ID, beta.ID} {
			if strings.Contains(m.msg, id) {
				t.Errorf("%s: message %q names a tenant by its id", m.what, m.msg)
			}
		}
	}
}

// TestClientErrorLogged: a client error's answer says what is wrong in the
// API's terms, and the access log keeps the internal error behind it.
func TestClientErrorLogged(t *testing.T) {
	var buf logBuffer
	e := newEnv(t, apitest.Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	ae := e.call("POST", "/v1/tenants", e.Operator, api.CreateTenantRequest{Name: "Acme!", Env: "sandbox"}).wantError(t, 400, api.CodeBadRequest)
	if strings.Contains(ae.Message, "store:") {
		t.Errorf("message = %q, want no package prefix", ae.Message)
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if err := json.Unmarshal([]byte(l), &line); err == nil && line["msg"] == "request" {
			break
		}
	}
	if got, _ := line["err"].(string); !strings.HasPrefix(got, "store: invalid argument: ") || !strings.Contains(got, ae.Message) {
		t.Errorf("access log err = %q, want the internal error", got)
	}
}

// TestNotReadyLogged: a node that is not ready logs its 503s to /v1/ready
// as not_ready, not as a timeout.
func TestNotReadyLogged(t *testing.T) {
	var buf logBuffer
	e := newEnv(t, apitest.Options{Releases: []string{}, Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	e.call("GET", "/v1/ready", "", nil).want(t, 503, nil)
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) == nil && line["msg"] == "request" && line["route"] == "GET /v1/ready" {
			if line["code"] != api.CodeNotReady {
				t.Errorf("access log code = %v, want %s", line["code"], api.CodeNotReady)
			}
			return
		}
	}
	t.Fatalf("no access log line for GET /v1/ready in:\n%s", buf.String())
}
