package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/node"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
)

func TestMain(m *testing.M) { nodetest.Main(m) }

// startupReleases is how many releases the startup benchmark installs.
const startupReleases = 100

var (
	startupOnce    sync.Once
	startupBundles [][]byte // eu1's bundles of releases s001 … s100
)

// manyBundles runs the ceremonies of startupReleases releases, a minute
// apart, once per test binary, and returns their eu1 bundles.
func manyBundles(tb testing.TB) [][]byte {
	tb.Helper()
	startupOnce.Do(func() {
		for i := range startupReleases {
			r := nodetest.Release{ID: fmt.Sprintf("s%03d", i+1), Created: nodetest.T0.Add(time.Duration(i) * time.Minute), Iterations: plan.MinIterations}
			startupBundles = append(startupBundles, nodetest.Bundle(tb, r))
		}
	})
	if len(startupBundles) != startupReleases {
		tb.Fatal("the startup releases were not made")
	}
	return startupBundles
}

// BenchmarkStartup100Releases is a regional node's startup with 100
// installed releases: from a fresh node over a SQLite store that has them
// installed to ready, every bundle verified and opened in the regional
// (soft) HSM. The releases are made once; each op is a fresh node. Besides
// the time, it reports the process's CPU time per op: the work, apart from
// the waiting for cores on a shared machine.
func BenchmarkStartup100Releases(b *testing.B) {
	ctx := context.Background()
	bundles := manyBundles(b)
	w := nodetest.World(b)
	st := nodetest.SQLite(b)
	for i, data := range bundles {
		id := fmt.Sprintf("s%03d", i+1)
		in := release.Installation{ID: id, Bundle: data, Installed: nodetest.T0.Add(time.Duration(i) * time.Second)}
		if _, err := st.InstallRelease(ctx, in, *nodetest.Rec("")); err != nil {
			b.Fatalf("installing %s: %v", id, err)
		}
	}
	clock := nodetest.NewClock(nodetest.T0.Add(24 * time.Hour))
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		n, err := node.New(node.Options{HSM: w.Regions[nodetest.Region].HSM, Store: st, Trust: w.Trust(nodetest.Region),
			Policy: nodetest.DefaultPolicy(), Now: clock.Now})
		if err != nil {
			b.Fatal(err)
		}
		loaded := 0
		err = n.LoadReleases(ctx, func(id string, _ release.Meta, err error) {
			if err != nil {
				b.Errorf("loading %s: %v", id, err)
			}
			loaded++
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := n.Ring.Ready(); err != nil || loaded != startupReleases {
			b.Fatalf("after loading %d releases: Ready() = %v", loaded, err)
		}
		n.Close()
	}
	if used := processCPU(); cpu >= 0 && used >= 0 {
		// The work, whatever else the machine runs: ms/op over cpu-ms/op
		// is how many cores the startup kept busy.
		b.ReportMetric(float64((used-cpu).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "ms/op")
}
