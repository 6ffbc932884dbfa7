package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// Custom testscript commands for the escrow transcripts.

// tlscert CERT KEY writes a self-signed ECDSA P-256 TLS certificate for
// 127.0.0.1 and localhost, and its key (mode 0600).
func cmdTLSCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tlscert CERT KEY")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	ts.Check(err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "strongroom escrow test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ts.Check(err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
}

// freeport VAR sets $VAR to 127.0.0.1:PORT, a port free a moment ago.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	addr := ln.Addr().String()
	ts.Check(ln.Close())
	ts.Setenv(args[0], addr)
}

// waitfor ADDR waits up to 30 seconds until something listens at ADDR (TCP).
func cmdWaitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfor ADDR")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", args[0], time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("nothing listens at %s after 30s: %v", args[0], err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakebundle HSM RELEASE REGION FILE writes a release bundle made by hand,
// without a ceremony: signed by the primary signing key of the soft HSM file
// HSM, but with made-up secrets and plan (release.Verify refuses it). REGION
// "primary" makes the primary's copy.
func cmdFakeBundle(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: fakebundle HSM RELEASE REGION FILE")
	}
	ctx := context.Background()
	h, err := soft.Open(ctx, ts.MkAbs(args[0]), []byte(ts.Getenv("STRONGROOM_HSM_PASSPHRASE")), soft.Options{})
	ts.Check(err)
	defer h.Close()
	signer, err := h.SigningKey(ctx, enroll.LabelPrimarySigning)
	ts.Check(err)
	region := args[2]
	if region == "primary" {
		region = release.PrimaryCopy
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	b := &release.Bundle{
		Kind: release.KindRelease, Release: args[1], Region: region, Iterations: 600_000,
		Primary: mustKeyID(ts, signer.Public()), OAEPHash: hsm.OAEPSHA256,
		RWK: random(512), Plan: []byte("not a plan"), Created: time.Now().UTC(), Issued: time.Now().UTC(),
	}
	copy(b.Recipient[:], random(32))
	copy(b.Transcript[:], random(32))
	for _, name := range release.SecretNames {
		ws := release.WrappedSecret{Name: name, Wrapped: random(40)}
		copy(ws.Commitment[:], random(32))
		b.Secrets = append(b.Secrets, ws)
	}
	der, err := b.Sign(signer)
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[3]), release.Encode(der), 0o644))
}

func mustKeyID(ts *testscript.TestScript, pub any) sign.KeyID {
	id, err := sign.KeyIDOf(pub)
	ts.Check(err)
	return id
}
