package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
)

// The audit trail of the API (S15, docs/audit.md). Every route with an Audit
// action records:
//
//   - a change that succeeds: its entry (Call.Audit, passed to the service
//     that makes the change) is appended by the store in the change's own
//     transaction, so there is no change without its entry; a success that
//     changes nothing in the store (an export, a DEK delivery: routes marked
//     deliver) is appended before the answer is sent, and if that append
//     fails the request fails; a DEK delivery's entry is appended with its
//     count in the key version's usage counters (Call.usage), in one
//     transaction;
//   - every refusal and failure, of any route, reads included: appended on
//     its own, with the error code as the reason; but a request without a
//     valid token (token.use, unauthenticated) is counted into the
//     per-minute aggregate by address, route and reason, so that
//     unauthenticated requests cost no write each;
//   - encryptions and decryptions: counted per tenant, key, caller, outcome
//     and minute (auditlog.Aggregate), and appended as aggregate entries
//     (Count) by the node's checkpointer, every minute and at shutdown.
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

// recordAudit records the outcome of a request (see above). It returns an
// error only when a success could not be recorded: the request must then
// fail.
func (s *server) recordAudit(rt *Route, c *Call, err error) error {
	if rt.Public || rt.Audit == "" {
		return nil
	}
	e := *c.Audit
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
			// route (which Detail names). Anyone can send these, so they
			// are counted, not appended one by one.
			e.Action, e.Request = audit.ActionTokenUse, ""
			s.Aggregate.CountEntry(e)
			return nil
		}
		if aerr := s.Audit.Append(ctx, e); aerr != nil {
			s.Logger.Error("audit: recording a refusal failed", "request_id", e.Request, "action", string(e.Action), "err", aerr)
		}
		return nil
	}
	if !rt.deliver {
		return nil // recorded by its change, or a read, or aggregated
	}
	e.Outcome = audit.OutcomeOK
	entries := []audit.Entry{e}
	if c.entries != nil {
		entries = c.entries
	}
	if aerr := s.Audit.AppendUsage(ctx, c.usage, entries...); aerr != nil {
		return fmt.Errorf("audit: recording %s: %w", e.Action, aerr)
	}
	return nil
}

// count adds one data-plane operation of the request to the aggregate.
func (s *server) count(c *Call, key string, err error) {
	outcome, why := audit.OutcomeOK, ""
	if err != nil {
		status, ae := problem(err, "")
		outcome, why = audit.OutcomeRefused, ae.Code
		if status >= 500 {
			outcome = audit.OutcomeError
		}
	}
	s.Aggregate.Count(*c.Audit, key, outcome, why)
}
