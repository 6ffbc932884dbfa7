package ceremony

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/hsmtest"
	"github.com/strongroom-kms/strongroom/internal/hsm/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/plan"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func clock() func() time.Time {
	var mu sync.Mutex
	now := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

// primarySite is an initialized primary HSM.
type primarySite struct {
	h   hsm.HSM
	pub *enroll.Primary
	pem []byte
}

// regionSite is an initialized, enrolled regional HSM.
type regionSite struct {
	name string
	h    hsm.HSM
	cert *enroll.Certificate
}

var tmpRoot string

func TestMain(m *testing.M) {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "ceremony-test-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

func openSoft(t testing.TB, name string) hsm.HSM {
	t.Helper()
	h, err := soft.Open(context.Background(), filepath.Join(tmpRoot, name), []byte("ceremony test"), soft.Options{Create: true})
	if err != nil {
		t.Fatalf("soft.Open(%s) error = %v", name, err)
	}
	return h
}

func openPKCS11(t testing.TB, name string) hsm.HSM {
	t.Helper()
	uri := hsmtest.SoftHSMToken(t, name)
	h, err := pkcs11.Open(context.Background(), uri)
	if err != nil {
		t.Fatalf("pkcs11.Open(%s) error = %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func newPrimary(t testing.TB, h hsm.HSM) *primarySite {
	t.Helper()
	data, err := enroll.InitPrimary(context.Background(), h, t0)
	if err != nil {
		t.Fatalf("InitPrimary() error = %v", err)
	}
	pub, err := enroll.ParsePrimary(data)
	if err != nil {
		t.Fatal(err)
	}
	return &primarySite{h: h, pub: pub, pem: data}
}

// enrollRegion initializes h as region name and certifies it at p. SHA-1 is
// allowed so that any primary can seal to any region (SoftHSM2 wraps with
// OAEP-SHA-1 only); the ceremony still picks the best common hash.
func enrollRegion(t testing.TB, p *primarySite, h hsm.HSM, name string) *regionSite {
	t.Helper()
	ctx := context.Background()
	reqPEM, err := enroll.InitRegion(ctx, h, name, t0)
	if err != nil {
		t.Fatalf("InitRegion(%s) error = %v", name, err)
	}
	req, err := enroll.ParseRequest(reqPEM)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := p.h.SigningKey(ctx, enroll.LabelPrimarySigning)
	if err != nil {
		t.Fatal(err)
	}
	_, cert, err := enroll.Certify(ctx, signer, req, enroll.CertifyOptions{Now: t0, AllowSHA1: true})
	if err != nil {
		t.Fatalf("Certify(%s) error = %v", name, err)
	}
	return &regionSite{name: name, h: h, cert: cert}
}

// officers are alice, bob and carol (the plan's) and mallory (not in it).
type officers struct {
	signers map[string]*officer.Signer
}

var (
	offOnce sync.Once
	offs    officers
)

func getOfficers(t testing.TB) officers {
	offOnce.Do(func() {
		offs.signers = map[string]*officer.Signer{}
		for _, name := range []string{"alice", "bob", "carol", "mallory"} {
			pass := []byte(name + " passphrase")
			key, _, err := officer.New(name, pass, t0)
			if err != nil {
				t.Fatal(err)
			}
			s, err := officer.Open(key, pass)
			if err != nil {
				t.Fatal(err)
			}
			offs.signers[name] = s
		}
	})
	return offs
}

func (o officers) publics(names ...string) []*officer.Public {
	var out []*officer.Public
	for _, n := range names {
		out = append(out, o.signers[n].Public())
	}
	return out
}

// makePlan makes a plan for the regions with officers alice, bob, carol and
// quorum 2.
func makePlan(t testing.TB, kind plan.Kind, id string, p *primarySite, regions ...*regionSite) *plan.Plan {
	t.Helper()
	var certs []*enroll.Certificate
	for _, r := range regions {
		certs = append(certs, r.cert)
	}
	pl, err := plan.New(plan.Plan{
		Kind: kind, Release: id, Created: t0, Iterations: plan.MinIterations,
		Primary: p.pub.SigningKeyID(), Regions: certs,
		Officers: getOfficers(t).publics("alice", "bob", "carol"), Quorum: 2,
	})
	if err != nil {
		t.Fatalf("plan.New() error = %v", err)
	}
	return pl
}

// approve returns the named officers' approvals of pl.
func approve(t testing.TB, pl *plan.Plan, names ...string) []plan.NamedApproval {
	var out []plan.NamedApproval
	for _, n := range names {
		out = append(out, plan.NamedApproval{Source: n + ".approval", Data: plan.Approve(getOfficers(t).signers[n], pl, t0)})
	}
	return out
}
