package cacheonly

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// ClientCertValidity is how long a tenant's mTLS client certificate is
// valid: the key service pins it, so it is made once per tenant and kept.
const ClientCertValidity = 10 * 365 * 24 * time.Hour

// ClientCertificate makes the self-signed TLS client certificate of a
// tenant's client key pair (signer, ECDSA P-384 in the regional HSM),
// valid from a minute before now for ClientCertValidity, for TLS client
// authentication only. It returns the DER.
func ClientCertificate(signer crypto.Signer, tenantID string, now time.Time) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, fmt.Errorf("cacheonly: the client key: %w", err)
	}
	serial := sha256.Sum256(append([]byte("strongroom cache-only client "+tenantID), spki...))
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serial[:16]),
		Subject:      pkix.Name{CommonName: "strongroom cache-only client " + tenantID, Organization: []string{"Strongroom"}},
		NotBefore:    now.Add(-time.Minute).Truncate(time.Second),
		NotAfter:     now.Add(ClientCertValidity).Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("cacheonly: signing the client certificate: %w", err)
	}
	return der, nil
}

// TLSClientCert is the tls.Certificate of a client certificate (DER) whose
// private key is signer.
func TLSClientCert(der []byte, signer crypto.Signer) (*tls.Certificate, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cacheonly: the client certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: signer, Leaf: leaf}, nil
}
