package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/byok"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
	"github.com/strongroom-kms/strongroom/internal/tenant"
	"github.com/strongroom-kms/strongroom/internal/uploadcert"
)

// FuzzByokBodies drives the BYOK decoders — the upload request (base64
// ciphertext, hex SHA-256, OAEP hash, derivation, certificate id), the
// CA-signed certificate of a pending request, and the backup file of an
// import — with arbitrary bodies. Every answer is 2xx or a documented 4xx
// with an api.Error; an answer other than 2xx changes no key.
func FuzzByokBodies(f *testing.F) {
	s := apitest.NewServer(f, apitest.Options{})
	tn := s.Tenant(f, "acme")
	admin := s.Token(f, api.RoleTenantAdmin, "acme")
	ctx := context.Background()
	routes := []string{"/v1/tenants/acme/keys/data/upload", "/v1/tenants/acme/keys/import"}
	// One pending certificate, whose completion takes the third route.
	if uc, err := s.Node.BYOK.NewCert(ctx, nodetest.Rec(tn.ID), byok.CertRequest{Tenant: tn.ID, CSR: true}); err == nil {
		routes = append(routes, "/v1/tenants/acme/upload-certificates/"+uc.ID+"/complete")
	} else {
		f.Fatal(err)
	}
	if uc, err := s.Node.BYOK.NewCert(ctx, nodetest.Rec(tn.ID), byok.CertRequest{Tenant: tn.ID}); err == nil {
		up := uploadRequest(f, string(uploadcert.EncodeCertificate(uc.Certificate)), bytes.Repeat([]byte{7}, 32))
		b, _ := json.Marshal(up)
		f.Add(uint8(0), b)
	} else {
		f.Fatal(err)
	}
	f.Add(uint8(0), []byte(`{"wrapped":"AAAA","sha256":"00","derivation":"none","oaep_hash":"sha512"}`))
	f.Add(uint8(1), []byte(`{"backup":"-----BEGIN STRONGROOM KEY BACKUP-----\nAQ==\n-----END STRONGROOM KEY BACKUP-----\n"}`))
	f.Add(uint8(2), []byte(`{"certificate":"-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"}`))
	keys := func() []tenant.Key {
		ks, err := s.Store.Keys(ctx, tn.ID, "")
		if err != nil {
			f.Fatal(err)
		}
		return ks
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		before := keys()
		path := routes[int(route)%len(routes)]
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+admin)
		rec := httptest.NewRecorder()
		s.Handler.ServeHTTP(rec, req)
		status := rec.Result().StatusCode
		if status < 300 {
			return
		}
		var e api.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code == "" {
			t.Fatalf("POST %s: %d with body %q, not an api.Error", path, status, rec.Body.Bytes())
		}
		if status >= 500 || !slices.Contains([]int{http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound,
			http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests}, status) {
			t.Fatalf("POST %s %q: %d %s", path, body, status, rec.Body.Bytes())
		}
		after := keys()
		if !slices.EqualFunc(before, after, func(a, b tenant.Key) bool {
			return a.Type == b.Type && a.Version == b.Version && a.State == b.State && bytes.Equal(a.Wrapped, b.Wrapped)
		}) {
			t.Fatalf("POST %s %q: refused (%d %s) and the keys changed", path, body, status, e.Code)
		}
	})
}
