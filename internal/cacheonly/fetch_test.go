package cacheonly_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/cacheonly/cacheonlytest"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

var (
	recipientOnce sync.Once
	recipientKey  hsm.EncryptionKey
	recipientErr  error
)

// recipient is an RSA-4096 recipient key pair in the test world's
// regional (soft) HSM, made once per test binary.
func recipient(t *testing.T) hsm.EncryptionKey {
	t.Helper()
	recipientOnce.Do(func() {
		h := nodetest.World(t).Regions[nodetest.Region].HSM
		recipientKey, recipientErr = h.GenerateEncryptionKey(context.Background(), "strongroom-cok-fetch-test-"+tenant.NewID(), hsm.UseDecrypt)
	})
	if recipientErr != nil {
		t.Fatal(recipientErr)
	}
	return recipientKey
}

func publicPEM(t *testing.T, pub *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func pool(t *testing.T, pemBytes []byte) *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in the PEM")
	}
	return p
}

// service is a key service that knows the test recipient key.
func service(t *testing.T) (*cacheonlytest.Server, cacheonly.Target) {
	rk := recipient(t)
	ks := cacheonlytest.New(t, "acme-data-2026")
	ks.SetRecipient(t, publicPEM(t, rk.RSAPublicKey()))
	bearer, err := secret.NewText([]byte(ks.Bearer))
	if err != nil {
		t.Fatal(err)
	}
	return ks, cacheonly.Target{URL: ks.URL, KID: ks.KID, Roots: pool(t, ks.CA()), OAEP: hsm.OAEPSHA256,
		Bearer: bearer, Recipient: rk}
}

// TestFetch: the key service's key comes back, through the regional HSM's
// recipient key; every fetch has a fresh nonce of 43 characters.
func TestFetch(t *testing.T) {
	ks, target := service(t)
	var f cacheonly.Fetcher
	for range 2 {
		k, err := f.Fetch(t.Context(), target)
		if err != nil {
			t.Fatalf("Fetch() error = %v", err)
		}
		if !bytes.Equal(k.Bytes(), ks.Material()) {
			t.Errorf("Fetch() = other bytes than the key service's key")
		}
	}
	n := ks.Nonces()
	if len(n) != 2 || n[0] == n[1] || len(n[0]) != 43 || len(n[1]) != 43 {
		t.Errorf("nonces = %q, want two different ones of 43 characters", n)
	}
	if cacheonly.DefaultTimeout != 10*time.Second || cacheonly.MaxBody != 64<<10 {
		t.Errorf("DefaultTimeout, MaxBody = %v, %d, want 10s, 64 KiB (docs/cache-only.md)", cacheonly.DefaultTimeout, cacheonly.MaxBody)
	}
}

// TestFetchRefusals: each answer docs/cache-only.md refuses is refused,
// with its reason, and its kind.
func TestFetchRefusals(t *testing.T) {
	ks, target := service(t)
	other := cacheonlytest.New(t, "other")
	otherRoots := pool(t, cacheonlytest.OtherCA(t))
	// The default timeout (10 s), so that a busy machine's slow handshake
	// is not taken for the refusal a case expects; "slow" has its own.
	var f cacheonly.Fetcher
	short := &cacheonly.Fetcher{Timeout: 300 * time.Millisecond}
	for _, tc := range []struct {
		name   string
		b      cacheonlytest.Behaviour
		target func(cacheonly.Target) cacheonly.Target
		fetch  *cacheonly.Fetcher
		kind   error
		reason string
	}{
		{name: "wrong kid", b: cacheonlytest.Behaviour{KID: "acme-data-2025"}, kind: cacheonly.ErrRefused, reason: "wrong_kid"},
		{name: "replayed jti", b: cacheonlytest.Behaviour{JTI: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, kind: cacheonly.ErrRefused, reason: "replayed_jti"},
		{name: "no jti", b: cacheonlytest.Behaviour{JTI: "-"}, kind: cacheonly.ErrRefused, reason: "replayed_jti"},
		{name: "alg RSA-OAEP unregistered", b: cacheonlytest.Behaviour{Alg: jose.RSA_OAEP}, kind: cacheonly.ErrRefused, reason: "wrong_alg"},
		{name: "alg RSA1_5", b: cacheonlytest.Behaviour{Alg: jose.RSA1_5}, kind: cacheonly.ErrRefused, reason: "wrong_alg"},
		{name: "alg RSA-OAEP-256 when sha1 is registered", target: func(t cacheonly.Target) cacheonly.Target { t.OAEP = hsm.OAEPSHA1; return t },
			kind: cacheonly.ErrRefused, reason: "wrong_alg"},
		{name: "enc A128GCM", b: cacheonlytest.Behaviour{Enc: jose.A128GCM}, kind: cacheonly.ErrRefused, reason: "wrong_enc"},
		{name: "enc A256CBC-HS512", b: cacheonlytest.Behaviour{Enc: jose.A256CBC_HS512}, kind: cacheonly.ErrRefused, reason: "wrong_enc"},
		{name: "zip", b: cacheonlytest.Behaviour{Extra: map[string]any{"zip": "DEF"}}, kind: cacheonly.ErrRefused, reason: "extra_header"},
		{name: "jku", b: cacheonlytest.Behaviour{Extra: map[string]any{"jku": "https://evil.example/jwks"}}, kind: cacheonly.ErrRefused, reason: "extra_header"},
		{name: "x5u", b: cacheonlytest.Behaviour{Extra: map[string]any{"x5u": "https://evil.example/c"}}, kind: cacheonly.ErrRefused, reason: "extra_header"},
		{name: "nonce", b: cacheonlytest.Behaviour{Extra: map[string]any{"nonce": "n"}}, kind: cacheonly.ErrRefused, reason: "extra_header"},
		{name: "31 bytes", b: cacheonlytest.Behaviour{Length: 31}, kind: cacheonly.ErrRefused, reason: "wrong_length"},
		{name: "33 bytes", b: cacheonlytest.Behaviour{Length: 33}, kind: cacheonly.ErrRefused, reason: "wrong_length"},
		{name: "not decrypting", b: cacheonlytest.Behaviour{Garbage: true}, kind: cacheonly.ErrRefused, reason: "not_decrypting"},
		{name: "over 64 KiB", b: cacheonlytest.Behaviour{Big: true}, kind: cacheonly.ErrRefused, reason: "too_large"},
		{name: "not application/jose", b: cacheonlytest.Behaviour{Type: "text/plain"}, kind: cacheonly.ErrRefused, reason: "content_type"},
		{name: "slow", b: cacheonlytest.Behaviour{Delay: 5 * time.Second}, fetch: short, kind: cacheonly.ErrRefused, reason: "timeout"},
		{name: "expired certificate", fetch: &cacheonly.Fetcher{Now: func() time.Time { return time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) }},
			kind: cacheonly.ErrRefused, reason: "expired_certificate"},
		{name: "untrusted certificate", target: func(t cacheonly.Target) cacheonly.Target { t.Roots = otherRoots; return t },
			kind: cacheonly.ErrRefused, reason: "untrusted_certificate"},
		{name: "no roots", target: func(t cacheonly.Target) cacheonly.Target { t.Roots = nil; return t },
			kind: cacheonly.ErrRefused, reason: "untrusted_certificate"},
		{name: "unknown kid", target: func(t cacheonly.Target) cacheonly.Target { t.KID = "nope"; return t },
			kind: cacheonly.ErrRefused, reason: "unknown_kid"},
		{name: "wrong bearer", target: func(t cacheonly.Target) cacheonly.Target {
			t.Bearer, _ = secret.NewText([]byte("wrong"))
			return t
		}, kind: cacheonly.ErrFailed, reason: "http_status"},
		{name: "500", b: cacheonlytest.Behaviour{Status: http.StatusInternalServerError}, kind: cacheonly.ErrFailed, reason: "http_status"},
		{name: "410", b: cacheonlytest.Behaviour{Status: http.StatusGone}, kind: cacheonly.ErrRevoked, reason: "revoked"},
		{name: "service down", target: func(t cacheonly.Target) cacheonly.Target { t.URL = other.Down(); return t },
			kind: cacheonly.ErrFailed, reason: "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks.Set(tc.b)
			defer ks.Set(cacheonlytest.Behaviour{})
			tg, fe := target, &f
			if tc.target != nil {
				tg = tc.target(tg)
			}
			if tc.fetch != nil {
				fe = tc.fetch
			}
			start := time.Now()
			k, err := fe.Fetch(t.Context(), tg)
			if err == nil {
				k.Destroy()
				t.Fatalf("Fetch() = a key, want %v (%s)", tc.kind, tc.reason)
			}
			var fe2 *cacheonly.Error
			if !errors.As(err, &fe2) || !errors.Is(err, tc.kind) || fe2.Reason != tc.reason {
				t.Fatalf("Fetch() error = %v, want %v with reason %s", err, tc.kind, tc.reason)
			}
			if tc.reason == "timeout" && time.Since(start) > 3*time.Second {
				t.Errorf("Fetch() took %v with a timeout of %v", time.Since(start), fe.Timeout)
			}
			if strings.Contains(err.Error(), ks.Bearer) {
				t.Errorf("Fetch() error %q holds the bearer secret", err)
			}
		})
	}
}

// TestFetchSHA1: a registration with oaep sha1 takes RSA-OAEP answers.
func TestFetchSHA1(t *testing.T) {
	ks, target := service(t)
	ks.Set(cacheonlytest.Behaviour{Alg: jose.RSA_OAEP})
	target.OAEP = hsm.OAEPSHA1
	var f cacheonly.Fetcher
	k, err := f.Fetch(t.Context(), target)
	if err != nil {
		t.Fatalf("Fetch() error = %v", err)
	}
	if !bytes.Equal(k.Bytes(), ks.Material()) {
		t.Errorf("Fetch() = other bytes than the key service's key")
	}
}

// TestFetchMTLS: with a client certificate whose key is in the regional
// HSM, a key service that pins it answers, and one that pins another does
// not.
func TestFetchMTLS(t *testing.T) {
	ks, target := service(t)
	h := nodetest.World(t).Regions[nodetest.Region].HSM
	sk, err := h.GenerateSigningKey(t.Context(), "strongroom-cok-client-test-"+tenant.NewID())
	if err != nil {
		t.Fatal(err)
	}
	der, err := cacheonly.ClientCertificate(sk, "t1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := cacheonly.TLSClientCert(der, sk)
	if err != nil {
		t.Fatal(err)
	}
	ks.RequireClient(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	target.Bearer, target.ClientCert = secret.Text{}, cert
	var f cacheonly.Fetcher
	k, err := f.Fetch(t.Context(), target)
	if err != nil {
		t.Fatalf("Fetch() with the pinned client certificate error = %v", err)
	}
	if !bytes.Equal(k.Bytes(), ks.Material()) {
		t.Errorf("Fetch() = other bytes than the key service's key")
	}
	target.ClientCert = nil
	if _, err := f.Fetch(t.Context(), target); !errors.Is(err, cacheonly.ErrFailed) {
		t.Errorf("Fetch() without the client certificate error = %v, want ErrFailed", err)
	}
}

// TestRFC7520: RFC 7520's section 5.2 example (RSA-OAEP and A256GCM)
// decrypts through go-jose with the opaque decrypter that HSM keys use, to
// its plaintext; the strict checks of Open refuse it all the same (it has
// no jti, and its plaintext is not 32 bytes).
func TestRFC7520(t *testing.T) {
	data, err := os.ReadFile("testdata/rfc7520-5.2.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Key       json.RawMessage `json:"key"`
		Plaintext string          `json:"plaintext"`
		Compact   string          `json:"compact"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(v.Key); err != nil {
		t.Fatal(err)
	}
	priv, ok := jwk.Key.(*rsa.PrivateKey)
	if !ok || priv.N.BitLen() != 4096 {
		t.Fatalf("the RFC 7520 key is %T, want an RSA-4096 private key", jwk.Key)
	}
	jwe, err := jose.ParseEncryptedCompact(v.Compact, []jose.KeyAlgorithm{jose.RSA_OAEP}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := jwe.Decrypt(cacheonly.Decrypter(priv, hsm.OAEPSHA1))
	if err != nil {
		t.Fatalf("Decrypt(opaque decrypter) error = %v", err)
	}
	if string(pt) != v.Plaintext || !strings.HasSuffix(v.Plaintext, "We are your friends, Frodo.") {
		t.Errorf("Decrypt() = %q, want the RFC's plaintext", pt)
	}
	if _, err := jwe.Decrypt(cacheonly.Decrypter(priv, hsm.OAEPSHA256)); err == nil {
		t.Errorf("Decrypt() with OAEP SHA-256 succeeded on an RSA-OAEP (SHA-1) JWE")
	}
	_, err = cacheonly.Open([]byte(v.Compact), priv, hsm.OAEPSHA1, jwk.KeyID, "nonce")
	var fe *cacheonly.Error
	if !errors.As(err, &fe) || fe.Reason != "replayed_jti" {
		t.Errorf("Open(RFC 7520 example) error = %v, want replayed_jti", err)
	}
}

// TestFetchPath: the kid is one escaped path segment of the fetch URL,
// after the registered URL's path.
func TestFetchPath(t *testing.T) {
	var got []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.EscapedPath())
		w.WriteHeader(http.StatusGone)
	}))
	defer srv.Close()
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	var f cacheonly.Fetcher
	for _, tc := range []struct{ base, kid, want string }{
		{srv.URL, "acme-data", "/v1/keys/acme-data/fetch"},
		{srv.URL + "/ks/", "../../admin", "/ks/v1/keys/..%2F..%2Fadmin/fetch"},
		{srv.URL + "/ks", "a b?c", "/ks/v1/keys/a%20b%3Fc/fetch"},
	} {
		got = nil
		_, err := f.Fetch(t.Context(), cacheonly.Target{URL: tc.base, KID: tc.kid, Roots: p, OAEP: hsm.OAEPSHA256})
		if !errors.Is(err, cacheonly.ErrRevoked) || len(got) != 1 || got[0] != tc.want {
			t.Errorf("Fetch(%s, kid %q) asked %q (%v), want %q", tc.base, tc.kid, got, err, tc.want)
		}
	}
}
