package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
)

// destroyBound bounds how long after the destroy was acknowledged another
// node may still use the key: it hears the store's notification within
// milliseconds (docs/byok.md; the documented worst case, a lost
// notification, is the row cache's 5 s). The test allows for a slow CI
// machine, and logs what it measured.
const destroyBound = 2 * time.Second

// TestDestroyAcrossServers runs two server processes on one PostgreSQL
// database. Node B caches the DEK (it encrypted and decrypted with it);
// node A destroys the key; node B must refuse the key within destroyBound
// of A's answer, for data under it (key_destroyed) and for new data
// (no_active_key).
func TestDestroyAcrossServers(t *testing.T) {
	t.Parallel() // mostly waits for its server processes or the database
	ctx := context.Background()
	opA, b, _, appB := appOnB(t)
	fields := map[string]string{"field": "ssn"}
	enc, err := appB.Encrypt(ctx, "acme", "data", api.EncryptItem{Plaintext: []byte("123-45-6789"), Context: fields})
	if err != nil || enc[0].Error != nil {
		t.Fatalf("Encrypt on B: %v %+v", err, enc)
	}
	decrypt := func() *api.Error {
		t.Helper()
		res, err := appB.Decrypt(ctx, "acme", api.DecryptItem{Ciphertext: enc[0].Ciphertext, Context: fields})
		if err != nil {
			t.Fatalf("Decrypt on B: %v", err)
		}
		return res[0].Error
	}
	if e := decrypt(); e != nil {
		t.Fatalf("Decrypt on B before the destroy: %+v", e)
	}

	if _, err := opA.DestroyKey(ctx, "acme", "data", 1, "acme/data/1"); err != nil {
		t.Fatalf("DestroyKey on A: %v", err)
	}
	acked := time.Now()
	attempts := 0
	for {
		attempts++
		e := decrypt()
		if e != nil && e.Code == api.CodeKeyDestroyed {
			break
		}
		if time.Since(acked) > destroyBound {
			t.Fatalf("node B still decrypts %v after node A destroyed the key (%d attempts; last %+v)", destroyBound, attempts, e)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("node B refused the destroyed key %v after node A's answer (attempt %d)", time.Since(acked), attempts)
	res, err := appB.Encrypt(ctx, "acme", "data", api.EncryptItem{Plaintext: []byte("new"), Context: fields})
	if err != nil || res[0].Error == nil || res[0].Error.Code != api.CodeNoActiveKey {
		t.Fatalf("Encrypt on B after the destroy = %v %+v, want no_active_key", err, res)
	}
	if strings.Contains(string(b.log.Bytes()), "re-checking destroyed keys failed") {
		t.Errorf("node B's destroy watch failed:\n%s", b.log.Bytes())
	}
}

// TestTokenRevokedAcrossServers: node B authenticated an app token (its
// row cache holds it); node A revokes it; node B must refuse it
// (token_revoked) within destroyBound of A's answer.
func TestTokenRevokedAcrossServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	opA, _, tok, appB := appOnB(t)
	encrypt := func() error {
		_, err := appB.Encrypt(ctx, "acme", "data", api.EncryptItem{Plaintext: []byte("x")})
		return err
	}
	if err := encrypt(); err != nil {
		t.Fatalf("Encrypt on B before the revocation: %v", err)
	}
	if _, err := opA.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatalf("RevokeToken on A: %v", err)
	}
	acked := time.Now()
	attempts := 0
	for {
		attempts++
		err := encrypt()
		var ae *client.Error
		if errors.As(err, &ae) && ae.Code == api.CodeTokenRevoked {
			break
		}
		if time.Since(acked) > destroyBound {
			t.Fatalf("node B still accepts the token %v after node A revoked it (%d attempts; last %v)", destroyBound, attempts, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("node B refused the revoked token %v after node A's answer (attempt %d)", time.Since(acked), attempts)
}

// appOnB runs two server processes on one PostgreSQL database with tenant
// acme and its data key, and returns node A's operator client, node B, an
// app token of acme, and node B's client with it.
func appOnB(t *testing.T) (opA *client.Client, b *serverProcess, tok api.Token, appB *client.Client) {
	t.Helper()
	ctx := context.Background()
	r, _, b, opA := twoNodesWithTenant(t, "acme")
	if _, err := opA.GenerateKey(ctx, "acme", "data"); err != nil {
		t.Fatal(err)
	}
	tok, err := opA.CreateToken(ctx, api.CreateTokenRequest{Role: "app", Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	return opA, b, tok, b.client(t, r, tok.Secret)
}
