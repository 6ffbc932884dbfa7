package auditlog_test

import (
	"fmt"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auditlog"
)

// refusal is the entry of a request without a valid token.
func refusal(remote, route string) audit.Entry {
	return audit.Entry{Time: t0, Actor: audit.ActorAnonymous, Action: audit.ActionTokenUse, Outcome: audit.OutcomeRefused,
		Reason: "unauthenticated", Remote: remote, Detail: route}
}

// TestCountEntry: refused requests of one minute, address, route and
// reason become one entry with their count, keeping the address and the
// route; past MaxEntryKeys counters, new addresses are counted together,
// under no address.
func TestCountEntry(t *testing.T) {
	l := auditlog.New(openStore(t), "eu1")
	var a auditlog.Aggregate
	for range 5 {
		a.CountEntry(refusal("192.0.2.1", "GET /v1/tenants"))
	}
	a.CountEntry(refusal("192.0.2.1", "POST /v1/tokens"))
	a.CountEntry(refusal("192.0.2.2", "GET /v1/tenants"))
	for i := range auditlog.MaxEntryKeys {
		a.CountEntry(refusal(fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&0xff, i&0xff), "GET /v1/tenants"))
	}
	if err := a.Flush(ctx, l); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	n := 0
	for _, e := range entries(t, l) {
		n++
		if e.Action != audit.ActionTokenUse || e.Outcome != audit.OutcomeRefused {
			t.Errorf("aggregate entry %+v: want token.use refused", e)
		}
		got[e.Remote+" "+e.Detail] += e.Count
	}
	const prefix = "aggregate of 2026-11-27T12:00:00Z to 2026-11-27T12:01:00Z: "
	for key, want := range map[string]uint64{
		"192.0.2.1 " + prefix + "GET /v1/tenants": 5,
		"192.0.2.1 " + prefix + "POST /v1/tokens": 1,
		"192.0.2.2 " + prefix + "GET /v1/tenants": 1,
		" " + prefix + "GET /v1/tenants":          3, // past the bound
	} {
		if got[key] != want {
			t.Errorf("aggregate %q = %d, want %d", key, got[key], want)
		}
	}
	if n != auditlog.MaxEntryKeys+1 {
		t.Errorf("%d aggregate entries, want %d (the bound, and one for the addresses past it)", n, auditlog.MaxEntryKeys+1)
	}
}
