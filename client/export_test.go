package client

import (
	"context"
	"errors"

	"github.com/strongroom-kms/strongroom/api"

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

// NewDEKCacheWith is NewDEKCache with another way to fetch DEKs: Prefetch
// fetches each key with fetch, in order.
func NewDEKCacheWith(fetch func(ctx context.Context, tenant, typ string, version uint32) (DEK, error), opts DEKCacheOptions) (*DEKCache, error) {
	return newDEKCache(fetch, func(ctx context.Context, tenant string, keys []api.DEKKey) ([]DEKResult, error) {
		out := make([]DEKResult, len(keys))
		for i, k := range keys {
			d, err := fetch(ctx, tenant, k.Type, k.Version)
			var ae *Error
			switch {
			case errors.As(err, &ae):
				out[i].Error = &api.Error{Code: ae.Code, Message: ae.Message}
			case err != nil:
				return nil, err
			}
			out[i].DEK = d
		}
		return out, nil
	}, opts)
}

// Len is the number of cached DEKs.
func (c *DEKCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
