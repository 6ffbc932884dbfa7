// Package pkcs11 is the PKCS#11 backend of internal/hsm.
//
// Open takes an RFC 7512 URI naming the module (the vendor's library), the
// token, and where the user PIN comes from:
//
//	pkcs11:token=eu1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/strongroom/pin
//
// The PIN comes from a file (pin-source=file:/path, or a plain path) or an
// environment variable (pin-source=env:NAME), never from the URI itself.
//
// Open loads the module once per process (C_Initialize is process-wide),
// logs in once, and keeps a fixed pool of read/write sessions, so an HSM is
// safe for concurrent use. It then checks the token's mechanisms, probes which
// RSA-OAEP hashes really work (Info().OAEPHashes; SoftHSM2 2.6 does SHA-1
// only), and runs the known-answer self-test of internal/hsm.
//
// All key material stays in the token: private keys are sensitive and never
// extractable; AES keys are sensitive, and extractable only when the KeySpec
// says Exportable, and then leave the token only wrapped. Context-bound
// wrapping derives the KEK of hsm.ContextKEK inside the token with
// CKM_AES_ECB_ENCRYPT_DATA and wraps with RFC 5649.
//
// The URI parser is pure Go. Everything that talks to a module needs cgo;
// binaries built without it get ErrNoCgo from Open.
package pkcs11

import "errors"

// ErrNoCgo is what Open returns in a binary built without cgo.
var ErrNoCgo = errors.New("pkcs11: this strongroom binary was built without cgo, so PKCS#11 support is not built in; " +
	"rebuild with CGO_ENABLED=1")
