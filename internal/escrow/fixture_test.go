package escrow

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/sign"
	"github.com/strongroom-kms/strongroom/internal/world"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fixture holds what is slow to make, made once per package and in
// parallel: a world (a primary on a soft HSM, RSA-4096 generation; a region
// eu1 certified by it; an officer key, scrypt, for the one test that needs
// bundles release.Verify accepts), and the escrows.
type fixture struct {
	primaryHSM    hsm.HSM
	primaryPub    []byte
	primary       *enroll.Primary
	primarySigner hsm.SigningKey
	// other is another primary, by its signing key only (enough to certify
	// escrows and sign bundles).
	otherSigner hsm.SigningKey
	other       *enroll.Primary

	// escrow1 is certified by the primary; escrow2 by the other primary.
	escrow1, escrow2       hsm.SigningKey
	request1, request2     []byte
	cert1PEM, cert2PEM     []byte
	cert1, cert2           *Certificate
	escrow1HSM, escrow2HSM hsm.HSM
	regionCert             *enroll.Certificate // eu1
	officerPub             *officer.Public
	officerSigner          *officer.Signer
}

var (
	fixOnce  sync.Once
	fix      fixture
	fixErr   error
	fixDir   string
	fixWorld *world.World
)

func getFixture(t testing.TB) *fixture {
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
	if fixDir, err = os.MkdirTemp("", "escrow-test-"); err != nil {
		return err
	}
	open := func(name string) (hsm.HSM, error) {
		return soft.Open(ctx, filepath.Join(fixDir, name), []byte("test passphrase"), soft.Options{Create: true})
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(what string, err error) {
		mu.Lock()
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
		mu.Unlock()
	}
	wg.Go(func() {
		var err error
		fixWorld, err = world.New(ctx, world.Options{Officers: []string{"alice"}, Now: now, Dir: fixDir})
		if err != nil {
			fail("world", err)
		}
	})
	wg.Go(func() {
		h, err := open("other")
		if err == nil {
			fix.otherSigner, err = h.GenerateSigningKey(ctx, enroll.LabelPrimarySigning)
		}
		if err != nil {
			fail("other primary", err)
			return
		}
		fix.other = &enroll.Primary{Signing: fix.otherSigner.ECDSAPublicKey()}
	})
	for i, name := range []string{"escrow1", "escrow2"} {
		wg.Go(func() {
			h, err := open(name)
			var req []byte
			var key hsm.SigningKey
			if err == nil {
				req, err = Init(ctx, h, name, now)
			}
			if err == nil {
				key, err = h.SigningKey(ctx, LabelSigning)
			}
			if err != nil {
				fail(name, err)
				return
			}
			if i == 0 {
				fix.escrow1HSM, fix.escrow1, fix.request1 = h, key, req
			} else {
				fix.escrow2HSM, fix.escrow2, fix.request2 = h, key, req
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	p := fixWorld.Primary
	fix.primaryHSM, fix.primaryPub, fix.primary, fix.primarySigner = p.HSM, p.PEM, p.Public, p.Signing
	fix.regionCert = fixWorld.Regions["eu1"].Cert
	fix.officerPub, fix.officerSigner = fixWorld.Officers["alice"].Public, fixWorld.Officers["alice"].Signer
	req1, err := ParseRequest(fix.request1)
	if err != nil {
		return err
	}
	if fix.cert1PEM, fix.cert1, err = Certify(ctx, fix.primarySigner, req1, CertifyOptions{Now: now}); err != nil {
		return err
	}
	req2, err := ParseRequest(fix.request2)
	if err != nil {
		return err
	}
	fix.cert2PEM, fix.cert2, err = Certify(ctx, fix.otherSigner, req2, CertifyOptions{Now: now})
	return err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixWorld != nil {
		fixWorld.Close()
	}
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

// fakeBundle makes a bundle by hand, without a ceremony: structurally valid
// and signed by signer, but with a made-up plan, so release.Verify refuses
// it. It returns the binary bundle.
func fakeBundle(t testing.TB, signer crypto.Signer, releaseID, region string) []byte {
	t.Helper()
	return signBundle(t, signer, bundleTemplate(t, signer, releaseID, region, []byte("not a plan"), nil, sign.KeyID{}))
}

func bundleTemplate(t testing.TB, signer crypto.Signer, releaseID, region string, plan []byte, approvals [][]byte, recipient sign.KeyID) *release.Bundle {
	t.Helper()
	pid, err := sign.KeyIDOf(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	b := &release.Bundle{
		Kind: release.KindRelease, Release: releaseID, Region: region, Iterations: 600_000,
		Primary: pid, Recipient: recipient, OAEPHash: hsm.OAEPSHA256,
		RWK: random(t, 64), Plan: plan, Approvals: approvals, Created: now, Issued: now,
	}
	copy(b.Transcript[:], random(t, 32))
	for _, name := range release.SecretNames {
		ws := release.WrappedSecret{Name: name, Wrapped: random(t, 40)}
		copy(ws.Commitment[:], random(t, 32))
		b.Secrets = append(b.Secrets, ws)
	}
	return b
}

func signBundle(t testing.TB, signer crypto.Signer, b *release.Bundle) []byte {
	t.Helper()
	der, err := b.Sign(signer)
	if err != nil {
		t.Fatalf("Bundle.Sign() error = %v", err)
	}
	return der
}

func random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// writeBundle writes a binary bundle as a PEM file into dir.
func writeBundle(t testing.TB, dir, name string, der []byte) []byte {
	t.Helper()
	data := release.Encode(der)
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// syncBuffer is a bytes.Buffer safe for the server's and the test's
// goroutines (the race detector does not see ordering through sockets).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
