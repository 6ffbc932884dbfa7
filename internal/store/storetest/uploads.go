package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// The conformance tests of the failed-upload limit.

var uploadLimit = store.UploadLimit{Max: 3, Window: 10 * time.Minute}

func testUploadLimit(t *testing.T, s *store.Store) {
	tn := mustTenant(t, s, "acme")
	other := mustTenant(t, s, "other")
	begin := func(tenantID string, at time.Time) (string, error) {
		return s.BeginUpload(ctx, tenantID, at, uploadLimit)
	}
	var ids []string
	for i := range 3 {
		id, err := begin(tn.ID, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatalf("BeginUpload #%d error = %v", i, err)
		}
		ids = append(ids, id)
	}
	_, err := begin(tn.ID, t0.Add(5*time.Minute))
	var ul *store.UploadLimitedError
	if !errors.As(err, &ul) || !errors.Is(err, store.ErrTooManyFailures) {
		t.Fatalf("BeginUpload(three failed) error = %v, want an *UploadLimitedError", err)
	}
	if want := t0.Add(uploadLimit.Window); !ul.Next.Equal(want) || ul.Failures != 3 {
		t.Errorf("UploadLimitedError = %d failures, next %s, want 3 and %s", ul.Failures, ul.Next, want)
	}
	if _, err := begin(other.ID, t0.Add(5*time.Minute)); err != nil {
		t.Errorf("BeginUpload(another tenant) error = %v", err)
	}

	// An accepted upload is not a failure.
	if err := s.UploadAccepted(ctx, tn.ID, ids[2]); err != nil {
		t.Fatalf("UploadAccepted() error = %v", err)
	}
	if err := s.UploadAccepted(ctx, tn.ID, ids[2]); err != nil {
		t.Errorf("UploadAccepted(again) error = %v", err)
	}
	if _, err := begin(tn.ID, t0.Add(5*time.Minute)); err != nil {
		t.Errorf("BeginUpload(two failed, one accepted) error = %v", err)
	}
	_, err = begin(tn.ID, t0.Add(uploadLimit.Window-time.Microsecond))
	wantErr(t, "BeginUpload(just before the oldest leaves the window)", err, store.ErrTooManyFailures)
	// The oldest leaves the window at Next.
	if _, err := begin(tn.ID, t0.Add(uploadLimit.Window)); err != nil {
		t.Errorf("BeginUpload(at Next) error = %v", err)
	}

	_, err = begin(tenant.NewID(), t0)
	wantErr(t, "BeginUpload(unknown tenant)", err, store.ErrNotFound)
	for name, fn := range map[string]func() error{
		"invalid tenant": func() error { _, err := begin("acme", t0); return err },
		"zero time":      func() error { _, err := begin(tn.ID, time.Time{}); return err },
		"no count": func() error {
			_, err := s.BeginUpload(ctx, tn.ID, t0, store.UploadLimit{Window: time.Minute})
			return err
		},
		"no window": func() error {
			_, err := s.BeginUpload(ctx, tn.ID, t0, store.UploadLimit{Max: 1})
			return err
		},
		"accepted, invalid ID": func() error { return s.UploadAccepted(ctx, tn.ID, "x") },
	} {
		wantErr(t, "BeginUpload("+name+")", fn(), store.ErrInvalid)
	}
}

// testConcurrentUploadLimit is concurrentUploadLimit on one store.
func testConcurrentUploadLimit(t *testing.T, s *store.Store) { concurrentUploadLimit(t, s, s) }

// concurrentUploadLimit: 10 uploads started at once, on two nodes, with a
// limit of 5 failures: exactly 5 start.
func concurrentUploadLimit(t *testing.T, a, b *store.Store) {
	tn := mustTenant(t, a, "acme")
	concurrentLimit(t, a, b, store.ErrTooManyFailures, func(s *store.Store, i, limit int) error {
		_, err := s.BeginUpload(ctx, tn.ID, t0, store.UploadLimit{Max: limit, Window: time.Hour})
		return err
	}, func() int {
		// How many started, told by the limit: a 6th may start under a
		// limit of 6 but not of 5 exactly when 5 did.
		lim := func(max int) error {
			_, err := a.BeginUpload(ctx, tn.ID, t0, store.UploadLimit{Max: max, Window: time.Hour})
			return err
		}
		switch {
		case lim(5) == nil:
			return 4 // or fewer
		case lim(6) != nil:
			return 6 // or more
		}
		return 5
	})
}
