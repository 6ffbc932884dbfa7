package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// transitPeer serves the part of Vault/OpenBao transit's HTTP API that the
// transit targets use (POST /v1/transit/keys/:name, encrypt/:name with a
// plaintext or a batch_input, datakey/plaintext/:name), as the Vault API
// documentation describes it: CI has no OpenBao (it is in no registry), and
// these tests check the bench's side of that protocol. Its ciphertexts are
// real AES-256-GCM under the named key, and it checks what it is sent: the
// token, the content type, each plaintext (the bench's, base64).
type transitPeer struct {
	token string
	plain []byte // what every plaintext must decode to

	mu    sync.Mutex
	keys  map[string]cipher.AEAD
	items atomic.Int64 // plaintexts encrypted
	keyed atomic.Int64 // data keys made
	short atomic.Bool  // answer one batch result too few
}

func (p *transitPeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string][]string{"errors": {msg}})
	}
	switch {
	case r.Method != http.MethodPost:
		fail(http.StatusMethodNotAllowed, "unsupported operation")
		return
	case r.Header.Get("X-Vault-Token") != p.token:
		fail(http.StatusForbidden, "permission denied")
		return
	case r.Header.Get("Content-Type") != "application/json":
		fail(http.StatusBadRequest, "not JSON")
		return
	case !r.ProtoAtLeast(2, 0):
		fail(http.StatusBadRequest, "HTTP/2 expected of the bench's client")
		return
	}
	op, name, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/transit/"), "/")
	if op == "datakey" {
		var kind string
		kind, name, _ = strings.Cut(name, "/")
		if kind != "plaintext" {
			fail(http.StatusNotFound, "unsupported path")
			return
		}
	}
	var body struct {
		Type       string `json:"type"`
		Bits       int    `json:"bits"`
		Plaintext  string `json:"plaintext"`
		BatchInput []struct {
			Plaintext string `json:"plaintext"`
		} `json:"batch_input"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		fail(http.StatusBadRequest, "malformed JSON")
		return
	}
	if op == "keys" {
		if body.Type != "aes256-gcm96" {
			fail(http.StatusBadRequest, "unknown key type")
			return
		}
		k := make([]byte, 32)
		rand.Read(k)
		b, _ := aes.NewCipher(k)
		g, _ := cipher.NewGCM(b)
		p.mu.Lock()
		if _, ok := p.keys[name]; !ok {
			p.keys[name] = g
		}
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	p.mu.Lock()
	g := p.keys[name]
	p.mu.Unlock()
	if g == nil {
		fail(http.StatusBadRequest, "encryption key not found")
		return
	}
	seal := func(pt []byte) string {
		nonce := make([]byte, g.NonceSize())
		rand.Read(nonce)
		return "vault:v1:" + base64.StdEncoding.EncodeToString(g.Seal(nonce, nonce, pt, nil))
	}
	checked := func(b64 string) ([]byte, bool) {
		pt, err := base64.StdEncoding.DecodeString(b64)
		return pt, err == nil && bytes.Equal(pt, p.plain)
	}
	var data any
	switch {
	case op == "datakey" && body.Bits == 256:
		k := make([]byte, 32)
		rand.Read(k)
		p.keyed.Add(1)
		data = map[string]string{"plaintext": base64.StdEncoding.EncodeToString(k), "ciphertext": seal(k)}
	case op == "encrypt" && len(body.BatchInput) > 0:
		results := make([]map[string]string, 0, len(body.BatchInput))
		for _, it := range body.BatchInput {
			pt, ok := checked(it.Plaintext)
			if !ok {
				fail(http.StatusBadRequest, "batch item: not the bench's plaintext")
				return
			}
			results = append(results, map[string]string{"ciphertext": seal(pt)})
		}
		if p.short.Load() {
			results = results[1:]
		}
		p.items.Add(int64(len(body.BatchInput)))
		data = map[string]any{"batch_results": results}
	case op == "encrypt":
		pt, ok := checked(body.Plaintext)
		if !ok {
			fail(http.StatusBadRequest, "not the bench's plaintext")
			return
		}
		p.items.Add(1)
		data = map[string]string{"ciphertext": seal(pt)}
	default:
		fail(http.StatusBadRequest, "unsupported request")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"data": data})
}

// startTransitPeer starts a transitPeer over TLS and HTTP/2 on loopback and
// returns it, its URL and its CA certificate's file.
func startTransitPeer(t *testing.T, plain []byte) (*transitPeer, string, string) {
	t.Helper()
	p := &transitPeer{token: "s.bench-token", plain: plain, keys: map[string]cipher.AEAD{}}
	srv := httptest.NewUnstartedServer(p)
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake the CA-less client refuses
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p, srv.URL, ca
}

// TestTransitTargets: the transit targets speak transit's protocol: the key
// made first, then one encrypt per operation (or one batch_input of
// --batch items), or one data key; a refused token, a short batch or a
// missing CA is an error of the operation or of the target, never a
// success.
func TestTransitTargets(t *testing.T) {
	plain := bytes.Repeat([]byte("strongroom"), 100)
	p, addr, ca := startTransitPeer(t, plain)
	flags := transitFlags{addr: addr, token: p.token, ca: ca, key: "bench-key"}
	run := func(t *testing.T, name string, batch, times int) error {
		t.Helper()
		b := &bench{batch: batch, transit: flags}
		op, cleanup, err := b.transitTarget(t.Context(), name, plain)
		if err != nil {
			t.Fatalf("transitTarget(%s) error = %v", name, err)
		}
		defer cleanup()
		for range times {
			if err := op(t.Context()); err != nil {
				return err
			}
		}
		return nil
	}
	for _, tc := range []struct {
		name         string
		batch        int
		items, keyed int64
	}{
		{"transit-encrypt", 1, 3, 0},
		{"transit-encrypt", 16, 48, 0},
		{"transit-datakey", 1, 0, 3},
	} {
		p.items.Store(0)
		p.keyed.Store(0)
		if err := run(t, tc.name, tc.batch, 3); err != nil {
			t.Errorf("%s --batch %d: error = %v", tc.name, tc.batch, err)
		}
		if got, gotKeys := p.items.Load(), p.keyed.Load(); got != tc.items || gotKeys != tc.keyed {
			t.Errorf("%s --batch %d three times: the peer encrypted %d items and made %d keys, want %d and %d",
				tc.name, tc.batch, got, gotKeys, tc.items, tc.keyed)
		}
	}

	p.short.Store(true)
	if err := run(t, "transit-encrypt", 4, 1); err == nil || !strings.Contains(err.Error(), "3 batch results for 4 items") {
		t.Errorf("a short batch answer: error = %v, want one naming the count", err)
	}
	p.short.Store(false)

	b := &bench{batch: 1, transit: flags}
	b.transit.token = "s.wrong"
	if _, _, err := b.transitTarget(t.Context(), "transit-encrypt", plain); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a refused token: error = %v, want the peer's 403", err)
	}
	b.transit = flags
	b.transit.ca = ""
	if _, _, err := b.transitTarget(t.Context(), "transit-datakey", plain); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the peer's CA: error = %v, want a certificate error", err)
	}
}
