package store

import (
	"context"
	"database/sql"
	"slices"
	"sync"

	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// ChangeKind says what a Change is about.
type ChangeKind uint8

// The kinds of Change. Each names what a node that keeps copies of rows
// (internal/rowcache) must read again.
const (
	// KeyDestroyed: the key version Change.Key was destroyed, or its
	// cache-only key service revoked it (WatchDestroyed hears these).
	KeyDestroyed ChangeKind = iota + 1
	// KeysChanged: the key series (Change.Key.Tenant, Change.Key.Type)
	// changed: a rotation (generate, upload, key-service registration) or
	// a restored version. Change.Key.Version is 0.
	KeysChanged
	// TokenRevoked: the token with ID Change.Token was revoked.
	TokenRevoked
	// TenantChanged: the tenant with ID Change.Tenant changed its
	// settings.
	TenantChanged
)

// Change is what a committed write tells the nodes sharing the database,
// so that none keeps a stale copy of a row (WatchChanges). It never holds
// key material, a token's secret or its hash: only names.
type Change struct {
	Kind   ChangeKind
	Key    tenant.KeyRef // KeyDestroyed; KeysChanged (Version 0)
	Token  string        // TokenRevoked
	Tenant string        // TenantChanged
}

// Valid reports whether c names what its kind says, with valid IDs: what
// a watcher accepts from the database.
func (c Change) Valid() bool {
	switch c.Kind {
	case KeyDestroyed:
		return ValidKeyRef(c.Key) == nil && c.Token == "" && c.Tenant == ""
	case KeysChanged:
		return c.Key.Version == 0 && ValidID("tenant", c.Key.Tenant) == nil && ValidType(c.Key.Type) == nil &&
			c.Token == "" && c.Tenant == ""
	case TokenRevoked:
		return ValidID("token", c.Token) == nil && c.Key == (tenant.KeyRef{}) && c.Tenant == ""
	case TenantChanged:
		return ValidID("tenant", c.Tenant) == nil && c.Key == (tenant.KeyRef{}) && c.Token == ""
	}
	return false
}

// subscribers are the functions WatchChanges registered on this Store,
// called synchronously once a change committed through it.
type subscribers struct {
	mu  sync.RWMutex
	fns []*func(Change)
}

func (s *subscribers) add(fn *func(Change)) {
	s.mu.Lock()
	s.fns = append(s.fns, fn)
	s.mu.Unlock()
}

func (s *subscribers) remove(fn *func(Change)) {
	s.mu.Lock()
	s.fns = slices.DeleteFunc(s.fns, func(f *func(Change)) bool { return f == fn })
	s.mu.Unlock()
}

func (s *subscribers) tell(cs []Change) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, fn := range s.fns {
		for _, c := range cs {
			(*fn)(c)
		}
	}
}

// announce tells the other nodes of c, in tx: delivered when tx commits,
// never if it rolls back (PostgreSQL: pg_notify). After the commit, the
// caller calls committed with c.
func (s *Store) announce(ctx context.Context, tx *sql.Tx, c Change) error {
	return s.engine.Announce(ctx, tx, c)
}

// committed runs once changes committed: the engine's follow-up (SQLite:
// tell this process's watchers; after a destruction, truncate the WAL),
// then this Store's subscribers, before the write returns.
func (s *Store) committed(ctx context.Context, cs ...Change) {
	for _, c := range cs {
		s.engine.Committed(ctx, c)
	}
	s.subs.tell(cs)
}

// WatchChanges calls fn for every change of a row that nodes may keep a
// copy of (Change), until ctx is done: synchronously, before the write
// returns, for the changes made through this Store; and, from a watcher
// goroutine, for those of every node sharing the database (PostgreSQL
// LISTEN/NOTIFY; on SQLite, this Store's again). fn must be quick and
// must not call the store. Delivery from other nodes is best effort, as
// for WatchDestroyed: whoever keeps copies also bounds their age. It
// returns an error only if it cannot start (see WatchDestroyed).
func (s *Store) WatchChanges(ctx context.Context, fn func(Change)) error {
	if fn == nil {
		return Errorf(ErrInvalid, "WatchChanges needs a function to call")
	}
	if err := s.engine.Watch(ctx, nil, fn); err != nil {
		return err
	}
	p := &fn
	s.subs.add(p)
	context.AfterFunc(ctx, func() { s.subs.remove(p) })
	return nil
}
