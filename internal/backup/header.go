package backup

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Header describes the tenant secret a backup holds. All of it travels in
// clear and all of it is authenticated: it is the AES-GCM associated data.
type Header struct {
	Tenant     string // tenant ID (store.ValidID)
	TenantName string // for people; bound, but the importer matches on Tenant
	Type       string // key type (store.ValidType)
	Version    uint32 // key version, from 1
	Source     string // "hsm" or "uploaded" (tenant.Source)
	Derivation string // "pbkdf2" or "none" (tenant.Derivation)
	// Release is the release whose seed and salt derive the DEK and whose
	// TWK wrapped the secret: the secret is wrapped under it again on import.
	Release  string
	Created  time.Time // when the key version was created
	Exported time.Time // when the backup was made
	Region   string    // optional label: "" or a region name (enroll.ValidRegion)
	// KeyID identifies the export key the file is sealed under (KeyID).
	KeyID [8]byte
}

// Check validates h and returns it as it is encoded: times in UTC,
// truncated to the microsecond (store.Time). The error wraps
// store.ErrInvalid.
func (h Header) Check() (Header, error) {
	if err := store.ValidID("tenant", h.Tenant); err != nil {
		return Header{}, err
	}
	if err := store.ValidTenantName(h.TenantName); err != nil {
		return Header{}, err
	}
	if err := store.ValidType(h.Type); err != nil {
		return Header{}, err
	}
	if h.Version == 0 {
		return Header{}, store.Errorf(store.ErrInvalid, "invalid key version 0: versions start at 1")
	}
	if sourceCode(h.Source) == 0 {
		return Header{}, store.Errorf(store.ErrInvalid, "invalid key source %q: use %q or %q", h.Source, tenant.SourceHSM, tenant.SourceUploaded)
	}
	if derivationCode(h.Derivation) == 0 {
		return Header{}, store.Errorf(store.ErrInvalid, "invalid derivation %q: use %q or %q", h.Derivation, tenant.DerivationPBKDF2, tenant.DerivationNone)
	}
	if err := store.ValidReleaseID(h.Release); err != nil {
		return Header{}, err
	}
	var err error
	if h.Created, err = store.CheckTime("key creation", h.Created); err != nil {
		return Header{}, err
	}
	if h.Exported, err = store.CheckTime("export", h.Exported); err != nil {
		return Header{}, err
	}
	if h.Region != "" {
		if err := enroll.ValidRegion(h.Region); err != nil {
			return Header{}, store.Errorf(store.ErrInvalid, "invalid region label %q: use \"\" or a region name", h.Region)
		}
	}
	if h.KeyID == ([8]byte{}) {
		return Header{}, store.Errorf(store.ErrInvalid, "the export key id is not set")
	}
	return h, nil
}

// ErrMismatch: the backup is of another key version than the one it is
// checked against.
var ErrMismatch = errors.New("backup: the backup is of another key")

// Matches reports whether h describes k, the stored record of the key
// version being restored: same tenant, type, version, source, derivation,
// release and creation time (to the microsecond). The error wraps
// ErrMismatch and names the first field that differs. It does not look at
// k's state: restoring only destroyed keys is the store's rule.
func (h Header) Matches(k tenant.Key) error {
	var field, got, want string
	switch {
	case h.Tenant != k.Tenant:
		field, got, want = "tenant", h.Tenant, k.Tenant
	case h.Type != k.Type:
		field, got, want = "key type", h.Type, k.Type
	case h.Version != k.Version:
		field, got, want = "key version", strconv.FormatUint(uint64(h.Version), 10), strconv.FormatUint(uint64(k.Version), 10)
	case h.Source != string(k.Source):
		field, got, want = "source", h.Source, string(k.Source)
	case h.Derivation != string(k.Derivation):
		field, got, want = "derivation", h.Derivation, string(k.Derivation)
	case h.Release != k.Release:
		field, got, want = "release", h.Release, k.Release
	case !store.Time(h.Created).Equal(store.Time(k.Created)):
		field, got, want = "creation time", formatTime(h.Created), formatTime(k.Created)
	default:
		return nil
	}
	return fmt.Errorf("%w: its %s is %q, the stored key's is %q", ErrMismatch, field, got, want)
}

// Wire codes of Source and Derivation; 0 is never valid.
func sourceCode(s string) uint8 {
	switch tenant.Source(s) {
	case tenant.SourceHSM:
		return 1
	case tenant.SourceUploaded:
		return 2
	}
	return 0
}

func derivationCode(d string) uint8 {
	switch tenant.Derivation(d) {
	case tenant.DerivationPBKDF2:
		return 1
	case tenant.DerivationNone:
		return 2
	}
	return 0
}

var (
	sources     = map[uint8]string{1: string(tenant.SourceHSM), 2: string(tenant.SourceUploaded)}
	derivations = map[uint8]string{1: string(tenant.DerivationPBKDF2), 2: string(tenant.DerivationNone)}
)

// marshal appends the binary header of a checked h.
func (h Header) marshal(b *cryptobyte.Builder) {
	b.AddUint8(formatVersion)
	addString(b, h.Tenant)
	addString(b, h.TenantName)
	addString(b, h.Type)
	b.AddUint32(h.Version)
	b.AddUint8(sourceCode(h.Source))
	b.AddUint8(derivationCode(h.Derivation))
	addString(b, h.Release)
	b.AddUint64(uint64(h.Created.UnixMicro()))
	b.AddUint64(uint64(h.Exported.UnixMicro()))
	addString(b, h.Region)
	b.AddBytes(h.KeyID[:])
}

func addString(b *cryptobyte.Builder, s string) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
}

// The range of times the format holds: years 1 to 9999, as store.CheckTime.
var (
	minMicro = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxMicro = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
)

// readHeader reads a binary header and validates it. The error explains
// what is wrong; the caller wraps it in ErrMalformed.
func readHeader(s *cryptobyte.String) (Header, error) {
	var (
		h                 Header
		version, src, der uint8
		created, exported uint64
	)
	if !s.ReadUint8(&version) {
		return Header{}, errTruncated
	}
	if version != formatVersion {
		return Header{}, reason.New(ErrMalformed, "the backup file's format version %d is not supported (this build reads version %d)", version, formatVersion)
	}
	if !readString(s, &h.Tenant) || !readString(s, &h.TenantName) || !readString(s, &h.Type) ||
		!s.ReadUint32(&h.Version) || !s.ReadUint8(&src) || !s.ReadUint8(&der) ||
		!readString(s, &h.Release) || !s.ReadUint64(&created) || !s.ReadUint64(&exported) ||
		!readString(s, &h.Region) || !s.CopyBytes(h.KeyID[:]) {
		return Header{}, errTruncated
	}
	var ok bool
	if h.Source, ok = sources[src]; !ok {
		return Header{}, fmt.Errorf("unknown source code %d", src)
	}
	if h.Derivation, ok = derivations[der]; !ok {
		return Header{}, fmt.Errorf("unknown derivation code %d", der)
	}
	if h.Created, ok = readTime(created); !ok {
		return Header{}, errors.New("key creation time out of range")
	}
	if h.Exported, ok = readTime(exported); !ok {
		return Header{}, errors.New("export time out of range")
	}
	checked, err := h.Check()
	if err != nil {
		return Header{}, err
	}
	return checked, nil
}

func readString(s *cryptobyte.String, out *string) bool {
	var v cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&v) {
		return false
	}
	*out = string(v)
	return true
}

// readTime decodes an i64 of microseconds since the Unix epoch.
func readTime(u uint64) (time.Time, bool) {
	m := int64(u) // two's complement
	if m < minMicro || m > maxMicro {
		return time.Time{}, false
	}
	return time.UnixMicro(m).UTC(), true
}

var errTruncated = errors.New("truncated or malformed binary data")

// timeLayout is how times appear in the informational PEM headers.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// pemHeaders are the informational PEM headers of a checked h. They are
// never read for any decision: Parse only requires them to be exactly these.
func (h Header) pemHeaders() map[string]string {
	m := map[string]string{
		"Tenant":        h.Tenant,
		"Tenant-Name":   h.TenantName,
		"Key-Type":      h.Type,
		"Key-Version":   strconv.FormatUint(uint64(h.Version), 10),
		"Source":        h.Source,
		"Derivation":    h.Derivation,
		"Release":       h.Release,
		"Created":       formatTime(h.Created),
		"Exported":      formatTime(h.Exported),
		"Export-Key-Id": hex.EncodeToString(h.KeyID[:]),
	}
	if h.Region != "" {
		m["Region"] = h.Region
	}
	return m
}
