package envelope

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"testing"
)

// deliveryKEMs are the KEMs a DEK may be delivered to, with their enc sizes.
var deliveryKEMs = []struct {
	name string
	id   uint16
	enc  int
}{
	{"X25519", KEMX25519, 32},
	{"ML-KEM-768+X25519", KEMMLKEM768X25519, 1120},
}

func TestDeliverDEK(t *testing.T) {
	for _, tc := range deliveryKEMs {
		t.Run(tc.name, func(t *testing.T) {
			k, err := hpke.NewKEM(tc.id)
			if err != nil {
				t.Fatal(err)
			}
			priv, err := k.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			dek := newKey(t)
			sealed, err := SealDEK(tc.id, priv.PublicKey().Bytes(), hdr, dek)
			if err != nil {
				t.Fatalf("SealDEK() error = %v", err)
			}
			if want := tc.enc + 32 + 16; len(sealed) != want {
				t.Errorf("len(SealDEK()) = %d, want %d (enc, DEK, tag)", len(sealed), want)
			}
			got, err := OpenDEK(priv, tc.id, hdr, sealed)
			if err != nil || !got.Equal(dek) {
				t.Fatalf("OpenDEK() = %v, or not the DEK", err)
			}

			// The raw hpke API with the documented suite and info opens it too.
			info := append([]byte{26}, "strongroom dek delivery v1"...)
			info = append(info, hdr.marshal()...)
			raw, err := hpke.Open(priv, hpke.HKDFSHA256(), hpke.AES256GCM(), info, sealed)
			if err != nil || string(raw) != string(dek.Bytes()) {
				t.Errorf("hpke.Open(documented suite and info) = %v, or not the DEK", err)
			}

			other, _ := k.GenerateKey()
			if _, err := OpenDEK(other, tc.id, hdr, sealed); !errors.Is(err, ErrDecrypt) {
				t.Errorf("OpenDEK(another key pair) error = %v, want ErrDecrypt", err)
			}
			for name, h := range map[string]Header{
				"tenant":  {Tenant: "fedcba9876543210fedcba9876543210", Type: hdr.Type, Version: hdr.Version},
				"type":    {Tenant: hdr.Tenant, Type: "deterministic", Version: hdr.Version},
				"version": {Tenant: hdr.Tenant, Type: hdr.Type, Version: hdr.Version - 1},
			} {
				if _, err := OpenDEK(priv, tc.id, h, sealed); !errors.Is(err, ErrDecrypt) {
					t.Errorf("OpenDEK(another %s) error = %v, want ErrDecrypt", name, err)
				}
			}
			for i := 0; i < len(sealed); i += 7 {
				bad := append([]byte(nil), sealed...)
				bad[i] ^= 1
				if _, err := OpenDEK(priv, tc.id, hdr, bad); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("OpenDEK(byte %d altered) error = %v, want ErrDecrypt", i, err)
				}
			}
			if _, err := OpenDEK(priv, tc.id, hdr, sealed[:len(sealed)-1]); !errors.Is(err, ErrDecrypt) {
				t.Errorf("OpenDEK(truncated) error = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestDeliverRefuses(t *testing.T) {
	dek := newKey(t)
	x, _ := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	xpub := x.PublicKey().Bytes()
	for _, id := range []uint16{0, 0x0010, 0x0011, 0x0021, 0x0041, 0x0042, 0x0050, 0x0051, 0x647b} {
		if _, err := SealDEK(id, xpub, hdr, dek); !errors.Is(err, ErrKEM) {
			t.Errorf("SealDEK(KEM %#04x) error = %v, want ErrKEM", id, err)
		}
	}
	// A P-256 key pair is refused, even though hpke supports it.
	p, _ := hpke.DHKEM(ecdh.P256()).GenerateKey()
	if _, err := OpenDEK(p, 0x0010, hdr, make([]byte, 97)); !errors.Is(err, ErrKEM) {
		t.Errorf("OpenDEK(P-256) error = %v, want ErrKEM", err)
	}
	for name, pub := range map[string][]byte{
		"empty":              nil,
		"short":              xpub[:31],
		"X25519 for hybrid":  xpub,
		"all-zero (low ord)": make([]byte, 1216),
	} {
		if _, err := SealDEK(KEMMLKEM768X25519, pub, hdr, dek); !errors.Is(err, ErrPublicKey) {
			t.Errorf("SealDEK(hybrid, %s public key) error = %v, want ErrPublicKey", name, err)
		}
	}
	for name, pub := range map[string][]byte{"empty": nil, "short": xpub[:31], "low order": make([]byte, 32)} {
		if _, err := SealDEK(KEMX25519, pub, hdr, dek); !errors.Is(err, ErrPublicKey) {
			t.Errorf("SealDEK(X25519, %s public key) error = %v, want ErrPublicKey", name, err)
		}
	}
	if _, err := SealDEK(KEMX25519, xpub, Header{}, dek); !errors.Is(err, ErrHeader) {
		t.Errorf("SealDEK(empty header) error = %v, want ErrHeader", err)
	}
	// The key's KEM must be the one asked for.
	sealed, err := SealDEK(KEMX25519, xpub, hdr, dek)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenDEK(x, KEMMLKEM768X25519, hdr, sealed); !errors.Is(err, ErrKEM) {
		t.Errorf("OpenDEK(X25519 key, hybrid id) error = %v, want ErrKEM", err)
	}
	if _, err := OpenDEK(nil, KEMX25519, hdr, sealed); !errors.Is(err, ErrKEM) {
		t.Errorf("OpenDEK(nil key) error = %v, want ErrKEM", err)
	}
}

func BenchmarkSealDEK(b *testing.B) {
	for _, id := range []uint16{KEMX25519, KEMMLKEM768X25519} {
		k, _ := hpke.NewKEM(id)
		priv, _ := k.GenerateKey()
		pub := priv.PublicKey().Bytes()
		dek := newKey(b)
		name := map[uint16]string{KEMX25519: "X25519", KEMMLKEM768X25519: "MLKEM768X25519"}[id]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SealDEK(id, pub, hdr, dek); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestCheckPublicKey(t *testing.T) {
	if err := CheckPublicKey(KEMX25519, make([]byte, 31)); !errors.Is(err, ErrPublicKey) {
		t.Errorf("CheckPublicKey(31 bytes) error = %v, want ErrPublicKey", err)
	}
	if err := CheckPublicKey(KEMX25519, make([]byte, 32)); !errors.Is(err, ErrPublicKey) {
		t.Errorf("CheckPublicKey(low-order point) error = %v, want ErrPublicKey", err)
	}
	if err := CheckPublicKey(0x0010, make([]byte, 65)); err == nil {
		t.Error("CheckPublicKey(P-256 KEM) error = nil, want a refusal")
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckPublicKey(KEMX25519, priv.PublicKey().Bytes()); err != nil {
		t.Errorf("CheckPublicKey(valid) error = %v", err)
	}
}
