package plan

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/officer"
)

// ApprovalPEMType is the PEM type of an approval.
const ApprovalPEMType = "STRONGROOM CEREMONY APPROVAL"

const approvalDomain = "strongroom ceremony approval v1"

// ErrBadSignature: an approval's signature does not verify.
var ErrBadSignature = errors.New("plan: the approval's signature does not verify (altered, or not made by the key it names)")

// Approval is one officer's signature over a plan's digest.
type Approval struct {
	PlanDigest [32]byte // what is approved
	Release    string   // the plan's release id, for humans
	Kind       Kind     // the plan's kind, for humans
	Officer    ed25519.PublicKey
	Time       time.Time
}

// OfficerID is the approving key's id (officer.Public.ID).
func (a *Approval) OfficerID() [32]byte { return sha256.Sum256(a.Officer) }

func (a *Approval) body() []byte {
	var b cryptobyte.Builder
	b.AddUint8(formatVersion)
	b.AddBytes(a.PlanDigest[:])
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(a.Release)) })
	b.AddUint8(uint8(a.Kind))
	b.AddBytes(a.Officer)
	b.AddUint64(uint64(a.Time.Unix()))
	return b.BytesOrPanic()
}

// Approve signs p's digest with the officer's key and returns the approval
// file. It does not check that s is one of p's officers: CheckQuorum does.
// now must lie between 1970 and 9999.
func Approve(s *officer.Signer, p *Plan, now time.Time) []byte {
	c := p.canonical()
	a := &Approval{
		PlanDigest: p.Digest(),
		Release:    c.Release,
		Kind:       c.Kind,
		Officer:    s.Public().Key,
		Time:       now.UTC().Truncate(time.Second),
	}
	body := a.body()
	var b cryptobyte.Builder
	b.AddBytes(body)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.Sign(approvalDomain, body)) })
	return encodePEM(ApprovalPEMType, b.BytesOrPanic())
}

// ParseApproval decodes an approval file and checks its signature by the key
// it names. Whether that key is an officer of a plan, and which plan it
// approves, is for CheckQuorum.
func ParseApproval(data []byte) (*Approval, error) {
	der, err := decodePEM(data, ApprovalPEMType)
	if err != nil {
		return nil, err
	}
	return parseApprovalDER(der)
}

func parseApprovalDER(der []byte) (*Approval, error) {
	s := cryptobyte.String(der)
	var version, kind uint8
	if !s.ReadUint8(&version) {
		return nil, errTruncated
	}
	if version != formatVersion {
		return nil, fmt.Errorf("plan: approval version %d is not supported (want %d)", version, formatVersion)
	}
	a := &Approval{Officer: make(ed25519.PublicKey, ed25519.PublicKeySize)}
	var release cryptobyte.String
	var t uint64
	if !s.CopyBytes(a.PlanDigest[:]) || !s.ReadUint8LengthPrefixed(&release) || !s.ReadUint8(&kind) ||
		!s.CopyBytes(a.Officer) || !s.ReadUint64(&t) || t > maxUnix {
		return nil, errTruncated
	}
	if err := ValidRelease(string(release)); err != nil {
		return nil, err
	}
	if a.Kind = Kind(kind); !a.Kind.Valid() {
		return nil, fmt.Errorf("plan: unknown plan kind %d", kind)
	}
	a.Release, a.Time = string(release), time.Unix(int64(t), 0).UTC()
	body := der[:len(der)-len(s)]
	var sig cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&sig) || !s.Empty() {
		return nil, errTruncated
	}
	if !officer.Verify(a.Officer, approvalDomain, body, sig) {
		return nil, ErrBadSignature
	}
	return a, nil
}
