package store

import (
	"context"
)

// qTokenName reads a token's name by its ID.
const qTokenName = `SELECT name FROM tokens WHERE id = $1`

// TokenNames returns the names of the tokens with the given IDs that exist
// (a revoked token is deleted, and its ID is left out), for naming the
// actors of audit entries. An ID that is not valid is left out too.
func (s *Store) TokenNames(ctx context.Context, ids []string) (map[string]string, error) {
	names := make(map[string]string, len(ids))
	for _, id := range ids {
		if ValidID("token", id) != nil {
			continue
		}
		if _, ok := names[id]; ok {
			continue
		}
		var name string
		err := s.db.QueryRowContext(ctx, qTokenName, id).Scan(&name)
		if noRows(err) {
			continue
		}
		if err != nil {
			return nil, s.dbErr("reading a token's name", err)
		}
		names[id] = name
	}
	return names, nil
}
