package client

import (
	"context"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

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

// NewDEKCacheWith is NewDEKCache with another way to fetch DEKs.
func NewDEKCacheWith(fetch func(ctx context.Context, tenant, typ string, version uint32) (DEK, error), opts DEKCacheOptions) (*DEKCache, error) {
	return newDEKCache(fetch, opts)
}

// Len is the number of cached DEKs.
func (c *DEKCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
