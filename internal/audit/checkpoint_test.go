package audit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/strongroom-kms/strongroom/internal/sign"
)

func testCheckpoint() Checkpoint {
	var s State
	for _, e := range katEntries() {
		if _, err := s.Append(e); err != nil {
			panic(err)
		}
	}
	return s.Checkpoint(testOrigin, time.Date(2026, 3, 1, 12, 5, 0, 987654321, time.UTC))
}

func TestCheckpointRoundTrip(t *testing.T) {
	ctx := context.Background()
	hsmKey := testSigner(t)
	c := testCheckpoint()
	signed, err := SignCheckpoint(ctx, hsmKey, c)
	if err != nil {
		t.Fatalf("SignCheckpoint() error = %v", err)
	}
	got, err := ParseCheckpoint(signed, []*ecdsa.PublicKey{&fixedKey(t).PublicKey, hsmKey.ECDSAPublicKey()})
	if err != nil {
		t.Fatalf("ParseCheckpoint() error = %v", err)
	}
	id, _ := sign.KeyIDOf(hsmKey.Public())
	want := c
	want.Time = time.Date(2026, 3, 1, 12, 5, 0, 987654000, time.UTC)
	want.KeyID = id
	if got != want {
		t.Errorf("ParseCheckpoint(SignCheckpoint(c)) = %+v, want %+v", got, want)
	}

	// Every byte matters.
	trusted := []*ecdsa.PublicKey{hsmKey.ECDSAPublicKey()}
	wantStrict(t, "ParseCheckpoint", signed, func(b []byte) error { _, err := ParseCheckpoint(b, trusted); return err })
	if _, err := ParseCheckpoint(signed, nil); !errors.Is(err, ErrUntrusted) {
		t.Errorf("ParseCheckpoint(no trusted keys) error = %v, want ErrUntrusted", err)
	}

	// The other valid signature of the same message, (r, n−s), is refused:
	// each checkpoint has one encoding.
	high := highS(t, signed, hsmKey.ECDSAPublicKey())
	if _, err := ParseCheckpoint(high, trusted); err == nil {
		t.Error("ParseCheckpoint(high-S signature) error = nil, want error")
	}

	// A plain crypto.Signer works too.
	if signed, err = SignCheckpoint(ctx, fixedKey(t), c); err != nil {
		t.Fatalf("SignCheckpoint(*ecdsa.PrivateKey) error = %v", err)
	}
	if _, err := ParseCheckpoint(signed, []*ecdsa.PublicKey{&fixedKey(t).PublicKey}); err != nil {
		t.Errorf("ParseCheckpoint(signed by *ecdsa.PrivateKey) error = %v", err)
	}
}

// highS rewrites the signature of a signed checkpoint as (r, n−s), and
// checks that the standard library accepts it.
func highS(t *testing.T, signed []byte, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	// The signature is the u16<> at the end; find it by parsing forward.
	s := cryptobyte.String(signed)
	var origin cryptobyte.String
	s.Skip(1)
	s.ReadUint8LengthPrefixed(&origin)
	s.Skip(8 + 32 + 32 + 8 + 32)
	body := signed[:len(signed)-len(s)]
	var sigDER cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&sigDER) {
		t.Fatal("cannot find the signature")
	}
	var inner cryptobyte.String
	r, sv := new(big.Int), new(big.Int)
	if !sigDER.ReadASN1(&inner, asn1.SEQUENCE) || !inner.ReadASN1Integer(r) || !inner.ReadASN1Integer(sv) {
		t.Fatal("signature is not DER")
	}
	sv.Sub(elliptic.P384().Params().N, sv)
	var b cryptobyte.Builder
	b.AddBytes(body)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1BigInt(r)
			b.AddASN1BigInt(sv)
		})
	})
	out := b.BytesOrPanic()
	digest := sha512.Sum384(sign.Message(checkpointDomain, body))
	if !ecdsa.VerifyASN1(pub, digest[:], out[len(body)+2:]) {
		t.Fatal("the high-S signature does not verify with crypto/ecdsa")
	}
	return out
}

func TestSignCheckpointRefuses(t *testing.T) {
	ctx := context.Background()
	key := fixedKey(t)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := testCheckpoint()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		key  *ecdsa.PrivateKey
		edit func(c *Checkpoint)
	}{
		{"no origin", ctx, key, func(c *Checkpoint) { c.Origin = "" }},
		{"origin with space", ctx, key, func(c *Checkpoint) { c.Origin = "eu1 audit" }},
		{"zero time", ctx, key, func(c *Checkpoint) { c.Time = time.Time{} }},
		{"empty log, wrong root", ctx, key, func(c *Checkpoint) { c.Size, c.Head = 0, [32]byte{} }},
		{"empty log, nonzero head", ctx, key, func(c *Checkpoint) { c.Size, c.Root = 0, EmptyRoot }},
		{"P-256 key", ctx, p256, func(c *Checkpoint) {}},
		{"cancelled", cancelled, key, func(c *Checkpoint) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			if _, err := SignCheckpoint(tc.ctx, tc.key, c); err == nil {
				t.Error("SignCheckpoint() error = nil, want error")
			}
		})
	}
	if _, err := SignCheckpoint(ctx, nil, good); err == nil {
		t.Error("SignCheckpoint(nil signer) error = nil, want error")
	}
	var empty State
	if _, err := SignCheckpoint(ctx, key, empty.Checkpoint(testOrigin, t0)); err != nil {
		t.Errorf("SignCheckpoint(empty log) error = %v", err)
	}
	if _, err := ParseCheckpoint(nil, []*ecdsa.PublicKey{&p256.PublicKey}); err == nil {
		t.Error("ParseCheckpoint(trusting a P-256 key) error = nil, want error")
	}
}
