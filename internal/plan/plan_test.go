package plan_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/plan"
)

func TestNewParseRoundTrip(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	if p.Kind != plan.Release || p.Release != "2026-1" || p.Iterations != plan.DefaultIterations || p.Quorum != 2 || !p.Created.Equal(now) {
		t.Errorf("plan = %v %q %d quorum %d %v", p.Kind, p.Release, p.Iterations, p.Quorum, p.Created)
	}
	var regions, officers []string
	for _, c := range p.Regions {
		regions = append(regions, c.Region)
	}
	for i, o := range p.Officers {
		officers = append(officers, o.Name)
		if i > 0 {
			a, b := p.Officers[i-1].ID(), o.ID()
			if bytes.Compare(a[:], b[:]) >= 0 {
				t.Error("officers not sorted by id")
			}
		}
	}
	if !slices.Equal(regions, []string{"eu1", "us1"}) {
		t.Errorf("regions = %v, want sorted [eu1 us1]", regions)
	}
	slices.Sort(officers)
	if !slices.Equal(officers, []string{"alice", "bob", "carol"}) {
		t.Errorf("officers = %v", officers)
	}

	file := p.Marshal()
	if !bytes.HasPrefix(file, []byte("-----BEGIN "+plan.PlanPEMType+"-----")) {
		t.Errorf("Marshal() = %.40q...", file)
	}
	q, err := plan.Parse(file)
	if err != nil {
		t.Fatalf("Parse(Marshal()) error = %v", err)
	}
	if q.Digest() != p.Digest() || !bytes.Equal(q.Raw(), p.Raw()) || q.Release != p.Release || len(q.Officers) != 3 || len(q.Regions) != 2 {
		t.Error("Parse(Marshal()) differs from the plan")
	}
	if _, err := plan.ParseDER(p.Raw()); err != nil {
		t.Errorf("ParseDER(Raw()) error = %v", err)
	}
	if err := p.VerifyRegions(f.primary, now.Add(time.Hour)); err != nil {
		t.Errorf("VerifyRegions() error = %v", err)
	}
}

func TestNewIsCanonical(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	q, err := plan.New(plan.Plan{
		Kind:       plan.Release,
		Release:    "2026-1",
		Created:    now.Add(999 * time.Millisecond).In(time.FixedZone("X", 3600)),
		Iterations: plan.DefaultIterations,
		Primary:    f.primary.SigningKeyID(),
		Regions:    []*enroll.Certificate{f.certs["eu1"], f.certs["us1"]},
		Officers:   []*officer.Public{f.pubs["bob"], f.pubs["carol"], f.pubs["alice"]},
		Quorum:     2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if q.Digest() != p.Digest() {
		t.Error("the same plan given in another order (or time zone) has another digest")
	}
	q2, _ := plan.New(plan.Plan{Kind: plan.Export, Release: "2026-1", Created: now, Primary: p.Primary, Regions: p.Regions, Officers: p.Officers, Quorum: 2})
	q3, _ := plan.New(plan.Plan{Kind: plan.Release, Release: "2026-1", Created: now, Iterations: 600_001, Primary: p.Primary, Regions: p.Regions, Officers: p.Officers, Quorum: 2})
	if q2.Digest() == p.Digest() || q3.Digest() == p.Digest() {
		t.Error("plans of another kind or iteration count share the digest")
	}
}

func TestNewRefuses(t *testing.T) {
	f := getFixture(t)
	good := func() plan.Plan {
		return plan.Plan{
			Kind: plan.Release, Release: "2026-1", Created: now, Primary: f.primary.SigningKeyID(),
			Regions:  []*enroll.Certificate{f.certs["eu1"], f.certs["us1"]},
			Officers: []*officer.Public{f.pubs["alice"], f.pubs["bob"], f.pubs["carol"]},
			Quorum:   2,
		}
	}
	otherPrimary := f.primary.SigningKeyID()
	otherPrimary[0] ^= 1
	// A primary whose id differs only after the 8 bytes a short id shows:
	// the message names both in full, so that they differ to the reader.
	latePrimary := f.primary.SigningKeyID()
	latePrimary[31] ^= 1
	for _, tc := range []struct {
		name string
		edit func(p *plan.Plan)
		want string
	}{
		{"kind", func(p *plan.Plan) { p.Kind = 3 }, "unknown plan kind 3"},
		{"release", func(p *plan.Plan) { p.Release = "-2026" }, `invalid release id "-2026"`},
		{"long release", func(p *plan.Plan) { p.Release = strings.Repeat("a", 65) }, "invalid release id"},
		{"no time", func(p *plan.Plan) { p.Created = time.Time{} }, "creation time is required"},
		{"before 1970", func(p *plan.Plan) { p.Created = time.Unix(-5, 0) }, "out of range"},
		{"few iterations", func(p *plan.Plan) { p.Iterations = plan.MinIterations - 1 }, "iteration count 99999 out of range"},
		{"many iterations", func(p *plan.Plan) { p.Iterations = plan.MaxIterations + 1 }, "out of range"},
		{"no regions", func(p *plan.Plan) { p.Regions = nil }, "at least one region"},
		{"region twice", func(p *plan.Plan) { p.Regions = append(p.Regions, f.certs["eu1"]) }, "region eu1 appears twice"},
		{"shared key", func(p *plan.Plan) { p.Regions = append(p.Regions, f.certs["eu2"]) }, "regions eu1 and eu2 have the same encryption key"},
		{"other primary", func(p *plan.Plan) { p.Primary = otherPrimary }, "the certificate of region eu1 was issued by primary signing key"},
		{"late primary", func(p *plan.Plan) { p.Primary = latePrimary }, "not by the plan's primary " + latePrimary.String()},
		{"unread certificate", func(p *plan.Plan) { p.Regions = append(p.Regions, &enroll.Certificate{Region: "x"}) }, "read from its file"},
		{"nil certificate", func(p *plan.Plan) { p.Regions = append(p.Regions, nil) }, "read from its file"},
		{"unread officer", func(p *plan.Plan) { p.Officers = append(p.Officers, &officer.Public{Name: "x"}) }, "read from a public key file"},
		{"officer twice", func(p *plan.Plan) { p.Officers = append(p.Officers, f.pubs["bob"]) }, "officers bob and bob have the same key"},
		{"officer name twice", func(p *plan.Plan) { p.Officers = append(p.Officers, f.pubs["alice2"]) }, "two officers are named alice"},
		{"no officers", func(p *plan.Plan) { p.Officers = nil }, "quorum 2 of 0 officers"},
		{"quorum 0", func(p *plan.Plan) { p.Quorum = 0 }, "quorum 0 of 3 officers"},
		{"quorum > N", func(p *plan.Plan) { p.Quorum = 4 }, "quorum 4 of 3 officers"},
	} {
		p := good()
		tc.edit(&p)
		if _, err := plan.New(p); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "plan: ") {
			t.Errorf("%s: New() error = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := plan.New(good()); err != nil {
		t.Errorf("New(good) error = %v", err)
	}
}

func TestNonCanonicalRefused(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	for name, edit := range map[string]func(q *plan.Plan){
		"regions unsorted":  func(q *plan.Plan) { slices.Reverse(q.Regions) },
		"officers unsorted": func(q *plan.Plan) { q.Officers[0], q.Officers[1] = q.Officers[1], q.Officers[0] },
	} {
		q := *p.Canonical()
		q.Regions, q.Officers = slices.Clone(q.Regions), slices.Clone(q.Officers)
		edit(&q)
		der, err := q.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plan.ParseDER(der); err == nil || !strings.Contains(err.Error(), "not sorted") {
			t.Errorf("%s: ParseDER() error = %v, want a refusal", name, err)
		}
		// New puts it right.
		if r, err := plan.New(q); err != nil || r.Digest() != p.Digest() {
			t.Errorf("%s: New() = %v, or another digest", name, err)
		}
	}
	if _, err := plan.ParseDER(append(p.Raw(), 0)); err == nil {
		t.Error("ParseDER(trailing byte) error = nil")
	}
	if _, err := plan.Parse(append(p.Marshal(), "x"...)); err == nil {
		t.Error("Parse(trailing junk) error = nil")
	}
	if _, err := plan.Parse(approveAs(t, f, "alice", p)); err == nil || !strings.Contains(err.Error(), plan.PlanPEMType) {
		t.Errorf("Parse(an approval) error = %v, want it to name the expected type", err)
	}
}

func TestPlanAlteredEveryByte(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	approvals := []plan.NamedApproval{
		{"alice", approveAs(t, f, "alice", p)},
		{"bob", approveAs(t, f, "bob", p)},
		{"carol", approveAs(t, f, "carol", p)},
	}
	if !plan.CheckQuorum(p, approvals).Met() {
		t.Fatal("quorum not met on the unaltered plan")
	}
	der := p.Raw()
	accepted := 0
	for i := range der {
		bad := bytes.Clone(der)
		bad[i] ^= 0x01
		q, err := plan.Parse(pem.EncodeToMemory(&pem.Block{Type: plan.PlanPEMType, Bytes: bad}))
		if err != nil {
			continue
		}
		accepted++
		if q.Digest() == p.Digest() {
			t.Fatalf("byte %d altered: same digest", i)
		}
		res := plan.CheckQuorum(q, approvals)
		if res.Met() {
			t.Fatalf("byte %d altered: the original approvals meet the quorum", i)
		}
		for _, r := range res.Results {
			if !errors.Is(r.Err, plan.ErrOtherPlan) {
				t.Fatalf("byte %d altered: approval %s: %v, want ErrOtherPlan", i, r.Source, r.Err)
			}
		}
	}
	t.Logf("%d of %d altered plans parsed (each with another digest)", accepted, len(der))
	if accepted == 0 {
		t.Error("no altered plan parsed; the test checks nothing about digests")
	}
	for _, cut := range []int{1, len(der) / 2, len(der) - 1} {
		if _, err := plan.ParseDER(der[:cut]); err == nil {
			t.Errorf("plan truncated to %d bytes accepted", cut)
		}
	}
}

func TestVerifyRegions(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	if err := p.VerifyRegions(f.primary, now); err != nil {
		t.Fatalf("VerifyRegions() error = %v", err)
	}
	// Another primary.
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	other := *f.primary
	other.Signing = &k.PublicKey
	if err := p.VerifyRegions(&other, now); err == nil || !strings.Contains(err.Error(), "the plan is for primary signing key") {
		t.Errorf("VerifyRegions(other primary) error = %v", err)
	}
	// Expired certificates.
	if err := p.VerifyRegions(f.primary, now.Add(enroll.DefaultValidity)); err == nil || !strings.Contains(err.Error(), "region eu1") {
		t.Errorf("VerifyRegions(after expiry) error = %v, want it to name eu1", err)
	}
	// A certificate altered (its serial) still parses, but does not verify.
	raw := bytes.Clone(f.certs["us1"].Raw())
	raw[1] ^= 1
	bad, err := enroll.ParseCertificateDER(raw)
	if err != nil {
		t.Fatal(err)
	}
	q, err := plan.New(plan.Plan{Kind: plan.Release, Release: "2026-1", Created: now, Primary: p.Primary,
		Regions: []*enroll.Certificate{f.certs["eu1"], bad}, Officers: p.Officers, Quorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.VerifyRegions(f.primary, now); err == nil || !strings.Contains(err.Error(), "plan: region us1: ") {
		t.Errorf("VerifyRegions(altered us1) error = %v, want it to name us1", err)
	}
}

func TestFieldsChangedAfterNewAreIgnored(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	digest := p.Digest()
	p.Officers = append(p.Officers, f.pubs["mallory"])
	p.Quorum = 1
	p.Release = "2099-1"
	if p.Digest() != digest {
		t.Error("the digest follows the changed fields")
	}
	q := plan.CheckQuorum(p, []plan.NamedApproval{{"mallory", approveAs(t, f, "mallory", p)}})
	if q.Met() || q.Required != 2 || !errors.Is(q.Results[0].Err, plan.ErrNotOfficer) {
		t.Errorf("CheckQuorum on changed fields = %v", q)
	}
	if p.Officer(f.pubs["mallory"].Key) != nil {
		t.Error("Officer() found an officer added after New")
	}
	if o := p.Officer(f.pubs["bob"].Key); o == nil || o.Name != "bob" {
		t.Errorf("Officer(bob) = %v", o)
	}
	defer func() {
		if recover() == nil {
			t.Error("Digest of a Plan not made by New or Parse did not panic")
		}
	}()
	(&plan.Plan{}).Digest()
}

func TestKinds(t *testing.T) {
	if plan.Release.String() != "release" || plan.Export.String() != "export" || plan.Kind(9).String() != "kind(9)" {
		t.Error("Kind.String")
	}
	for _, id := range []string{"2026-1", "r", "v1.2_3", strings.Repeat("9", 64)} {
		if err := plan.ValidRelease(id); err != nil {
			t.Errorf("ValidRelease(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", ".1", "_1", "2026 1", "2026/1", "2026-1\n", strings.Repeat("9", 65)} {
		if plan.ValidRelease(id) == nil {
			t.Errorf("ValidRelease(%q) = nil", id)
		}
	}
}
