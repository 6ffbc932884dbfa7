package client

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"strings"
	"testing"
	"time"
)

// A Client reuses its HPKE key pair of a KEM for deliveryKeyLifetime, then
// makes a new one; each KEM has its own; a clock that went back makes a new
// one too (the pair's age is unknown).
func TestDeliveryKeys(t *testing.T) {
	var k deliveryKeys
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	get := func(kem uint16, at time.Time) deliveryKey {
		t.Helper()
		p, err := k.get(kem, at)
		if err != nil {
			t.Fatalf("get(%#04x) = %v", kem, err)
		}
		return p
	}
	first := get(KEMX25519, t0)
	if len(first.pub) != 32 || !bytes.Equal(first.pub, first.priv.PublicKey().Bytes()) {
		t.Fatalf("X25519 public key = %x, want the private key's (32 bytes)", first.pub)
	}
	if p := get(KEMX25519, t0.Add(deliveryKeyLifetime-time.Nanosecond)); !bytes.Equal(p.pub, first.pub) {
		t.Error("a second delivery within the lifetime made a new key pair")
	}
	hybrid := get(KEMMLKEM768X25519, t0)
	if len(hybrid.pub) != 1216 || hybrid.priv.KEM().ID() != KEMMLKEM768X25519 {
		t.Errorf("hybrid key pair: %d-byte public key, KEM %#04x", len(hybrid.pub), hybrid.priv.KEM().ID())
	}
	if p := get(KEMX25519, t0); !bytes.Equal(p.pub, first.pub) {
		t.Error("asking for another KEM's pair replaced the X25519 one")
	}
	next := get(KEMX25519, t0.Add(deliveryKeyLifetime))
	if bytes.Equal(next.pub, first.pub) {
		t.Error("the key pair outlived its lifetime")
	}
	if p := get(KEMX25519, t0); bytes.Equal(p.pub, next.pub) {
		t.Error("a clock that went back kept the key pair")
	}
	if _, err := k.get(0x0010, t0); err == nil || !strings.Contains(err.Error(), "0x0010") {
		t.Errorf("get(P-256 KEM) = %v, want an error naming it", err)
	}

	// The pair opens what is sealed to its public key.
	pub, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(next.pub)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("info"), []byte("dek"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := hpke.Open(next.priv, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("info"), ct); err != nil || string(pt) != "dek" {
		t.Errorf("Open = %q, %v", pt, err)
	}
}
