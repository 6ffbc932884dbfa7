package plan

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/docs"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

const ceremonyDoc = "../../docs/ceremony-formats.md"

// docOfficer reads an officer public key example of
// docs/ceremony-formats.md (TestDocPublic in internal/officer makes it
// again from its seed), checks it against its seed and parses it.
func docOfficer(t *testing.T, name string) *officer.Public {
	t.Helper()
	ex := docs.KAT(t, ceremonyDoc, name)
	body, sig, public := ex.Hex("body"), ex.Hex("signature"), ex.Hex("public")
	if want := append(append(bytes.Clone(body), byte(len(sig))), sig...); !bytes.Equal(public, want) {
		t.Fatalf("%s: public is not body || u8<signature>", name)
	}
	p, err := officer.ParsePublicDER(public)
	if err != nil {
		t.Fatalf("%s: ParsePublicDER() = %v", name, err)
	}
	key := ed25519.NewKeyFromSeed(ex.Hex("seed")).Public().(ed25519.PublicKey)
	id := p.ID()
	switch {
	case !p.Key.Equal(key) || !bytes.Equal(p.Key, ex.Hex("key")):
		t.Errorf("%s: the key is not the seed's", name)
	case !bytes.Equal(id[:], ex.Hex("officer-id")):
		t.Errorf("%s: ID() = %x, want %x", name, id, ex.Hex("officer-id"))
	case p.Name != ex.Text("name") || p.Created.Unix() != int64(ex.Uint("created")):
		t.Errorf("%s: ParsePublicDER() = %s created %s", name, p.Name, p.Created)
	case !officer.Verify(p.Key, ex.Text("domain"), body, sig):
		t.Errorf("%s: the signature does not verify under the page's domain", name)
	}
	return p
}

// docPlan makes the plan of docs/ceremony-formats.md again with plan.New
// from its inputs (officers given out of order): its encoding and digest
// must be the page's. The region certificate is an input: it is taken from
// the page's plan and verified under the page's primary signing key.
func docPlan(t *testing.T) (*Plan, []*officer.Public) {
	t.Helper()
	alice, bob := docOfficer(t, "officer-public"), docOfficer(t, "officer-public-2")
	ex := docs.KAT(t, ceremonyDoc, "plan")
	want := ex.Hex("plan")
	page, err := ParseDER(want)
	if err != nil {
		t.Fatalf("ParseDER(the page's plan) = %v", err)
	}
	primary := ex.P384("primary-signing-key").Public().(*ecdsa.PublicKey)
	id, err := sign.KeyIDOf(primary)
	if err != nil {
		t.Fatal(err)
	}
	if want := ex.Hex("primary-key-id"); !bytes.Equal(id[:], want) {
		t.Errorf("KeyID(primary signing key) = %x, want %x", id, want)
	}
	created := time.Unix(int64(ex.Uint("created")), 0)
	for _, c := range page.Regions {
		if err := c.Verify(&enroll.Primary{Signing: primary}, created); err != nil {
			t.Errorf("the page's region certificate: %v", err)
		}
	}
	p, err := New(Plan{
		Kind:       Kind(ex.Uint("kind")),
		Release:    ex.Text("release"),
		Created:    created,
		Iterations: uint32(ex.Uint("iterations")),
		Primary:    id,
		Regions:    page.Regions,
		Officers:   []*officer.Public{bob, alice},
		Quorum:     uint8(ex.Uint("quorum")),
	})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	if got := p.Raw(); !bytes.Equal(got, want) {
		t.Errorf("New().Raw() = %x, want %x", got, want)
	}
	if d, want := p.Digest(), ex.Hex("digest"); !bytes.Equal(d[:], want) {
		t.Errorf("Digest() = %x, want %x", d, want)
	}
	return p, []*officer.Public{alice, bob}
}

func TestDocPlan(t *testing.T) { docPlan(t) }

// TestDocApproval makes alice's approval of the example plan again
// (Ed25519 is deterministic) and counts it with CheckQuorum.
func TestDocApproval(t *testing.T) {
	p, officers := docPlan(t)
	ex := docs.KAT(t, ceremonyDoc, "approval")
	seed := ex.Hex("seed")
	a := &Approval{
		PlanDigest: p.Digest(),
		Release:    p.Release,
		Kind:       p.Kind,
		Officer:    officers[0].Key,
		Time:       time.Unix(int64(ex.Uint("time")), 0),
	}
	body := ex.Hex("body")
	if got := a.body(); !bytes.Equal(got, body) {
		t.Errorf("approval body = %x, want %x", got, body)
	}
	if got := ex.Text("domain"); got != approvalDomain {
		t.Errorf("domain = %q, want %q", got, approvalDomain)
	}
	sig := ed25519.Sign(ed25519.NewKeyFromSeed(seed), append([]byte(approvalDomain+"\x00"), body...))
	if want := ex.Hex("signature"); !bytes.Equal(sig, want) {
		t.Errorf("signature = %x, want %x", sig, want)
	}
	want := ex.Hex("approval")
	if got := append(append(bytes.Clone(body), byte(len(sig))), sig...); !bytes.Equal(got, want) {
		t.Errorf("approval = %x, want %x", got, want)
	}
	q := CheckQuorum(p, []NamedApproval{{Source: "alice.approval", Data: encodePEM(ApprovalPEMType, want)}})
	if len(q.Results) != 1 || !q.Results[0].OK() || q.Results[0].Officer.Name != "alice" {
		t.Errorf("CheckQuorum(the page's approval) = %v, want it counted for alice", q)
	}
}
