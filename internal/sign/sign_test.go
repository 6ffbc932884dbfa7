package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

const testDomain = "strongroom test object v1"

func newKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMessage(t *testing.T) {
	tests := []struct {
		domain string
		body   []byte
		want   string
	}{
		{"d", []byte{1, 2}, "6400" + "0102"},
		{"d", nil, "6400"},
		{"", []byte{0}, "00" + "00"},
		{"ab v1", []byte("x"), "61622076310078"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(Message(tt.domain, tt.body)); got != tt.want {
			t.Errorf("Message(%q, %x) = %s, want %s", tt.domain, tt.body, got, tt.want)
		}
	}
}

func TestAppendVerify(t *testing.T) {
	key := newKey(t, elliptic.P384())
	body := []byte("\x01 a body of some format")
	signed, sig, err := Append(key, testDomain, body)
	if err != nil {
		t.Fatalf("Append() error = %v", err)
	}
	// body || u16 length || signature, nothing else.
	want := append(binary.BigEndian.AppendUint16(bytes.Clone(body), uint16(len(sig))), sig...)
	if !bytes.Equal(signed, want) {
		t.Fatalf("Append() = %x, want body || u16<> sig = %x", signed, want)
	}
	if !Verify(&key.PublicKey, testDomain, body, sig) {
		t.Fatal("Verify(Append()) = false, want true")
	}
	other := newKey(t, elliptic.P384())
	altered := bytes.Clone(body)
	altered[len(altered)-1] ^= 1
	badSig := bytes.Clone(sig)
	badSig[len(badSig)-1] ^= 1
	tests := []struct {
		name   string
		pub    *ecdsa.PublicKey
		domain string
		body   []byte
		sig    []byte
	}{
		{"another domain", &key.PublicKey, "strongroom other object v1", body, sig},
		{"domain prefix", &key.PublicKey, testDomain[:len(testDomain)-1], body, sig},
		{"altered body", &key.PublicKey, testDomain, altered, sig},
		{"truncated body", &key.PublicKey, testDomain, body[:len(body)-1], sig},
		{"altered signature", &key.PublicKey, testDomain, body, badSig},
		{"no signature", &key.PublicKey, testDomain, body, nil},
		{"another key", &other.PublicKey, testDomain, body, sig},
		{"no key", nil, testDomain, body, sig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if Verify(tt.pub, tt.domain, tt.body, tt.sig) {
				t.Errorf("Verify(%q, %q, %x) = true, want false", tt.domain, tt.body, tt.sig)
			}
		})
	}
}

// A signature made under one domain verifies under that domain only, even
// where one domain is a prefix of another.
func TestDomainSeparation(t *testing.T) {
	key := newKey(t, elliptic.P384())
	body := []byte("\x01 the same body")
	domains := []string{"strongroom a v1", "strongroom a v12", "strongroom b v1", "strongroom a", ""}
	sigs := make([][]byte, len(domains))
	for i, d := range domains {
		var err error
		if _, sigs[i], err = Append(key, d, body); err != nil {
			t.Fatal(err)
		}
	}
	for i, signedUnder := range domains {
		for _, d := range domains {
			if got, want := Verify(&key.PublicKey, d, body, sigs[i]), d == signedUnder; got != want {
				t.Errorf("Verify(%q) of a signature under %q = %v, want %v", d, signedUnder, got, want)
			}
		}
	}
}

// A domain with a zero byte would make the message ambiguous:
// ("a\x00", "b") and ("a", "\x00b") would sign the same bytes.
func TestMessagePanicsOnZeroByte(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error(`Message("a\x00", "b") did not panic`)
		}
	}()
	Message("a\x00", []byte("b"))
}

func TestAppendRefusesOtherKeys(t *testing.T) {
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, signer := range map[string]crypto.Signer{
		"P-256":   newKey(t, elliptic.P256()),
		"Ed25519": ed,
	} {
		if signed, _, err := Append(signer, testDomain, []byte("body")); err == nil {
			t.Errorf("Append(%s signer) = %x, want an error", name, signed)
		}
	}
}

func TestKeyRoundTrip(t *testing.T) {
	key := newKey(t, elliptic.P384())
	var b cryptobyte.Builder
	AddKey(&b, &key.PublicKey)
	b.AddUint8(0xaa) // what follows the key must be left alone
	enc, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if want := append(binary.BigEndian.AppendUint16(nil, uint16(len(der))), der...); !bytes.HasPrefix(enc, want) {
		t.Fatalf("AddKey() = %x, want u16<> PKIX DER %x", enc, want)
	}
	s := cryptobyte.String(enc)
	got, err := ReadKey(&s)
	if err != nil || !got.Equal(&key.PublicKey) {
		t.Fatalf("ReadKey(AddKey()) = %v, %v, want the key back", got, err)
	}
	if !bytes.Equal(s, []byte{0xaa}) {
		t.Errorf("ReadKey() left %x, want aa", []byte(s))
	}
}

func TestReadKeyRefuses(t *testing.T) {
	pkix := func(pub any) []byte {
		t.Helper()
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	prefixed := func(der []byte) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(der))), der...) }
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ed, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384 := prefixed(pkix(&newKey(t, elliptic.P384()).PublicKey))
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"P-256", prefixed(pkix(&newKey(t, elliptic.P256()).PublicKey)), "want P-384"},
		{"P-521", prefixed(pkix(&newKey(t, elliptic.P521()).PublicKey)), "want P-384"},
		{"RSA", prefixed(pkix(&rk.PublicKey)), "want ECDSA P-384"},
		{"Ed25519", prefixed(pkix(ed)), "want ECDSA P-384"},
		{"not PKIX", prefixed([]byte("not a key")), "bad signing public key"},
		{"empty", nil, "truncated"},
		{"truncated", p384[:len(p384)-1], "truncated"},
		{"too long", prefixed(make([]byte, maxKeySize+1)), "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cryptobyte.String(tt.in)
			pub, err := ReadKey(&s)
			if err == nil || !strings.HasPrefix(err.Error(), "sign: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadKey(%s) = %v, %v, want an error containing %q", tt.name, pub, err, tt.want)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	key := newKey(t, elliptic.P384())
	id, err := KeyIDOf(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if want := KeyID(sha256.Sum256(der)); id != want {
		t.Errorf("KeyIDOf() = %s, want SHA-256 of the PKIX DER %s", id, want)
	}
	if got, want := id.String(), hex.EncodeToString(id[:]); got != want {
		t.Errorf("KeyID.String() = %s, want %s", got, want)
	}
	if got, want := id.Short(), id.String()[:16]; got != want {
		t.Errorf("KeyID.Short() = %s, want %s", got, want)
	}
	if _, err := KeyIDOf(struct{}{}); err == nil {
		t.Error("KeyIDOf(struct{}{}) error = nil, want an error")
	}
}
