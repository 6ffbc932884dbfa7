package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// NotifyChannel is the channel on which the store announces each change
// that nodes must hear of (store.Change: a destroyed key first; a rotated
// key series, a revoked token, a tenant's settings), with pg_notify in the
// changing transaction: delivered at commit, never if it rolls back, to
// every listener on the database (Watch). The payload is a JSON object
// naming what changed, never key material or a token's hash:
//
//	{"kind":"key.destroyed","tenant":"8f2c…","type":"data","version":3}
//	{"kind":"keys.changed","tenant":"8f2c…","type":"data"}
//	{"kind":"token.revoked","token":"5d1e…"}
//	{"kind":"tenant.changed","tenant":"8f2c…"}
const NotifyChannel = "strongroom_changes"

// note is a notification's payload.
type note struct {
	Kind    string `json:"kind"`
	Tenant  string `json:"tenant,omitempty"`
	Type    string `json:"type,omitempty"`
	Version uint32 `json:"version,omitempty"`
	Token   string `json:"token,omitempty"`
}

// noteKinds are the payload's kinds.
var noteKinds = map[store.ChangeKind]string{
	store.KeyDestroyed:  "key.destroyed",
	store.KeysChanged:   "keys.changed",
	store.TokenRevoked:  "token.revoked",
	store.TenantChanged: "tenant.changed",
}

// qNotify sends a notification; in a transaction, it is delivered when the
// transaction commits, and never if it rolls back.
const qNotify = `SELECT pg_notify($1, $2)`

// engine is PostgreSQL's store.Engine: changes are announced with NOTIFY
// in the changing transaction and heard with LISTEN.
type engine struct {
	cfg   *pgx.ConnConfig // for the watchers' own connections
	watch *watchers       // Watch's goroutines
}

// Announce implements store.Engine: it sends the notification of a change
// in tx.
func (e *engine) Announce(ctx context.Context, tx *sql.Tx, c store.Change) error {
	payload, err := notePayload(c)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, qNotify, NotifyChannel, payload)
	return err
}

// notePayload is the payload announcing c.
func notePayload(c store.Change) (string, error) {
	kind, ok := noteKinds[c.Kind]
	if !ok || !c.Valid() {
		return "", fmt.Errorf("store: postgres: announcing an invalid change of kind %d", c.Kind)
	}
	n := note{Kind: kind, Token: c.Token}
	switch c.Kind {
	case store.KeyDestroyed, store.KeysChanged:
		n.Tenant, n.Type, n.Version = c.Key.Tenant, c.Key.Type, c.Key.Version
	case store.TenantChanged:
		n.Tenant = c.Tenant
	}
	b, err := json.Marshal(n)
	return string(b), err
}

// Committed implements store.Engine: the notification is on its way.
func (e *engine) Committed(context.Context, store.Change) {}

// Close implements store.Engine: it ends every watcher and waits up to
// store.CloseWait for them. The watchers' connections are not the pool's: a
// watcher never holds the store's Close up beyond that wait.
func (e *engine) Close() { e.watch.group.Close() }

// parseNote decodes a payload; ok is false for anything that is not a
// valid change.
func parseNote(payload string) (c store.Change, ok bool) {
	var n note
	dec := json.NewDecoder(strings.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&n); err != nil || dec.More() {
		return store.Change{}, false
	}
	for k, name := range noteKinds {
		if name == n.Kind {
			c.Kind = k
		}
	}
	// Every field goes somewhere, so that Valid refuses one the kind
	// does not have.
	c.Key, c.Token = tenant.KeyRef{Tenant: n.Tenant, Type: n.Type, Version: n.Version}, n.Token
	if c.Kind == store.TenantChanged {
		c.Tenant, c.Key.Tenant = n.Tenant, ""
	}
	if !c.Valid() {
		return store.Change{}, false
	}
	return c, true
}

// The backoff between reconnection attempts of a watcher that lost its
// connection: from minBackoff, doubling, up to maxBackoff, each drawn at
// random from its upper half so that nodes do not reconnect in step.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// heartbeat is how long a watcher's connection may stay silent before the
// watcher checks that it still answers (a ping, which must answer within
// pingTimeout), so that a connection lost without a word (a dead peer, a
// dropped route) is found and re-established within 40 s.
const (
	heartbeat   = 30 * time.Second
	pingTimeout = 10 * time.Second
)

// watchers are a Store's WatchDestroyed goroutines, and their settings.
type watchers struct {
	group     store.Watchers
	heartbeat time.Duration
	// Hooks for tests. listening, if set, is called after each successful
	// LISTEN (from the watcher's goroutine after the first); alive after
	// each successful heartbeat check.
	listening, alive func()
}

func newWatchers() *watchers { return &watchers{heartbeat: heartbeat} }

// Watch implements store.Engine. It opens a connection of its own, outside
// the pool (with the pool's settings), and LISTENs on NotifyChannel; it
// returns once the first LISTEN succeeded. A goroutine then waits for
// notifications and calls fn for each. If the connection is lost, it
// reconnects and LISTENs again, with backoff, until ctx is done or the
// store is closed; changes committed meanwhile are not heard of
// (DestroyedSince and the row caches' bounded age are the fallback).
func (s *engine) Watch(ctx context.Context, keep func(store.Change) bool, fn func(store.Change)) error {
	if keep != nil {
		all := fn
		fn = func(c store.Change) {
			if keep(c) {
				all(c)
			}
		}
	}
	var conn *pgx.Conn
	listen := func(ctx context.Context) (err error) {
		conn, err = s.listen(ctx)
		return err
	}
	run := func(ctx context.Context) { s.watchLoop(ctx, conn, fn) }
	if err := s.watch.group.Start(ctx, listen, run); err != nil {
		return fmt.Errorf("store: postgres: listening for changes: %w", err)
	}
	return nil
}

// listen opens a dedicated connection and LISTENs on NotifyChannel.
func (s *engine) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+NotifyChannel); err != nil {
		closeConn(conn)
		return nil, err
	}
	if s.watch.listening != nil {
		s.watch.listening()
	}
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}

// watchLoop calls fn for each notification on conn, reconnecting when the
// connection is lost, until ctx is done. It closes the connection it holds
// when it returns.
func (s *engine) watchLoop(ctx context.Context, conn *pgx.Conn, fn func(store.Change)) {
	for {
		err := s.waitNote(ctx, conn, fn)
		if err == nil {
			continue
		}
		closeConn(conn)
		if conn = s.relisten(ctx); conn == nil {
			return
		}
	}
}

// waitNote waits up to a heartbeat for a notification and calls fn with it.
// After a heartbeat of silence it pings the server instead. An error means
// that the connection is lost, or ctx done.
func (s *engine) waitNote(ctx context.Context, conn *pgx.Conn, fn func(store.Change)) error {
	wctx, cancel := context.WithTimeout(ctx, s.watch.heartbeat)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	if n != nil {
		if c, ok := parseNote(n.Payload); ok && ctx.Err() == nil {
			fn(c)
		}
	}
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
		return err
	}
	// Silence: does the server still answer? Notifications that arrive
	// meanwhile are kept for the next wait.
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		return err
	}
	if s.watch.alive != nil {
		s.watch.alive()
	}
	return nil
}

// relisten reconnects with backoff until it succeeds (it returns the
// connection) or ctx is done (it returns nil).
func (s *engine) relisten(ctx context.Context) *pgx.Conn {
	delay := minBackoff
	for {
		t := time.NewTimer(delay/2 + rand.N(delay/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if conn, err := s.listen(ctx); err == nil {
			return conn
		}
		delay = min(2*delay, maxBackoff)
	}
}
