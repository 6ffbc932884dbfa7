package envelope

import (
	"bytes"
	"crypto/hpke"
	"errors"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// batchOf seals n DEKs (each under its own version of hdr's key) to priv.
func batchOf(t testing.TB, priv hpke.PrivateKey, n int) (enc []byte, hs []Header, deks []secret.Key, sealed [][]byte) {
	t.Helper()
	for i := range n {
		hs = append(hs, Header{Tenant: hdr.Tenant, Type: hdr.Type, Version: uint32(i + 1)})
		deks = append(deks, newKey(t))
	}
	enc, sealed, err := SealDEKs(priv.KEM().ID(), priv.PublicKey().Bytes(), hs, deks)
	if err != nil {
		t.Fatalf("SealDEKs() error = %v", err)
	}
	return enc, hs, deks, sealed
}

func TestDeliverBatch(t *testing.T) {
	for _, tc := range deliveryKEMs {
		t.Run(tc.name, func(t *testing.T) {
			k, _ := hpke.NewKEM(tc.id)
			priv, err := k.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			enc, hs, deks, sealed := batchOf(t, priv, 3)
			if len(enc) != tc.enc {
				t.Errorf("len(enc) = %d, want %d", len(enc), tc.enc)
			}
			for i, s := range sealed {
				if len(s) != 32+16 {
					t.Errorf("len(sealed[%d]) = %d, want 48 (DEK, tag)", i, len(s))
				}
			}
			got, err := OpenDEKs(priv, tc.id, enc, hs, sealed)
			if err != nil || len(got) != 3 {
				t.Fatalf("OpenDEKs() = %d keys, %v", len(got), err)
			}
			for i := range got {
				if !got[i].Equal(deks[i]) {
					t.Errorf("OpenDEKs()[%d] is not the DEK sealed there", i)
				}
			}

			// The raw hpke API with the documented suite, info and
			// associated data opens them, in order.
			r, err := hpke.NewRecipient(enc, priv, hpke.HKDFSHA256(), hpke.AES256GCM(), append([]byte{23}, "strongroom dek batch v1"...))
			if err != nil {
				t.Fatal(err)
			}
			for i := range sealed {
				raw, err := r.Open(hs[i].marshal(), sealed[i])
				if err != nil || !bytes.Equal(raw, deks[i].Bytes()) {
					t.Errorf("Recipient.Open(documented suite, DEK %d) = %v, or not the DEK", i, err)
				}
			}

			other, _ := k.GenerateKey()
			swapped := [][]byte{sealed[1], sealed[0], sealed[2]}
			anotherType := []Header{hs[0], {Tenant: hdr.Tenant, Type: "analytics", Version: 2}, hs[2]}
			for _, bad := range []struct {
				name   string
				priv   hpke.PrivateKey
				enc    []byte
				hs     []Header
				sealed [][]byte
			}{
				{"another key pair", other, enc, hs, sealed},
				{"two DEKs swapped", priv, enc, hs, swapped},
				{"another header", priv, enc, anotherType, sealed},
				{"the last cut off", priv, enc, hs[:2], sealed[:2]},
				{"fewer headers than DEKs", priv, enc, hs[:2], sealed},
				{"enc truncated", priv, enc[:len(enc)-1], hs, sealed},
				{"a DEK truncated", priv, enc, hs, [][]byte{sealed[0], sealed[1][:47], sealed[2]}},
				{"the first DEK left out", priv, enc, hs[1:], sealed[1:]},
			} {
				if bad.name == "the last cut off" {
					// Cutting the last DEK off is not detectable by the
					// HPKE context alone: the client checks that it got
					// every DEK it asked for. The first two still open.
					if got, err := OpenDEKs(bad.priv, tc.id, bad.enc, bad.hs, bad.sealed); err != nil || len(got) != 2 {
						t.Errorf("OpenDEKs(%s) = %d keys, %v, want the first two", bad.name, len(got), err)
					}
					continue
				}
				if got, err := OpenDEKs(bad.priv, tc.id, bad.enc, bad.hs, bad.sealed); !errors.Is(err, ErrDecrypt) || got != nil {
					t.Errorf("OpenDEKs(%s) = %d keys, %v, want ErrDecrypt", bad.name, len(got), err)
				}
			}
			for i := 0; i < len(enc); i += 11 {
				e := bytes.Clone(enc)
				e[i] ^= 1
				if _, err := OpenDEKs(priv, tc.id, e, hs, sealed); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("OpenDEKs(enc byte %d altered) error = %v, want ErrDecrypt", i, err)
				}
			}
			for i := range sealed[1] {
				s := [][]byte{sealed[0], bytes.Clone(sealed[1]), sealed[2]}
				s[1][i] ^= 1
				if _, err := OpenDEKs(priv, tc.id, enc, hs, s); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("OpenDEKs(DEK 1 byte %d altered) error = %v, want ErrDecrypt", i, err)
				}
			}
			if _, err := OpenDEKs(priv, KEMX25519+1, enc, hs, sealed); !errors.Is(err, ErrKEM) {
				t.Errorf("OpenDEKs(another KEM id) error = %v, want ErrKEM", err)
			}
		})
	}
}

func TestDeliverBatchRefuses(t *testing.T) {
	k, _ := hpke.NewKEM(KEMX25519)
	priv, _ := k.GenerateKey()
	pub := priv.PublicKey().Bytes()
	dek := newKey(t)
	if _, _, err := SealDEKs(0x0010, pub, []Header{hdr}, []secret.Key{dek}); !errors.Is(err, ErrKEM) {
		t.Errorf("SealDEKs(P-256 KEM) error = %v, want ErrKEM", err)
	}
	if _, _, err := SealDEKs(KEMX25519, pub[:31], []Header{hdr}, []secret.Key{dek}); !errors.Is(err, ErrPublicKey) {
		t.Errorf("SealDEKs(31-byte key) error = %v, want ErrPublicKey", err)
	}
	if _, _, err := SealDEKs(KEMX25519, make([]byte, 32), []Header{hdr}, []secret.Key{dek}); !errors.Is(err, ErrPublicKey) {
		t.Errorf("SealDEKs(low-order point) error = %v, want ErrPublicKey", err)
	}
	if _, _, err := SealDEKs(KEMX25519, pub, []Header{hdr, hdr}, []secret.Key{dek}); err == nil {
		t.Error("SealDEKs(2 headers, 1 DEK) error = nil")
	}
	if _, _, err := SealDEKs(KEMX25519, pub, []Header{hdr}, []secret.Key{{}}); err == nil {
		t.Error("SealDEKs(an empty key) error = nil")
	}
	if _, _, err := SealDEKs(KEMX25519, pub, []Header{{Tenant: "x"}}, []secret.Key{dek}); err == nil {
		t.Error("SealDEKs(an invalid header) error = nil")
	}
	s, _, err := NewDEKSealer(KEMX25519, pub)
	if err != nil {
		t.Fatal(err)
	}
	for i := range MaxBatchDEKs {
		if _, err := s.Seal(hdr, dek); err != nil {
			t.Fatalf("Seal(DEK %d) = %v", i, err)
		}
	}
	if _, err := s.Seal(hdr, dek); err == nil {
		t.Errorf("Seal(DEK %d) error = nil, want the batch bound", MaxBatchDEKs)
	}
	if _, err := OpenDEKs(priv, KEMX25519, make([]byte, 32), make([]Header, MaxBatchDEKs+1), make([][]byte, MaxBatchDEKs+1)); !errors.Is(err, ErrDecrypt) {
		t.Errorf("OpenDEKs(%d DEKs) error = %v, want ErrDecrypt", MaxBatchDEKs+1, err)
	}
}

// FuzzOpenDEKs: whatever enc and sealed DEKs a server answers, OpenDEKs
// returns DEKs only for the batch sealed to the client, never panics, and
// fails with ErrDecrypt.
func FuzzOpenDEKs(f *testing.F) {
	k, _ := hpke.NewKEM(KEMX25519)
	priv, _ := k.GenerateKey()
	enc, _, _, sealed := batchOf(f, priv, 2)
	f.Add(enc, sealed[0], sealed[1])
	f.Add(enc[:31], sealed[0], sealed[1])
	f.Add(enc, sealed[1], sealed[0])
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, enc, s0, s1 []byte) {
		hs := []Header{{Tenant: hdr.Tenant, Type: hdr.Type, Version: 1}, {Tenant: hdr.Tenant, Type: hdr.Type, Version: 2}}
		keys, err := OpenDEKs(priv, KEMX25519, enc, hs, [][]byte{s0, s1})
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || keys != nil {
				t.Fatalf("OpenDEKs() = %d keys, %v, want ErrDecrypt", len(keys), err)
			}
			return
		}
		if len(keys) != 2 || !bytes.Equal(s0, sealed[0]) || !bytes.Equal(s1, sealed[1]) {
			t.Fatalf("OpenDEKs() opened a batch that was not sealed to it")
		}
	})
}
