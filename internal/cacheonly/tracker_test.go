package cacheonly_test

import (
	"errors"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// TestTrackerSchedule: after a first failure at t0, the key may be tried
// again at t0+1m…t0+5m, then every 5 minutes until t0+24h, and at no other
// time; then not by the schedule (Pending) until a request tries again,
// whose failure starts a new schedule; a success makes it available.
func TestTrackerSchedule(t *testing.T) {
	ref := tenant.KeyRef{Tenant: "t1", Type: "data", Version: 1}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	var want []time.Duration
	for m := 1; m <= 5; m++ {
		want = append(want, time.Duration(m)*time.Minute)
	}
	for d := 10 * time.Minute; d <= 24*time.Hour; d += 5 * time.Minute {
		want = append(want, d)
	}
	var tr cacheonly.Tracker
	down := errors.New("down")
	tr.Failed(ref, t0, down)
	var got []time.Duration
	for now := t0; now.Before(t0.Add(30 * time.Hour)); now = now.Add(30 * time.Second) {
		due, err := tr.Due(ref, now)
		pending := len(tr.Pending(now)) == 1
		if !due {
			if !errors.Is(err, down) {
				t.Fatalf("Due(t0+%v) error = %v, want the last failure", now.Sub(t0), err)
			}
			if pending {
				t.Fatalf("Pending(t0+%v) lists the key before its retry", now.Sub(t0))
			}
			continue
		}
		if now.Sub(t0) > 24*time.Hour {
			// The schedule is over: requests may try, the node does not.
			if pending {
				t.Fatalf("Pending(t0+%v) lists the key after the schedule ended", now.Sub(t0))
			}
			break
		}
		if !pending {
			t.Fatalf("Pending(t0+%v) does not list a key whose retry is due", now.Sub(t0))
		}
		got = append(got, now.Sub(t0))
		tr.Failed(ref, now, down)
	}
	if len(got) != len(want) {
		t.Fatalf("retries at %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("retry %d at t0+%v, want t0+%v", i+1, got[i], want[i])
		}
	}
	// A request after the end tries; its failure is a new t0.
	t1 := t0.Add(30 * time.Hour)
	if due, _ := tr.Due(ref, t1); !due {
		t.Fatalf("Due() after the schedule ended = false, want a request to try once more")
	}
	tr.Failed(ref, t1, down)
	if due, _ := tr.Due(ref, t1.Add(59*time.Second)); due {
		t.Errorf("Due(t1+59s) = true after a new first failure at t1")
	}
	if due, _ := tr.Due(ref, t1.Add(time.Minute)); !due {
		t.Errorf("Due(t1+1m) = false, want the new schedule's first retry")
	}
	if !tr.Unavailable(ref) {
		t.Errorf("Unavailable() = false after a failure")
	}
	tr.Succeeded(ref)
	if due, _ := tr.Due(ref, t1.Add(time.Second)); !due || tr.Unavailable(ref) {
		t.Errorf("after Succeeded: Due() = %v, Unavailable() = %v, want available", due, tr.Unavailable(ref))
	}
}
