package resync_test

import "testing"

// BenchmarkSync syncs a table of 1,000 rows (one blob column, each value
// bound to its row) from the previous key version to a new one per
// iteration, through a real node's rewrap over loopback HTTP, on the
// user's database on each engine. rows/s is the figure of docs/benchmarks.md:
//
//	go test ./internal/resync -run '^$' -bench BenchmarkSync -benchtime 5x
func BenchmarkSync(b *testing.B) {
	const rows = 1000
	for engine, mk := range userDBs(nil) {
		b.Run(engine, func(b *testing.B) {
			w := newWorld(b, mk(b), rows)
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				w.rotate()
				b.StartTimer()
				rep, err := w.job("").Run(ctx)
				if err != nil || rep.Moved != rows {
					b.Fatalf("sync: %+v, %v", rep, err)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
