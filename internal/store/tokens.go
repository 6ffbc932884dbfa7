package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// API tokens, found by the SHA-256 of their secret. Each may name the token
// that made it (Parent); deleting a token deletes the tokens it made, and
// theirs.

const tokenCols = `id, hash, role, tenant, created, expires, name, parent`

const (
	qTokenInsert = `INSERT INTO tokens (` + tokenCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	qTokenByHash = `SELECT ` + tokenCols + ` FROM tokens WHERE hash = $1`
	// qTokenLock locks the row of a new token's parent, with the dialect's
	// ForUpdate: the parent cannot be deleted before the new token is
	// stored (and then goes with it).
	qTokenLock = `SELECT 1 FROM tokens WHERE id = $1`
	// qTokensLive counts, under the tenant's lock, its tokens of a role
	// that have not expired at $3.
	qTokensLive = `SELECT count(*) FROM tokens WHERE tenant = $1 AND role = $2 AND (expires IS NULL OR expires > $3)`
	// qTokenDelete deletes a token and every token it made, and theirs,
	// returning their IDs.
	qTokenDelete = `WITH RECURSIVE made (id) AS (
			SELECT id FROM tokens WHERE id = $1
			UNION
			SELECT t.id FROM tokens t JOIN made ON t.parent = made.id)
		DELETE FROM tokens WHERE id IN (SELECT id FROM made) RETURNING id`
)

// CreateToken stores tok after validating it, with rec, and returns it as
// stored; an empty ID is filled with tenant.NewID(). The token's tenant must
// exist (ErrNotFound), and so must its Parent, if it names one
// (ErrNotFound); a token with the same ID or hash → ErrExists.
//
// maxLive, if not 0, is the most tokens of tok's tenant and role, not
// expired at tok.Created, there may be counting the new one: beyond it →
// ErrTooManyTokens. The count is taken under the tenant's row lock
// (PostgreSQL; SQLite's write lock), so that concurrent creations on any
// number of nodes never exceed it. Only a token of a tenant can be limited.
func (s *Store) CreateToken(ctx context.Context, tok auth.Token, maxLive int, rec audit.Entry) (auth.Token, error) {
	tok, err := checkToken(tok)
	if err != nil {
		return auth.Token{}, err
	}
	if maxLive < 0 || (maxLive > 0 && tok.Tenant == "") {
		return auth.Token{}, invalidf("a limit of %d live tokens: use 0 for none, or a positive limit for a tenant's tokens", maxLive)
	}
	err = s.change(ctx, "creating a token", rec, func(tx *sql.Tx) error {
		var tenantID any
		if tok.Tenant != "" {
			if err := s.lockTenant(ctx, tx, tok.Tenant); err != nil {
				return err
			}
			tenantID = tok.Tenant
		}
		if maxLive > 0 {
			var live int
			if err := tx.QueryRowContext(ctx, qTokensLive, tok.Tenant, string(tok.Role), s.d.Time(tok.Created)).Scan(&live); err != nil {
				return err
			}
			if live >= maxLive {
				return Errorf(ErrTooManyTokens, "tenant %s has %d live %s tokens, the most allowed (%d): revoke some, or let them expire",
					tok.Tenant, live, tok.Role, maxLive)
			}
		}
		var parent any
		if tok.Parent != "" {
			var one int
			err := tx.QueryRowContext(ctx, qTokenLock+s.d.ForUpdate, tok.Parent).Scan(&one)
			if noRows(err) {
				return Errorf(ErrNotFound, "no token with ID %s, which would be the new token's parent", tok.Parent)
			}
			if err != nil {
				return err
			}
			parent = tok.Parent
		}
		_, err := tx.ExecContext(ctx, qTokenInsert, tok.ID, tok.Hash[:], string(tok.Role), tenantID,
			s.d.Time(tok.Created), s.d.NullTime(tok.Expires), tok.Name, parent)
		switch f := s.d.Classify(err); {
		case f.Kind == Unique && f.Constraint == uniqueTokenHash:
			return Errorf(ErrExists, "a token with the same hash exists")
		case f.Kind == Unique:
			return Errorf(ErrExists, "a token with ID %s exists", tok.ID)
		case f.Kind == ForeignKey: // the tenant, or the parent, is gone
			return Errorf(ErrNotFound, "no tenant with ID %s, or no parent token %s", tok.Tenant, tok.Parent)
		}
		return err
	})
	if err != nil {
		return auth.Token{}, err
	}
	return tok, nil
}

// TokenByHash finds a token by the SHA-256 of its secret (auth.TokenFinder):
// found is false, with a nil error, when no token has it. It does not look
// at Expires: the caller does, with its clock (auth.Token.Expired).
func (s *Store) TokenByHash(ctx context.Context, hash [32]byte) (tok auth.Token, found bool, err error) {
	var h []byte
	var tenantID, parent sql.NullString
	err = s.db.QueryRowContext(ctx, qTokenByHash, hash[:]).
		Scan(&tok.ID, &h, &tok.Role, &tenantID, timeValue{&tok.Created}, timeValue{&tok.Expires}, &tok.Name, &parent)
	if noRows(err) {
		return auth.Token{}, false, nil
	}
	if err != nil {
		return auth.Token{}, false, s.dbErr("reading a token", err)
	}
	if len(h) != len(tok.Hash) {
		return auth.Token{}, false, fmt.Errorf("store: %s: token %s has a %d-byte hash", s.d.Name, tok.ID, len(h))
	}
	copy(tok.Hash[:], h)
	tok.Tenant, tok.Parent = tenantID.String, parent.String
	return tok, true, nil
}

// DeleteToken deletes a token and, in the same transaction, every token it
// made (Parent), and theirs, or returns ErrNotFound. One entry records it,
// rec with its Detail naming the token and those deleted with it (further
// entries continue the list when it is long). A token made by one of them
// while they are deleted → ErrConflict: delete it again.
func (s *Store) DeleteToken(ctx context.Context, id string, rec audit.Entry) error {
	if err := ValidID("token", id); err != nil {
		return err
	}
	return s.changeLogged(ctx, "deleting a token", rec, func(tx *sql.Tx, rec audit.Entry) ([]audit.Entry, error) {
		rows, err := tx.QueryContext(ctx, qTokenDelete, id)
		ids, err := collect(rows, err, func(sc scanner) (string, error) {
			var id string
			err := sc.Scan(&id)
			return id, err
		})
		if f := s.d.Classify(err); f.Kind == ForeignKey {
			return nil, Errorf(ErrConflict, "a token was made by token %s, or by one it made, while it was deleted: delete it again", id)
		}
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, Errorf(ErrNotFound, "no token with ID %s", id)
		}
		made := slices.DeleteFunc(ids, func(x string) bool { return x == id })
		slices.Sort(made)
		return revocationEntries(rec, id, made), nil
	})
}

// revocationEntries records the deletion of token id and of the tokens it
// made: rec, its Detail followed by the token's ID and the number and IDs
// of the others, and as many more entries as the IDs need, each continuing
// the list.
func revocationEntries(rec audit.Entry, id string, made []string) []audit.Entry {
	head := "token " + id
	if rec.Detail != "" {
		// The request's own detail, cut to leave room for the list.
		head = truncate(rec.Detail, audit.MaxDetail/2) + ": " + head
	}
	if len(made) == 0 {
		rec.Detail = head
		return []audit.Entry{rec}
	}
	head += fmt.Sprintf(", and the %d tokens made by it or by those it made: ", len(made))
	more := "further tokens deleted with token " + id + ": "
	var entries []audit.Entry
	for prefix := head; len(made) > 0; prefix = more {
		n := 0
		for size := len(prefix); n < len(made) && size+len(made[n])+2 <= audit.MaxDetail; n++ {
			size += len(made[n]) + 2
		}
		n = max(n, 1)
		e := rec
		e.Detail = prefix + strings.Join(made[:n], ", ")
		entries = append(entries, e)
		made = made[n:]
	}
	return entries
}

// truncate cuts s to at most n bytes, at a UTF-8 character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// checkToken validates tok and returns it as the store keeps it: ID filled
// with tenant.NewID() if empty, times per Time.
func checkToken(tok auth.Token) (auth.Token, error) {
	if tok.ID == "" {
		tok.ID = tenant.NewID()
	}
	if err := ValidID("token", tok.ID); err != nil {
		return auth.Token{}, err
	}
	if tok.Parent != "" {
		if err := ValidID("parent token", tok.Parent); err != nil {
			return auth.Token{}, err
		}
		if tok.Parent == tok.ID {
			return auth.Token{}, invalidf("token %s cannot be its own parent", tok.ID)
		}
	}
	if tok.Hash == ([32]byte{}) {
		return auth.Token{}, invalidf("token hash is all zeros: it must be the SHA-256 of the token secret")
	}
	if !tok.Role.Valid() {
		return auth.Token{}, invalidf("invalid role %q: use %q, %q, %q or %q", tok.Role, auth.RoleOperator, auth.RoleTenantAdmin, auth.RoleApp, auth.RoleAuditor)
	}
	if tok.Tenant == "" {
		if !tok.Role.Global() {
			return auth.Token{}, invalidf("%s token must name its tenant: only operator and auditor tokens may cover all tenants", tok.Role.A())
		}
	} else if err := ValidID("tenant", tok.Tenant); err != nil {
		return auth.Token{}, err
	}
	if !auth.ValidName(tok.Name) {
		return auth.Token{}, invalidf("invalid token name: use at most %d bytes of UTF-8 without control characters", auth.MaxName)
	}
	var err error
	if tok.Created, err = CheckTime("token creation", tok.Created); err != nil {
		return auth.Token{}, err
	}
	if !tok.Expires.IsZero() {
		if tok.Expires, err = CheckTime("token expiry", tok.Expires); err != nil {
			return auth.Token{}, err
		}
		if !tok.Expires.After(tok.Created) {
			return auth.Token{}, invalidf("token expiry %s is not after its creation %s",
				tok.Expires.Format(time.RFC3339Nano), tok.Created.Format(time.RFC3339Nano))
		}
	}
	return tok, nil
}
