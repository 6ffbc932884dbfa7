package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

// TestDecryptLargeSingleCiphertext: a single ciphertext the server made
// from input that fits its body limit, but whose own base64 does not (the
// server refuses to take it back, which strongroom decrypt once passed on), decrypts locally with the DEK of the
// version it names; so does a stream, and what encrypt writes decrypt reads.
func TestDecryptLargeSingleCiphertext(t *testing.T) {
	t.Parallel() // a server of its own
	ctx := context.Background()
	s := apitest.NewServer(t, apitest.Options{})
	ts := httptest.NewTLSServer(s.Handler)
	defer ts.Close()
	s.Tenant(t, "acme")
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	op, err := client.New(ts.URL, s.Operator, client.WithRootCAs(pool))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.GenerateKey(ctx, "acme", "data"); err != nil {
		t.Fatal(err)
	}
	app, err := client.New(ts.URL, s.Token(t, api.RoleApp, "acme"), client.WithRootCAs(pool))
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]string{"file": "f"}
	// The largest input the server encrypts (in steps of 16 bytes): its
	// ciphertext is a few dozen bytes too large to send back.
	var pt, ct []byte
	for n := 786200; ; n += 16 {
		p := make([]byte, n)
		rand.Read(p)
		res, err := app.Encrypt(ctx, "acme", "data", api.EncryptItem{Plaintext: p, Context: c})
		if err != nil {
			break
		}
		pt, ct = p, res[0].Ciphertext
	}
	if pt == nil {
		t.Fatal("the server encrypted no input of 786200 bytes or more")
	}
	var ae *client.Error
	if _, err := app.Decrypt(ctx, "acme", api.DecryptItem{Ciphertext: ct, Context: c}); !errors.As(err, &ae) || ae.Status != 413 {
		t.Fatalf("server Decrypt(its own ciphertext of %d bytes) = %v, want 413", len(pt), err)
	}
	var out bytes.Buffer
	if err := decryptData(ctx, app, "acme", "", c, bytes.NewReader(ct), &out); err != nil || !bytes.Equal(out.Bytes(), pt) {
		t.Errorf("decryptData(760 KiB ciphertext) = %d bytes, %v", out.Len(), err)
	}
	if err := decryptData(ctx, app, "acme", "", map[string]string{"file": "g"}, bytes.NewReader(ct), &out); err == nil {
		t.Error("decryptData(another context) = nil error")
	}

	var enc bytes.Buffer
	if err := encryptLocal(ctx, app, "acme", "data", c, bytes.NewReader(pt), &enc); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := decryptData(ctx, app, "acme", "", c, &enc, &out); err != nil || !bytes.Equal(out.Bytes(), pt) {
		t.Errorf("decryptData(stream) = %d bytes, %v", out.Len(), err)
	}
}
