package uploadcert

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/soft"
)

// The package's tests share one soft HSM and two RSA-4096 keys in it (RSA
// key generation takes seconds): key, the upload key, and other, for
// certificates of the wrong key. They are made on first use.

var fixture struct {
	once       sync.Once
	dir        string
	h          *soft.HSM
	key, other hsm.EncryptionKey
	err        error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.h != nil {
		fixture.h.Close()
	}
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// keys returns the shared upload key and another one.
func keys(t testing.TB) (key, other hsm.EncryptionKey) {
	t.Helper()
	f := &fixture
	f.once.Do(func() {
		ctx := context.Background()
		if f.dir, f.err = os.MkdirTemp("", "uploadcert-test-"); f.err != nil {
			return
		}
		f.h, f.err = soft.Open(ctx, filepath.Join(f.dir, "hsm.soft"), []byte("uploadcert test"), soft.Options{Create: true})
		if f.err != nil {
			return
		}
		if f.key, f.err = f.h.GenerateEncryptionKey(ctx, "upload", hsm.UseDecrypt); f.err != nil {
			return
		}
		f.other, f.err = f.h.GenerateEncryptionKey(ctx, "other", hsm.UseDecrypt)
	})
	if f.err != nil {
		t.Fatalf("soft HSM fixture: %v", f.err)
	}
	return f.key, f.other
}

var testSubject = Subject{
	TenantID:   "0123456789abcdef0123456789abcdef",
	TenantName: "acme-prod",
	CertID:     "fedcba9876543210fedcba9876543210",
	Region:     "eu1",
}

// testCA is an ECDSA P-256 CA, standing in for a tenant's CA.
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Acme test CA", Organization: []string{"Acme"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{key: key, cert: cert}
}

// sign issues a certificate for pub, like a CA signing a request, with
// edit applied to the template first.
func (ca *testCA) sign(t testing.TB, pub crypto.PublicKey, edit func(*x509.Certificate)) []byte {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "upload.acme.example", Organization: []string{"Acme"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if edit != nil {
		edit(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatalf("CA: x509.CreateCertificate() error = %v", err)
	}
	return der
}

// memKey is an hsm.EncryptionKey held in memory, of any size, for the
// refusals of keys that are not RSA-4096.
type memKey struct{ priv *rsa.PrivateKey }

var _ hsm.EncryptionKey = memKey{}

func newMemKey(t testing.TB, bits int) memKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return memKey{priv}
}

func (k memKey) Label() string                { return fmt.Sprintf("mem-rsa-%d", k.priv.N.BitLen()) }
func (k memKey) Use() hsm.RSAUse              { return hsm.UseDecrypt }
func (k memKey) Public() crypto.PublicKey     { return &k.priv.PublicKey }
func (k memKey) RSAPublicKey() *rsa.PublicKey { return &k.priv.PublicKey }
func (k memKey) Decrypt(r io.Reader, ct []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	return k.priv.Decrypt(r, ct, opts)
}
func (k memKey) Unwrap(context.Context, []byte, hsm.OAEPHash, hsm.KeySpec) (hsm.SecretKey, error) {
	return nil, hsm.ErrUnsupported
}
func (k memKey) Destroy(context.Context) error { return hsm.ErrUnsupported }
func (k memKey) SignPSS(ctx context.Context, m []byte) ([]byte, error) {
	d := sha256.Sum256(m)
	return k.SignPSSDigest(ctx, d[:])
}
func (k memKey) SignPSSDigest(_ context.Context, d []byte) ([]byte, error) {
	return rsa.SignPSS(rand.Reader, k.priv, crypto.SHA256, d, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256})
}
