// Package cacheonlytest is a tenant's key service for tests of cache-only
// keys: an HTTPS server on loopback (httptest.NewTLSServer) that answers
// the fetches of docs/cache-only.md with real JWEs made with go-jose, and
// that a test can make misbehave in each of the ways Strongroom must
// refuse.
package cacheonlytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Behaviour is how the service answers; the zero value answers correctly.
type Behaviour struct {
	Status  int           // answer this status (with a JSON body) instead of a JWE
	Delay   time.Duration // wait this long (or until the request ends) before answering
	Alg     jose.KeyAlgorithm
	Enc     jose.ContentEncryption
	KID     string         // put this kid in the header instead
	JTI     string         // put this jti in the header instead of the nonce ("-": none)
	Extra   map[string]any // add these header fields
	Length  int            // encrypt this many bytes instead of the 32 of the key
	Garbage bool           // alter the ciphertext
	Big     bool           // answer more than 64 KiB
	Type    string         // Content-Type instead of application/jose
}

// Server is a key service holding one key.
type Server struct {
	*httptest.Server
	KID string
	// Bearer is the secret it requires (Authorization: Bearer), unless
	// RequireClient was called.
	Bearer string
	// Fetches counts the fetch requests it received; Nonces holds their
	// nonces.
	Fetches atomic.Int64

	mu        sync.Mutex
	material  []byte
	recipient *rsa.PublicKey
	client    []byte // the pinned client certificate's DER
	b         Behaviour
	nonces    []string
}

// New starts a key service for kid holding random material, with a random
// bearer secret; Close is the test's cleanup.
func New(tb testing.TB, kid string) *Server {
	tb.Helper()
	s := &Server{KID: kid, Bearer: "ks-bearer-" + rand.Text(), material: make([]byte, 32)}
	rand.Read(s.material)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Server.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what tests do
	s.StartTLS()
	tb.Cleanup(s.Close)
	return s
}

// CA is the service's TLS certificate (self-signed), PEM: what a
// registration pins.
func (s *Server) CA() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}

// Material is the key's 32 bytes.
func (s *Server) Material() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.material)
}

// SetMaterial replaces the key.
func (s *Server) SetMaterial(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.material = bytes.Clone(b)
}

// SetRecipient installs Strongroom's recipient public key (PEM, PUBLIC
// KEY), as a tenant does after registration.
func (s *Server) SetRecipient(tb testing.TB, pemBytes []byte) {
	tb.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "PUBLIC KEY" {
		tb.Fatalf("cacheonlytest: the recipient key is not a PUBLIC KEY PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		tb.Fatalf("cacheonlytest: %v", err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok {
		tb.Fatalf("cacheonlytest: the recipient key is %T, not RSA", pub)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recipient = rsaPub
}

// RequireClient pins Strongroom's client certificate (PEM): from then on
// only a TLS client presenting it is answered, and no bearer is needed.
func (s *Server) RequireClient(tb testing.TB, pemBytes []byte) {
	tb.Helper()
	b, _ := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" {
		tb.Fatalf("cacheonlytest: the client certificate is not a CERTIFICATE PEM block")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.client = b.Bytes
}

// Set changes how the service answers.
func (s *Server) Set(b Behaviour) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = b
}

// Nonces are the nonces of the fetches received, in order.
func (s *Server) Nonces() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.nonces...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	b, material, recipient, client := s.b, bytes.Clone(s.material), s.recipient, s.client
	s.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/keys/"+s.KID+"/fetch" {
		writeJSON(w, http.StatusNotFound, "unknown_kid")
		return
	}
	if client != nil {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || !bytes.Equal(r.TLS.PeerCertificates[0].Raw, client) {
			writeJSON(w, http.StatusUnauthorized, "unauthenticated")
			return
		}
	} else if got := r.Header.Get("Authorization"); subtle.ConstantTimeCompare([]byte(got), []byte("Bearer "+s.Bearer)) != 1 {
		writeJSON(w, http.StatusUnauthorized, "unauthenticated")
		return
	}
	var req struct {
		KID   string `json:"kid"`
		Nonce string `json:"nonce"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.KID != s.KID || len(req.Nonce) != 43 {
		writeJSON(w, http.StatusBadRequest, "bad_request")
		return
	}
	s.Fetches.Add(1)
	s.mu.Lock()
	s.nonces = append(s.nonces, req.Nonce)
	s.mu.Unlock()
	if b.Delay > 0 {
		select {
		case <-time.After(b.Delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case b.Status == http.StatusGone:
		writeJSON(w, b.Status, "revoked")
		return
	case b.Status != 0:
		writeJSON(w, b.Status, "failure")
		return
	case recipient == nil:
		writeJSON(w, http.StatusServiceUnavailable, "no recipient key installed")
		return
	}
	jwe, err := s.answer(b, material, recipient, req.Nonce)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, err.Error())
		return
	}
	ct := "application/jose"
	if b.Type != "" {
		ct = b.Type
	}
	w.Header().Set("Content-Type", ct)
	if b.Big {
		jwe += strings.Repeat(" ", 64<<10)
	}
	io.WriteString(w, jwe)
}

// answer makes the JWE, as b says.
func (s *Server) answer(b Behaviour, material []byte, recipient *rsa.PublicKey, nonce string) (string, error) {
	alg, enc, kid := jose.RSA_OAEP_256, jose.A256GCM, s.KID
	if b.Alg != "" {
		alg = b.Alg
	}
	if b.Enc != "" {
		enc = b.Enc
	}
	if b.KID != "" {
		kid = b.KID
	}
	opts := &jose.EncrypterOptions{}
	switch b.JTI {
	case "":
		opts = opts.WithHeader("jti", nonce)
	case "-":
	default:
		opts = opts.WithHeader("jti", b.JTI)
	}
	for k, v := range b.Extra {
		opts = opts.WithHeader(jose.HeaderKey(k), v)
	}
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: alg, Key: recipient, KeyID: kid}, opts)
	if err != nil {
		return "", err
	}
	pt := material
	if b.Length != 0 {
		pt = make([]byte, b.Length)
		copy(pt, material)
	}
	obj, err := e.Encrypt(pt)
	if err != nil {
		return "", err
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		return "", err
	}
	if b.Garbage {
		parts := strings.Split(out, ".")
		c := []byte(parts[3])
		if c[0] == 'A' {
			c[0] = 'B'
		} else {
			c[0] = 'A'
		}
		parts[3] = string(c)
		out = strings.Join(parts, ".")
	}
	return out, nil
}

func writeJSON(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code})
}

// Roots is a pool holding the service's TLS certificate.
func (s *Server) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}

// Down returns the URL of a loopback port where nothing listens.
func (s *Server) Down() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "https://127.0.0.1:1"
	}
	addr := l.Addr().String()
	l.Close()
	return "https://" + addr
}

// OtherCA is a self-signed certificate (PEM) of a throwaway key: a CA that
// trusts nothing the service presents.
func OtherCA(tb testing.TB) []byte {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		tb.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
