package officer

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/docs"
)

const ceremonyDoc = "../../docs/ceremony-formats.md"

// TestDocPublic makes the officer public keys of docs/ceremony-formats.md
// again from their seeds (Ed25519 is deterministic) and parses them.
func TestDocPublic(t *testing.T) {
	for _, name := range []string{"officer-public", "officer-public-2"} {
		t.Run(name, func(t *testing.T) {
			ex := docs.KAT(t, ceremonyDoc, name)
			s, err := newSigner(ex.Hex("seed"), ex.Text("name"), time.Unix(int64(ex.Uint("created")), 0).UTC())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Destroy()
			pub := s.Public()
			if want := ex.Hex("key"); !bytes.Equal(pub.Key, want) {
				t.Errorf("public key = %x, want %x", pub.Key, want)
			}
			if id, want := pub.ID(), ex.Hex("officer-id"); !bytes.Equal(id[:], want) {
				t.Errorf("ID() = %x, want %x", id, want)
			}
			body := ex.Hex("body")
			if got := pub.body(); !bytes.Equal(got, body) {
				t.Errorf("body = %x, want %x", got, body)
			}
			if got := ex.Text("domain"); got != publicDomain {
				t.Errorf("domain = %q, want %q", got, publicDomain)
			}
			sig := ex.Hex("signature")
			if got := s.Sign(publicDomain, body); !bytes.Equal(got, sig) {
				t.Errorf("self-signature = %x, want %x", got, sig)
			}
			want := ex.Hex("public")
			if got := pub.Marshal(); !bytes.Equal(got, want) {
				t.Errorf("Public().Marshal() = %x, want %x", got, want)
			}
			p, err := ParsePublicDER(want)
			if err != nil || p.Name != pub.Name || !p.Key.Equal(pub.Key) || !p.Created.Equal(pub.Created) {
				t.Errorf("ParsePublicDER(the page's key) = %+v, %v", p, err)
			}
		})
	}
}

// TestDocKeyFile seals the officer key file of docs/ceremony-formats.md
// again from its inputs (salt and nonce given, scrypt parameters as the
// file records them) and opens it with the page's passphrase.
func TestDocKeyFile(t *testing.T) {
	ex := docs.KAT(t, ceremonyDoc, "officer-key")
	seed := ex.Hex("seed")
	s, err := newSigner(seed, ex.Text("name"), time.Unix(int64(ex.Uint("created")), 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	k := &keyFile{
		name: s.pub.Name, pub: s.pub.Key, created: s.pub.Created,
		kdf: kdfParams{logN: uint8(ex.Uint("log-n")), r: uint8(ex.Uint("r")), p: uint8(ex.Uint("p"))},
	}
	copy(k.salt[:], ex.Hex("salt"))
	copy(k.nonce[:], ex.Hex("nonce"))
	pass := []byte(ex.Text("passphrase"))
	key, check, err := deriveKey(pass, k)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Destroy()
	if want := ex.Hex("k"); !bytes.Equal(key.Bytes(), want) {
		t.Errorf("K = %x, want %x", key.Bytes(), want)
	}
	if got := ex.Text("check-message"); got != checkMessage {
		t.Errorf("check message = %q, want %q", got, checkMessage)
	}
	if want := ex.Hex("check"); !bytes.Equal(check[:], want) {
		t.Errorf("check = %x, want %x", check, want)
	}
	k.check = check
	header := ex.Hex("header")
	if got := k.header(); !bytes.Equal(got, header) {
		t.Errorf("header = %x, want %x", got, header)
	}
	sealed := docs.GCM(t, key.Bytes(), k.nonce[:], seed, header)[nonceSize:]
	if want := ex.Hex("sealed"); !bytes.Equal(sealed, want) {
		t.Errorf("sealed = %x, want %x", sealed, want)
	}
	copy(k.sealed[:], sealed)
	k.checksum = k.sum()
	if want := ex.Hex("checksum"); !bytes.Equal(k.checksum[:], want) {
		t.Errorf("checksum = %x, want %x", k.checksum, want)
	}
	file := ex.Hex("file")
	if got := k.marshal(); !bytes.Equal(got, file) {
		t.Errorf("key file = %x, want %x", got, file)
	}
	opened, err := Open(encodePEM(KeyPEMType, file), pass)
	if err != nil {
		t.Fatalf("Open(the page's key file) = %v", err)
	}
	defer opened.Destroy()
	if want := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey); !opened.Public().Key.Equal(want) {
		t.Errorf("Open(the page's key file) holds key %x, want %x", opened.Public().Key, want)
	}
}
