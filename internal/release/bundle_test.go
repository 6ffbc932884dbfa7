package release

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

var signingKey, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)

// handMade is a structurally valid bundle; its plan and RWK are not real
// (the ceremony tests cover those), but its signature is.
func handMade(t testing.TB) (*Bundle, []byte) {
	t.Helper()
	id, _ := sign.KeyIDOf(&signingKey.PublicKey)
	b := &Bundle{
		Kind: KindRelease, Release: "2026-1", Region: "eu1", Iterations: 600000,
		Primary: id, Recipient: sign.KeyID{7}, OAEPHash: hsm.OAEPSHA256, RWK: bytes.Repeat([]byte{1}, 512),
		Plan: []byte("plan"), Approvals: [][]byte{[]byte("a1"), []byte("a2")}, Transcript: [32]byte{3},
		Created: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), Issued: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
	}
	for i, n := range SecretNames {
		b.Secrets = append(b.Secrets, WrappedSecret{Name: n, Wrapped: bytes.Repeat([]byte{byte(i)}, 40), Commitment: [32]byte{byte(i)}})
	}
	der, err := b.Sign(signingKey)
	if err != nil {
		t.Fatal(err)
	}
	return b, der
}

func TestBundleRoundTrip(t *testing.T) {
	want, der := handMade(t)
	got, err := Parse(der)
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	if got.Release != want.Release || got.Region != want.Region || got.Iterations != want.Iterations ||
		!bytes.Equal(got.RWK, want.RWK) || len(got.Approvals) != 2 || got.Secrets[2].Commitment != want.Secrets[2].Commitment ||
		!got.Created.Equal(want.Created) || !got.Issued.Equal(want.Issued) || got.Name() != "2026-1.eu1.bundle" {
		t.Errorf("Parse() = %+v, want %+v", got, want)
	}
	p := &enroll.Primary{Signing: &signingKey.PublicKey}
	if err := got.VerifySignature(p); err != nil {
		t.Errorf("VerifySignature() error = %v", err)
	}
	for i := range der {
		bad := bytes.Clone(der)
		bad[i] ^= 0x20
		if b, err := Parse(bad); err == nil && b.VerifySignature(p) == nil {
			t.Fatalf("bundle with byte %d altered verified", i)
		}
	}
	if d, err := Decode(Encode(der)); err != nil || !bytes.Equal(d, der) {
		t.Errorf("Decode(Encode()) = %v", err)
	}
}

func TestContextsDiffer(t *testing.T) {
	a := WrapContext("r", "eu1", "twk")
	for _, b := range [][]byte{WrapContext("r", "eu1", "kdf-seed"), WrapContext("r", "us1", "twk"), WrapContext("r2", "eu1", "twk"),
		WrapContext("r", "eu", "1twk")} {
		if bytes.Equal(a, b) {
			t.Errorf("WrapContext collision: %x", a)
		}
	}
	// Every context of every purpose differs from every other.
	seen := map[string]string{}
	for what, c := range map[string][]byte{
		"wrap eu1":         WrapContext("r", "eu1", "twk"),
		"wrap primary":     WrapContext("r", PrimaryCopy, "twk"),
		"region eu1":       RegionContext("r", "eu1", "twk"),
		"region us1":       RegionContext("r", "us1", "twk"),
		"region eu1 seed":  RegionContext("r", "eu1", "kdf-seed"),
		"check":            CheckContext("r", "twk"),
		"check seed":       CheckContext("r", "kdf-seed"),
		"commit eu1":       CommitmentPrefix("r", "eu1", "twk"),
		"commit us1":       CommitmentPrefix("r", "us1", "twk"),
		"commit primary":   CommitmentPrefix("r", PrimaryCopy, "twk"),
		"commit eu1 seed":  CommitmentPrefix("r", "eu1", "kdf-seed"),
		"commit r2 eu1":    CommitmentPrefix("r2", "eu1", "twk"),
		"region r2 eu1":    RegionContext("r2", "eu1", "twk"),
		"region shifted":   RegionContext("r", "eu", "1twk"),
		"commit shifted":   CommitmentPrefix("r", "eu", "1twk"),
		"wrap shifted":     WrapContext("r", "eu", "1twk"),
		"wrap primary r2":  WrapContext("r2", PrimaryCopy, "twk"),
		"check r2":         CheckContext("r2", "twk"),
		"check shifted":    CheckContext("r", "twk\x00"),
		"commit primary 2": CommitmentPrefix("r2", PrimaryCopy, "twk"),
	} {
		if other, ok := seen[string(c)]; ok {
			t.Errorf("contexts %q and %q collide: %x", what, other, c)
		}
		seen[string(c)] = what
	}
}

func TestParseRefusesVersion1(t *testing.T) {
	_, der := handMade(t)
	der[0] = 1
	if _, err := Parse(der); err == nil || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("Parse(version 1) error = %v, want a clear refusal", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, der []byte) {
		b, err := Parse(der)
		if err != nil {
			return
		}
		if len(b.Secrets) != len(SecretNames) || !b.OAEPHash.Valid() {
			t.Fatalf("Parse accepted an invalid bundle: %+v", b)
		}
		if _, err := Decode(Encode(der)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFuzzSeedValid: the committed seed is a bundle Parse accepts, so that
// the fuzzer starts from inside the format (regenerate it with
// STRONGROOM_WRITE_CORPUS=1 when the format changes).
func TestFuzzSeedValid(t *testing.T) {
	values := fuzzcorpus.Committed(t, "FuzzParse", "valid")
	der, ok := values[0].([]byte)
	if len(values) != 1 || !ok {
		t.Fatalf("the FuzzParse seed holds %d values, want one []byte", len(values))
	}
	if _, err := Parse(der); err != nil {
		t.Errorf("the FuzzParse seed does not parse: %v (regenerate with STRONGROOM_WRITE_CORPUS=1)", err)
	}
}

func TestWriteFuzzCorpus(t *testing.T) {
	_, der := handMade(t)
	fuzzcorpus.New(t).Add("FuzzParse", "valid", der)
}
