package plan_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/world"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fixture holds what is slow to make, made once per package by a world (in
// parallel): a primary and two regions on soft HSMs (RSA-4096 generation),
// and officer keys (scrypt at its real cost, since the cheap setting is
// private to package officer).
type fixture struct {
	primary *enroll.Primary
	certs   map[string]*enroll.Certificate // eu1, us1; eu2 holds eu1's key
	signers map[string]*officer.Signer     // alice, bob, carol (the plan's), mallory (not)
	pubs    map[string]*officer.Public     // the same, and alice2: another key named alice
}

var (
	fixOnce  sync.Once
	fix      fixture
	fixErr   error
	fixWorld *world.World
)

var officerPass = []byte("officer passphrase")

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fixOnce.Do(func() { fixErr = makeFixture() })
	if fixErr != nil {
		t.Fatalf("fixture: %v", fixErr)
	}
	return &fix
}

func makeFixture() error {
	ctx := context.Background()
	var (
		wg     sync.WaitGroup
		alice2 *world.Officer
		err2   error
	)
	wg.Go(func() { alice2, err2 = world.NewOfficer("alice", officerPass, now) })
	w, err := world.New(ctx, world.Options{
		Regions: []string{"eu1", "us1"}, Officers: []string{"alice", "bob", "carol", "mallory"},
		Now: now, Passphrase: officerPass,
	})
	wg.Wait()
	if err != nil {
		return err
	}
	fixWorld = w
	if err2 != nil {
		return err2
	}
	fix.primary = w.Primary.Public
	fix.certs = map[string]*enroll.Certificate{}
	fix.signers = map[string]*officer.Signer{}
	fix.pubs = map[string]*officer.Public{"alice2": alice2.Public}
	for name, r := range w.Regions {
		fix.certs[name] = r.Cert
	}
	for name, o := range w.Officers {
		fix.signers[name], fix.pubs[name] = o.Signer, o.Public
	}
	// eu2: eu1's key under another name.
	req, err := enroll.ParseRequest(w.Regions["eu1"].Request)
	if err != nil {
		return err
	}
	req.Region = "eu2"
	_, fix.certs["eu2"], err = w.Certify(ctx, req)
	return err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixWorld != nil {
		fixWorld.Close()
	}
	os.Exit(code)
}

// releasePlan is the usual plan of the tests: release 2026-1 for eu1 and
// us1, alice, bob and carol, quorum 2.
func (f *fixture) releasePlan(t *testing.T) *plan.Plan {
	t.Helper()
	p, err := plan.New(plan.Plan{
		Kind:     plan.Release,
		Release:  "2026-1",
		Created:  now,
		Primary:  f.primary.SigningKeyID(),
		Regions:  []*enroll.Certificate{f.certs["us1"], f.certs["eu1"]},
		Officers: []*officer.Public{f.pubs["carol"], f.pubs["alice"], f.pubs["bob"]},
		Quorum:   2,
	})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return p
}
