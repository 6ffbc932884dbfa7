package auditlog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/sqlite"
)

var t1 = time.Date(2026, 11, 27, 12, 0, 30, 0, time.UTC)

// gated is a real store whose appends are counted, and whose first append
// waits for the gate to open.
type gated struct {
	*store.Store
	txs   atomic.Int32
	gate  chan struct{}
	first atomic.Bool
	fail  atomic.Bool // every append of more than one request's entries fails
}

func (g *gated) AppendAuditUsage(ctx context.Context, counts []keyusage.Count, es ...audit.Entry) ([]audit.Entry, error) {
	g.txs.Add(1)
	if g.first.CompareAndSwap(false, true) {
		<-g.gate
	}
	if g.fail.Load() && len(es) > 1 {
		return nil, errors.New("the database went away")
	}
	return g.Store.AppendAuditUsage(ctx, counts, es...)
}

func newGated(t *testing.T) (*gated, *Log) {
	t.Helper()
	s, err := sqlite.OpenPath(context.Background(), filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	g := &gated{Store: s, gate: make(chan struct{})}
	return g, New(g, "eu1")
}

func delivery(i int) audit.Entry {
	return audit.Entry{Time: t1, Actor: fmt.Sprint("app-", i), Role: "app", Tenant: "t1", Action: audit.ActionDeliver,
		Outcome: audit.OutcomeOK, Request: fmt.Sprint("r-", i)}
}

// inStore waits until the first append is in the store, held at the gate.
func inStore(t *testing.T, g *gated) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for g.txs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first append did not reach the store")
		}
		time.Sleep(time.Millisecond)
	}
}

// queued waits until n appends wait behind the commit in flight.
func queued(t *testing.T, l *Log, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.group.mu.Lock()
		got := len(l.group.queue)
		l.group.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d appends queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommit: appends that arrive while one commits share the next
// transaction; none returns before its entries are in the log; the chain
// holds every entry once.
func TestGroupCommit(t *testing.T) {
	g, l := newGated(t)
	const n = 40
	errs := make([]error, n+1)
	returned := make([]atomic.Bool, n+1)
	var wg sync.WaitGroup
	start := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.Append(context.Background(), delivery(i))
			returned[i].Store(true)
		}()
	}
	start(0) // leads, and waits in the store
	inStore(t, g)
	for i := 1; i <= n; i++ {
		start(i)
	}
	queued(t, l, n)
	for i := range returned {
		if returned[i].Load() {
			t.Fatalf("append %d returned before any commit", i)
		}
	}
	close(g.gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("append %d error = %v", i, err)
		}
	}
	if txs := g.txs.Load(); txs != 2 {
		t.Errorf("%d appends made %d transactions, want 2 (the first, then the other %d together)", n+1, txs, n)
	}
	seen := map[string]int{}
	for e, err := range l.All(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		seen[e.Request]++
	}
	for i := 0; i <= n; i++ {
		if c := seen[fmt.Sprint("r-", i)]; c != 1 {
			t.Errorf("entry of append %d is in the log %d times, want once", i, c)
		}
	}
}

// TestGroupCommitBatchBound: a queue longer than maxBatch commits in
// several transactions, the lead passing on.
func TestGroupCommitBatchBound(t *testing.T) {
	g, l := newGated(t)
	n := maxBatch + 10
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.AppendUsage(context.Background(), nil, delivery(i)); err != nil {
				failed.Add(1)
			}
		}()
		if i == 0 {
			inStore(t, g)
		}
	}
	queued(t, l, n)
	close(g.gate)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d appends failed", failed.Load())
	}
	if txs := g.txs.Load(); txs != 3 {
		t.Errorf("%d appends made %d transactions, want 3 (1, %d, 10)", n+1, txs, maxBatch)
	}
	st, err := g.AuditState(context.Background())
	if err != nil || st.Size() != uint64(n+1) {
		t.Errorf("the log holds %d entries (%v), want %d", st.Size(), err, n+1)
	}
}

// TestGroupCommitFailures: an invalid entry fails its own append only (the
// batch is appended again request by request); any other failure of a
// batch fails each of its appends, and none is appended again (the commit
// may have happened).
func TestGroupCommitFailures(t *testing.T) {
	for _, storeFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("store fails batches %v", storeFails), func(t *testing.T) {
			g, l := newGated(t)
			g.fail.Store(storeFails)
			const n = 8
			errs := make([]error, n+1)
			var wg sync.WaitGroup
			for i := 0; i <= n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e := delivery(i)
					if i == 3 {
						e.Action = "" // invalid
					}
					errs[i] = l.Append(context.Background(), e)
				}()
				if i == 0 {
					inStore(t, g)
				}
			}
			queued(t, l, n)
			close(g.gate)
			wg.Wait()
			wantSize := uint64(n) // all but the invalid one
			if storeFails {
				wantSize = 1 // the first, alone
			}
			for i, err := range errs {
				switch {
				case i == 0 && err != nil:
					t.Errorf("the first append (alone) error = %v", err)
				case i == 0:
				case storeFails && (err == nil || err.Error() != "the database went away"):
					t.Errorf("append %d in a failed batch: error = %v, want the store's", i, err)
				case !storeFails && i == 3 && !errors.Is(err, store.ErrInvalid):
					t.Errorf("the invalid append's error = %v, want ErrInvalid", err)
				case !storeFails && i != 3 && err != nil:
					t.Errorf("append %d error = %v", i, err)
				}
			}
			st, err := g.AuditState(context.Background())
			if err != nil || st.Size() != wantSize {
				t.Errorf("the log holds %d entries (%v), want %d", st.Size(), err, wantSize)
			}
			if want := int32(2); storeFails && g.txs.Load() != want {
				t.Errorf("%d transactions, want %d: a failed batch is not appended again", g.txs.Load(), want)
			}
		})
	}
}

// TestGroupCommitGiveUp: a request whose context ends while it waits in
// the queue fails at once and is appended by nobody; the queue goes on.
func TestGroupCommitGiveUp(t *testing.T) {
	g, l := newGated(t)
	done := make(chan error, 3)
	go func() { done <- l.Append(context.Background(), delivery(0)) }()
	inStore(t, g)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- l.Append(ctx, delivery(1)) }()
	queued(t, l, 1)
	go func() { done <- l.Append(context.Background(), delivery(2)) }()
	queued(t, l, 2)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled append's error = %v, want context.Canceled", err)
	}
	queued(t, l, 1)
	close(g.gate)
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("append error = %v", err)
		}
	}
	seen := map[string]bool{}
	for e, err := range l.All(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		seen[e.Request] = true
	}
	if !seen["r-0"] || seen["r-1"] || !seen["r-2"] {
		t.Errorf("the log holds %v, want r-0 and r-2", seen)
	}
}

// TestGroupCommitPanic: a store that panics fails its batch, and the
// appends queued behind it still go through.
func TestGroupCommitPanic(t *testing.T) {
	g, l := newGated(t)
	close(g.gate)
	var calls atomic.Int32
	l.st = panicky{Store: l.st, calls: &calls}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the store's panic did not reach the leader")
			}
		}()
		l.Append(context.Background(), delivery(0))
	}()
	if err := l.Append(context.Background(), delivery(1)); err != nil {
		t.Errorf("the append after a panic: %v", err)
	}
}

// panicky panics on its first append.
type panicky struct {
	Store
	calls *atomic.Int32
}

func (p panicky) AppendAuditUsage(ctx context.Context, counts []keyusage.Count, es ...audit.Entry) ([]audit.Entry, error) {
	if p.calls.Add(1) == 1 {
		panic("the driver")
	}
	return p.Store.AppendAuditUsage(ctx, counts, es...)
}

// BenchmarkGroupCommit: concurrent durable appends (DEK deliveries) on a
// SQLite file (synchronous=FULL: each commit is fsynced).
func BenchmarkGroupCommit(b *testing.B) {
	s, err := sqlite.OpenPath(context.Background(), filepath.Join(b.TempDir(), "audit.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	l := New(s, "eu1")
	var seq atomic.Int64
	b.SetParallelism(16) // 16 × GOMAXPROCS concurrent requests
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(context.Background(), delivery(int(seq.Add(1)))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
