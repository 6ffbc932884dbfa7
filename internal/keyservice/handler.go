package keyservice

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// Paths of the protocol (docs/cache-only.md).
const (
	FetchPath  = "/v1/keys/{kid}/fetch"
	HealthPath = "/v1/health"
)

// Limits of a fetch.
const (
	// MaxRequestBody bounds a fetch's JSON body.
	MaxRequestBody = 4 << 10
	// NonceLen is the length of a nonce: 32 bytes, base64url without padding.
	NonceLen = 43
)

// Auth is how Strongroom authenticates to the key service: a bearer secret,
// pinned TLS client certificates, or both (then either is accepted). At
// least one must be set.
type Auth struct {
	// Bearer is the secret Strongroom presents (Authorization: Bearer …);
	// nil for none. The handler keeps only its SHA-256.
	Bearer []byte
	// ClientCerts are the SHA-256 of the SPKI of the client certificates
	// accepted (SPKIPin).
	ClientCerts [][sha256.Size]byte
}

// SPKIPin is the SHA-256 of a certificate's SubjectPublicKeyInfo, what Auth
// pins.
func SPKIPin(cert *x509.Certificate) [sha256.Size]byte {
	return sha256.Sum256(cert.RawSubjectPublicKeyInfo)
}

// ParsePin parses a pin written as 64 hex digits (colons allowed between
// bytes, as openssl prints them).
func ParsePin(s string) ([sha256.Size]byte, error) {
	var pin [sha256.Size]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, ":", ""))
	if err != nil || len(b) != sha256.Size {
		return pin, fmt.Errorf("keyservice: client certificate pin %q: want the SHA-256 of its SPKI, 64 hex digits", s)
	}
	copy(pin[:], b)
	return pin, nil
}

// TLSConfig is the server's TLS configuration for a: TLS 1.2 or later, and,
// with pinned client certificates, a client certificate asked for (checked
// against the pins by the handler, not against any CA).
func TLSConfig(cert tls.Certificate, a Auth) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if len(a.ClientCerts) > 0 {
		c.ClientAuth = tls.RequestClientCert
	}
	return c
}

type handler struct {
	dir    *Dir
	bearer *[sha256.Size]byte
	pins   [][sha256.Size]byte
	log    *slog.Logger
}

// NewHandler returns the key service's HTTP handler over d: POST
// /v1/keys/{kid}/fetch and GET /v1/health. Each fetch reads the key's file
// afresh, so that a revocation or restoration made while it serves applies
// to the next fetch, and is recorded in d's audit log before it is
// answered: a fetch that cannot be recorded is not answered with the key.
// Timeouts and header limits belong to the http.Server; the server's TLS
// configuration must ask for client certificates when a pins them
// (TLSConfig).
func NewHandler(d *Dir, a Auth, log *slog.Logger) (http.Handler, error) {
	if len(a.Bearer) == 0 && len(a.ClientCerts) == 0 {
		return nil, errors.New("keyservice: no authentication: configure a bearer secret, a pinned client certificate, or both")
	}
	h := &handler{dir: d, pins: a.ClientCerts, log: log}
	if len(a.Bearer) > 0 {
		sum := sha256.Sum256(a.Bearer)
		h.bearer = &sum
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+FetchPath, h.fetch)
	mux.HandleFunc("GET "+HealthPath, h.health)
	return mux, nil
}

type fetchRequest struct {
	Kid   string `json:"kid"`
	Nonce string `json:"nonce"`
}

type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, struct {
		Status string `json:"status"`
	}{"ok"})
}

func (h *handler) fetch(w http.ResponseWriter, r *http.Request) {
	e := Entry{Action: ActionFetch, Remote: r.RemoteAddr}
	kid := r.PathValue("kid")
	if ValidKid(kid) == nil {
		e.Kid = kid
	}
	client, reason := h.authenticate(r)
	e.Client = client
	if reason != "" {
		if h.bearer != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="strongroom keyservice"`)
		}
		h.refuse(w, e, http.StatusUnauthorized, OutcomeRefused, reason, errorBody{Error: "unauthorized"})
		return
	}
	nonce, reason := readRequest(w, r, kid)
	if reason != "" {
		h.refuse(w, e, http.StatusBadRequest, OutcomeRefused, reason, errorBody{Error: "bad_request", Reason: reason})
		return
	}
	k, err := h.dir.open(kid)
	switch {
	case errors.Is(err, ErrNotFound):
		h.refuse(w, e, http.StatusNotFound, OutcomeUnknownKid, "no such key", errorBody{Error: "unknown_kid"})
		return
	case err != nil:
		h.log.Error("fetch: the key file does not open", "kid", e.Kid, "err", err)
		h.refuse(w, e, http.StatusInternalServerError, OutcomeError, "the key file does not open", errorBody{Error: "internal"})
		return
	}
	defer k.material.Destroy()
	if k.State != Active {
		h.refuse(w, e, http.StatusGone, OutcomeRevoked, "revoked at "+k.Revoked.Format("2006-01-02T15:04:05Z"), errorBody{Error: "revoked"})
		return
	}
	jwe, err := seal(k, nonce)
	if err != nil {
		h.log.Error("fetch: cannot encrypt the answer", "kid", kid, "err", err)
		h.refuse(w, e, http.StatusInternalServerError, OutcomeError, "cannot encrypt the answer", errorBody{Error: "internal"})
		return
	}
	e.Outcome = OutcomeOK
	if err := h.dir.Append(e); err != nil {
		h.log.Error("fetch: cannot record the fetch in the audit log; the key is not delivered", "kid", kid, "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal"})
		return
	}
	h.log.Info("fetch", "kid", kid, "outcome", e.Outcome, "remote", e.Remote, "client", e.Client)
	w.Header().Set("Content-Type", "application/jose")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, jwe)
}

// refuse records and answers a fetch that delivers nothing.
func (h *handler) refuse(w http.ResponseWriter, e Entry, status int, outcome, reason string, body errorBody) {
	e.Outcome, e.Reason = outcome, reason
	if err := h.dir.Append(e); err != nil {
		h.log.Error("fetch: cannot record the fetch in the audit log", "kid", e.Kid, "err", err)
	}
	h.log.Info("fetch", "kid", e.Kid, "outcome", outcome, "reason", reason, "remote", e.Remote, "client", e.Client)
	writeJSON(w, status, body)
}

// authenticate returns who the client is, and a reason if it is not
// accepted. A pinned certificate is accepted, else the right bearer secret.
func (h *handler) authenticate(r *http.Request) (client, reason string) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		pin := SPKIPin(r.TLS.PeerCertificates[0])
		client = "sha256:" + hex.EncodeToString(pin[:])
		for _, p := range h.pins {
			if subtle.ConstantTimeCompare(p[:], pin[:]) == 1 {
				return client, ""
			}
		}
		reason = "client certificate not pinned"
	}
	auth := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(auth, " ")
	if auth == "" {
		if reason == "" {
			reason = "no bearer secret and no client certificate"
		}
		return client, reason
	}
	if client == "" {
		client = "bearer"
	}
	if !strings.EqualFold(scheme, "Bearer") || h.bearer == nil {
		return client, "bearer authentication is not accepted here"
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], h.bearer[:]) != 1 {
		return client, "wrong bearer secret"
	}
	return "bearer", ""
}

// readRequest decodes and checks a fetch's body; it returns the nonce, or
// the reason the request is bad.
func readRequest(w http.ResponseWriter, r *http.Request, kid string) (string, string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return "", "the body must be application/json"
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	dec.DisallowUnknownFields()
	var req fetchRequest
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return "", fmt.Sprintf("the body is over %d bytes", MaxRequestBody)
		}
		return "", "the body is not a JSON object {kid, nonce}"
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", "data after the JSON object"
	}
	if req.Kid != kid {
		return "", "the body's kid differs from the path's"
	}
	if len(req.Nonce) != NonceLen {
		return "", fmt.Sprintf("the nonce must be %d characters of base64url (32 bytes)", NonceLen)
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(req.Nonce); err != nil || len(b) != 32 {
		return "", "the nonce is not base64url without padding"
	}
	return req.Nonce, ""
}

// seal makes the answer: a compact JWE with the protected header {alg
// RSA-OAEP-256, enc A256GCM, kid, jti = nonce} and nothing else,
// encrypting the key's 32 bytes to its recipient.
func seal(k *key, nonce string) (string, error) {
	enc, err := jose.NewEncrypter(jose.A256GCM,
		jose.Recipient{Algorithm: jose.RSA_OAEP_256, Key: k.recipient, KeyID: k.Kid},
		(&jose.EncrypterOptions{}).WithHeader("jti", nonce))
	if err != nil {
		return "", err
	}
	obj, err := enc.Encrypt(k.material.Bytes())
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
