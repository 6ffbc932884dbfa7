package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// NotifyChannel is the channel on which DestroyKey announces a destruction
// (pg_notify, in its transaction: delivered at commit, never if it rolls
// back) to every WatchDestroyed listener on the database. The payload is a
// JSON object naming the key:
//
//	{"tenant":"8f2c…","type":"data","version":3}
const NotifyChannel = "strongroom_key_destroyed"

// destroyedNote is a notification's payload.
type destroyedNote struct {
	Tenant  string `json:"tenant"`
	Type    string `json:"type"`
	Version uint32 `json:"version"`
}

// qNotify sends a notification; in a transaction, it is delivered when the
// transaction commits, and never if it rolls back.
const qNotify = `SELECT pg_notify($1, $2)`

// engine is PostgreSQL's store.Engine: destructions are announced with
// NOTIFY in the destroying transaction and heard with LISTEN.
type engine struct {
	cfg   *pgx.ConnConfig // for the watchers' own connections
	watch *watchers       // WatchDestroyed's goroutines
}

// Destroyed implements store.Engine: it sends the notification of a
// destruction in tx.
func (e *engine) Destroyed(ctx context.Context, tx *sql.Tx, ref tenant.KeyRef) error {
	payload, err := json.Marshal(destroyedNote{Tenant: ref.Tenant, Type: ref.Type, Version: ref.Version})
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, qNotify, NotifyChannel, string(payload))
	return err
}

// Committed implements store.Engine: the notification is on its way.
func (e *engine) Committed(context.Context, tenant.KeyRef) {}

// Close implements store.Engine: it ends every watcher and waits up to
// store.CloseWait for them. The watchers' connections are not the pool's: a
// watcher never holds the store's Close up beyond that wait.
func (e *engine) Close() { e.watch.group.Close() }

// parseNote decodes a payload; ok is false for anything that does not name
// a key version.
func parseNote(payload string) (ref tenant.KeyRef, ok bool) {
	var n destroyedNote
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		return tenant.KeyRef{}, false
	}
	ref = tenant.KeyRef{Tenant: n.Tenant, Type: n.Type, Version: n.Version}
	if store.ValidKeyRef(ref) != nil {
		return tenant.KeyRef{}, false
	}
	return ref, true
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
// store is closed; destructions committed meanwhile are not heard of
// (DestroyedSince is the fallback).
func (s *engine) Watch(ctx context.Context, fn func(tenant.KeyRef)) error {
	var conn *pgx.Conn
	listen := func(ctx context.Context) (err error) {
		conn, err = s.listen(ctx)
		return err
	}
	run := func(ctx context.Context) { s.watchLoop(ctx, conn, fn) }
	if err := s.watch.group.Start(ctx, listen, run); err != nil {
		return fmt.Errorf("store: postgres: listening for key destructions: %w", err)
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
func (s *engine) watchLoop(ctx context.Context, conn *pgx.Conn, fn func(tenant.KeyRef)) {
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
func (s *engine) waitNote(ctx context.Context, conn *pgx.Conn, fn func(tenant.KeyRef)) error {
	wctx, cancel := context.WithTimeout(ctx, s.watch.heartbeat)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	if n != nil {
		if ref, ok := parseNote(n.Payload); ok && ctx.Err() == nil {
			fn(ref)
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
