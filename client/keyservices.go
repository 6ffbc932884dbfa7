package client

import (
	"context"

	"github.com/strongroom-kms/strongroom/api"
)

// Cache-only keys (docs/cache-only.md): a tenant's key services.

// KeyServiceCredentials returns the tenant's recipient public key and TLS
// client certificate, to install in its key services before registering
// them (made in the region's HSM on first use).
func (c *Client) KeyServiceCredentials(ctx context.Context, tenant string) (api.KeyServiceCredentials, error) {
	if err := seg("tenant name", tenant); err != nil {
		return api.KeyServiceCredentials{}, err
	}
	var out api.KeyServiceCredentials
	err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/key-services/credentials", nil, nil, &out)
	return out, err
}

// RegisterKeyService registers the tenant's key service for a new
// cache-only key version, active at once; the server fetches from it once
// first, and refuses (key_service_refused) a service that does not answer
// correctly.
func (c *Client) RegisterKeyService(ctx context.Context, tenant string, req api.RegisterKeyServiceRequest) (api.KeyServiceRegistration, error) {
	if err := seg("tenant name", tenant); err != nil {
		return api.KeyServiceRegistration{}, err
	}
	var out api.KeyServiceRegistration
	err := c.do(ctx, "POST", "/v1/tenants/"+tenant+"/key-services", nil, req, &out)
	return out, err
}

// KeyServices lists the tenant's key-service registrations.
func (c *Client) KeyServices(ctx context.Context, tenant string) ([]api.KeyService, error) {
	if err := seg("tenant name", tenant); err != nil {
		return nil, err
	}
	var out api.KeyServiceList
	err := c.do(ctx, "GET", "/v1/tenants/"+tenant+"/key-services", nil, nil, &out)
	return out.Services, err
}
