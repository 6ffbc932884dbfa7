package client

import "github.com/strongroom-kms/strongroom/internal/secret"

// NewTestDEK makes a DEK of a key without a server.
func NewTestDEK(tenantID, typ string, version uint32, key []byte) DEK {
	k, err := secret.New(key)
	if err != nil {
		panic(err)
	}
	d, err := newDEK(tenantID, typ, version, k)
	if err != nil {
		panic(err)
	}
	return d
}
