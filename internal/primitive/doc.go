// Package primitive is the one place where Strongroom calls the standard
// library's cryptography. It adds no algorithms of its own: each function is
// a thin wrapper that fixes the parameters Strongroom uses, refuses every
// other parameter set, and turns failures into a small set of errors.
//
// The standard library already implements every algorithm here correctly;
// what it lacks, and what this package adds, is policy:
//
//   - AES-256-GCM only, with a fresh random 96-bit nonce per message that
//     travels in front of the ciphertext, and a 128-bit tag (Seal, Open).
//     There is deliberately no function that takes a caller's nonce.
//   - AES-256-GCM in the STREAM construction for chunked messages under a
//     one-message key, the nonce being the chunk counter and a last-chunk
//     flag that Stream keeps itself (Stream).
//   - RSA-OAEP with an empty label, MGF1 over the same hash as OAEP, only
//     SHA-256, SHA-512 or SHA-1, and moduli of at least 2048 bits
//     (EncryptOAEP, DecryptOAEP).
//   - ECDSA over P-384 with SHA-384 and ASN.1 DER signatures only
//     (SignP384, VerifyP384).
//   - HKDF, PBKDF2 and HMAC over SHA-256 only, with lengths checked
//     (HKDF, PBKDF2, HMAC, VerifyHMAC).
//
// Decryption failures of every kind are reported as the single opaque
// ErrDecrypt, so that callers cannot leak which check failed. A parameter
// the policy refuses is reported as an error wrapping ErrParameter; such
// errors depend only on public inputs (key sizes, hash choices, lengths).
//
// The tests run the Project Wycheproof vectors through these functions,
// including the vectors for parameter sets the policy refuses, and check
// that those are refused.
package primitive

import "errors"

var (
	// ErrDecrypt reports any failure to decrypt or authenticate a
	// ciphertext. It is deliberately opaque.
	ErrDecrypt = errors.New("primitive: decryption failed")
	// ErrParameter reports a key, hash, length or other parameter outside
	// Strongroom's policy. Returned errors wrap it with details.
	ErrParameter = errors.New("primitive: parameter not allowed")
)
