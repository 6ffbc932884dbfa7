package cacheonly_test

import (
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/wycheproof"
)

// TestWycheproofJWE runs Wycheproof's JWE vectors with RSA keys through
// the opaque decrypter that the regional HSM's recipient key sits behind:
// RSA-OAEP and RSA-OAEP-256 answers decrypt to the vector's plaintext when
// valid and are refused when not; RSA1_5 (PKCS #1 v1.5), whatever the
// vector says of it, is never accepted by Open.
func TestWycheproofJWE(t *testing.T) {
	var file struct {
		TestGroups []struct {
			Private json.RawMessage `json:"private"`
			Tests   []struct {
				TcID    int               `json:"tcId"`
				Comment string            `json:"comment"`
				JWE     string            `json:"jwe"`
				PT      string            `json:"pt"`
				Result  wycheproof.Result `json:"result"`
			} `json:"tests"`
		} `json:"testGroups"`
	}
	wycheproof.Load(t, "json_web_encryption_test.json", &file)
	n := 0
	for _, g := range file.TestGroups {
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(g.Private); err != nil {
			continue // a group whose key go-jose does not read (e.g. a symmetric or malformed one)
		}
		key, ok := jwk.Key.(*rsa.PrivateKey)
		if !ok {
			continue
		}
		for _, tc := range g.Tests {
			obj, err := jose.ParseEncryptedCompact(tc.JWE,
				[]jose.KeyAlgorithm{jose.RSA_OAEP, jose.RSA_OAEP_256, jose.RSA1_5},
				[]jose.ContentEncryption{jose.A128GCM, jose.A192GCM, jose.A256GCM, jose.A128CBC_HS256, jose.A192CBC_HS384, jose.A256CBC_HS512})
			var hash hsm.OAEPHash
			alg := ""
			if err == nil {
				alg = obj.Header.Algorithm
			}
			switch alg {
			case string(jose.RSA_OAEP):
				hash = hsm.OAEPSHA1
			case string(jose.RSA_OAEP_256):
				hash = hsm.OAEPSHA256
			case string(jose.RSA1_5):
				if _, err := cacheonly.Open([]byte(tc.JWE), key, hsm.OAEPSHA256, obj.Header.KeyID, ""); err == nil {
					t.Errorf("tc %d (%s): Open accepted an RSA1_5 JWE", tc.TcID, tc.Comment)
				}
				n++
				continue
			default:
				if tc.Result == wycheproof.Valid {
					t.Errorf("tc %d (%s): a valid vector does not parse: %v", tc.TcID, tc.Comment, err)
				}
				n++
				continue
			}
			pt, err := obj.Decrypt(cacheonly.Decrypter(key, hash))
			want, _ := hex.DecodeString(tc.PT)
			switch {
			case tc.Result == wycheproof.Valid && (err != nil || string(pt) != string(want)):
				t.Errorf("tc %d (%s): valid, but Decrypt = %x, %v; want %x", tc.TcID, tc.Comment, pt, err, want)
			case tc.Result == wycheproof.Invalid && err == nil:
				t.Errorf("tc %d (%s): invalid, but it decrypts to %x", tc.TcID, tc.Comment, pt)
			}
			n++
		}
	}
	if n < 40 {
		t.Fatalf("ran %d RSA JWE vectors, want the file's (40 or more)", n)
	}
}
