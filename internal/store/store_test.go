package store

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"
	"unicode/utf8"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

func TestReleaseIDRuleMatchesPlan(t *testing.T) {
	for _, id := range []string{"2026-1", "a", "A.b_c-d", "", ".x", "-x", "x/y", "é", strings.Repeat("r", 64), strings.Repeat("r", 65), "x y", "x\n"} {
		if got, want := ValidReleaseID(id) == nil, plan.ValidRelease(id) == nil; got != want {
			t.Errorf("ValidReleaseID(%q) ok = %v, plan.ValidRelease ok = %v", id, got, want)
		}
	}
}

func TestTime(t *testing.T) {
	in := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.FixedZone("x", -3600))
	got := Time(in)
	if got.Location() != time.UTC || got.Nanosecond() != 678901000 || !got.Equal(in.Truncate(time.Microsecond)) {
		t.Errorf("Time(%v) = %v", in, got)
	}
	if tm := Time(time.Now()); tm != tm.Round(0) {
		t.Error("Time kept a monotonic reading")
	}
}

func TestIDs(t *testing.T) {
	a, b := tenant.NewID(), tenant.NewID()
	if a == b || ValidID("tenant", a) != nil || len(a) != 32 {
		t.Errorf("NewID() = %q, %q", a, b)
	}
	for id, ok := range map[string]bool{
		a:                                      true,
		"0b7a3c2e-5f1d-4a8b-9c6d-1e2f3a4b5c6d": true,
		"0b7a3c2e-5f1d-4a8b-7c6d-1e2f3a4b5c6d": false, // variant
		"0B7A3C2E-5F1D-4A8B-9C6D-1E2F3A4B5C6D": false, // upper case
		"0b7a3c2e5f1d4a8b9c6d1e2f3a4b5c6d0":    false,
		"":                                     false,
	} {
		if (ValidID("x", id) == nil) != ok {
			t.Errorf("ValidID(%q) ok = %v, want %v", id, !ok, ok)
		}
	}
	err := ValidID("tenant", "nope")
	if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "store: invalid tenant ID") {
		t.Errorf("ValidID(nope) = %v", err)
	}
}

func TestDecideOrder(t *testing.T) {
	now := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	req, err := RotateRequest{Tenant: tenant.NewID(), Type: tenant.TypeData, MinInterval: time.Hour, MaxKeys: 2, Now: now,
		New: tenant.Key{Source: tenant.SourceHSM, Derivation: tenant.DerivationPBKDF2, Release: "r1", Wrapped: []byte{1}}}.Check()
	if err != nil {
		t.Fatal(err)
	}
	all := Series{Newest: now.Add(-time.Minute), MaxVersion: 7, Live: 2, Duplicate: true}
	var rl *RateLimitedError
	if _, err := req.Decide(all); !errors.As(err, &rl) || !rl.Next.Equal(now.Add(-time.Minute+time.Hour)) || !errors.Is(err, ErrRateLimited) {
		t.Errorf("Decide(all failing) = %v, want rate limited first", err)
	}
	all.Newest = now.Add(-time.Hour)
	if _, err := req.Decide(all); !errors.Is(err, ErrTooManyKeys) {
		t.Errorf("Decide(too many, duplicate) = %v, want ErrTooManyKeys", err)
	}
	all.Live = 1
	if _, err := req.Decide(all); !errors.Is(err, ErrDuplicate) {
		t.Errorf("Decide(duplicate) = %v, want ErrDuplicate", err)
	}
	all.Duplicate = false
	k, err := req.Decide(all)
	if err != nil || k.Version != 8 || k.State != tenant.StateActive || !k.Created.Equal(now) || k.Tenant != req.Tenant || k.Type != tenant.TypeData {
		t.Errorf("Decide(ok) = %+v, %v", k, err)
	}
	if _, err := req.Decide(Series{MaxVersion: 1<<32 - 1}); !errors.Is(err, ErrTooManyKeys) {
		t.Errorf("Decide(last version used) = %v", err)
	}
}

func TestLoadMigrations(t *testing.T) {
	ok := fstest.MapFS{"s/001_init.sql": {Data: []byte("a")}, "s/002_more_things.sql": {Data: []byte("b")}}
	ms, err := LoadMigrations(ok, "s")
	if err != nil || len(ms) != 2 || ms[0].Version != 1 || ms[1].SQL != "b" {
		t.Errorf("LoadMigrations() = %+v, %v", ms, err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"s/001_a.sql": {}, "s/003_b.sql": {}},
		"stray":    {"s/001_a.sql": {}, "s/README": {}},
		"from two": {"s/002_a.sql": {}},
		"empty":    {"s/.keep": {}},
	} {
		if _, err := LoadMigrations(fsys, "s"); err == nil {
			t.Errorf("LoadMigrations(%s) succeeded", name)
		}
	}
	if err := CheckSchemaVersion("SQLite", 2, 2); err != nil {
		t.Error(err)
	}
	if err := CheckSchemaVersion("SQLite", 3, 2); !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), "schema version 3") {
		t.Errorf("CheckSchemaVersion(3, 2) = %v", err)
	}
}

func TestErrorf(t *testing.T) {
	err := Errorf(ErrNotFound, "no tenant %s", "x")
	if err.Error() != "store: no tenant x" || !errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) {
		t.Errorf("Errorf() = %v", err)
	}
	var rl error = &RateLimitedError{Next: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))}
	if !strings.HasPrefix(rl.Error(), "store: ") || !strings.Contains(rl.Error(), "2025-12-31T23:00:00Z") {
		t.Errorf("RateLimitedError.Error() = %q", rl)
	}
}

func TestDialectTimes(t *testing.T) {
	for _, src := range []any{int64(1767225600123456), time.Date(2026, 1, 1, 1, 0, 0, 123456000, time.FixedZone("x", 3600))} {
		var got time.Time
		if err := (timeValue{&got}).Scan(src); err != nil || !got.Equal(time.UnixMicro(1767225600123456)) || got.Location() != time.UTC {
			t.Errorf("timeValue.Scan(%T %v) = %v, %v", src, src, got, err)
		}
	}
	got := time.Now()
	if err := (timeValue{&got}).Scan(nil); err != nil || !got.IsZero() {
		t.Errorf("timeValue.Scan(NULL) = %v, %v, want the zero time", got, err)
	}
	if err := (timeValue{&got}).Scan("2026-01-01"); !errors.Is(err, ErrInvalid) {
		t.Errorf("timeValue.Scan(text) error = %v, want ErrInvalid", err)
	}
	d := Dialect{Time: func(t time.Time) any { return t.UnixMicro() }}
	if d.NullTime(time.Time{}) != nil || d.NullTime(time.UnixMicro(5)) != int64(5) {
		t.Error("Dialect.NullTime is wrong")
	}
}

// TestRevocationEntries: the entries of a cascading revocation each fit an
// audit entry, whatever the request's own detail, and together name every
// token revoked.
func TestRevocationEntries(t *testing.T) {
	rec := audit.Entry{Actor: "op", Role: "operator", Action: "token.revoke", Outcome: audit.OutcomeOK,
		Detail: strings.Repeat("é", 600)} // 1200 bytes, more than an entry holds
	id := tenant.NewID()
	var made []string
	for range 80 {
		made = append(made, tenant.NewID())
	}
	entries := revocationEntries(rec, id, made)
	all := ""
	for i, e := range entries {
		if len(e.Detail) > audit.MaxDetail || !utf8.ValidString(e.Detail) {
			t.Fatalf("entry %d detail is %d bytes (valid UTF-8: %v), the most is %d", i, len(e.Detail), utf8.ValidString(e.Detail), audit.MaxDetail)
		}
		all += e.Detail
	}
	for _, m := range append(made, id) {
		if !strings.Contains(all, m) {
			t.Errorf("token %s is named in no entry", m)
		}
	}
	if len(entries) < 2 {
		t.Errorf("%d entries for 80 tokens, want the list continued", len(entries))
	}
}
