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
// that made it (Parent); revoking a token revokes the tokens it made, and
// theirs. A revoked token keeps its row (revoked, revoked_by): it
// authenticates nobody, and is listed as revoked.

const tokenCols = `id, hash, role, tenant, created, expires, name, parent, revoked, revoked_by, last_used`

const (
	qTokenInsert = `INSERT INTO tokens (id, hash, role, tenant, created, expires, name, parent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	qTokenByHash = `SELECT ` + tokenCols + ` FROM tokens WHERE hash = $1`
	qTokenByID   = `SELECT ` + tokenCols + ` FROM tokens WHERE id = $1`
	// qTokens and qTokensOfTenant list tokens, oldest first.
	qTokens         = `SELECT ` + tokenCols + ` FROM tokens ORDER BY created, id`
	qTokensOfTenant = `SELECT ` + tokenCols + ` FROM tokens WHERE tenant = $1 ORDER BY created, id`
	// qTokenLock locks the row of a token, with the dialect's ForUpdate,
	// and reads when it was revoked: a new token's parent cannot be revoked
	// before the new token is stored (and then is revoked with it), and a
	// token is revoked once.
	qTokenLock = `SELECT revoked FROM tokens WHERE id = $1`
	// qTokensLive counts, under the tenant's lock, its tokens of a role
	// that are not revoked and have not expired at $3.
	qTokensLive = `SELECT count(*) FROM tokens WHERE tenant = $1 AND role = $2 AND revoked IS NULL AND (expires IS NULL OR expires > $3)`
	// qTokenRevoke revokes, at $2 by $3, a token and every token it made,
	// and theirs, that is not revoked yet, returning their IDs.
	qTokenRevoke = `WITH RECURSIVE made (id) AS (
			SELECT id FROM tokens WHERE id = $1
			UNION
			SELECT t.id FROM tokens t JOIN made ON t.parent = made.id)
		UPDATE tokens SET revoked = $2, revoked_by = $3
		WHERE id IN (SELECT id FROM made) AND revoked IS NULL RETURNING id`
	// qTokenTouch records a use, if it is later than the one recorded.
	qTokenTouch = `UPDATE tokens SET last_used = $2 WHERE id = $1 AND revoked IS NULL AND (last_used IS NULL OR last_used < $2)`
)

// CreateToken stores tok after validating it, with rec, and returns it as
// stored; an empty ID is filled with tenant.NewID(). The token's tenant must
// exist (ErrNotFound), and so must its Parent, if it names one
// (ErrNotFound), which must not be revoked (a *RevokedError, ErrRevoked); a
// token with the same ID or hash, even a revoked one → ErrExists. Revoked,
// RevokedBy and LastUsed must be zero: a token is stored live.
//
// maxLive, if not 0, is the most tokens of tok's tenant and role, neither
// revoked nor expired at tok.Created, there may be counting the new one:
// beyond it → ErrTooManyTokens. The count is taken under the tenant's row
// lock (PostgreSQL; SQLite's write lock), so that concurrent creations on
// any number of nodes never exceed it. Only a token of a tenant can be
// limited.
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
			revoked, err := s.lockToken(ctx, tx, tok.Parent)
			if noRows(err) {
				return Errorf(ErrNotFound, "no token with ID %s, which would be the new token's parent", tok.Parent)
			}
			if err != nil {
				return err
			}
			if !revoked.IsZero() {
				return &RevokedError{ID: tok.Parent, At: revoked, Maker: true}
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

// lockToken locks a token's row (the dialect's ForUpdate) and returns when
// it was revoked (zero: it is not); sql.ErrNoRows if there is no such token.
func (s *Store) lockToken(ctx context.Context, tx *sql.Tx, id string) (time.Time, error) {
	var revoked time.Time
	err := tx.QueryRowContext(ctx, qTokenLock+s.d.ForUpdate, id).Scan(timeValue{&revoked})
	return revoked, err
}

// TokenByHash finds a token by the SHA-256 of its secret (auth.TokenFinder):
// found is false, with a nil error, when no token has it. It does not look
// at Expires nor Revoked: the caller does (auth.Token.State), with its
// clock.
func (s *Store) TokenByHash(ctx context.Context, hash [32]byte) (tok auth.Token, found bool, err error) {
	tok, err = s.scanToken(s.db.QueryRowContext(ctx, qTokenByHash, hash[:]))
	if noRows(err) {
		return auth.Token{}, false, nil
	}
	if err != nil {
		return auth.Token{}, false, s.dbErr("reading a token", err)
	}
	return tok, true, nil
}

// TokenByID returns the token with an ID, revoked or not, or ErrNotFound.
func (s *Store) TokenByID(ctx context.Context, id string) (auth.Token, error) {
	if err := ValidID("token", id); err != nil {
		return auth.Token{}, err
	}
	tok, err := s.scanToken(s.db.QueryRowContext(ctx, qTokenByID, id))
	if noRows(err) {
		return auth.Token{}, Errorf(ErrNotFound, "no token with ID %s", id)
	}
	return tok, s.dbErr("reading a token", err)
}

// Tokens lists the tokens of a tenant (by ID), or every token if tenantID
// is "", oldest first: revoked and expired ones too.
func (s *Store) Tokens(ctx context.Context, tenantID string) ([]auth.Token, error) {
	var rows *sql.Rows
	var err error
	if tenantID == "" {
		rows, err = s.db.QueryContext(ctx, qTokens)
	} else {
		if err := ValidID("tenant", tenantID); err != nil {
			return nil, err
		}
		rows, err = s.db.QueryContext(ctx, qTokensOfTenant, tenantID)
	}
	toks, err := collect(rows, err, s.scanToken)
	return toks, s.dbErr("listing tokens", err)
}

// scanToken reads one row of tokenCols.
func (s *Store) scanToken(sc scanner) (auth.Token, error) {
	var tok auth.Token
	var h []byte
	var tenantID, parent, revokedBy sql.NullString
	err := sc.Scan(&tok.ID, &h, &tok.Role, &tenantID, timeValue{&tok.Created}, timeValue{&tok.Expires}, &tok.Name, &parent,
		timeValue{&tok.Revoked}, &revokedBy, timeValue{&tok.LastUsed})
	if err != nil {
		return auth.Token{}, err
	}
	if len(h) != len(tok.Hash) {
		return auth.Token{}, fmt.Errorf("store: %s: token %s has a %d-byte hash", s.d.Name, tok.ID, len(h))
	}
	copy(tok.Hash[:], h)
	tok.Tenant, tok.Parent, tok.RevokedBy = tenantID.String, parent.String, revokedBy.String
	return tok, nil
}

// TouchToken records that the token with id authenticated a request at
// at, unless a use as late or later is recorded, or the token is revoked.
// It is not audited and appends nothing: callers record a use at most once
// per token and minute (auth.UseGranularity), truncated to it, and may
// ignore its errors. An unknown id changes nothing and is no error.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	if err := ValidID("token", id); err != nil {
		return err
	}
	at, err := CheckTime("token use", at)
	if err != nil {
		return err
	}
	return s.write(ctx, "recording a token's use", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, qTokenTouch, id, s.d.Time(at))
		return err
	})
}

// maxRevokeRounds bounds the rounds of RevokeToken: each finds the tokens
// made, while it ran, by those it revoked (PostgreSQL, READ COMMITTED).
const maxRevokeRounds = 16

// RevokeToken revokes the token with id at at, by the token whose ID is by
// ("" if no token revoked it), and, in the same transaction, every token it
// made (Parent), and theirs, that is not revoked yet. It returns the token
// as revoked and the IDs of the others, sorted. Their rows stay, with
// Revoked and RevokedBy set. An unknown id → ErrNotFound; a token revoked
// already → a *RevokedError (ErrRevoked), which says when.
//
// One entry records it, rec with its Tenant set to the token's tenant (if
// it has one) and its Detail naming the token and those revoked with it
// (further entries continue the list when it is long).
func (s *Store) RevokeToken(ctx context.Context, id, by string, at time.Time, rec audit.Entry) (auth.Token, []string, error) {
	if err := ValidID("token", id); err != nil {
		return auth.Token{}, nil, err
	}
	if by != "" {
		if err := ValidID("revoking token", by); err != nil {
			return auth.Token{}, nil, err
		}
	}
	at, err := CheckTime("token revocation", at)
	if err != nil {
		return auth.Token{}, nil, err
	}
	var tok auth.Token
	var made []string
	err = s.changeLogged(ctx, "revoking a token", rec, func(tx *sql.Tx, rec audit.Entry) ([]audit.Entry, error) {
		revoked, err := s.lockToken(ctx, tx, id)
		if noRows(err) {
			return nil, Errorf(ErrNotFound, "no token with ID %s", id)
		}
		if err != nil {
			return nil, err
		}
		if !revoked.IsZero() {
			return nil, &RevokedError{ID: id, At: revoked}
		}
		// On PostgreSQL a statement sees what was committed before it
		// began: a token that one of these made while the first round
		// waited for its row is found by the next round.
		made = nil
		for round := 0; ; round++ {
			if round == maxRevokeRounds {
				return nil, Errorf(ErrConflict, "tokens kept being made by token %s, or by those it made, while it was revoked: revoke them again", id)
			}
			rows, err := tx.QueryContext(ctx, qTokenRevoke, id, s.d.Time(at), nullString(by))
			ids, err := collect(rows, err, func(sc scanner) (string, error) {
				var id string
				err := sc.Scan(&id)
				return id, err
			})
			if err != nil {
				return nil, err
			}
			if len(ids) == 0 {
				break
			}
			made = append(made, ids...)
		}
		made = slices.DeleteFunc(made, func(x string) bool { return x == id })
		slices.Sort(made)
		if tok, err = s.scanToken(tx.QueryRowContext(ctx, qTokenByID, id)); err != nil {
			return nil, err
		}
		if tok.Tenant != "" {
			rec.Tenant = tok.Tenant
		}
		for _, c := range tokensRevoked(id, made) {
			if err := s.announce(ctx, tx, c); err != nil {
				return nil, err
			}
		}
		return revocationEntries(rec, id, made), nil
	})
	if err != nil {
		return auth.Token{}, nil, err
	}
	s.committed(ctx, tokensRevoked(id, made)...)
	return tok, made, nil
}

// tokensRevoked are the Changes of a revocation: the token, and those
// revoked with it.
func tokensRevoked(id string, made []string) []Change {
	cs := []Change{{Kind: TokenRevoked, Token: id}}
	for _, m := range made {
		cs = append(cs, Change{Kind: TokenRevoked, Token: m})
	}
	return cs
}

// nullString is s, or NULL for "".
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// revocationEntries records the revocation of token id and of the tokens it
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
	more := "further tokens revoked with token " + id + ": "
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
	if !tok.Revoked.IsZero() || tok.RevokedBy != "" || !tok.LastUsed.IsZero() {
		return auth.Token{}, invalidf("token %s: a new token is neither revoked nor used", tok.ID)
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
