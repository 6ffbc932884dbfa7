package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// The audit trail of the API (S15, docs/audit.md). Every route with an Audit
// action records:
//
//   - a change that succeeds: its entry is appended by the store in the
//     change's own transaction (store.WithAudit), so there is no change
//     without its entry; a success that changes nothing in the store (an
//     export, a DEK delivery) is appended before the answer is sent, and if
//     that append fails the request fails;
//   - every refusal and failure, of any route, reads included: appended on
//     its own, with the error code as the reason;
//   - encryptions and decryptions: counted per tenant, key, caller, outcome
//     and minute, and appended as aggregate entries (Count) by FlushAudit,
//     which the server runs every minute and at shutdown.
//
// Successful reads (lists, shows) are not recorded.

// auditTimeout bounds an audit append made after the request's own work.
const auditTimeout = 10 * time.Second

// auditEntry is the template of a request's entry: who, from where, what.
func (s *server) auditEntry(rt *Route, c *Call) audit.Entry {
	r := c.Request
	e := audit.Entry{
		Time:    s.Now(),
		Actor:   audit.ActorAnonymous,
		Action:  rt.Audit,
		Remote:  remoteHost(r.RemoteAddr),
		Request: infoFrom(r.Context()).id,
		Detail:  rt.Method + " " + rt.Pattern,
	}
	if c.Identity.TokenID != "" {
		e.Actor, e.Role, e.Tenant = c.Identity.TokenID, c.Identity.Role, c.Identity.Tenant
	}
	if c.Tenant.ID != "" {
		e.Tenant = c.Tenant.ID
	}
	return e
}

func remoteHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return ""
}

// setAuditKey names the key of the request's pending entry ("data/3").
func setAuditKey(c *Call, typ string, version uint32) {
	if p := store.PendingAuditFrom(c.Context()); p != nil {
		p.SetKey(typ + "/" + strconv.FormatUint(uint64(version), 10))
	}
}

// setAuditTenant names the tenant of the request's pending entry.
func setAuditTenant(c *Call, tenantID string) {
	if p := store.PendingAuditFrom(c.Context()); p != nil {
		p.SetTenant(tenantID)
	}
}

// auditKey names a key for the audit log: "type/version", or "type" when
// the version is unknown (0), or "" when the type is too.
func auditKey(typ string, version uint32) string {
	switch {
	case typ == "":
		return ""
	case version == 0:
		return typ
	}
	return typ + "/" + strconv.FormatUint(uint64(version), 10)
}

// recordAudit records the outcome of a request (see above). p is the
// request's pending entry (nil if the request was refused before it was
// made). It returns an error only when a success could not be recorded: the
// request must then fail.
func (s *server) recordAudit(rt *Route, c *Call, p *store.PendingAudit, err error) error {
	if rt.Public || rt.Audit == "" {
		return nil
	}
	e := s.auditEntry(rt, c)
	if p != nil {
		e = p.Entry()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context()), auditTimeout)
	defer cancel()
	if err != nil {
		status, ae := problem(err, "")
		e.Outcome, e.Reason = audit.OutcomeRefused, ae.Code
		if status >= 500 || errors.Is(err, context.Canceled) {
			e.Outcome = audit.OutcomeError
		}
		if errors.Is(err, context.Canceled) {
			e.Reason = "canceled"
		}
		if errors.Is(err, auth.ErrUnauthenticated) {
			// No valid token: what was refused is the token, whatever the
			// route (which Detail names).
			e.Action = audit.ActionTokenUse
		}
		if _, aerr := s.Store.AppendAudit(ctx, e); aerr != nil {
			s.Logger.Error("audit: recording a refusal failed", "request_id", e.Request, "action", string(e.Action), "err", aerr)
		}
		return nil
	}
	if (p != nil && p.Recorded()) || rt.Method == http.MethodGet || rt.aggregate {
		return nil
	}
	e.Outcome = audit.OutcomeOK
	if _, aerr := s.Store.AppendAudit(ctx, e); aerr != nil {
		return fmt.Errorf("audit: recording %s: %w", e.Action, aerr)
	}
	return nil
}

// aggKey is one counter of the data-plane aggregate.
type aggKey struct {
	minute                                 int64 // Unix minutes
	actor, role, tenant, key, outcome, why string
	action                                 audit.Action
}

// aggregator counts encryptions and decryptions until FlushAudit.
type aggregator struct {
	mu     sync.Mutex
	counts map[aggKey]uint64
}

// count adds one data-plane operation of the request to the aggregate.
func (s *server) count(c *Call, key string, err error) {
	rt := c.route
	e := s.auditEntry(rt, c)
	k := aggKey{minute: e.Time.Unix() / 60, actor: e.Actor, role: e.Role, tenant: e.Tenant, key: key,
		outcome: string(audit.OutcomeOK), action: rt.Audit}
	if err != nil {
		status, ae := problem(err, "")
		k.outcome, k.why = string(audit.OutcomeRefused), ae.Code
		if status >= 500 {
			k.outcome = string(audit.OutcomeError)
		}
	}
	s.agg.mu.Lock()
	defer s.agg.mu.Unlock()
	if s.agg.counts == nil {
		s.agg.counts = map[aggKey]uint64{}
	}
	s.agg.counts[k]++
}

// FlushAudit appends the aggregate entries of the encryptions and
// decryptions counted so far. On failure the counts are kept for the next
// flush.
func (h *Handler) FlushAudit(ctx context.Context) error {
	s := h.s
	s.agg.mu.Lock()
	counts := s.agg.counts
	s.agg.counts = nil
	s.agg.mu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	keys := make([]aggKey, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.minute != b.minute {
			return a.minute < b.minute
		}
		return fmt.Sprint(a) < fmt.Sprint(b)
	})
	entries := make([]audit.Entry, 0, len(keys))
	for _, k := range keys {
		entries = append(entries, audit.Entry{
			Time: time.Unix(k.minute*60, 0).UTC(), Actor: k.actor, Role: k.role, Tenant: k.tenant,
			Action: k.action, Key: k.key, Outcome: audit.Outcome(k.outcome), Reason: k.why, Count: counts[k],
			Detail: "aggregate of the minute starting at this time",
		})
	}
	if _, err := s.Store.AppendAudit(ctx, entries...); err != nil {
		s.agg.mu.Lock()
		if s.agg.counts == nil {
			s.agg.counts = map[aggKey]uint64{}
		}
		for k, n := range counts {
			s.agg.counts[k] += n
		}
		s.agg.mu.Unlock()
		return fmt.Errorf("audit: appending %d aggregate entries: %w", len(entries), err)
	}
	return nil
}
