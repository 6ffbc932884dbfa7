// Package k8splugin is a Kubernetes KMS v2 plugin (the k8s.io/kms gRPC API:
// Status, Encrypt, Decrypt) backed by one Strongroom tenant's key of one
// type, through the Go client (package client). kube-apiserver hands it the
// small seeds of its own data keys to encrypt; the plugin encrypts them
// locally, under the DEK of the tenant key's active version, which the
// server delivers over HPKE (client.Client.DEK), and decrypts them under
// the DEK of the version their ciphertext names. docs/kubernetes.md is the
// operator's guide; what follows is the design.
//
// # Ciphertext
//
// What Kubernetes stores is the server's envelope ciphertext (format 1,
// docs/dataplane.md) as it is: its header names the tenant id, the key type
// and the version, so the plugin needs nothing else to find the DEK, and the
// server's Decrypt opens it too (with the context below), which is the way
// out if the plugin is ever retired. The ciphertext is bound to the fixed
// context {"purpose": "k8s-kms-v2"} (Context): kube-apiserver gives each
// call its own uid, so the uid cannot be bound; the fixed context keeps the
// plugin's ciphertexts apart from anything else encrypted under the same
// tenant key (neither opens as the other). A 32-byte seed under a data key
// gives 103 bytes, far below KMS v2's 1 KiB.
//
// # Key id and annotations
//
// The key id is "strongroom:" TENANT-ID ":" TYPE ":" VERSION (KeyID), e.g.
// strongroom:7f3c…e1:data:3: all three are in the ciphertext's header
// already, so it is not secret, it is stable for a version, and it changes
// at each rotation, which is what kube-apiserver watches to make a new seed
// and to find the objects to re-encrypt. Decrypt refuses a key id that is
// not the one of the ciphertext's header. Every ciphertext carries one
// annotation, AnnotationFormat ("format.kms.strongroom.dev") = "1", the
// version of this format; Decrypt refuses a missing or unknown one, and any
// other annotation.
//
// # The DEK cache
//
// DEKs are kept in memory (as client.DEK, which redacts itself and is
// destroyed on eviction), keyed by key type and version, at most MaxDEKs of
// them (default 32; the least recently used archived one goes first). Every
// Refresh interval (default 1 minute; 10 seconds at most while unhealthy)
// the plugin asks the server for the active version's DEK, so that a
// rotation reaches new Encrypts and Status' key id within one interval, and
// asks again for every other cached version, so that the server confirms it.
// An entry serves for at most DEKMaxAge (default 1 hour) after the server
// last delivered or confirmed it, and one not used for DEKMaxAge is dropped
// (it is fetched again when needed).
//
// An answer of the server that refuses a version (4xx: key_destroyed, a
// revoked token, no such tenant…) evicts it at once: a destroyed version is
// gone from the plugin within one Refresh interval. No answer at all (the
// server down, unreachable, or answering 5xx) evicts nothing: cached DEKs
// keep serving Encrypt (the active one) and Decrypt until their DEKMaxAge
// runs out, and Status reports unhealthy with the reason meanwhile.
//
// # Errors
//
// Errors reach kube-apiserver as gRPC statuses whose message is the reason
// (internal/reason), never key material: InvalidArgument for a bad request
// or a ciphertext that does not open, Unavailable when the server cannot be
// reached and no fresh DEK is cached, FailedPrecondition when the server
// refused (key_destroyed among others).
package k8splugin
