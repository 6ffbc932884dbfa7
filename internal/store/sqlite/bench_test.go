package sqlite

import (
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/keyusage"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// BenchmarkAppendAuditUsage: the statements of one durable append (a DEK
// delivery's: its usage count and its audit entry, in a transaction of
// their own) on an in-memory database, so that what is measured is the
// CPU of the statements, not the fsync of a file:
//
//	go test -run '^$' -bench AppendAuditUsage ./internal/store/sqlite
func BenchmarkAppendAuditUsage(b *testing.B) {
	s, err := Open(ctx, "sqlite::memory:")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const tenantID = "0123456789abcdef0123456789abcdef" // well-formed; no tenant has it
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	counts := []keyusage.Count{{Key: tenant.KeyRef{Tenant: tenantID, Type: tenant.TypeData, Version: 1}, Deliveries: 1, LastDelivery: at}}
	e := audit.Entry{Time: at, Actor: "app-1", Role: "app", Tenant: tenantID, Action: audit.ActionDeliver, Key: "data/1",
		Outcome: audit.OutcomeOK, Request: "r-1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AppendAuditUsage(ctx, counts, e); err != nil {
			b.Fatal(err)
		}
	}
}
