package plan_test

import (
	"bytes"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/plan"
)

func approveAs(t *testing.T, f *fixture, name string, p *plan.Plan) []byte {
	t.Helper()
	return plan.Approve(f.signers[name], p, now.Add(time.Hour))
}

func TestApproveRoundTrip(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	file := approveAs(t, f, "alice", p)
	a, err := plan.ParseApproval(file)
	if err != nil {
		t.Fatalf("ParseApproval() error = %v", err)
	}
	if a.PlanDigest != p.Digest() || a.Release != "2026-1" || a.Kind != plan.Release ||
		!a.Officer.Equal(f.pubs["alice"].Key) || a.OfficerID() != f.pubs["alice"].ID() || !a.Time.Equal(now.Add(time.Hour)) {
		t.Errorf("approval = %+v", a)
	}
	if _, err := plan.ParseApproval(p.Marshal()); err == nil || !strings.Contains(err.Error(), plan.ApprovalPEMType) {
		t.Errorf("ParseApproval(a plan) error = %v, want it to name the expected type", err)
	}
}

func TestApprovalAlteredEveryByte(t *testing.T) {
	f := getFixture(t)
	p := f.releasePlan(t)
	blk, _ := pem.Decode(approveAs(t, f, "alice", p))
	der := blk.Bytes
	check := func(b []byte) {
		t.Helper()
		data := pem.EncodeToMemory(&pem.Block{Type: plan.ApprovalPEMType, Bytes: b})
		if _, err := plan.ParseApproval(data); err == nil {
			t.Fatalf("altered approval accepted: %x", b)
		}
		q := plan.CheckQuorum(p, []plan.NamedApproval{{"x", data}})
		if r := q.Results[0]; r.OK() || !(errors.Is(r.Err, plan.ErrBadSignature) || errors.Is(r.Err, plan.ErrUnreadable)) {
			t.Fatalf("CheckQuorum(altered approval) = %v", r)
		}
	}
	for i := range der {
		for _, flip := range []byte{0x01, 0x80} {
			bad := bytes.Clone(der)
			bad[i] ^= flip
			check(bad)
		}
	}
	check(der[:len(der)-1])
	check(append(bytes.Clone(der), 0))
}
