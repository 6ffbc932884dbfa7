package derive

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// seqKey returns the key whose bytes are from, from+1, ..., from+31.
func seqKey(t testing.TB, from byte) secret.Key {
	t.Helper()
	b := make([]byte, secret.Size)
	for i := range b {
		b[i] = from + byte(i)
	}
	k, err := secret.New(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// katInput is the input of the known-answer test.
func katInput(t testing.TB) Input {
	return Input{
		Release:      "2026-1",
		Iterations:   100000,
		Seed:         seqKey(t, 0x00),
		Salt:         seqKey(t, 0x20),
		TenantID:     "00D000000000001",
		KeyType:      "data",
		Version:      1,
		TenantSecret: seqKey(t, 0x40),
	}
}

// The known answer was computed independently of this package, by building
// the framed password and salt by hand and running OpenSSL 3.0.19:
//
//	openssl kdf -keylen 32 -kdfopt digest:SHA256 \
//	  -kdfopt hexpass:1a7374726f6e67726f6f6d2064656b2070617373776f726420763120000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f \
//	  -kdfopt hexsalt:167374726f6e67726f6f6d2064656b2073616c7420763120202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f06323032362d31000f303044303030303030303030303031046461746100000001 \
//	  -kdfopt iter:100000 PBKDF2
//
// and checked again with Python's hashlib.pbkdf2_hmac("sha256", P, S, 100000, 32).
//
// The password is u8<"strongroom dek password v1"> (0x1a = 26 bytes),
// u8<seed 00..1f>, u8<tenant secret 40..5f>. The salt is
// u8<"strongroom dek salt v1"> (0x16 = 22 bytes), u8<KDF salt 20..3f>,
// u8<"2026-1">, u16<"00D000000000001"> (0x000f), u8<"data">, u32 1.
const (
	katPassword = "1a7374726f6e67726f6f6d2064656b2070617373776f726420763120000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	katSalt     = "167374726f6e67726f6f6d2064656b2073616c7420763120202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f06323032362d31000f303044303030303030303030303031046461746100000001"
	katDEK      = "c9c4b2ebc27448c143597f9bcf9a75627687b61fc42e2d8dcedc7314f6c13347"
)

func TestKnownAnswer(t *testing.T) {
	t.Parallel()
	in := katInput(t)
	password, salt := frame(in)
	if got := hex.EncodeToString(password); got != katPassword {
		t.Errorf("password:\n got %s\nwant %s", got, katPassword)
	}
	if got := hex.EncodeToString(salt); got != katSalt {
		t.Errorf("salt:\n got %s\nwant %s", got, katSalt)
	}
	if len(password) != cap(password) || len(salt) != cap(salt) {
		t.Errorf("framing buffers over-allocated: password %d/%d, salt %d/%d", len(password), cap(password), len(salt), cap(salt))
	}
	k, err := Key(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(k.Bytes()); got != katDEK {
		t.Fatalf("DEK:\n got %s\nwant %s", got, katDEK)
	}
	// The same through FromRelease and DEK.
	r := &release.Release{ID: in.Release, Iterations: in.Iterations, Seed: in.Seed, Salt: in.Salt}
	k2, err := DEK(ModePBKDF2, FromRelease(r, in.TenantID, in.KeyType, in.Version, in.TenantSecret))
	if err != nil || !k2.Equal(k) {
		t.Fatalf("FromRelease + DEK: %v", err)
	}
	// Deriving does not consume or alter its inputs.
	if !in.Seed.Equal(seqKey(t, 0)) || !in.Salt.Equal(seqKey(t, 0x20)) || !in.TenantSecret.Equal(seqKey(t, 0x40)) {
		t.Fatal("inputs changed")
	}
}

// TestEveryInputMatters derives the KAT input with one field changed at a
// time; every result must differ from the others and from the KAT.
func TestEveryInputMatters(t *testing.T) {
	t.Parallel()
	variants := map[string]func(*Input){
		"tenant":     func(in *Input) { in.TenantID = "00D000000000002" },
		"key type":   func(in *Input) { in.KeyType = "search" },
		"version":    func(in *Input) { in.Version = 2 },
		"release":    func(in *Input) { in.Release = "2026-2" },
		"seed":       func(in *Input) { in.Seed = seqKey(t, 0x01) },
		"salt":       func(in *Input) { in.Salt = seqKey(t, 0x21) },
		"secret":     func(in *Input) { in.TenantSecret = seqKey(t, 0x41) },
		"iterations": func(in *Input) { in.Iterations = 100001 },
		// The seed and the KDF salt swapped: both are 32 bytes, but one
		// goes into the password and the other into the salt.
		"seed/salt swapped": func(in *Input) { in.Seed, in.Salt = in.Salt, in.Seed },
		// The seed and the tenant secret swapped, both in the password.
		"seed/secret swapped": func(in *Input) { in.Seed, in.TenantSecret = in.TenantSecret, in.Seed },
	}
	got := deriveAll(t, variants)
	seen := map[string]string{katDEK: "known answer"}
	for name, k := range got {
		h := hex.EncodeToString(k.Bytes())
		if other, dup := seen[h]; dup {
			t.Errorf("%s gives the same DEK as %s", name, other)
		}
		seen[h] = name
	}
}

// TestFraming checks that moving bytes from one id to the next never gives
// the same salt (and so never the same DEK), as plain concatenation would.
func TestFraming(t *testing.T) {
	t.Parallel()
	type ids struct{ release, tenant, keyType string }
	pairs := [][2]ids{
		{{"2026-1", "ab", "c"}, {"2026-1", "a", "bc"}},
		{{"2026-1", "a", "bc"}, {"2026-1a", "", "bc"}}, // (refused: empty tenant)
		{{"2026-1", "xa", "b"}, {"2026-1x", "a", "b"}},
		{{"r", "t", "data"}, {"r", "td", "ata"}},
	}
	for _, p := range pairs {
		var salts [2][]byte
		var valid [2]bool
		for i, x := range p {
			in := katInput(t)
			in.Release, in.TenantID, in.KeyType = x.release, x.tenant, x.keyType
			if in.validate() != nil {
				continue
			}
			valid[i] = true
			_, salts[i] = frame(in)
		}
		if p[0].release+p[0].tenant+p[0].keyType != p[1].release+p[1].tenant+p[1].keyType {
			t.Fatalf("bad test case %v: the concatenations differ", p)
		}
		if valid[0] && valid[1] && bytes.Equal(salts[0], salts[1]) {
			t.Errorf("%v and %v frame to the same salt", p[0], p[1])
		}
	}

	// And by full derivation for the case the brief names.
	got := deriveAll(t, map[string]func(*Input){
		`tenant "ab", type "c"`: func(in *Input) { in.TenantID, in.KeyType = "ab", "c" },
		`tenant "a", type "bc"`: func(in *Input) { in.TenantID, in.KeyType = "a", "bc" },
	})
	var ks []secret.Key
	for _, k := range got {
		ks = append(ks, k)
	}
	if ks[0].Equal(ks[1]) {
		t.Fatal(`tenant "ab" + type "c" and tenant "a" + type "bc" give the same DEK`)
	}
}

// deriveAll derives the KAT input changed by each function, in parallel.
func deriveAll(t *testing.T, variants map[string]func(*Input)) map[string]secret.Key {
	t.Helper()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]secret.Key{}
	)
	for name, change := range variants {
		in := katInput(t)
		change(&in)
		wg.Go(func() {
			k, err := Key(in)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			out[name] = k
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

func TestIterationBounds(t *testing.T) {
	t.Parallel()
	for _, n := range []uint32{0, 1, 1000, MinIterations - 1, MaxIterations + 1, 1<<32 - 1} {
		in := katInput(t)
		in.Iterations = n
		if k, err := Key(in); !errors.Is(err, ErrInput) || !k.IsZero() {
			t.Errorf("%d iterations: %v", n, err)
		}
	}
	// The bounds themselves are accepted (the validation alone: deriving at
	// 10 million iterations would take seconds).
	for _, n := range []uint32{MinIterations, DefaultIterations, MaxIterations} {
		in := katInput(t)
		in.Iterations = n
		if err := in.validate(); err != nil {
			t.Errorf("%d iterations: %v", n, err)
		}
	}
	if MinIterations != 100_000 || DefaultIterations != 600_000 || MaxIterations != 10_000_000 {
		t.Errorf("iteration constants %d %d %d", MinIterations, DefaultIterations, MaxIterations)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	destroyed := seqKey(t, 1)
	destroyed.Destroy()
	for name, change := range map[string]func(*Input){
		"empty release":     func(in *Input) { in.Release = "" },
		"bad release":       func(in *Input) { in.Release = "2026/1" },
		"long release":      func(in *Input) { in.Release = strings.Repeat("r", 65) },
		"empty tenant":      func(in *Input) { in.TenantID = "" },
		"long tenant":       func(in *Input) { in.TenantID = strings.Repeat("t", MaxTenantID+1) },
		"empty key type":    func(in *Input) { in.KeyType = "" },
		"long key type":     func(in *Input) { in.KeyType = strings.Repeat("k", MaxKeyType+1) },
		"version 0":         func(in *Input) { in.Version = 0 },
		"no seed":           func(in *Input) { in.Seed = secret.Key{} },
		"no salt":           func(in *Input) { in.Salt = secret.Key{} },
		"no tenant secret":  func(in *Input) { in.TenantSecret = secret.Key{} },
		"destroyed seed":    func(in *Input) { in.Seed = destroyed },
		"destroyed salt":    func(in *Input) { in.Salt = destroyed },
		"destroyed secret":  func(in *Input) { in.TenantSecret = destroyed },
		"no release (nil)":  func(in *Input) { *in = FromRelease(nil, in.TenantID, in.KeyType, in.Version, in.TenantSecret) },
		"all zero, via New": func(in *Input) { in.Seed, _ = secret.New(make([]byte, secret.Size)) },
		"release with seed only": func(in *Input) {
			*in = FromRelease(&release.Release{ID: "x", Iterations: 100000, Seed: in.Seed}, "t", "k", 1, in.TenantSecret)
		},
	} {
		in := katInput(t)
		change(&in)
		k, err := Key(in)
		if !errors.Is(err, ErrInput) || !k.IsZero() {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "REDACTED") {
			t.Errorf("%s: error mentions a key: %v", name, err)
		}
	}
	// The limits themselves are accepted.
	in := katInput(t)
	in.Release = strings.Repeat("r", 64)
	in.TenantID = strings.Repeat("t", MaxTenantID)
	in.KeyType = strings.Repeat("k", MaxKeyType)
	in.Version = 1<<32 - 1
	if err := in.validate(); err != nil {
		t.Fatal(err)
	}
	password, salt := frame(in)
	if len(password) != passwordLen || len(salt) != saltFixed+64+MaxTenantID+MaxKeyType {
		t.Fatalf("framed lengths %d, %d", len(password), len(salt))
	}
}

func TestMode(t *testing.T) {
	t.Parallel()
	for _, m := range []Mode{ModePBKDF2, ModeNone} {
		p, err := ParseMode(m.String())
		if err != nil || p != m {
			t.Errorf("%v: ParseMode(String) = %v, %v", m, p, err)
		}
		txt, err := m.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var u Mode
		if err := u.UnmarshalText(txt); err != nil || u != m {
			t.Errorf("%v: text round trip: %v, %v", m, u, err)
		}
	}
	if ModePBKDF2.String() != "pbkdf2" || ModeNone.String() != "none" || Mode(0).String() != "mode(0)" {
		t.Error("mode names")
	}
	for _, s := range []string{"", "NONE", "PBKDF2", "pbkdf2 ", "hkdf"} {
		if _, err := ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) accepted", s)
		}
	}
	if _, err := Mode(0).MarshalText(); err == nil {
		t.Error("zero mode marshalled")
	}
	var u Mode = ModeNone
	if err := u.UnmarshalText([]byte("x")); err == nil || u != ModeNone {
		t.Error("bad text accepted or mode changed")
	}
	if Mode(0).Valid() || Mode(3).Valid() {
		t.Error("unknown modes valid")
	}
}

func TestModeNone(t *testing.T) {
	t.Parallel()
	ts := seqKey(t, 0x40)
	// With derivation opted out the release is not consulted at all.
	k, err := DEK(ModeNone, Input{TenantSecret: ts})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(ts) {
		t.Fatal("mode none: the DEK is not the tenant's value")
	}
	k.Destroy()
	if !ts.Equal(seqKey(t, 0x40)) {
		t.Fatal("destroying the DEK wiped the tenant secret")
	}
	for name, in := range map[string]Input{
		"no secret":        {},
		"destroyed secret": {TenantSecret: func() secret.Key { k := seqKey(t, 1); k.Destroy(); return k }()},
	} {
		if _, err := DEK(ModeNone, in); !errors.Is(err, ErrInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DEK(Mode(0), katInput(t)); !errors.Is(err, ErrInput) {
		t.Errorf("zero mode: %v", err)
	}
}

func benchmarkKey(b *testing.B, iterations uint32) {
	b.ReportAllocs()
	in := katInput(b)
	in.Iterations = iterations
	for b.Loop() {
		k, err := Key(in)
		if err != nil {
			b.Fatal(err)
		}
		k.Destroy()
	}
}

// BenchmarkKeyDefault derives at the default 600 000 iterations, what a
// cold DEK costs in a release made with the default plan.
func BenchmarkKeyDefault(b *testing.B) { benchmarkKey(b, DefaultIterations) }

// BenchmarkKeyMin derives at the minimum, 100 000 iterations.
func BenchmarkKeyMin(b *testing.B) { benchmarkKey(b, MinIterations) }
