package auth

import "context"

// Names returns the names of the tokens with the given IDs that still
// exist, by ID (a revoked token is gone, and left out), for naming the
// actors of audit entries.
func (ts *Tokens) Names(ctx context.Context, ids []string) (map[string]string, error) {
	return ts.st.TokenNames(ctx, ids)
}
