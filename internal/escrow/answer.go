package escrow

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

const answerDomain = "strongroom escrow answer v1"

// Bounds of the protocol.
const (
	// MinNonce and MaxNonce bound the client's nonce, in bytes: at least 128
	// bits.
	MinNonce = 16
	MaxNonce = 64
	// maxBundle is the largest bundle the escrow serves (that of package
	// release).
	maxBundle = 4 << 20
	// maxList is the most a u24<> can hold: the bundles of one answer, with
	// their names and hashes, must fit.
	maxList = 1<<24 - 1
	// maxAnswer bounds a binary answer: header, certificate, list, signature.
	maxAnswer = maxList + 64<<10
)

var fileNameRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z._-]{0,127}$`)

// Answer is the escrow's signed answer to one request.
type Answer struct {
	Region  string
	Nonce   []byte    // the client's, echoed
	Time    time.Time // when the escrow answered (informative: freshness is the nonce's job)
	Escrow  *Certificate
	Entries []Entry

	body, sig []byte
}

// Entry is one bundle in an answer.
type Entry struct {
	Name   string   // the bundle's file name, release.FileName(release, region)
	SHA256 [32]byte // of Bundle
	Bundle []byte   // the bundle, binary (release.Parse)
}

// Bundle is a bundle as Fetch returns it: its file name and its PEM file.
type Bundle struct {
	Name string
	PEM  []byte
}

func (a *Answer) marshalBody() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(formatVersion)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(a.Region)) })
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(a.Nonce) })
	b.AddUint64(uint64(a.Time.Unix()))
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(a.Escrow.Raw()) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range a.Entries {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(e.Name)) })
			b.AddBytes(e.SHA256[:])
			b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Bundle) })
		}
	})
	return b.Bytes()
}

// sign signs the answer with the escrow key and returns its binary encoding.
func (a *Answer) sign(signer crypto.Signer) ([]byte, error) {
	body, err := a.marshalBody()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errAnswerTooLarge, err)
	}
	der, sig, err := sign.Append(signer, answerDomain, body)
	if err != nil {
		return nil, fmt.Errorf("escrow: sign the answer: %w", err)
	}
	a.body, a.sig = body, sig
	return der, nil
}

// ParseAnswer decodes a binary answer. It checks structure only (including
// that the embedded certificate parses and that file names are well-formed
// and distinct); Verify checks everything else.
func ParseAnswer(der []byte) (*Answer, error) {
	if len(der) > maxAnswer {
		return nil, errTruncated
	}
	s := cryptobyte.String(der)
	var version uint8
	if !s.ReadUint8(&version) {
		return nil, errTruncated
	}
	if version != formatVersion {
		return nil, fmt.Errorf("escrow: answer version %d is not supported (want %d)", version, formatVersion)
	}
	a := &Answer{}
	var region, nonce, cert, list cryptobyte.String
	var t uint64
	if !s.ReadUint8LengthPrefixed(&region) || !s.ReadUint8LengthPrefixed(&nonce) || !s.ReadUint64(&t) || t > enroll.MaxUnix ||
		!s.ReadUint24LengthPrefixed(&cert) || !s.ReadUint24LengthPrefixed(&list) {
		return nil, errTruncated
	}
	a.Region, a.Nonce, a.Time = string(region), bytes.Clone(nonce), time.Unix(int64(t), 0).UTC()
	if err := enroll.ValidRegion(a.Region); err != nil {
		return nil, fmt.Errorf("escrow: answer: %w", err)
	}
	if len(a.Nonce) < MinNonce || len(a.Nonce) > MaxNonce {
		return nil, fmt.Errorf("escrow: answer nonce of %d bytes; want %d to %d", len(a.Nonce), MinNonce, MaxNonce)
	}
	var err error
	if a.Escrow, err = ParseCertificateDER(cert); err != nil {
		return nil, fmt.Errorf("escrow: answer: the escrow certificate: %w", err)
	}
	seen := map[string]bool{}
	for !list.Empty() {
		var name, bundle cryptobyte.String
		var e Entry
		if !list.ReadUint8LengthPrefixed(&name) || !list.CopyBytes(e.SHA256[:]) || !list.ReadUint24LengthPrefixed(&bundle) {
			return nil, errTruncated
		}
		e.Name, e.Bundle = string(name), bytes.Clone(bundle)
		if !fileNameRE.MatchString(e.Name) || seen[e.Name] {
			return nil, fmt.Errorf("escrow: answer: bad or repeated bundle file name %q", e.Name)
		}
		if len(e.Bundle) == 0 || len(e.Bundle) > maxBundle {
			return nil, fmt.Errorf("escrow: answer: bundle %s is empty or larger than %d bytes", e.Name, maxBundle)
		}
		seen[e.Name] = true
		a.Entries = append(a.Entries, e)
	}
	a.body = der[:len(der)-len(s)]
	var sig cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&sig) || !s.Empty() {
		return nil, errTruncated
	}
	a.sig = []byte(sig)
	return a, nil
}

// Verify checks an answer to a request for region with nonce: that the
// escrow's certificate was issued by the primary p and is valid at now, that
// the certified key signed the answer, that the answer echoes the region and
// the nonce, and that every entry's hash matches its bundle, which must be
// for region, carry the conventional file name and be signed by p. Only then
// does it return the bundles. (release.Open verifies each bundle fully, plan
// and approvals included, when it is installed.)
func (a *Answer) Verify(p *enroll.Primary, region string, nonce []byte, now time.Time) ([]Bundle, error) {
	// The signature covers the embedded certificate too, so checking it first
	// refuses any altered byte with one verification.
	if !sign.Verify(a.Escrow.Signing, answerDomain, a.body, a.sig) {
		return nil, fmt.Errorf("escrow: the answer's signature does not verify with the key of its certificate for escrow %s (altered, or signed by another key)", a.Escrow.Name)
	}
	if err := a.Escrow.Verify(p, now); err != nil {
		return nil, err
	}
	if a.Region != region {
		return nil, fmt.Errorf("escrow: escrow %s answered for region %q, but %q was asked for", a.Escrow.Name, a.Region, region)
	}
	if subtle.ConstantTimeCompare(a.Nonce, nonce) != 1 {
		return nil, fmt.Errorf("escrow: escrow %s's answer does not echo this request's nonce: a replayed or misrouted answer", a.Escrow.Name)
	}
	var out []Bundle
	for _, e := range a.Entries {
		if sum := sha256.Sum256(e.Bundle); subtle.ConstantTimeCompare(sum[:], e.SHA256[:]) != 1 {
			return nil, fmt.Errorf("escrow: bundle %s does not match its SHA-256 in the answer", e.Name)
		}
		b, err := release.Parse(e.Bundle)
		if err != nil {
			return nil, fmt.Errorf("escrow: bundle %s: %w", e.Name, err)
		}
		if b.Region != region {
			return nil, fmt.Errorf("escrow: bundle %s is for region %q, not %q", e.Name, b.Region, region)
		}
		if b.Name() != e.Name {
			return nil, fmt.Errorf("escrow: bundle %s is named %s in the answer", b.Name(), e.Name)
		}
		if err := b.VerifySignature(p); err != nil {
			return nil, fmt.Errorf("escrow: %w", err)
		}
		out = append(out, Bundle{Name: e.Name, PEM: release.Encode(e.Bundle)})
	}
	return out, nil
}

// errAnswerTooLarge: the region's bundles do not fit in one answer.
var errAnswerTooLarge = errors.New("escrow: the region's bundles do not fit in one answer (16 MiB)")
