package release

import (
	"bytes"
	"crypto/aes"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/docs"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/keywrap"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// TestDocSecrets recomputes the release secrets example of docs/ceremony.md:
// each region secret derived from its master (hsm.DeriveKey, the software
// reference every backend's Derive is checked against), its commitment,
// its context-bound wrap under the bundle's RWK, and each master's check key
// and the primary copy's commitment to it. The region's side opens the
// wrapped secrets as Open does (unwrapSecret), and the bundle encodes them
// as the page's secrets section.
func TestDocSecrets(t *testing.T) {
	ex := docs.KAT(t, "../../docs/ceremony.md", "release-secrets")
	rel, region, rwk := ex.Text("release"), ex.Text("region"), ex.Key("rwk")

	// The contexts, spelled out for one secret.
	name := ex.Text("name")
	for _, c := range []struct {
		field string
		got   []byte
	}{
		{"region-context", RegionContext(rel, region, name)},
		{"commitment-prefix", CommitmentPrefix(rel, region, name)},
		{"wrap-context", WrapContext(rel, region, name)},
		{"check-context", CheckContext(rel, name)},
		{"check-commitment-prefix", CommitmentPrefix(rel, PrimaryCopy, name)},
	} {
		if want := ex.Hex(c.field); !bytes.Equal(c.got, want) {
			t.Errorf("%s = %x, want %x", c.field, c.got, want)
		}
	}
	if d, want := hsm.DeriveInput(RegionContext(rel, region, name)), ex.Hex("region-derive-input"); !bytes.Equal(d[:], want) {
		t.Errorf("region derive input = %x, want %x", d, want)
	}
	kek := hsm.ContextKEK(rwk, WrapContext(rel, region, name))
	if want := ex.Hex("wrap-kek"); !bytes.Equal(kek.Bytes(), want) {
		t.Errorf("wrap KEK = %x, want %x", kek.Bytes(), want)
	}

	var section []byte
	section = append(section, byte(len(SecretNames)))
	for _, n := range SecretNames {
		master := ex.Key(n + "-master")
		s := hsm.DeriveKey(master, RegionContext(rel, region, n))
		if want := ex.Hex(n + "-secret"); !bytes.Equal(s.Bytes(), want) {
			t.Errorf("%s: region secret = %x, want %x", n, s.Bytes(), want)
		}
		c := Commit(rel, region, n, s)
		if want := ex.Hex(n + "-commitment"); !bytes.Equal(c[:], want) {
			t.Errorf("%s: commitment = %x, want %x", n, c, want)
		}
		w := wrapSoft(t, rwk, WrapContext(rel, region, n), s)
		if want := ex.Hex(n + "-wrapped"); !bytes.Equal(w, want) {
			t.Errorf("%s: wrapped = %x, want %x", n, w, want)
		}
		ws := WrappedSecret{Name: n, Wrapped: ex.Hex(n + "-wrapped"), Commitment: [32]byte(ex.Hex(n + "-commitment"))}
		if got, err := unwrapSecret(rwk, rel, region, ws); err != nil || !got.Equal(s) {
			t.Errorf("%s: unwrapSecret(the page's) = %v, want the region secret", n, err)
		}
		ck := hsm.DeriveKey(master, CheckContext(rel, n))
		if want := ex.Hex(n + "-check-key"); !bytes.Equal(ck.Bytes(), want) {
			t.Errorf("%s: check key = %x, want %x", n, ck.Bytes(), want)
		}
		if cc, want := Commit(rel, PrimaryCopy, n, ck), ex.Hex(n+"-check-commitment"); !bytes.Equal(cc[:], want) {
			t.Errorf("%s: check commitment = %x, want %x", n, cc, want)
		}
		section = append(section, byte(len(n)))
		section = append(section, n...)
		section = append(section, byte(len(w)))
		section = append(section, w...)
		section = append(section, c[:]...)
	}
	want := ex.Hex("secrets")
	if !bytes.Equal(section, want) {
		t.Errorf("secrets section = %x, want %x", section, want)
	}
	// The same bytes in a bundle body, right after u16<RWK ciphertext>.
	b := &Bundle{Kind: KindRelease, Release: rel, Region: region, Iterations: 600000, OAEPHash: hsm.OAEPSHA256,
		RWK: []byte{1}, Created: time.Unix(1, 0), Issued: time.Unix(1, 0)}
	for _, n := range SecretNames {
		b.Secrets = append(b.Secrets, WrappedSecret{Name: n, Wrapped: ex.Hex(n + "-wrapped"), Commitment: [32]byte(ex.Hex(n + "-commitment"))})
	}
	body, err := b.marshalBody()
	if err != nil {
		t.Fatal(err)
	}
	off := 3 + len(rel) + 1 + len(region) + 4 + 32 + 32 + 1 + 2 + len(b.RWK)
	if len(body) < off+len(want) || !bytes.Equal(body[off:off+len(want)], want) {
		t.Errorf("the bundle body does not carry the secrets section after the RWK: %x", body)
	}
}

// wrapSoft is hsm.SecretKey.Wrap in software: RFC 5649 under the context
// KEK (docs/formats.md, "Context-bound key wrap").
func wrapSoft(t *testing.T, key secret.Key, context []byte, k secret.Key) []byte {
	t.Helper()
	kek := hsm.ContextKEK(key, context)
	block, err := aes.NewCipher(kek.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	w, err := keywrap.WrapPad(block, k.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return w
}
