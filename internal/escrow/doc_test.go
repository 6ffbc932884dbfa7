package escrow

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/docs"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

const escrowDoc = "../../docs/escrow.md"

func unix(ex *docs.Example, field string) time.Time {
	return time.Unix(int64(ex.Uint(field)), 0).UTC()
}

// TestDocEscrow makes the escrow enrollment request, certificate and
// answer of docs/escrow.md again from their inputs, signed with the
// deterministic ECDSA of RFC 6979, and parses and verifies them.
func TestDocEscrow(t *testing.T) {
	// The request.
	rex := docs.KAT(t, escrowDoc, "escrow-request")
	escrowKey := rex.P384("escrow-signing-key")
	spki, err := x509.MarshalPKIXPublicKey(escrowKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	if want := rex.Hex("spki"); !bytes.Equal(spki, want) {
		t.Errorf("SPKI(escrow signing key) = %x, want %x", spki, want)
	}
	req := &Request{Name: rex.Text("name"), Signing: escrowKey.Public().(*ecdsa.PublicKey), Created: unix(rex, "created"), Nonce: [16]byte(rex.Hex("nonce"))}
	body, err := req.body()
	if err != nil {
		t.Fatal(err)
	}
	reqDER := checkSigned(t, rex, body, escrowKey, requestDomain, "request")
	if _, err := parseRequestDER(reqDER); err != nil {
		t.Errorf("parseRequestDER(the page's request) = %v", err)
	}
	req.raw = reqDER
	if d, want := req.Digest(), rex.Hex("digest"); !bytes.Equal(d[:], want) {
		t.Errorf("request digest = %x, want %x", d, want)
	}

	// The certificate.
	cex := docs.KAT(t, escrowDoc, "escrow-certificate")
	primaryKey := cex.P384("primary-signing-key")
	primary := &enroll.Primary{Signing: primaryKey.Public().(*ecdsa.PublicKey)}
	c := &Certificate{
		Serial: [16]byte(cex.Hex("serial")), Name: req.Name, Signing: req.Signing,
		NotBefore: unix(cex, "not-before"), NotAfter: unix(cex, "not-after"),
		Issuer: primary.SigningKeyID(), Request: req.Digest(),
	}
	if want := cex.Hex("issuer"); !bytes.Equal(c.Issuer[:], want) {
		t.Errorf("KeyID(primary signing key) = %x, want %x", c.Issuer, want)
	}
	body, err = c.marshalBody()
	if err != nil {
		t.Fatal(err)
	}
	certDER := checkSigned(t, cex, body, primaryKey, certificateDomain, "certificate")
	cert, err := ParseCertificateDER(certDER)
	if err != nil {
		t.Fatalf("ParseCertificateDER(the page's certificate) = %v", err)
	}
	if err := cert.Verify(primary, c.NotBefore); err != nil {
		t.Errorf("Verify(the page's certificate) = %v", err)
	}

	// The answer.
	aex := docs.KAT(t, escrowDoc, "escrow-answer")
	a := &Answer{Region: aex.Text("region"), Nonce: aex.Hex("nonce"), Time: unix(aex, "time"), Escrow: cert}
	body, err = a.marshalBody()
	if err != nil {
		t.Fatal(err)
	}
	ansDER := checkSigned(t, aex, body, escrowKey, answerDomain, "answer")
	got, err := ParseAnswer(ansDER)
	if err != nil {
		t.Fatalf("ParseAnswer(the page's answer) = %v", err)
	}
	if _, err := got.Verify(primary, a.Region, a.Nonce, a.Time); err != nil {
		t.Errorf("Verify(the page's answer) = %v", err)
	}
}

// checkSigned checks an example's body, domain and signature, made by
// signer (RFC 6979), and returns the page's encoding: body ||
// u16<signature>.
func checkSigned(t *testing.T, ex *docs.Example, body []byte, signer crypto.Signer, domain, what string) []byte {
	t.Helper()
	if want := ex.Hex("body"); !bytes.Equal(body, want) {
		t.Errorf("%s body = %x, want %x", what, body, want)
	}
	if got := ex.Text("domain"); got != domain {
		t.Errorf("%s domain = %q, want %q", what, got, domain)
	}
	der, sig, err := sign.Append(signer, domain, body)
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("signature"); !bytes.Equal(sig, want) {
		t.Errorf("%s signature = %x, want %x", what, sig, want)
	}
	page, psig := ex.Hex("body"), ex.Hex("signature")
	want := append(append(page, byte(len(psig)>>8), byte(len(psig))), psig...)
	if !bytes.Equal(der, want) {
		t.Errorf("%s = %x, want %x", what, der, want)
	}
	return want
}
