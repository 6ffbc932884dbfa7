package httpapi

import (
	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/secret"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// Cache-only keys (docs/cache-only.md): tenants' key services. Their
// policies are in the route table (routes.go).

func (s *server) keyServiceOf(t tenant.Tenant, ks tenant.KeyService) api.KeyService {
	out := api.KeyService{ID: ks.ID, Tenant: t.Name, Type: ks.Type, Version: ks.Version, URL: ks.URL, KID: ks.KID,
		Auth: ks.Auth, OAEP: ks.OAEP, Created: ks.Created, Availability: s.KeyServices.Availability(ks)}
	if !ks.Revoked.IsZero() {
		r := ks.Revoked
		out.Revoked = &r
	}
	return out
}

func credentialsOf(c cacheonly.Credentials) api.KeyServiceCredentials {
	return api.KeyServiceCredentials{RecipientKey: c.RecipientKey, ClientCertificate: c.ClientCertificate}
}

func (s *server) registerKeyService(c *Call) (any, error) {
	req := c.Body.(*api.RegisterKeyServiceRequest)
	typ, err := keyType(req.Type)
	if err != nil {
		return nil, err
	}
	switch {
	case req.URL == "" || req.KID == "" || req.CA == "":
		return nil, badRequestf("url, kid and ca are required")
	case req.Auth != tenant.AuthBearer && req.Auth != tenant.AuthMTLS:
		return nil, badRequestf("auth must be %q or %q", tenant.AuthBearer, tenant.AuthMTLS)
	case req.Auth == tenant.AuthBearer && req.Bearer == "":
		return nil, badRequestf("auth bearer needs the bearer secret (bearer)")
	case req.Auth == tenant.AuthMTLS && req.Bearer != "":
		return nil, badRequestf("bearer is given only with auth bearer")
	case req.OAEP != "" && req.OAEP != tenant.OAEPSHA256 && req.OAEP != tenant.OAEPSHA1:
		return nil, badRequestf("oaep must be %q (the default) or %q", tenant.OAEPSHA256, tenant.OAEPSHA1)
	}
	var bearer secret.Text
	if req.Bearer != "" {
		b := []byte(req.Bearer)
		req.Bearer = ""
		bearer, err = secret.NewText(b)
		clear(b)
		if err != nil {
			return nil, badRequestf("the bearer secret must be 1 to %d bytes", secret.MaxText)
		}
		defer bearer.Destroy()
	}
	k, ks, err := s.KeyServices.Register(c.Context(), c.Audit, cacheonly.Request{Tenant: c.Tenant.ID, Type: typ, URL: req.URL,
		KID: req.KID, CA: []byte(req.CA), Auth: req.Auth, Bearer: bearer, OAEP: req.OAEP})
	if err != nil {
		return nil, err
	}
	creds, err := s.KeyServices.Credentials(c.Context(), c.Tenant.ID)
	if err != nil {
		return nil, err
	}
	out := keyOf(c.Tenant, k)
	out.Availability = s.KeyServices.Availability(ks)
	return api.KeyServiceRegistration{Key: out, Service: s.keyServiceOf(c.Tenant, ks), Credentials: credentialsOf(creds)}, nil
}

func (s *server) keyServices(c *Call) (any, error) {
	kss, err := s.KeyServices.List(c.Context(), c.Tenant.ID)
	if err != nil {
		return nil, err
	}
	out := api.KeyServiceList{Services: []api.KeyService{}}
	for _, ks := range kss {
		out.Services = append(out.Services, s.keyServiceOf(c.Tenant, ks))
	}
	return out, nil
}

func (s *server) keyServiceCredentials(c *Call) (any, error) {
	creds, err := s.KeyServices.Credentials(c.Context(), c.Tenant.ID)
	if err != nil {
		return nil, err
	}
	return credentialsOf(creds), nil
}

// availability sets each cache-only key's availability in a key listing.
func (s *server) availability(c *Call, keys []api.Key) error {
	var kss []tenant.KeyService
	for i := range keys {
		if keys[i].Source != string(tenant.SourceCacheOnly) || keys[i].State == string(tenant.StateDestroyed) {
			continue
		}
		if kss == nil {
			var err error
			if kss, err = s.KeyServices.List(c.Context(), c.Tenant.ID); err != nil {
				return err
			}
		}
		for _, ks := range kss {
			if ks.Type == keys[i].Type && ks.Version == keys[i].Version {
				keys[i].Availability = s.KeyServices.Availability(ks)
			}
		}
	}
	return nil
}
