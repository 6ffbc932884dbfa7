// Package cacheonly is Strongroom's side of cache-only keys
// (docs/cache-only.md): keys whose material a tenant keeps in its own key
// service, which Strongroom fetches when it needs it and holds only in
// memory.
//
// The package has three parts: the Fetcher, which asks a key service for a
// key over HTTPS (trusting only the registered CA, authenticating with a
// bearer secret or an HSM-held client certificate) and checks its JWE
// answer; the Tracker, a node's record of the keys it could not fetch and
// when it may try again; and the Service, which registers key services and
// gives the data plane a cache-only key's material, recording every fetch
// in the audit log and revocations in the store.
package cacheonly

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// The fetch's bounds (docs/cache-only.md).
const (
	// DefaultTimeout is how long a fetch may take, connection and answer.
	DefaultTimeout = 10 * time.Second
	// MaxBody is the largest answer read.
	MaxBody = 64 << 10
	// nonceSize is the nonce's size in bytes (43 characters in base64url).
	nonceSize = 32
)

// The kinds of failed fetches, for errors.Is; each *Error is one of them.
var (
	// ErrRefused: the key service answered, or the connection was made,
	// but not as the protocol requires (a wrong header, length or
	// certificate, an answer too large or too slow, an unknown kid).
	ErrRefused = errors.New("cacheonly: the key service's answer was refused")
	// ErrFailed: the key service could not be reached, or answered with an
	// error status.
	ErrFailed = errors.New("cacheonly: the key service did not answer")
	// ErrRevoked: the key service answered that the tenant revoked the key
	// (HTTP 410).
	ErrRevoked = errors.New("cacheonly: the key service says the key is revoked")
)

// Error is a failed fetch: its kind (ErrRefused, ErrFailed, ErrRevoked),
// a reason as one lower-case word for the audit log, and what happened,
// for people. Neither holds key material nor the bearer secret.
type Error struct {
	Kind   error
	Reason string
	Msg    string
	Err    error // the cause, if any (never with secrets)
}

func (e *Error) Error() string {
	s := "cacheonly: " + e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func refused(reason, format string, args ...any) *Error {
	return &Error{Kind: ErrRefused, Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// Target is what one fetch needs: the registration's URL, kid, trust and
// OAEP hash, the client's credentials, and the recipient key.
type Target struct {
	URL string
	KID string
	// Roots are the registered CA certificate (or the pinned self-signed
	// certificate): the only ones trusted.
	Roots *x509.CertPool
	OAEP  hsm.OAEPHash // hsm.OAEPSHA256, or hsm.OAEPSHA1 if registered so
	// Bearer, if not empty, is presented as Authorization: Bearer.
	Bearer secret.Text
	// ClientCert, if not nil, is the TLS client certificate (its private
	// key a crypto.Signer in the regional HSM).
	ClientCert *tls.Certificate
	// Recipient is Strongroom's recipient key (in the regional HSM).
	Recipient crypto.Decrypter
}

// Fetcher asks key services for keys. The zero value is ready to use.
type Fetcher struct {
	// Timeout bounds a fetch; zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock for checking certificates; nil means time.Now.
	Now func() time.Time
	// Rand is the source of nonces; nil means crypto/rand.
	Rand io.Reader
}

// fetchRequest is the body of a fetch.
type fetchRequest struct {
	KID   string `json:"kid"`
	Nonce string `json:"nonce"`
}

// Fetch asks t's key service for the key material, with a fresh nonce, and
// returns the 32 bytes its JWE answer decrypts to, once every check of
// docs/cache-only.md passed. A failure is an *Error (or ctx's error, when
// ctx ended first).
func (f *Fetcher) Fetch(ctx context.Context, t Target) (secret.Key, error) {
	nonce, err := f.nonce()
	if err != nil {
		return secret.Key{}, err
	}
	body, err := f.post(ctx, t, nonce)
	if err != nil {
		return secret.Key{}, err
	}
	return Open(body, t.Recipient, t.OAEP, t.KID, nonce)
}

func (f *Fetcher) nonce() (string, error) {
	r := f.Rand
	if r == nil {
		r = rand.Reader
	}
	var b [nonceSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("cacheonly: a nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// client is an HTTP client for one fetch: TLS that trusts only t.Roots,
// names the URL's host, presents t.ClientCert; no proxy, no redirects, no
// connection kept.
func (f *Fetcher) client(t Target) *http.Client {
	now := f.Now
	if now == nil {
		now = time.Now
	}
	cfg := &tls.Config{RootCAs: t.Roots, MinVersion: tls.VersionTLS12, Time: now}
	if t.Roots == nil {
		cfg.RootCAs = x509.NewCertPool() // never the system roots
	}
	if t.ClientCert != nil {
		cert := t.ClientCert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true, Proxy: nil,
			DialContext: (&net.Dialer{}).DialContext, ForceAttemptHTTP2: false},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// post sends the fetch and returns a 200 answer's body.
func (f *Fetcher) post(ctx context.Context, t Target, nonce string) ([]byte, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	u, err := url.Parse(t.URL)
	if err != nil || u.Scheme != "https" {
		return nil, &Error{Kind: ErrFailed, Reason: "bad_url", Msg: "the key service's URL is not https://"}
	}
	// The kid is one path segment, escaped: never a path of its own.
	base := strings.TrimSuffix(u.EscapedPath(), "/")
	u.RawPath = base + "/v1/keys/" + url.PathEscape(t.KID) + "/fetch"
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return nil, &Error{Kind: ErrFailed, Reason: "bad_url", Msg: "the key service's URL has a malformed path"}
	}
	reqBody, _ := json.Marshal(fetchRequest{KID: t.KID, Nonce: nonce})

	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(fctx, http.MethodPost, u.String(), bytes.NewReader(reqBody))
	if err != nil {
		return nil, &Error{Kind: ErrFailed, Reason: "bad_url", Msg: "the key service's URL does not make a request"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/jose")
	if !t.Bearer.IsZero() {
		req.Header.Set("Authorization", "Bearer "+string(t.Bearer.Bytes()))
	}
	resp, err := f.client(t).Do(req)
	if err != nil {
		return nil, transportError(ctx, fctx, err, timeout)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, transportError(ctx, fctx, err, timeout)
	}
	if len(body) > MaxBody {
		return nil, refused("too_large", "the key service's answer is over %d KiB", MaxBody>>10)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusGone:
		return nil, &Error{Kind: ErrRevoked, Reason: "revoked", Msg: "the key service answered 410: the tenant revoked the key"}
	case http.StatusNotFound:
		return nil, refused("unknown_kid", "the key service answered 404: it has no key %q", t.KID)
	default:
		return nil, &Error{Kind: ErrFailed, Reason: "http_status", Msg: fmt.Sprintf("the key service answered HTTP %d", resp.StatusCode)}
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/jose" {
		return nil, refused("content_type", "the key service's answer is not application/jose")
	}
	return body, nil
}

// transportError classifies a failed connection or read: a timeout, a
// certificate that does not verify, or a service that is down. When the
// caller's own ctx ended, that is the error.
func transportError(ctx, fctx context.Context, err error, timeout time.Duration) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	var ne net.Error
	switch {
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return &Error{Kind: ErrRefused, Reason: "expired_certificate", Msg: "the key service's TLS certificate has expired, or is not valid yet", Err: err}
	case errors.As(err, &ua), errors.As(err, &ci):
		return &Error{Kind: ErrRefused, Reason: "untrusted_certificate", Msg: "the key service's TLS certificate does not verify against the registered CA", Err: err}
	case errors.As(err, &he):
		return &Error{Kind: ErrRefused, Reason: "wrong_host", Msg: "the key service's TLS certificate does not name the URL's host", Err: err}
	case fctx.Err() != nil || errors.As(err, &ne) && ne.Timeout():
		return &Error{Kind: ErrRefused, Reason: "timeout", Msg: fmt.Sprintf("the key service did not answer within %v", timeout)}
	}
	var tlsAlert tls.AlertError
	if errors.As(err, &tlsAlert) {
		return &Error{Kind: ErrFailed, Reason: "tls_refused", Msg: "the key service refused the TLS connection (is the client certificate pinned?)", Err: err}
	}
	return &Error{Kind: ErrFailed, Reason: "unreachable", Msg: "the key service cannot be reached", Err: err}
}

// The algorithms the parser accepts, so that Open can say which one was
// wrong; only RSA-OAEP-256 (or RSA-OAEP) with A256GCM is ever decrypted.
var (
	anyKeyAlg = []jose.KeyAlgorithm{jose.RSA1_5, jose.RSA_OAEP, jose.RSA_OAEP_256, jose.A128KW, jose.A192KW, jose.A256KW,
		jose.DIRECT, jose.ECDH_ES, jose.ECDH_ES_A128KW, jose.ECDH_ES_A192KW, jose.ECDH_ES_A256KW,
		jose.A128GCMKW, jose.A192GCMKW, jose.A256GCMKW, jose.PBES2_HS256_A128KW, jose.PBES2_HS384_A192KW, jose.PBES2_HS512_A256KW}
	anyEnc = []jose.ContentEncryption{jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512, jose.A128GCM, jose.A192GCM, jose.A256GCM}
)

// Open checks a key service's compact JWE answer and decrypts it with the
// recipient key: the protected header must be exactly alg (RSA-OAEP-256,
// or RSA-OAEP for hsm.OAEPSHA1), enc (A256GCM), kid (the registration's)
// and jti (the nonce sent), and the plaintext exactly 32 bytes.
func Open(compact []byte, recipient crypto.Decrypter, hash hsm.OAEPHash, kid, nonce string) (secret.Key, error) {
	jwe, err := jose.ParseEncryptedCompact(strings.TrimSpace(string(compact)), anyKeyAlg, anyEnc)
	if err != nil {
		return secret.Key{}, refused("malformed", "the key service's answer is not a compact JWE")
	}
	h := jwe.Header
	wantAlg := string(jose.RSA_OAEP_256)
	if hash == hsm.OAEPSHA1 {
		wantAlg = string(jose.RSA_OAEP)
	}
	if h.Algorithm != wantAlg {
		return secret.Key{}, refused("wrong_alg", "the JWE's alg is %.40q, not %s", h.Algorithm, wantAlg)
	}
	if enc, _ := h.ExtraHeaders["enc"].(string); enc != string(jose.A256GCM) {
		return secret.Key{}, refused("wrong_enc", "the JWE's enc is %.40q, not A256GCM", fmt.Sprint(h.ExtraHeaders["enc"]))
	}
	if name, ok := extraField(h); ok {
		return secret.Key{}, refused("extra_header", "the JWE's header has a field %.40q: only alg, enc, kid and jti are allowed", name)
	}
	if h.KeyID != kid {
		return secret.Key{}, refused("wrong_kid", "the JWE's kid is %.80q, not the registration's %q", h.KeyID, kid)
	}
	jti, _ := h.ExtraHeaders["jti"].(string)
	if subtle.ConstantTimeCompare([]byte(jti), []byte(nonce)) != 1 {
		return secret.Key{}, refused("replayed_jti", "the JWE's jti is not the nonce of this fetch: a replayed or mismatched answer")
	}
	pt, err := jwe.Decrypt(Decrypter(recipient, hash))
	if err != nil {
		return secret.Key{}, refused("not_decrypting", "the JWE does not decrypt with Strongroom's recipient key")
	}
	defer clear(pt)
	if len(pt) != secret.Size {
		return secret.Key{}, refused("wrong_length", "the JWE holds %d bytes, not %d", len(pt), secret.Size)
	}
	return secret.New(pt)
}

// extraField names a header field other than alg, enc, kid and jti, if
// there is one.
func extraField(h jose.Header) (string, bool) {
	switch {
	case h.Nonce != "":
		return "nonce", true
	case h.JSONWebKey != nil:
		return "jwk", true
	}
	if _, err := h.Certificates(x509.VerifyOptions{}); !errors.Is(err, jose.ErrMissingX5cHeader) {
		return "x5c", true
	}
	for k := range h.ExtraHeaders {
		if k != "enc" && k != "jti" {
			return string(k), true
		}
	}
	return "", false
}

// Decrypter is go-jose's opaque key decrypter over an RSA key whose private
// half is elsewhere (the regional HSM): it decrypts the JWE's encrypted key
// with RSA-OAEP and hash (OAEP and MGF1), and never sees the private key.
func Decrypter(key crypto.Decrypter, hash hsm.OAEPHash) jose.OpaqueKeyDecrypter {
	return oaepDecrypter{key: key, hash: hash}
}

type oaepDecrypter struct {
	key  crypto.Decrypter
	hash hsm.OAEPHash
}

func (d oaepDecrypter) DecryptKey(encryptedKey []byte, _ jose.Header) ([]byte, error) {
	return d.key.Decrypt(rand.Reader, encryptedKey, d.hash.Options())
}
