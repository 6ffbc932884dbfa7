package ceremony_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/hsmtest"
	"github.com/strongroom-kms/strongroom/internal/hsm/pkcs11"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/world"
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

// planOfficers are the officers of the tests' plans (quorum 2). The worlds
// have a fourth officer, mallory, in none of them.
var planOfficers = []string{"alice", "bob", "carol"}

// newWorld makes a world at t0 with the regions and officers alice, bob,
// carol and mallory; open, if not nil, opens its HSMs. SHA-1 is allowed so
// that any primary can seal to any region (SoftHSM2 wraps with OAEP-SHA-1
// only); the ceremony still picks the best common hash.
func newWorld(regions []string, open func(ctx context.Context, region string) (hsm.HSM, error)) (*world.World, error) {
	return world.New(context.Background(), world.Options{
		Regions: regions, Officers: []string{"alice", "bob", "carol", "mallory"}, Now: t0, Clock: clock(),
		AllowSHA1: true, OpenHSM: open,
	})
}

// shared is a soft primary with regions eu1 and us1, made once per package,
// and another primary, for forgeries.
var shared struct {
	once  sync.Once
	w     *world.World
	other *world.Primary
	err   error
}

var tmpRoot string

func TestMain(m *testing.M) {
	var err error
	if tmpRoot, err = os.MkdirTemp("", "ceremony-test-"); err != nil {
		panic(err)
	}
	code := m.Run()
	if shared.w != nil {
		shared.w.Close()
	}
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

func getWorld(t *testing.T) *world.World {
	t.Helper()
	shared.once.Do(func() {
		ctx := context.Background()
		if shared.w, shared.err = newWorld([]string{"eu1", "us1"}, nil); shared.err != nil {
			return
		}
		h, err := soft.Open(ctx, filepath.Join(tmpRoot, "other-primary"), []byte("ceremony test"), soft.Options{Create: true})
		if err == nil {
			shared.other, err = world.NewPrimary(ctx, h, t0)
		}
		shared.err = err
	})
	if shared.err != nil {
		t.Fatalf("fixture: %v", shared.err)
	}
	return shared.w
}

// otherPrimary is another primary than getWorld's, for forgeries.
func otherPrimary(t *testing.T) *world.Primary {
	t.Helper()
	getWorld(t)
	return shared.other
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

// enrollRegion adds region name to w.
func enrollRegion(t testing.TB, w *world.World, name string) *world.Region {
	t.Helper()
	r, err := w.Enroll(context.Background(), name)
	if err != nil {
		t.Fatalf("Enroll(%s) error = %v", name, err)
	}
	return r
}

// makePlan makes a plan for the regions with officers alice, bob, carol and
// quorum 2.
func makePlan(t testing.TB, w *world.World, kind plan.Kind, id string, regions ...string) *plan.Plan {
	t.Helper()
	pl, err := w.Plan(kind, id, world.Spec{Regions: regions, Officers: planOfficers, Quorum: 2})
	if err != nil {
		t.Fatalf("plan.New() error = %v", err)
	}
	return pl
}

// approve returns the named officers' approvals of pl.
func approve(t testing.TB, w *world.World, pl *plan.Plan, names ...string) []plan.NamedApproval {
	t.Helper()
	a, err := w.Approve(pl, names...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
