package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/docs"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

const (
	formatsDoc  = "../../docs/formats.md"
	ceremonyDoc = "../../docs/ceremony-formats.md"
)

// The hashes of the soft backend, which the examples' primary and region
// report.
var softHashes = []hsm.OAEPHash{hsm.OAEPSHA256, hsm.OAEPSHA512, hsm.OAEPSHA1}

// pageSigner is an example's primary signing key (deterministic, RFC 6979)
// as an HSM's.
type pageSigner struct{ crypto.Signer }

func (pageSigner) Label() string                      { return LabelPrimarySigning }
func (s pageSigner) ECDSAPublicKey() *ecdsa.PublicKey { return s.Public().(*ecdsa.PublicKey) }

// pageRSA is an example's RSA-4096 key, whose private half was not kept:
// its SignPSS answers with the page's signature, once that verifies over the
// message the code signs. Nothing else of the key is used.
type pageRSA struct {
	hsm.EncryptionKey
	pub *rsa.PublicKey
	sig []byte
}

func (k pageRSA) RSAPublicKey() *rsa.PublicKey { return k.pub }

func (k pageRSA) SignPSS(_ context.Context, msg []byte) ([]byte, error) {
	if err := verifyPSS(k.pub, msg, k.sig); err != nil {
		return nil, fmt.Errorf("the page's RSA-PSS signature does not verify over the message the code signs: %w", err)
	}
	return k.sig, nil
}

// join is the concatenation of an example's hex fields, in order.
func join(ex *docs.Example, names ...string) []byte {
	var out []byte
	for _, n := range names {
		out = append(out, ex.Hex(n)...)
	}
	return out
}

// unprefix returns what a u16<> field holds.
func unprefix(t *testing.T, ex *docs.Example, name string) []byte {
	t.Helper()
	s := cryptobyte.String(ex.Hex(name))
	var v cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&v) || !s.Empty() {
		t.Fatalf("field %s is not one u16<...>", name)
	}
	return v
}

func pageRSAKey(t *testing.T, ex *docs.Example, name string) *rsa.PublicKey {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(unprefix(t, ex, name))
	if err != nil {
		t.Fatalf("field %s: %v", name, err)
	}
	k, ok := pub.(*rsa.PublicKey)
	if !ok || k.N.BitLen() != 4096 || k.E != 65537 {
		t.Fatalf("field %s is not an RSA-4096 key with e = 65537", name)
	}
	return k
}

func pemBody(t *testing.T, data []byte, typ string) []byte {
	t.Helper()
	b, rest := pem.Decode(data)
	if b == nil || b.Type != typ || len(rest) != 0 {
		t.Fatalf("not one PEM block of type %s: %q", typ, data)
	}
	return b.Bytes
}

// docPrimary makes primary.pub of docs/formats.md again with signPrimary
// and parses it.
func docPrimary(t *testing.T) *Primary {
	t.Helper()
	ex := docs.KAT(t, formatsDoc, "primary-pub")
	signer := ex.P384("primary-signing-key")
	if got := ex.Text("domain"); got != primaryDomain {
		t.Errorf("domain = %q, want %q", got, primaryDomain)
	}
	p := &Primary{
		Encryption: pageRSAKey(t, ex, "encryption-key"),
		Signing:    signer.Public().(*ecdsa.PublicKey),
		OAEPHashes: softHashes,
		Created:    time.Unix(int64(ex.Uint("created")), 0),
	}
	enc := pageRSA{pub: p.Encryption, sig: unprefix(t, ex, "pss-signature")}
	file, err := signPrimary(context.Background(), p, enc, pageSigner{signer})
	if err != nil {
		t.Fatalf("signPrimary() = %v", err)
	}
	want := join(ex, "version", "encryption-key", "signing-key", "oaep-hashes", "time", "ecdsa-signature", "pss-signature")
	if got := pemBody(t, file, PrimaryPEMType); !bytes.Equal(got, want) {
		t.Errorf("signPrimary() = %x, want %x", got, want)
	}
	got, err := ParsePrimary(file)
	if err != nil {
		t.Fatalf("ParsePrimary() = %v", err)
	}
	sid, eid := got.SigningKeyID(), got.EncryptionKeyID()
	if !bytes.Equal(sid[:], ex.Hex("signing-key-id")) || !bytes.Equal(eid[:], ex.Hex("encryption-key-id")) {
		t.Errorf("key ids = %x, %x, want the page's", sid, eid)
	}
	if !got.Created.Equal(p.Created) || !got.Signing.Equal(p.Signing) || !got.Encryption.Equal(p.Encryption) {
		t.Errorf("ParsePrimary() = %+v, want %+v", got, p)
	}
	return got
}

func TestDocPrimary(t *testing.T) { docPrimary(t) }

// docRequest makes the enrollment request of docs/formats.md again with
// signRequest and parses it.
func docRequest(t *testing.T) *Request {
	t.Helper()
	ex := docs.KAT(t, formatsDoc, "enrollment-request")
	if got := ex.Text("domain"); got != requestDomain {
		t.Errorf("domain = %q, want %q", got, requestDomain)
	}
	r := &Request{
		Region:     ex.Text("region"),
		Encryption: pageRSAKey(t, ex, "encryption-key"),
		OAEPHashes: softHashes,
		HSM:        ex.Text("hsm"),
		Created:    time.Unix(int64(ex.Uint("created")), 0),
	}
	if n := ex.Hex("nonce"); len(n) != len(r.Nonce) {
		t.Fatalf("nonce is %d bytes, want %d", len(n), len(r.Nonce))
	} else {
		copy(r.Nonce[:], n)
	}
	enc := pageRSA{pub: r.Encryption, sig: unprefix(t, ex, "signature")}
	file, err := signRequest(context.Background(), r, enc)
	if err != nil {
		t.Fatalf("signRequest() = %v", err)
	}
	want := join(ex, "version", "region-name", "encryption-key", "oaep-hashes", "description", "time", "nonce", "signature")
	if got := pemBody(t, file, RequestPEMType); !bytes.Equal(got, want) {
		t.Errorf("signRequest() = %x, want %x", got, want)
	}
	got, err := ParseRequest(file)
	if err != nil {
		t.Fatalf("ParseRequest() = %v", err)
	}
	d, id := got.Digest(), got.KeyID()
	if !bytes.Equal(d[:], ex.Hex("digest")) || !bytes.Equal(id[:], ex.Hex("key-id")) {
		t.Errorf("Digest(), KeyID() = %x, %x, want the page's", d, id)
	}
	if got.Region != r.Region || got.HSM != r.HSM || !got.Created.Equal(r.Created) || got.Nonce != r.Nonce {
		t.Errorf("ParseRequest() = %+v, want %+v", got, r)
	}
	// hsm is what ExportRequest writes for the soft backend.
	h, err := soft.Open(context.Background(), filepath.Join(t.TempDir(), "soft"), []byte("test passphrase"), soft.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if info := h.Info(); r.HSM != strings.TrimSpace(info.Backend+" "+info.Description) || !equalHashes(info.OAEPHashes, softHashes) {
		t.Errorf("the soft backend is %q %q with hashes %v, not the page's", info.Backend, info.Description, info.OAEPHashes)
	}
	return got
}

func equalHashes(a, b []hsm.OAEPHash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDocRequest(t *testing.T) { docRequest(t) }

// TestDocCertificate makes the region certificate of docs/formats.md again
// with Certify (the random serial taken from the page) for the page's
// request, signed by the page's primary; and checks that the plan example of
// docs/ceremony-formats.md embeds it.
func TestDocCertificate(t *testing.T) {
	p, req := docPrimary(t), docRequest(t)
	ex := docs.KAT(t, formatsDoc, "region-certificate")
	signer := ex.P384("primary-signing-key")
	if !p.Signing.Equal(signer.Public()) {
		t.Fatal("primary-signing-key is not the signing key of primary-pub")
	}
	if got := ex.Text("domain"); got != certificateDomain {
		t.Errorf("domain = %q, want %q", got, certificateDomain)
	}
	now := time.Unix(int64(ex.Uint("now")), 0)
	_, c, err := Certify(context.Background(), pageSigner{signer}, req, CertifyOptions{
		Now:      now,
		Validity: time.Duration(ex.Uint("validity")) * time.Second,
	})
	if err != nil {
		t.Fatalf("Certify() = %v", err)
	}
	if n := ex.Hex("serial"); len(n) != len(c.Serial) {
		t.Fatalf("serial is %d bytes, want %d", len(n), len(c.Serial))
	} else {
		copy(c.Serial[:], n)
	}
	body, err := c.marshalBody()
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := sign.Append(signer, certificateDomain, body)
	if err != nil {
		t.Fatal(err)
	}
	if id := req.KeyID(); !bytes.Equal(id[:], ex.Hex("encryption-key-id")) {
		t.Errorf("KeyID(the request's key) = %x, want the page's encryption-key-id", id)
	}
	var spki cryptobyte.Builder
	addRSAKey(&spki, req.Encryption)
	want := append(join(ex, "version", "serial", "region-name"), spki.BytesOrPanic()...)
	want = append(want, join(ex, "oaep-hashes", "not-before", "not-after", "issuer", "request", "signature")...)
	if !bytes.Equal(raw, want) {
		t.Errorf("certificate = %x, want %x", raw, want)
	}
	got, err := ParseCertificateDER(want)
	if err != nil {
		t.Fatalf("ParseCertificateDER() = %v", err)
	}
	if err := got.Verify(p, now); err != nil {
		t.Errorf("Verify(primary-pub, now) = %v", err)
	}
	if got.Request != req.Digest() || got.KeyID() != req.KeyID() || got.Region != req.Region {
		t.Errorf("the certificate does not answer the request")
	}
	if plan := docs.Peek(t, ceremonyDoc, "plan").Hex("plan"); !bytes.Contains(plan, want) {
		t.Errorf("the plan example of %s does not embed this certificate", ceremonyDoc)
	}
}
