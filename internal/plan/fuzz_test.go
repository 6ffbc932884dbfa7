package plan_test

import (
	"bytes"
	"encoding/pem"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/fuzzcorpus"
	"github.com/strongroom-kms/strongroom/internal/plan"
)

// The seed corpora under testdata/fuzz hold valid files made by
// TestWriteFuzzCorpus (run with STRONGROOM_WRITE_CORPUS=1 to refresh them).

func FuzzParsePlan(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		p, err := plan.ParseDER(der)
		if err != nil {
			return
		}
		// One plan, one encoding: what parses re-encodes to the same bytes.
		again, err := p.Encode()
		if err != nil || !bytes.Equal(again, der) {
			t.Fatalf("ParseDER accepted a non-canonical encoding (%v)", err)
		}
		if p.Quorum < 1 || int(p.Quorum) > len(p.Officers) || len(p.Regions) == 0 || !p.Kind.Valid() || plan.ValidRelease(p.Release) != nil {
			t.Fatal("ParseDER accepted an invalid plan")
		}
		if q, err := plan.New(*p); err != nil || q.Digest() != p.Digest() {
			t.Fatalf("New(parsed plan) = %v, or another digest", err)
		}
	})
}

func FuzzParseApproval(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		a, err := plan.ParseApprovalDER(der)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(der, a.Body()) || !a.Kind.Valid() || plan.ValidRelease(a.Release) != nil {
			t.Fatal("parseApprovalDER accepted an invalid approval")
		}
	})
}

func TestWriteFuzzCorpus(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	blk, _ := pem.Decode(approveAs(t, f, "alice", p))
	w := fuzzcorpus.New(t)
	w.Add("FuzzParsePlan", "valid", p.Raw())
	w.Add("FuzzParseApproval", "valid", blk.Bytes)
}
