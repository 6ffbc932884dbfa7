package officer

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// testKDF keeps scrypt cheap in tests; the format and code paths are the same.
var testKDF = kdfParams{logN: 10, r: 8, p: 1}

var pass = []byte("correct horse battery staple")

func newTest(t testing.TB, name string) (keyPEM, pubPEM []byte) {
	t.Helper()
	keyPEM, pubPEM, err := newWithKDF(name, pass, now, testKDF)
	if err != nil {
		t.Fatalf("New(%q) error = %v", name, err)
	}
	return keyPEM, pubPEM
}

func der(b []byte) []byte { blk, _ := pem.Decode(b); return blk.Bytes }

func TestNewOpenRoundTrip(t *testing.T) {
	keyPEM, pubPEM := newTest(t, "alice")
	pub, err := ParsePublic(pubPEM)
	if err != nil {
		t.Fatalf("ParsePublic() error = %v", err)
	}
	if pub.Name != "alice" || !pub.Created.Equal(now) || len(pub.Key) != ed25519.PublicKeySize {
		t.Errorf("public key = %q %v %x", pub.Name, pub.Created, pub.Key)
	}
	if !bytes.Equal(pub.Marshal(), der(pubPEM)) || !bytes.Equal(pub.PEM(), pubPEM) {
		t.Error("Marshal/PEM do not give back the file")
	}
	again, err := ParsePublicDER(pub.Marshal())
	if err != nil || again.ID() != pub.ID() {
		t.Errorf("ParsePublicDER(Marshal()) = %v", err)
	}
	s, err := Open(keyPEM, pass)
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	defer s.Destroy()
	if !bytes.Equal(s.Public().PEM(), pubPEM) {
		t.Error("Signer.Public() differs from the public key file New wrote")
	}
	sig := s.Sign("strongroom test v1", []byte("body"))
	if !Verify(pub.Key, "strongroom test v1", []byte("body"), sig) {
		t.Error("Verify(Sign()) = false")
	}
	if Verify(pub.Key, "strongroom other v1", []byte("body"), sig) {
		t.Error("a signature verified under another domain")
	}
	if Verify(pub.Key, "strongroom test v1", []byte("bodY"), sig) {
		t.Error("a signature verified over another body")
	}
	if id := pub.ID(); pub.ShortID() != hex.EncodeToString(id[:8]) {
		t.Error("ShortID is not the first 8 bytes of ID")
	}
}

func TestDefaultKDF(t *testing.T) {
	keyPEM, _, err := New("bob", pass, now)
	if err != nil {
		t.Fatal(err)
	}
	k, err := parseKeyFile(der(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	if k.kdf != defaultKDF {
		t.Errorf("kdf = %+v, want %+v", k.kdf, defaultKDF)
	}
	s, err := Open(keyPEM, pass)
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	s.Destroy()
}

func TestTwoOfficersDiffer(t *testing.T) {
	_, a := newTest(t, "alice")
	_, b := newTest(t, "alice")
	pa, _ := ParsePublic(a)
	pb, _ := ParsePublic(b)
	if pa.ID() == pb.ID() {
		t.Error("two New calls made the same key")
	}
}

func TestWrongPassphrase(t *testing.T) {
	keyPEM, _ := newTest(t, "alice")
	before := bytes.Clone(keyPEM)
	_, err := Open(keyPEM, []byte("wrong"))
	if !errors.Is(err, ErrWrongPassphrase) || errors.Is(err, ErrDamaged) {
		t.Fatalf("Open(wrong passphrase) error = %v, want ErrWrongPassphrase", err)
	}
	if want := "officer: wrong passphrase for the officer key of alice"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if _, err := Open(keyPEM, nil); err == nil {
		t.Error("Open(empty passphrase) error = nil")
	}
	if !bytes.Equal(keyPEM, before) {
		t.Error("Open changed its input")
	}
	s, err := Open(keyPEM, pass)
	if err != nil {
		t.Fatalf("Open(right passphrase) after a wrong one: %v", err)
	}
	s.Destroy()
}

func TestNewRefusesBadInput(t *testing.T) {
	if _, _, err := newWithKDF("alice", nil, now, testKDF); err == nil {
		t.Error("New(empty passphrase) error = nil")
	}
	if _, _, err := newWithKDF("al ice", pass, now, testKDF); err == nil || !strings.Contains(err.Error(), "invalid officer name") {
		t.Errorf("New(bad name) error = %v", err)
	}
	if _, _, err := newWithKDF("alice", pass, time.Unix(-1, 0), testKDF); err == nil {
		t.Error("New(before 1970) error = nil")
	}
	if _, _, err := newWithKDF("alice", pass, now, kdfParams{logN: 9, r: 8, p: 1}); err == nil {
		t.Error("New(scrypt too weak) error = nil")
	}
}

func TestInvalidNames(t *testing.T) {
	for _, n := range []string{"", ".alice", "-a", "_a", "al ice", "alice\n", "élise", "a/b", strings.Repeat("a", 65)} {
		if ValidName(n) == nil {
			t.Errorf("ValidName(%q) = nil, want an error", n)
		}
	}
	for _, n := range []string{"alice", "A", "0", "bob.smith", "carol_2-x", strings.Repeat("a", 64)} {
		if err := ValidName(n); err != nil {
			t.Errorf("ValidName(%q) = %v", n, err)
		}
	}
}

// everyByteAltered calls check on a copy of der with each byte changed in
// turn, then truncated, then with a byte appended.
func everyByteAltered(t *testing.T, typ string, der []byte, check func([]byte) error) {
	t.Helper()
	for i := range der {
		for _, flip := range []byte{0x01, 0x80} {
			bad := bytes.Clone(der)
			bad[i] ^= flip
			if err := check(encodePEM(typ, bad)); err == nil {
				t.Fatalf("%s with byte %d ^ %#x accepted", typ, i, flip)
			}
		}
	}
	if err := check(encodePEM(typ, der[:len(der)-1])); err == nil {
		t.Fatalf("truncated %s accepted", typ)
	}
	if err := check(encodePEM(typ, append(bytes.Clone(der), 0))); err == nil {
		t.Fatalf("%s with a trailing byte accepted", typ)
	}
}

func TestPublicAlteredRefused(t *testing.T) {
	_, pubPEM := newTest(t, "alice")
	everyByteAltered(t, PublicPEMType, der(pubPEM), func(b []byte) error { _, err := ParsePublic(b); return err })
}

func TestKeyFileAlteredRefused(t *testing.T) {
	keyPEM, _ := newTest(t, "alice")
	everyByteAltered(t, KeyPEMType, der(keyPEM), func(b []byte) error {
		s, err := Open(b, pass)
		if err == nil {
			s.Destroy()
			return nil
		}
		if errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("accidental damage reported as a wrong passphrase: %v", err)
		}
		return err
	})
}

// alter changes a parsed key file and recomputes its checksum, as someone
// altering it on purpose would.
func alter(t *testing.T, keyPEM []byte, fn func(k *keyFile)) []byte {
	t.Helper()
	k, err := parseKeyFile(der(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	fn(k)
	k.checksum = k.sum()
	return encodePEM(KeyPEMType, k.marshal())
}

func TestKeyFileAlteredOnPurpose(t *testing.T) {
	keyPEM, _ := newTest(t, "alice")
	_, otherPEM := newTest(t, "mallory")
	other, _ := ParsePublic(otherPEM)
	for name, tc := range map[string]struct {
		fn   func(k *keyFile)
		want error
	}{
		"sealed seed":         {func(k *keyFile) { k.sealed[3] ^= 1 }, ErrDamaged},
		"GCM tag":             {func(k *keyFile) { k.sealed[sealedSize-1] ^= 1 }, ErrDamaged},
		"nonce":               {func(k *keyFile) { k.nonce[0] ^= 1 }, ErrDamaged},
		"name":                {func(k *keyFile) { k.name = "mallory" }, ErrDamaged},
		"public key":          {func(k *keyFile) { k.pub = other.Key }, ErrDamaged},
		"created":             {func(k *keyFile) { k.created = k.created.Add(time.Second) }, ErrDamaged},
		"salt (undetectable)": {func(k *keyFile) { k.salt[0] ^= 1 }, ErrWrongPassphrase},
	} {
		_, err := Open(alter(t, keyPEM, tc.fn), pass)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s altered: Open() error = %v, want %v", name, err, tc.want)
		}
	}
}

func TestKeyFileForAnotherKey(t *testing.T) {
	_, aPEM := newTest(t, "alice")
	bKey, _ := newTest(t, "bob")
	a, _ := ParsePublic(aPEM)
	b, err := Open(bKey, pass)
	if err != nil {
		t.Fatal(err)
	}
	// bob's seed sealed under a header naming alice's public key.
	mixed := &Signer{pub: a, seed: b.seed}
	keyDER, err := sealKeyFile(mixed, pass, testKDF)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(encodePEM(KeyPEMType, keyDER), pass); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "does not match its public key") {
		t.Errorf("Open(seed of another key) error = %v", err)
	}
}

func TestWrongFileKinds(t *testing.T) {
	keyPEM, pubPEM := newTest(t, "alice")
	if _, err := ParsePublic(keyPEM); err == nil || !strings.Contains(err.Error(), PublicPEMType) {
		t.Errorf("ParsePublic(key file) error = %v, want it to name the expected type", err)
	}
	if _, err := Open(pubPEM, pass); err == nil || !strings.Contains(err.Error(), KeyPEMType) {
		t.Errorf("Open(public key file) error = %v, want it to name the expected type", err)
	}
	if _, err := ParsePublic(append(bytes.Clone(pubPEM), "junk"...)); err == nil {
		t.Error("ParsePublic(trailing junk) error = nil")
	}
}

func TestSmallOrderKeysRefused(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1
	// A "signature" by the identity point that verifies for any message:
	// R = B, S = 1, since [1]B = B + [k]identity.
	base := mustHex("5866666666666666666666666666666666666666666666666666666666666666")
	sig := append(bytes.Clone(base), make([]byte, 32)...)
	sig[32] = 1
	msg := signedMessage("strongroom test v1", []byte("anything"))
	if !ed25519.Verify(identity, msg, sig) {
		t.Fatal("the forged signature does not even pass crypto/ed25519; the test is wrong")
	}
	if Verify(identity, "strongroom test v1", []byte("anything"), sig) {
		t.Error("Verify accepted a signature by the identity point")
	}
	p := leInt(mustHex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))
	for _, enc := range []string{
		"0100000000000000000000000000000000000000000000000000000000000000", // identity
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // order 2
		"0000000000000000000000000000000000000000000000000000000000000000", // order 4
		"0000000000000000000000000000000000000000000000000000000000000080", // order 4, other x
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", // order 8
		"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
		"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p: non-canonical 0
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // y = p+1: non-canonical 1
	} {
		if checkKey(mustHex(enc)) == nil {
			t.Errorf("checkKey(%s) = nil, want a refusal", enc)
		}
	}
	if p.Cmp(fieldP) != 0 {
		t.Fatal("fieldP is not 2^255-19")
	}
	_, pubPEM := newTest(t, "alice")
	pub, _ := ParsePublic(pubPEM)
	if err := checkKey(pub.Key); err != nil {
		t.Errorf("checkKey(real key) = %v", err)
	}
}

func TestSignerRedactsAndDestroys(t *testing.T) {
	keyPEM, _ := newTest(t, "alice")
	s, err := Open(keyPEM, pass)
	if err != nil {
		t.Fatal(err)
	}
	seed := hex.EncodeToString(s.seed.Bytes())
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%s"} {
		out := fmt.Sprintf(verb, s)
		if strings.Contains(out, seed) || strings.Contains(fmt.Sprintf(verb, s.seed), seed) {
			t.Errorf("Sprintf(%q, signer) reveals the seed", verb)
		}
	}
	s.Destroy()
	s.Destroy()
	if !bytes.Equal(s.seed.Bytes(), make([]byte, 32)) {
		t.Error("Destroy left the seed in place")
	}
	defer func() {
		if recover() == nil {
			t.Error("Sign after Destroy did not panic")
		}
	}()
	s.Sign("strongroom test v1", nil)
}

func TestSignRefusesBadDomain(t *testing.T) {
	keyPEM, _ := newTest(t, "alice")
	s, _ := Open(keyPEM, pass)
	defer s.Destroy()
	for _, d := range []string{"", "a\x00b"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Sign(domain %q) did not panic", d)
				}
			}()
			s.Sign(d, nil)
		}()
	}
}
