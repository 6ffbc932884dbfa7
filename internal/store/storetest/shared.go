package storetest

import (
	"testing"

	"github.com/strongroom-kms/strongroom/internal/store"
)

// RunShared runs the conformance suite of a database shared by several KMS
// nodes, for an engine that supports it (PostgreSQL): open must open two
// stores on one fresh, empty database, as two nodes would, and arrange
// (t.Cleanup) for them to be closed and the database removed. It checks that
// what one node does the other sees: destructions heard of by the other's
// watchers (WatchDestroyed), every change of a row nodes keep copies of
// (WatchChanges), and so are revocations of cache-only keys, one export key per tenant, the limits of upload certificates, tokens and failed uploads, tokens revoked while they make others, restorations and
// rotations serialised across nodes, one audit log whose appends, from
// either node, chain without gaps, and key usage counted from both nodes. An engine's test calls it in addition to
// Run.
func RunShared(t *testing.T, open func(t *testing.T) (a, b *store.Store)) {
	tests := []struct {
		name string
		fn   func(t *testing.T, a, b *store.Store)
	}{
		{"WatchDestroyedAcrossNodes", watchAcross},
		{"WatchChangesAcrossNodes", changesAcross},
		{"RevokeWatchedAcrossNodes", revokeAcross},
		{"ConcurrentExportKeyAcrossNodes", concurrentExportKey},
		{"ConcurrentUploadCertLimitAcrossNodes", concurrentUploadCertLimit},
		{"ConcurrentTokenLimitAcrossNodes", concurrentTokenLimit},
		{"ConcurrentRevokeCreateAcrossNodes", concurrentRevokeCreate},
		{"ConcurrentUploadLimitAcrossNodes", concurrentUploadLimit},
		{"ConcurrentRestoreRotateAcrossNodes", concurrentRestoreRotate},
		{"AuditConcurrentAcrossNodes", auditConcurrent},
		{"KeyUsageConcurrentAcrossNodes", keyUsageConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := open(t)
			tc.fn(t, a, b)
		})
	}
}
