// Package sign is what every ECDSA P-384-signed format of Strongroom shares:
// the message a signature covers, the signed encoding, and how signing keys
// are named and carried. Primary public keys, region and escrow
// certificates, escrow requests and answers, ceremony transcripts, release
// bundles and audit checkpoints are all built from it. The byte-level
// formats are in docs/formats.md.
//
// # The signed encoding
//
// A signed object is a "to be signed" body, then its signature:
//
//	body                 the format's own fields, from its version byte on
//	u16     n            length of the signature, big-endian
//	[n]     signature    ECDSA P-384 over SHA-384, ASN.1 DER, low S
//
// [Append] makes it. Parsers read the body field by field and then the
// signature, and check it with [Verify].
//
// # What a signature covers
//
// A signature covers not the body alone but [Message](domain, body):
//
//	domain               fixed ASCII naming the format and its version,
//	                     e.g. "strongroom audit checkpoint v1"
//	0x00                 one zero byte
//	body
//
// The same key signs several kinds of object (the primary signing key signs
// certificates, transcripts and bundles), and a body of one kind may well
// parse as another. Domain separation makes a signature made for one format
// worthless for any other: no domain contains a zero byte, so the message
// names its domain unambiguously, and a signature under one domain never
// verifies under another.
//
// Signatures are made with [primitive.SignP384], which normalises them to
// low S so that each signed object has one encoding, and checked with
// [primitive.VerifyP384], which accepts strict DER, low S, P-384 keys only.
//
// # Keys
//
// A [KeyID] names a public key: the SHA-256 of its PKIX
// (SubjectPublicKeyInfo) DER. Formats carry signing keys as u16<> PKIX DER
// ([AddKey], [ReadKey]).
package sign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"strconv"
	"strings"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/primitive"
)

// Message is what a signature covers: domain || 0x00 || body. Domains are
// constants of the formats; Message panics if one contains a zero byte.
func Message(domain string, body []byte) []byte {
	if strings.IndexByte(domain, 0) >= 0 {
		panic("sign: domain " + strconv.Quote(domain) + " contains a zero byte")
	}
	m := make([]byte, 0, len(domain)+1+len(body))
	m = append(m, domain...)
	m = append(m, 0)
	return append(m, body...)
}

// Append signs body with the ECDSA P-384 signer over [Message](domain, body)
// and returns the signed encoding, body || u16<> signature, and the
// signature alone.
func Append(signer crypto.Signer, domain string, body []byte) (signed, sig []byte, err error) {
	sig, err = primitive.SignP384(rand.Reader, signer, Message(domain, body))
	if err != nil {
		return nil, nil, err
	}
	var b cryptobyte.Builder
	b.AddBytes(body)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sig) })
	signed, err = b.Bytes()
	if err != nil {
		return nil, nil, err
	}
	return signed, sig, nil
}

// Verify reports whether sig is pub's signature of body under domain, as
// [Append] makes it.
func Verify(pub *ecdsa.PublicKey, domain string, body, sig []byte) bool {
	return primitive.VerifyP384(pub, Message(domain, body), sig)
}
