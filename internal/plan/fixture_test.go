package plan

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/officer"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fixture holds what is slow to make, made once per package and in
// parallel: a primary and two regions on soft HSMs (RSA-4096 generation),
// and officer keys (scrypt at its real cost, since the cheap setting is
// private to package officer).
type fixture struct {
	primary    *enroll.Primary
	primaryPub []byte
	certs      map[string]*enroll.Certificate // eu1, us1; eu2 holds eu1's key
	signers    map[string]*officer.Signer     // alice, bob, carol (the plan's), mallory (not)
	pubs       map[string]*officer.Public     // the same, and alice2: another key named alice
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
	fixDir  string
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
	var err error
	if fixDir, err = os.MkdirTemp("", "plan-test-"); err != nil {
		return err
	}
	fix.certs = map[string]*enroll.Certificate{}
	fix.signers = map[string]*officer.Signer{}
	fix.pubs = map[string]*officer.Public{}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		errs     []error
		requests = map[string][]byte{}
		primary  *soft.HSM
	)
	fail := func(what string, err error) {
		mu.Lock()
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
		mu.Unlock()
	}
	open := func(name string) (*soft.HSM, error) {
		return soft.Open(ctx, filepath.Join(fixDir, name), []byte("test passphrase"), soft.Options{Create: true})
	}
	wg.Go(func() {
		h, err := open("primary")
		if err == nil {
			fix.primaryPub, err = enroll.InitPrimary(ctx, h, now)
		}
		if err != nil {
			fail("primary", err)
		}
		primary = h
	})
	for _, r := range []string{"eu1", "us1"} {
		wg.Go(func() {
			h, err := open(r)
			var req []byte
			if err == nil {
				req, err = enroll.InitRegion(ctx, h, r, now)
				h.Close()
			}
			if err != nil {
				fail(r, err)
				return
			}
			mu.Lock()
			requests[r] = req
			mu.Unlock()
		})
	}
	for _, name := range []string{"alice", "bob", "carol", "mallory", "alice2"} {
		wg.Go(func() {
			keyPEM, pubPEM, err := officer.New(name, officerPass, now)
			if name == "alice2" {
				keyPEM, pubPEM, err = officer.New("alice", officerPass, now)
			}
			var pub *officer.Public
			var s *officer.Signer
			if err == nil {
				pub, err = officer.ParsePublic(pubPEM)
			}
			if err == nil && name != "alice2" {
				s, err = officer.Open(keyPEM, officerPass)
			}
			if err != nil {
				fail(name, err)
				return
			}
			mu.Lock()
			fix.pubs[name], fix.signers[name] = pub, s
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	defer primary.Close()
	if fix.primary, err = enroll.ParsePrimary(fix.primaryPub); err != nil {
		return err
	}
	st, err := enroll.Inspect(ctx, primary)
	if err != nil {
		return err
	}
	for _, r := range []string{"eu1", "us1", "eu2"} {
		src := r
		if r == "eu2" {
			src = "eu1"
		}
		req, err := enroll.ParseRequest(requests[src])
		if err != nil {
			return err
		}
		req.Region = r // eu2: eu1's key under another name
		certPEM, _, err := enroll.Certify(ctx, st.PrimarySigning, req, enroll.CertifyOptions{Now: now})
		if err != nil {
			return err
		}
		// Read back from the file, as the command line does.
		if fix.certs[r], err = enroll.ParseCertificate(certPEM); err != nil {
			return err
		}
	}
	return nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

// releasePlan is the usual plan of the tests: release 2026-1 for eu1 and
// us1, alice, bob and carol, quorum 2.
func (f *fixture) releasePlan(t *testing.T) *Plan {
	t.Helper()
	p, err := New(Plan{
		Kind:     Release,
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
