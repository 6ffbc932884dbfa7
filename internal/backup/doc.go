// Package backup is the tenant key backup file: one tenant secret (32
// bytes), encrypted under the tenant's export key and bound to a
// self-describing header, that a tenant exports and may later import into
// the same tenant once the key version was destroyed. The file names no
// secret in clear.
//
// Seal makes a file; Parse reads one strictly without decrypting it; Open
// checks that it was made under the given export key and decrypts it;
// Header.Matches compares its header with the stored key being restored.
//
// # Format
//
// Notation as in docs/formats.md: u8, u32, u64 big-endian; u8<…> a byte
// string preceded by its length as a u8; i64 a signed integer as u64 two's
// complement. The standalone specification, with the importer's checks, is
// docs/backup-format.md.
//
// The file is one PEM block of type "STRONGROOM KEY BACKUP". Its PEM
// headers repeat the header for people (Created, Derivation, Export-Key-Id,
// Exported, Key-Type, Key-Version, Region if set, Release, Source, Tenant,
// Tenant-Name, in the alphabetical order encoding/pem writes). They are
// never read for any decision: Parse requires them to be exactly what the
// binary header produces, so a file whose headers were edited is refused
// rather than misleading. The PEM body is:
//
//	header:
//	  u8        format version = 1
//	  u8<>      tenant id          store.ValidID
//	  u8<>      tenant name        store.ValidTenantName
//	  u8<>      key type           store.ValidType
//	  u32       key version        ≥ 1
//	  u8        source             1 = hsm, 2 = uploaded
//	  u8        derivation         1 = pbkdf2, 2 = none
//	  u8<>      release id         store.ValidReleaseID
//	  i64       key created        microseconds since 1970-01-01T00:00:00Z
//	  i64       exported           microseconds since 1970-01-01T00:00:00Z
//	  u8<>      region             empty, or a region name (enroll.ValidRegion)
//	  8 bytes   export key id      KeyID(export key)
//	sealed (60 bytes, to the end of the body):
//	  12 bytes  nonce (random)
//	  32 bytes  AES-256-GCM ciphertext of the tenant secret
//	  16 bytes  GCM tag
//
// Times are in years 1 to 9999 (store.CheckTime), at the store's
// microsecond precision. No order is imposed between the two times: they
// may come from the clocks of different nodes.
//
// # Keys
//
// The export key E (32 bytes, one per tenant) is never used directly:
//
//	KeyID(E) = HKDF-SHA-256(IKM = E, salt = "", info = "strongroom key backup export key id v1", L = 8)
//	K_file   = HKDF-SHA-256(IKM = E, salt = "", info = "strongroom key backup file key v1",      L = 32)
//	sealed   = AES-256-GCM(K_file, nonce, secret, AAD = "strongroom key backup v1" || 0x00 || header)
//
// where header is every byte of the body before the sealed part, version
// byte and export key id included. Altering any byte of the body makes Parse
// refuse the file or Open fail.
//
// # Checks
//
// Parse: size at most MaxSize (8 KiB); after turning CRLF into LF and
// trimming surrounding whitespace, exactly one "-----BEGIN", at the start;
// PEM type; nothing after the block; version; every field valid; exactly 60
// sealed bytes; PEM headers as derived; the block byte for byte as Encode
// writes it. Open then: the export key id equals KeyID(E), else ErrOtherKey
// before any decryption; then GCM, any failure being the opaque ErrOpen.
package backup
