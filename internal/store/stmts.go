package store

import (
	"context"
	"database/sql"
	"errors"
)

// Prepared statements of the hot write path. A durable append (a DEK
// delivery's usage count and audit entry, group-committed) runs the same
// half-dozen statements in every transaction, and modernc.org/sqlite
// compiles a statement's text each time it is run from a string: in a
// one-entry append that compilation was 43% of the CPU. On a dialect with
// CacheStatements the store prepares these statements once, when it opens,
// and runs them in a transaction through Tx.StmtContext, which database/sql
// prepares on the transaction's connection the first time it is used there
// and reuses after that (SQLite recompiles a prepared statement by itself
// if the schema changed). pgx caches the statements it runs per connection
// already (and drops a cached one that fails, after a schema change), so
// the PostgreSQL dialect leaves this off and runs the strings. The audit
// statements serve every audited write (rotations, destructions…), not only
// the durable appends.
//
// The statements are prepared in Open, before any transaction: preparing
// one later, from inside a transaction, would need a second connection of
// the pool, which an in-memory SQLite database (one connection) does not
// have.

// hotStatements are the statements prepared once; ForUpdate is appended to
// qAuditStateLock as everywhere (see prepareHot).
var hotStatements = []string{qKeyExists, qUsageAdd, qAuditStateLock, qAuditLastTime, qAuditInsert, qAuditStateSet}

// prepareHot prepares hotStatements if the dialect caches statements.
func (s *Store) prepareHot(ctx context.Context) error {
	if !s.d.CacheStatements {
		return nil
	}
	s.stmts = make(map[string]*sql.Stmt, len(hotStatements))
	for _, q := range hotStatements {
		if q == qAuditStateLock {
			q += s.d.ForUpdate
		}
		st, err := s.db.PrepareContext(ctx, q)
		if err != nil {
			s.closeStmts()
			return s.dbErr("preparing the durable append's statements", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// closeStmts closes the prepared statements. The map is left as it is (a
// transaction still in flight may read it): database/sql defers closing a
// statement until the transactions using it are done, and prepares a
// closed one again if it is used.
func (s *Store) closeStmts() error {
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// txStmt is q prepared in tx: the statement prepared once, bound to tx's
// connection, if there is one (closed with tx); otherwise nil.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	st, ok := s.stmts[q]
	if !ok {
		return nil
	}
	return tx.StmtContext(ctx, st)
}

// txExec runs q in tx, prepared once if it is one of hotStatements.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st := s.txStmt(ctx, tx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// txQueryRow runs q in tx, prepared once if it is one of hotStatements.
func (s *Store) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.txStmt(ctx, tx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// txPrepare is q prepared in tx, to run several times: the statement
// prepared once, or else prepared now for tx. The caller closes it.
func (s *Store) txPrepare(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	if st := s.txStmt(ctx, tx, q); st != nil {
		return st, nil
	}
	return tx.PrepareContext(ctx, q)
}
