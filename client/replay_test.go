package client_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/envelope"
)

// replayer is a party inside TLS (a terminating proxy) that keeps the first
// answer of each DEK route and hands it back to every later request there.
type replayer struct {
	next http.RoundTripper
	mu   sync.Mutex
	kept map[string][]byte
}

func (r *replayer) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	if err != nil || !strings.HasSuffix(req.URL.Path, "/dek") && !strings.HasSuffix(req.URL.Path, "/deks") {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if first, ok := r.kept[req.URL.Path]; ok {
		body = first
	} else {
		r.kept[req.URL.Path] = body
	}
	r.mu.Unlock()
	res.Body, res.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return res, nil
}

// Every delivery is sealed to a key pair of its own request: an earlier
// answer, replayed, does not open (else a proxy could hand out an archived
// version as the active one).
func TestDEKReplayRefused(t *testing.T) {
	s, _ := dekServer(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = s.ts.Client().Transport.(*http.Transport).TLSClientConfig
	proxy := &replayer{next: tr, kept: map[string][]byte{}}
	app, err := client.New(s.ts.URL, s.Token(t, api.RoleApp, "acme"), client.WithHTTPClient(&http.Client{Transport: proxy}))
	if err != nil {
		t.Fatal(err)
	}
	for _, kem := range []uint16{client.KEMX25519, client.KEMMLKEM768X25519} {
		proxy.mu.Lock()
		clear(proxy.kept)
		proxy.mu.Unlock()
		first, err := app.DEK(ctx, "acme", "data", 0, kem)
		if err != nil {
			t.Fatalf("DEK(%#04x), first = %v", kem, err)
		}
		first.Destroy()
		if _, err := app.DEK(ctx, "acme", "data", 0, kem); !errors.Is(err, envelope.ErrDecrypt) {
			t.Errorf("DEK(%#04x), the first answer replayed: error = %v, want ErrDecrypt", kem, err)
		}
	}
	res, err := app.DEKs(ctx, "acme", 0, api.DEKKey{})
	if err != nil || res[0].Error != nil {
		t.Fatalf("DEKs, first = %+v, %v", res, err)
	}
	res[0].DEK.Destroy()
	if _, err := app.DEKs(ctx, "acme", 0, api.DEKKey{}); !errors.Is(err, envelope.ErrDecrypt) {
		t.Errorf("DEKs, the first answer replayed: error = %v, want ErrDecrypt", err)
	}
}
