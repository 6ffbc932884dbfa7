package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/store"
)

// engine is SQLite's store.Engine: the watchers of this process's Store,
// and the WAL truncation after a destruction.
type engine struct {
	db   *sql.DB
	path string
	hub  *hub
}

// Announce implements store.Engine: nothing is sent in the transaction
// (the hub is told once it committed).
func (e *engine) Announce(context.Context, *sql.Tx, store.Change) error { return nil }

// Committed implements store.Engine: it tells this Store's watchers, then,
// after a destruction, checkpoints and truncates the WAL so that the
// destroyed key's old pages do not linger there (secure_delete has
// overwritten them in the database file).
func (e *engine) Committed(ctx context.Context, c store.Change) {
	e.hub.notify(c)
	if c.Kind == store.KeyDestroyed && e.path != Memory {
		e.truncateWAL(ctx)
	}
}

// Watch implements store.Engine.
func (e *engine) Watch(ctx context.Context, keep func(store.Change) bool, fn func(store.Change)) error {
	return e.hub.watch(ctx, keep, fn)
}

// Close implements store.Engine.
func (e *engine) Close() { e.hub.close() }

// truncateWAL checkpoints the WAL into the database file and truncates it,
// so that destroyed keys' old pages do not linger there. Best effort: it
// waits at most 100 ms for other connections, and is skipped if they keep
// old frames in use (the WAL is then rewritten from its start later).
func (e *engine) truncateWAL(ctx context.Context) {
	c, err := e.db.Conn(ctx)
	if err != nil {
		return
	}
	defer c.Close()
	discard := func() { _ = c.Raw(func(any) error { return driver.ErrBadConn }) }
	if _, err := c.ExecContext(ctx, `PRAGMA busy_timeout = 100`); err != nil {
		discard()
		return
	}
	_, _ = c.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	if _, err := c.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, BusyTimeout.Milliseconds())); err != nil {
		discard() // never leave a pooled connection with the short timeout
	}
}
