package httpapi

import (
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Audit listing: operators and auditors see every entry; a tenant's
// administrators (and auditors, operators) its own, through the tenant
// route, which the route table scopes.

const (
	defaultAuditLimit = 1000
	maxAuditLimit     = 10_000
)

var errAuditPageFull = errors.New("page full")

func auditOf(e audit.Entry) api.AuditEntry {
	return api.AuditEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Role: e.Role, Tenant: e.Tenant, Action: string(e.Action),
		Key: e.Key, Outcome: string(e.Outcome), Reason: e.Reason, Remote: e.Remote, Request: e.Request, Detail: e.Detail,
		Count: e.Count, Hash: hex.EncodeToString(e.Hash[:])}
}

// auditFilter reads the query: key, since, until (RFC 3339), after (a seq),
// limit.
func auditFilter(c *Call) (store.AuditFilter, error) {
	q := c.Request.URL.Query()
	f := store.AuditFilter{Key: q.Get("key"), Limit: defaultAuditLimit}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return f, badRequestf("%s %q: use an RFC 3339 time such as 2026-11-27T12:00:00Z", name, v)
			}
			*dst = t
		}
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return f, badRequestf("after %q: a sequence number", v)
		}
		f.AfterSeq = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			return f, badRequestf("limit %q: 1 to %d", v, maxAuditLimit)
		}
		f.Limit = n
	}
	if len(f.Key) > 64 {
		return f, badRequestf("key: at most 64 characters, such as data or data/3")
	}
	return f, nil
}

// listAudit answers one page of entries; Next is set when the page is full.
func (s *server) listAudit(c *Call, f store.AuditFilter) (any, error) {
	out := api.AuditList{Entries: []api.AuditEntry{}}
	limit := f.Limit
	f.Limit = limit + 1 // one more, to know whether there is a next page
	err := s.Audit.Entries(c.Context(), f, func(e audit.Entry) error {
		if len(out.Entries) == limit {
			out.Next = out.Entries[limit-1].Seq
			return errAuditPageFull
		}
		out.Entries = append(out.Entries, auditOf(e))
		return nil
	})
	if err != nil && !errors.Is(err, errAuditPageFull) {
		return nil, err
	}
	if err := s.nameAudit(c, out.Entries); err != nil {
		return nil, err
	}
	return out, nil
}

// nameAudit fills in the names of the entries' tenants and actors: the
// tenant's name (tenants are never deleted), and the name of the actor's
// token while it exists.
func (s *server) nameAudit(c *Call, entries []api.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	tenants := map[string]string{}
	if c.Tenant.ID != "" {
		tenants[c.Tenant.ID] = c.Tenant.Name
	} else {
		ts, err := s.Tenants.List(c.Context())
		if err != nil {
			return err
		}
		for _, t := range ts {
			tenants[t.ID] = t.Name
		}
	}
	var actors []string
	for _, e := range entries {
		if tenant.ValidID(e.Actor) {
			actors = append(actors, e.Actor)
		}
	}
	slices.Sort(actors)
	names, err := s.Tokens.Names(c.Context(), slices.Compact(actors))
	if err != nil {
		return err
	}
	for i := range entries {
		entries[i].TenantName = tenants[entries[i].Tenant]
		entries[i].ActorName = names[entries[i].Actor]
	}
	return nil
}

func (s *server) audit(c *Call) (any, error) {
	f, err := auditFilter(c)
	if err != nil {
		return nil, err
	}
	if name := c.Request.URL.Query().Get("tenant"); name != "" {
		t, err := s.Tenants.ByName(c.Context(), name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFoundf("no tenant is named %q", name)
		}
		if err != nil {
			return nil, err
		}
		f.Tenant = t.ID
	}
	return s.listAudit(c, f)
}

func (s *server) tenantAudit(c *Call) (any, error) {
	f, err := auditFilter(c)
	if err != nil {
		return nil, err
	}
	f.Tenant = c.Tenant.ID
	return s.listAudit(c, f)
}
