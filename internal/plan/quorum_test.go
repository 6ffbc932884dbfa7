package plan_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/plan"
	"golang.org/x/crypto/cryptobyte"
)

func TestCheckQuorum(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	export, err := plan.New(plan.Plan{Kind: plan.Export, Release: "2025-4", Created: now, Primary: p.Primary, Regions: p.Regions, Officers: p.Officers, Quorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	alice := approveAs(t, f, "alice", p)
	bob := approveAs(t, f, "bob", p)
	carol := approveAs(t, f, "carol", p)
	aliceAgain := plan.Approve(f.signers["alice"], p, now.Add(2*time.Hour))
	mallory := approveAs(t, f, "mallory", p)
	bobOld := approveAs(t, f, "bob", export)
	badSig := alterSignature(t, carol)
	mID := f.pubs["mallory"].ID()

	for _, tc := range []struct {
		name      string
		approvals []plan.NamedApproval
		met       bool
		approvers string
		str       string
		errs      []error // per approval
	}{
		{
			name:      "two of two",
			approvals: []plan.NamedApproval{{"alice.approval", alice}, {"bob.approval", bob}},
			met:       true, approvers: "alice,bob",
			str:  "quorum met: 2 of 2 required approvals (alice, bob)",
			errs: []error{nil, nil},
		},
		{
			name:      "three of two",
			approvals: []plan.NamedApproval{{"c", carol}, {"b", bob}, {"a", alice}},
			met:       true, approvers: "carol,bob,alice",
			errs: []error{nil, nil, nil},
		},
		{
			name:      "not an officer",
			approvals: []plan.NamedApproval{{"alice.approval", alice}, {"bob.approval", mallory}},
			approvers: "alice",
			str:       "quorum not met: 1 of 2 required approvals (alice); bob.approval: signed by a key that is not an officer of this plan (key id " + hex.EncodeToString(mID[:8]) + ")",
			errs:      []error{nil, plan.ErrNotOfficer},
		},
		{
			name:      "unreadable",
			approvals: []plan.NamedApproval{{"junk", []byte("hello")}, {"plan", p.Marshal()}, {"bob", bob}},
			approvers: "bob",
			errs:      []error{plan.ErrUnreadable, plan.ErrUnreadable, nil},
		},
		{
			name:      "bad signature",
			approvals: []plan.NamedApproval{{"carol.approval", badSig}, {"bob", bob}},
			approvers: "bob",
			errs:      []error{plan.ErrBadSignature, nil},
		},
		{
			name:      "other plan",
			approvals: []plan.NamedApproval{{"bob-2025-4.approval", bobOld}, {"alice", alice}},
			approvers: "alice",
			errs:      []error{plan.ErrOtherPlan, nil},
		},
		{
			name:      "duplicate",
			approvals: []plan.NamedApproval{{"alice.approval", alice}, {"alice2.approval", aliceAgain}, {"alice3.approval", alice}},
			approvers: "alice",
			str:       "quorum not met: 1 of 2 required approvals (alice); alice2.approval: duplicate approval by an officer already counted (alice, counted from alice.approval); alice3.approval: duplicate approval by an officer already counted (alice, counted from alice.approval)",
			errs:      []error{nil, plan.ErrDuplicate, plan.ErrDuplicate},
		},
		{
			name: "none",
			str:  "quorum not met: 0 of 2 required approvals (none)",
		},
	} {
		q := plan.CheckQuorum(p, tc.approvals)
		var names []string
		for _, o := range q.Approvers {
			names = append(names, o.Name)
		}
		if q.Met() != tc.met || strings.Join(names, ",") != tc.approvers || q.Required != 2 || q.Officers != 3 {
			t.Errorf("%s: Met() = %v, approvers %v, %d of %d", tc.name, q.Met(), names, q.Required, q.Officers)
		}
		if tc.str != "" && q.String() != tc.str {
			t.Errorf("%s: String() =\n  %s\nwant\n  %s", tc.name, q, tc.str)
		}
		if err := q.Err(); (err == nil) != tc.met || (err != nil && (!errors.Is(err, plan.ErrQuorumNotMet) || err.Error() != "plan: "+q.String())) {
			t.Errorf("%s: Err() = %v", tc.name, err)
		}
		if len(q.Results) != len(tc.approvals) {
			t.Fatalf("%s: %d results for %d approvals", tc.name, len(q.Results), len(tc.approvals))
		}
		for i, r := range q.Results {
			if r.Source != tc.approvals[i].Source {
				t.Errorf("%s: result %d is for %q", tc.name, i, r.Source)
			}
			if want := tc.errs[i]; (want == nil) != r.OK() || (want != nil && !errors.Is(r.Err, want)) {
				t.Errorf("%s: %s: error = %v, want %v", tc.name, r.Source, r.Err, want)
			}
			if r.OK() && (r.Officer == nil || r.Approval == nil) {
				t.Errorf("%s: counted approval without its officer", tc.name)
			}
		}
	}

	// The other plan is named, for humans.
	q := plan.CheckQuorum(p, []plan.NamedApproval{{"bob-2025-4.approval", bobOld}})
	if s := q.Results[0].String(); !strings.Contains(s, "it approves release 2025-4 (export)") || !strings.Contains(s, "this plan is release 2026-1 (release)") {
		t.Errorf("other-plan result = %s", s)
	}
	// And the export plan itself is approved by them.
	if !plan.CheckQuorum(export, []plan.NamedApproval{{"b", bobOld}, {"c", approveAs(t, f, "carol", export)}}).Met() {
		t.Error("quorum on the export plan not met")
	}
}

// An officer who signs the right digest under another release name or kind
// (not something Approve does) is refused too.
func TestApprovalFieldsMustMatchThePlan(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	for _, a := range []*plan.Approval{
		{PlanDigest: p.Digest(), Release: "2026-2", Kind: plan.Release, Officer: f.pubs["alice"].Key, Time: now},
		{PlanDigest: p.Digest(), Release: "2026-1", Kind: plan.Export, Officer: f.pubs["alice"].Key, Time: now},
	} {
		body := a.Body()
		var b cryptobyte.Builder
		b.AddBytes(body)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.signers["alice"].Sign(plan.ApprovalDomain, body)) })
		q := plan.CheckQuorum(p, []plan.NamedApproval{{"a", plan.EncodePEM(plan.ApprovalPEMType, b.BytesOrPanic())}})
		if r := q.Results[0]; !errors.Is(r.Err, plan.ErrOtherPlan) || !strings.Contains(r.Err.Error(), "names this plan's digest but release") {
			t.Errorf("approval of %s (%s) with the right digest: %v", a.Release, a.Kind, r.Err)
		}
	}
}

// alterSignature flips a bit in the signature of an approval file.
func alterSignature(t *testing.T, file []byte) []byte {
	t.Helper()
	der, err := plan.DecodePEM(file, plan.ApprovalPEMType)
	if err != nil {
		t.Fatal(err)
	}
	der[len(der)-5] ^= 1
	return plan.EncodePEM(plan.ApprovalPEMType, der)
}

// TestCheckQuorumAt: at a ceremony, an approval counts only if it was signed
// within the window: not more than MaxAge before the ceremony's clock, not
// more than MaxSkew after it, and not before the plan was made (less
// MaxSkew). The bounds are inclusive. A stale approval does not stop the
// same officer's fresh one from counting.
func TestCheckQuorumAt(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t) // made at now
	w := plan.Window{Now: now.Add(10 * 24 * time.Hour), MaxAge: 7 * 24 * time.Hour, MaxSkew: 5 * time.Minute}
	sign := func(name string, at time.Time) plan.NamedApproval {
		return plan.NamedApproval{Source: name + "@" + at.Format(time.RFC3339), Data: plan.Approve(f.signers[name], p, at)}
	}
	for _, tc := range []struct {
		name string
		at   time.Time
		want string // "" if counted
	}{
		{"oldest allowed", w.Now.Add(-w.MaxAge), ""},
		{"a second too old", w.Now.Add(-w.MaxAge - time.Second), "more than 168h0m0s before the ceremony"},
		{"latest allowed", w.Now.Add(w.MaxSkew), ""},
		{"a second too late", w.Now.Add(w.MaxSkew + time.Second), "after the ceremony's clock"},
	} {
		q := plan.CheckQuorumAt(p, []plan.NamedApproval{sign("alice", tc.at)}, w)
		err := q.Results[0].Err
		if tc.want == "" && err != nil {
			t.Errorf("%s: error = %v, want counted", tc.name, err)
		}
		if tc.want != "" && (!errors.Is(err, plan.ErrStale) || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: error = %v, want ErrStale, %q", tc.name, err, tc.want)
		}
	}
	// Before the plan existed (the ceremony soon after it).
	soon := plan.Window{Now: now.Add(time.Hour), MaxAge: w.MaxAge, MaxSkew: w.MaxSkew}
	if q := plan.CheckQuorumAt(p, []plan.NamedApproval{sign("alice", now.Add(-w.MaxSkew))}, soon); q.Results[0].Err != nil {
		t.Errorf("approval within the skew before the plan: error = %v", q.Results[0].Err)
	}
	q := plan.CheckQuorumAt(p, []plan.NamedApproval{sign("alice", now.Add(-w.MaxSkew-time.Second))}, soon)
	if err := q.Results[0].Err; !errors.Is(err, plan.ErrStale) || !strings.Contains(err.Error(), "before the plan was made") {
		t.Errorf("approval before the plan: error = %v, want ErrStale", err)
	}
	// A stale approval, then the same officer's fresh one: the fresh counts.
	q = plan.CheckQuorumAt(p, []plan.NamedApproval{sign("alice", w.Now.Add(-8*24*time.Hour)), sign("alice", w.Now), sign("bob", w.Now)}, w)
	if !q.Met() || q.Results[0].Err == nil || q.Results[1].Err != nil {
		t.Errorf("stale then fresh: %v", q)
	}
	// CheckQuorum takes approvals of any age.
	if q := plan.CheckQuorum(p, []plan.NamedApproval{sign("alice", now.Add(-time.Hour)), sign("bob", now.Add(400*24*time.Hour))}); !q.Met() {
		t.Errorf("CheckQuorum(any age) = %v, want met", q)
	}
}
