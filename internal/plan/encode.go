package plan

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/armor"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// PlanPEMType is the PEM type of a ceremony plan.
const PlanPEMType = "STRONGROOM CEREMONY PLAN"

const (
	formatVersion = 1
	maxPEMSize    = 1 << 20
	// maxUnix bounds timestamps to something time.Unix handles sanely (year 9999).
	maxUnix = 253402300799
)

var errTruncated = errors.New("plan: truncated or malformed data")

func (p *Plan) encode() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(formatVersion)
	b.AddUint8(uint8(p.Kind))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(p.Release)) })
	b.AddUint64(uint64(p.Created.Unix()))
	b.AddUint32(p.Iterations)
	b.AddBytes(p.Primary[:])
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, c := range p.Regions {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.Raw()) })
		}
	})
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, o := range p.Officers {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(o.Marshal()) })
		}
	})
	b.AddUint8(p.Quorum)
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("plan: cannot encode the plan (too many or too large entries): %w", err)
	}
	return der, nil
}

// Parse decodes a plan file. It refuses any encoding but the canonical one:
// regions sorted by name, officers by ID, no duplicates, no trailing bytes.
// It checks the officers' self-signatures and that every region certificate
// names the plan's primary as its issuer, but not the certificates'
// signatures: call VerifyRegions for that.
func Parse(data []byte) (*Plan, error) {
	der, err := decodePEM(data, PlanPEMType)
	if err != nil {
		return nil, err
	}
	return ParseDER(der)
}

// ParseDER decodes the binary form, as Parse does.
func ParseDER(der []byte) (*Plan, error) {
	s := cryptobyte.String(der)
	var version, kind uint8
	if !s.ReadUint8(&version) {
		return nil, errTruncated
	}
	if version != formatVersion {
		return nil, fmt.Errorf("plan: plan version %d is not supported (want %d)", version, formatVersion)
	}
	p := &Plan{raw: bytes.Clone(der)}
	var release cryptobyte.String
	var created uint64
	if !s.ReadUint8(&kind) || !s.ReadUint8LengthPrefixed(&release) || !s.ReadUint64(&created) ||
		!s.ReadUint32(&p.Iterations) || !s.CopyBytes(p.Primary[:]) {
		return nil, errTruncated
	}
	if p.Kind = Kind(kind); !p.Kind.Valid() {
		return nil, fmt.Errorf("plan: unknown plan kind %d", kind)
	}
	if err := ValidRelease(string(release)); err != nil {
		return nil, err
	}
	p.Release = string(release)
	if created > maxUnix {
		return nil, errTruncated
	}
	p.Created = time.Unix(int64(created), 0).UTC()
	if p.Iterations < MinIterations || p.Iterations > MaxIterations {
		return nil, fmt.Errorf("plan: PBKDF2 iteration count %d out of range (%d to %d)", p.Iterations, MinIterations, MaxIterations)
	}
	var err error
	if p.Regions, err = readRegions(&s, p.Primary); err != nil {
		return nil, err
	}
	if p.Officers, err = readOfficers(&s); err != nil {
		return nil, err
	}
	if !s.ReadUint8(&p.Quorum) || !s.Empty() {
		return nil, errTruncated
	}
	if p.Quorum < 1 || int(p.Quorum) > len(p.Officers) {
		return nil, fmt.Errorf("plan: quorum %d of %d officers: it must be between 1 and the number of officers", p.Quorum, len(p.Officers))
	}
	return p, nil
}

func readRegions(s *cryptobyte.String, primary sign.KeyID) ([]*enroll.Certificate, error) {
	var list cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&list) {
		return nil, errTruncated
	}
	var certs []*enroll.Certificate
	keys := map[sign.KeyID]string{}
	for !list.Empty() {
		var der cryptobyte.String
		if !list.ReadUint16LengthPrefixed(&der) {
			return nil, errTruncated
		}
		if len(certs) == MaxRegions {
			return nil, fmt.Errorf("plan: more than %d regions", MaxRegions)
		}
		c, err := enroll.ParseCertificateDER(der)
		if err != nil {
			return nil, fmt.Errorf("plan: region certificate %d: %w", len(certs)+1, err)
		}
		if c.Issuer != primary {
			issuer, want := c.Issuer.Short(), primary.Short()
			if issuer == want { // ids that differ after their first 8 bytes: show them whole
				issuer, want = c.Issuer.String(), primary.String()
			}
			return nil, fmt.Errorf("plan: the certificate of region %s was issued by primary signing key %s, not by the plan's primary %s", c.Region, issuer, want)
		}
		if n := len(certs); n > 0 && certs[n-1].Region >= c.Region {
			if certs[n-1].Region == c.Region {
				return nil, fmt.Errorf("plan: region %s appears twice", c.Region)
			}
			return nil, errors.New("plan: regions are not sorted by name (not the canonical encoding)")
		}
		if other, ok := keys[c.KeyID()]; ok {
			return nil, fmt.Errorf("plan: regions %s and %s have the same encryption key %s", other, c.Region, c.KeyID().Short())
		}
		keys[c.KeyID()] = c.Region
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("plan: a plan must name at least one region")
	}
	return certs, nil
}

func readOfficers(s *cryptobyte.String) ([]*officer.Public, error) {
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) {
		return nil, errTruncated
	}
	var officers []*officer.Public
	names := map[string]bool{}
	for !list.Empty() {
		var der cryptobyte.String
		if !list.ReadUint16LengthPrefixed(&der) {
			return nil, errTruncated
		}
		if len(officers) == MaxOfficers {
			return nil, fmt.Errorf("plan: more than %d officers", MaxOfficers)
		}
		o, err := officer.ParsePublicDER(der)
		if err != nil {
			return nil, fmt.Errorf("plan: officer %d: %w", len(officers)+1, err)
		}
		if n := len(officers); n > 0 {
			prev, id := officers[n-1].ID(), o.ID()
			switch bytes.Compare(prev[:], id[:]) {
			case 0:
				return nil, fmt.Errorf("plan: officers %s and %s have the same key %s", officers[n-1].Name, o.Name, o.ShortID())
			case 1:
				return nil, errors.New("plan: officers are not sorted by id (not the canonical encoding)")
			}
		}
		if names[o.Name] {
			return nil, fmt.Errorf("plan: two officers are named %s", o.Name)
		}
		names[o.Name] = true
		officers = append(officers, o)
	}
	return officers, nil
}

// decodePEM unwraps exactly one PEM block of the given type.
func decodePEM(data []byte, typ string) ([]byte, error) {
	der, err := armor.Decode(data, typ, maxPEMSize)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return der, nil
}

func encodePEM(typ string, der []byte) []byte { return armor.Encode(typ, der) }
