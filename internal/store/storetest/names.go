package storetest

import (
	"testing"

	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/store"
)

// testTokenNames: TokenNames names the tokens that exist, revoked ones too
// (their rows stay, so the audit log's actors keep their names), and leaves
// out unknown and invalid IDs.
func testTokenNames(t *testing.T, s *store.Store) {
	mk := func(name string) auth.Token {
		tok, err := s.CreateToken(ctx, auth.Token{Hash: hashOf(name + "-secret"), Role: auth.RoleOperator, Created: t0, Name: name}, 0, rec)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alice, bob := mk("alice's laptop"), mk("")
	gone := mk("gone")
	if _, _, err := s.RevokeToken(ctx, gone.ID, alice.ID, t0, rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.TokenNames(ctx, []string{alice.ID, bob.ID, gone.ID, "0123456789abcdef0123456789abcdef", "not-an-id", alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[alice.ID] != "alice's laptop" || got[bob.ID] != "" || got[gone.ID] != "gone" {
		t.Errorf("TokenNames() = %q, want alice's, bob's (empty) and the revoked token's names only", got)
	}
	if _, ok := got[bob.ID]; !ok {
		t.Errorf("TokenNames() leaves out a token without a name")
	}
}
