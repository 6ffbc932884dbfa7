package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// API tokens, found by the SHA-256 of their secret.

const tokenCols = `id, hash, role, tenant, created, expires, name`

const (
	qTokenInsert = `INSERT INTO tokens (` + tokenCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	qTokenByHash = `SELECT ` + tokenCols + ` FROM tokens WHERE hash = $1`
	qTokenDelete = `DELETE FROM tokens WHERE id = $1`
)

// CreateToken stores tok after validating it, with rec, and returns it as
// stored; an empty ID is filled with tenant.NewID(). The token's tenant must
// exist (ErrNotFound); a token with the same ID or hash → ErrExists.
func (s *Store) CreateToken(ctx context.Context, tok auth.Token, rec audit.Entry) (auth.Token, error) {
	tok, err := checkToken(tok)
	if err != nil {
		return auth.Token{}, err
	}
	err = s.change(ctx, "creating a token", rec, func(tx *sql.Tx) error {
		var tenantID any
		if tok.Tenant != "" {
			if _, err := s.tenantByID(ctx, tx, tok.Tenant); err != nil {
				return err
			}
			tenantID = tok.Tenant
		}
		_, err := tx.ExecContext(ctx, qTokenInsert, tok.ID, tok.Hash[:], string(tok.Role), tenantID,
			s.d.Time(tok.Created), s.d.NullTime(tok.Expires), tok.Name)
		switch f := s.d.Classify(err); {
		case f.Kind == Unique && f.Constraint == uniqueTokenHash:
			return Errorf(ErrExists, "a token with the same hash exists")
		case f.Kind == Unique:
			return Errorf(ErrExists, "a token with ID %s exists", tok.ID)
		case f.Kind == ForeignKey:
			return Errorf(ErrNotFound, "no tenant with ID %s", tok.Tenant)
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
	var tenantID sql.NullString
	err = s.db.QueryRowContext(ctx, qTokenByHash, hash[:]).
		Scan(&tok.ID, &h, &tok.Role, &tenantID, timeValue{&tok.Created}, timeValue{&tok.Expires}, &tok.Name)
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
	tok.Tenant = tenantID.String
	return tok, true, nil
}

// DeleteToken deletes a token, with rec, or returns ErrNotFound.
func (s *Store) DeleteToken(ctx context.Context, id string, rec audit.Entry) error {
	if err := ValidID("token", id); err != nil {
		return err
	}
	return s.change(ctx, "deleting a token", rec, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, qTokenDelete, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return Errorf(ErrNotFound, "no token with ID %s", id)
		}
		return nil
	})
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
	if tok.Hash == ([32]byte{}) {
		return auth.Token{}, invalidf("token hash is all zeros: it must be the SHA-256 of the token secret")
	}
	if !tok.Role.Valid() {
		return auth.Token{}, invalidf("invalid role %q: use %q, %q, %q or %q", tok.Role, auth.RoleOperator, auth.RoleTenantAdmin, auth.RoleApp, auth.RoleAuditor)
	}
	if tok.Tenant == "" {
		if !tok.Role.Global() {
			return auth.Token{}, invalidf("a %s token must name its tenant: only operator and auditor tokens may cover all tenants", tok.Role)
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
