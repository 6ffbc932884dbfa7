package keyservice

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const testBearer = "bearer secret of at least some length"

// clientCert makes a self-signed client certificate, as Strongroom's is.
func clientCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "strongroom-cok-client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

type fixture struct {
	dir    *Dir
	srv    *httptest.Server
	logs   *bytes.Buffer
	pinned tls.Certificate
}

// serve starts the handler over TLS on loopback with auth a.
func serve(t *testing.T, a Auth) *fixture {
	t.Helper()
	d, _ := newTestDir(t)
	f := &fixture{dir: d, logs: new(bytes.Buffer)}
	h, err := NewHandler(d, a, slog.New(slog.NewTextHandler(f.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewUnstartedServer(h)
	f.srv.TLS = TLSConfig(tls.Certificate{}, a)
	f.srv.TLS.Certificates = nil // StartTLS puts its own
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func nonce() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type call struct {
	method, path, ctype, body, bearer string
	cert                              *tls.Certificate
}

func (f *fixture) do(t *testing.T, c call) (*http.Response, string) {
	t.Helper()
	if c.method == "" {
		c.method = http.MethodPost
	}
	if c.ctype == "" {
		c.ctype = "application/json"
	}
	req, _ := http.NewRequest(c.method, f.srv.URL+c.path, strings.NewReader(c.body))
	req.Header.Set("Content-Type", c.ctype)
	if c.bearer != "" {
		req.Header.Set("Authorization", c.bearer)
	}
	tr := f.srv.Client().Transport.(*http.Transport).Clone()
	if c.cert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*c.cert}
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func fetchBody(kid, n string) string { return `{"kid":"` + kid + `","nonce":"` + n + `"}` }

func TestFetch(t *testing.T) {
	pinned, unpinned := clientCert(t), clientCert(t)
	pin := SPKIPin(pinned.Leaf)
	f := serve(t, Auth{Bearer: []byte(testBearer), ClientCerts: [][32]byte{pin}})
	d := f.dir
	material := testMaterial(0x42)
	if _, err := d.Create("acme-data-2026", recipientPEMForTest(), material); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Create("gone", recipientPEMForTest(), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Revoke("gone"); err != nil {
		t.Fatal(err)
	}
	bearer := "Bearer " + testBearer
	n := nonce()
	path := "/v1/keys/acme-data-2026/fetch"
	for _, tc := range []struct {
		name     string
		c        call
		status   int
		body     string // for non-200 answers
		outcome  string
		reason   string
		client   string
		auditKid string
	}{
		{"bearer", call{path: path, body: fetchBody("acme-data-2026", n), bearer: bearer}, 200, "", OutcomeOK, "", "bearer", "acme-data-2026"},
		{"bearer, lower-case scheme", call{path: path, body: fetchBody("acme-data-2026", n), bearer: "bearer " + testBearer}, 200, "", OutcomeOK, "", "bearer", "acme-data-2026"},
		{"pinned certificate", call{path: path, body: fetchBody("acme-data-2026", n), cert: &pinned}, 200, "", OutcomeOK, "", "sha256:" + hex.EncodeToString(pin[:]), "acme-data-2026"},
		{"unpinned certificate and bearer", call{path: path, body: fetchBody("acme-data-2026", n), cert: &unpinned, bearer: bearer}, 200, "", OutcomeOK, "", "bearer", "acme-data-2026"},
		{"unknown kid", call{path: "/v1/keys/nope/fetch", body: fetchBody("nope", n), bearer: bearer}, 404, `{"error":"unknown_kid"}`, OutcomeUnknownKid, "no such key", "bearer", "nope"},
		{"impossible kid", call{path: "/v1/keys/.x/fetch", body: fetchBody(".x", n), bearer: bearer}, 404, `{"error":"unknown_kid"}`, OutcomeUnknownKid, "no such key", "bearer", ""},
		{"revoked", call{path: "/v1/keys/gone/fetch", body: fetchBody("gone", n), bearer: bearer}, 410, `{"error":"revoked"}`, OutcomeRevoked, "revoked at 2026-03-01T12:00:00Z", "bearer", "gone"},
		{"no authentication", call{path: path, body: fetchBody("acme-data-2026", n)}, 401, `{"error":"unauthorized"}`, OutcomeRefused, "no bearer secret and no client certificate", "", "acme-data-2026"},
		{"wrong bearer", call{path: path, body: fetchBody("acme-data-2026", n), bearer: "Bearer " + testBearer + "x"}, 401, `{"error":"unauthorized"}`, OutcomeRefused, "wrong bearer secret", "bearer", "acme-data-2026"},
		{"other scheme", call{path: path, body: fetchBody("acme-data-2026", n), bearer: "Basic " + testBearer}, 401, `{"error":"unauthorized"}`, OutcomeRefused, "bearer authentication is not accepted here", "bearer", "acme-data-2026"},
		{"unpinned certificate", call{path: path, body: fetchBody("acme-data-2026", n), cert: &unpinned}, 401, `{"error":"unauthorized"}`, OutcomeRefused, "client certificate not pinned", "sha256:" + hex.EncodeToString(func() []byte { p := SPKIPin(unpinned.Leaf); return p[:] }()), "acme-data-2026"},
		{"unauthenticated unknown kid", call{path: "/v1/keys/nope/fetch", body: fetchBody("nope", n)}, 401, `{"error":"unauthorized"}`, OutcomeRefused, "no bearer secret and no client certificate", "", "nope"},
		{"kid mismatch", call{path: path, body: fetchBody("gone", n), bearer: bearer}, 400, "", OutcomeRefused, "the body's kid differs from the path's", "bearer", "acme-data-2026"},
		{"short nonce", call{path: path, body: fetchBody("acme-data-2026", n[:42]), bearer: bearer}, 400, "", OutcomeRefused, "the nonce must be 43 characters", "bearer", "acme-data-2026"},
		{"long nonce", call{path: path, body: fetchBody("acme-data-2026", n+"A"), bearer: bearer}, 400, "", OutcomeRefused, "the nonce must be 43 characters", "bearer", "acme-data-2026"},
		{"padded nonce", call{path: path, body: fetchBody("acme-data-2026", n[:42]+"="), bearer: bearer}, 400, "", OutcomeRefused, "not base64url", "bearer", "acme-data-2026"},
		{"standard base64 nonce", call{path: path, body: fetchBody("acme-data-2026", "+"+n[1:]), bearer: bearer}, 400, "", OutcomeRefused, "not base64url", "bearer", "acme-data-2026"},
		{"non-canonical nonce", call{path: path, body: fetchBody("acme-data-2026", strings.Repeat("A", 42)+"B"), bearer: bearer}, 400, "", OutcomeRefused, "not base64url", "bearer", "acme-data-2026"},
		{"no nonce", call{path: path, body: `{"kid":"acme-data-2026"}`, bearer: bearer}, 400, "", OutcomeRefused, "the nonce must be 43 characters", "bearer", "acme-data-2026"},
		{"unknown field", call{path: path, body: `{"kid":"acme-data-2026","nonce":"` + n + `","x":1}`, bearer: bearer}, 400, "", OutcomeRefused, "not a JSON object", "bearer", "acme-data-2026"},
		{"trailing data", call{path: path, body: fetchBody("acme-data-2026", n) + "{}", bearer: bearer}, 400, "", OutcomeRefused, "data after the JSON object", "bearer", "acme-data-2026"},
		{"not json", call{path: path, body: "kid=acme-data-2026", bearer: bearer}, 400, "", OutcomeRefused, "not a JSON object", "bearer", "acme-data-2026"},
		{"content type", call{path: path, body: fetchBody("acme-data-2026", n), ctype: "text/plain", bearer: bearer}, 400, "", OutcomeRefused, "must be application/json", "bearer", "acme-data-2026"},
		{"too large", call{path: path, body: `{"kid":"acme-data-2026","nonce":"` + strings.Repeat("A", MaxRequestBody) + `"}`, bearer: bearer}, 400, "", OutcomeRefused, "over 4096 bytes", "bearer", "acme-data-2026"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.do(t, tc.c)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			if tc.status == 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/jose" {
					t.Errorf("Content-Type %q, want application/jose", ct)
				}
				checkJWE(t, body, "acme-data-2026", n, material)
			} else {
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
				if tc.body != "" && strings.TrimSpace(body) != tc.body {
					t.Errorf("body %s, want %s", body, tc.body)
				}
				if tc.status == 400 && !strings.Contains(body, `"error":"bad_request"`) {
					t.Errorf("body %s, want error bad_request", body)
				}
			}
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			es := readEntries(t, d)
			e := es[len(es)-1]
			if e.Action != ActionFetch || e.Outcome != tc.outcome || !strings.Contains(e.Reason, tc.reason) ||
				e.Client != tc.client || e.Kid != tc.auditKid || !strings.HasPrefix(e.Remote, "127.0.0.1:") {
				t.Errorf("audit entry %+v, want fetch of %q, %s, reason %q, client %q, from 127.0.0.1", e, tc.auditKid, tc.outcome, tc.reason, tc.client)
			}
		})
	}

	// Nothing of the material is in the log or the audit log.
	audit, _ := os.ReadFile(auditPath(d))
	for _, s := range []string{string(material), hex.EncodeToString(material[:8]), base64.RawURLEncoding.EncodeToString(material[:9]), base64.StdEncoding.EncodeToString(material[:9])} {
		if strings.Contains(f.logs.String(), s) || strings.Contains(string(audit), s) {
			t.Errorf("the logs hold the material (%q)", s)
		}
	}
	if strings.Contains(f.logs.String(), testBearer) || strings.Contains(string(audit), testBearer) {
		t.Errorf("the logs hold the bearer secret")
	}
	if _, _, err := d.VerifyAudit(); err != nil {
		t.Errorf("VerifyAudit after the fetches: %v", err)
	}
}

// checkJWE checks an answer as Strongroom does: compact, the protected
// header exactly {alg, enc, kid, jti}, and the 32 bytes decrypted with the
// recipient's private key.
func checkJWE(t *testing.T, compact, kid, nonce string, material []byte) {
	t.Helper()
	parts := strings.Split(compact, ".")
	if len(parts) != 5 || parts[1] == "" {
		t.Fatalf("not a compact JWE with an encrypted key: %q", compact)
	}
	hdrJSON, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var hdr map[string]any
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": kid, "jti": nonce}
	if !reflect.DeepEqual(hdr, want) {
		t.Errorf("protected header = %s, want %v", hdrJSON, want)
	}
	obj, err := jose.ParseEncryptedCompact(compact, []jose.KeyAlgorithm{jose.RSA_OAEP_256}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := recipient()
	got, err := obj.Decrypt(priv)
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if !bytes.Equal(got, material) {
		t.Errorf("decrypted %d bytes, not the key's material", len(got))
	}
}

// A revocation or restoration made while the handler serves (as the command
// line does, in another process) applies to the next fetch.
func TestFetchRevokeRestore(t *testing.T) {
	f := serve(t, Auth{Bearer: []byte(testBearer)})
	material := testMaterial(9)
	if _, err := f.dir.Create("k", recipientPEMForTest(), material); err != nil {
		t.Fatal(err)
	}
	other, err := Open(f.dir.Path(), testPass, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	fetch := func() (int, string) {
		n := nonce()
		resp, body := f.do(t, call{path: "/v1/keys/k/fetch", body: fetchBody("k", n), bearer: "Bearer " + testBearer})
		if resp.StatusCode == 200 {
			checkJWE(t, body, "k", n, material)
		}
		return resp.StatusCode, body
	}
	steps := []struct {
		change func() error
		status int
	}{
		{nil, 200},
		{func() error { _, err := other.Revoke("k"); return err }, 410},
		{nil, 410},
		{func() error { _, err := other.Restore("k"); return err }, 200},
	}
	for i, s := range steps {
		if s.change != nil {
			if err := s.change(); err != nil {
				t.Fatal(err)
			}
		}
		if st, body := fetch(); st != s.status {
			t.Errorf("step %d: status %d, want %d (%s)", i, st, s.status, body)
		}
	}
	// Two nonces, two answers: the jti is the nonce of each.
	var outcomes []string
	for _, e := range readEntries(t, f.dir) {
		outcomes = append(outcomes, e.Action+"/"+e.Outcome)
	}
	if got, want := strings.Join(outcomes, " "), "key.create/ok fetch/ok key.revoke/ok fetch/revoked fetch/revoked key.restore/ok fetch/ok"; got != want {
		t.Errorf("audit = %s, want %s", got, want)
	}
}

// A fetch that cannot be recorded is not answered with the key.
func TestFetchUnrecorded(t *testing.T) {
	f := serve(t, Auth{Bearer: []byte(testBearer)})
	if _, err := f.dir.Create("k", recipientPEMForTest(), nil); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(auditPath(f.dir))
	os.WriteFile(auditPath(f.dir), data[:len(data)-5], 0o600) // torn
	resp, body := f.do(t, call{path: "/v1/keys/k/fetch", body: fetchBody("k", nonce()), bearer: "Bearer " + testBearer})
	if resp.StatusCode != 500 || strings.Count(body, ".") == 4 {
		t.Errorf("fetch with an unwritable audit log: %d %s, want 500 and no key", resp.StatusCode, body)
	}
}

// A damaged key file is a 500, not an unknown kid, and its error goes to the
// log only.
func TestFetchDamaged(t *testing.T) {
	f := serve(t, Auth{Bearer: []byte(testBearer)})
	if _, err := f.dir.Create("k", recipientPEMForTest(), nil); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(f.dir.keyPath("k"))
	data[len(data)-1] ^= 1
	os.WriteFile(f.dir.keyPath("k"), data, 0o600)
	resp, body := f.do(t, call{path: "/v1/keys/k/fetch", body: fetchBody("k", nonce()), bearer: "Bearer " + testBearer})
	if resp.StatusCode != 500 || strings.TrimSpace(body) != `{"error":"internal"}` {
		t.Errorf("fetch of a damaged key: %d %s, want 500 internal", resp.StatusCode, body)
	}
	if !strings.Contains(f.logs.String(), "does not authenticate") {
		t.Errorf("the log does not say why: %s", f.logs.String())
	}
}

func TestHealthAndMethods(t *testing.T) {
	f := serve(t, Auth{ClientCerts: [][32]byte{sha256.Sum256([]byte("x"))}})
	if resp, body := f.do(t, call{method: "GET", path: "/v1/health"}); resp.StatusCode != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("GET /v1/health = %d %s", resp.StatusCode, body)
	}
	if resp, _ := f.do(t, call{method: "GET", path: "/v1/keys/k/fetch"}); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET fetch = %d, want 405", resp.StatusCode)
	}
	if resp, _ := f.do(t, call{path: "/v1/keys/k"}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /v1/keys/k = %d, want 404", resp.StatusCode)
	}
	// Bearer not configured: a bearer header is refused.
	if _, err := f.dir.Create("k", recipientPEMForTest(), nil); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.do(t, call{path: "/v1/keys/k/fetch", body: fetchBody("k", nonce()), bearer: "Bearer x"}); resp.StatusCode != 401 {
		t.Errorf("bearer to a pin-only service = %d, want 401", resp.StatusCode)
	}
	if resp, _ := f.do(t, call{path: "/v1/keys/k/fetch", body: fetchBody("k", nonce())}); resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("a pin-only service asks for a bearer secret")
	}
}

func TestNewHandlerNeedsAuth(t *testing.T) {
	d, _ := newTestDir(t)
	if _, err := NewHandler(d, Auth{}, slog.Default()); err == nil {
		t.Errorf("NewHandler without authentication succeeded")
	}
}

func TestParsePin(t *testing.T) {
	sum := sha256.Sum256([]byte("x"))
	h := hex.EncodeToString(sum[:])
	colons := strings.ToUpper(strings.Join(func() []string {
		var s []string
		for i := 0; i < len(h); i += 2 {
			s = append(s, h[i:i+2])
		}
		return s
	}(), ":"))
	for _, s := range []string{h, colons} {
		if p, err := ParsePin(s); err != nil || p != sum {
			t.Errorf("ParsePin(%s) = %x, %v; want %x", s, p, err, sum)
		}
	}
	for _, s := range []string{"", h[:62], h + "00", "zz" + h[2:]} {
		if _, err := ParsePin(s); err == nil {
			t.Errorf("ParsePin(%q) succeeded", s)
		}
	}
}
