package uploadcert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The tenant's procedure, exactly as the package documentation gives it
// (TestDocCommands checks that they are there, word for word).
var (
	tenantCommands = []string{
		"openssl x509 -in upload.pem -noout -subject -dates -fingerprint -sha256",
		"openssl rand -out key.bin 32",
		"openssl dgst -sha256 -r key.bin",
		"openssl x509 -in upload.pem -noout -pubkey -out upload-pub.pem",
		"openssl pkeyutl -encrypt -pubin -inkey upload-pub.pem -in key.bin -out key.enc " +
			"-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256",
	}
	caCommands = []string{
		"openssl req -in upload.csr -noout -verify -subject",
		"openssl x509 -req -in upload.csr -CA ca.pem -CAkey ca.key -days 365 -copy_extensions copy -out upload.pem",
	}
)

// opensslCmd runs "openssl args..." (a command line without quoting) in dir
// and returns its output. Without openssl the test is skipped, except in CI.
func opensslCmd(t *testing.T, dir, line string) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("openssl is required in CI: %v", err)
		}
		t.Skipf("SKIPPING: openssl is not on PATH: %v", err)
	}
	args := strings.Fields(line)
	if args[0] != "openssl" {
		t.Fatalf("not an openssl command: %q", line)
	}
	cmd := exec.Command(path, args[1:]...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

func writeFile(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDocCommands(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	// Join the documentation's continued command lines.
	doc := regexp.MustCompile(` \\\n//\s+`).ReplaceAllString(string(src), " ")
	for _, c := range append(append([]string{}, tenantCommands...), caCommands...) {
		if !strings.Contains(doc, "//\t"+c+"\n") {
			t.Errorf("doc.go does not give the command %q", c)
		}
	}
}

func TestOpenSSLSelfSigned(t *testing.T) {
	key, _ := keys(t)
	dir := t.TempDir()
	der, err := SelfSigned(context.Background(), key, testSubject, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "cert.pem", EncodeCertificate(der))
	text := opensslCmd(t, dir, "openssl x509 -in cert.pem -noout -text")
	for _, want := range []string{
		"Version: 3 (0x2)",
		"Signature Algorithm: rsassaPss",
		"Hash Algorithm: sha256",
		"Mask Algorithm: mgf1 with sha256",
		"Salt Length: 0x20",
		"Public-Key: (4096 bit)",
		"X509v3 Key Usage: critical\n                Key Encipherment\n",
		"X509v3 Basic Constraints: critical\n                CA:FALSE",
		"CN = Strongroom upload certificate fedcba9876543210fedcba9876543210",
		"OU = acme-prod",
		"serialNumber = 0123456789abcdef0123456789abcdef",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl x509 -text output lacks %q:\n%s", want, text)
		}
	}
	// -check_ss_sig makes openssl check the self-signature of the trusted
	// certificate too.
	if out := opensslCmd(t, dir, "openssl verify -CAfile cert.pem -partial_chain -check_ss_sig cert.pem"); strings.TrimSpace(out) != "cert.pem: OK" {
		t.Errorf("openssl verify = %q, want cert.pem: OK", out)
	}
}

func TestOpenSSLRequest(t *testing.T) {
	key, _ := keys(t)
	dir := t.TempDir()
	der, err := Request(context.Background(), key, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "req.pem", EncodeCSR(der))
	out := opensslCmd(t, dir, "openssl req -in req.pem -noout -verify -text")
	for _, want := range []string{
		"verify OK",
		"Signature Algorithm: rsassaPss",
		"Salt Length: 0x20",
		"Public-Key: (4096 bit)",
		"Requested Extensions:",
		"X509v3 Key Usage: critical\n                    Key Encipherment\n",
		"X509v3 Basic Constraints: critical\n                    CA:FALSE",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl req -text output lacks %q:\n%s", want, out)
		}
	}
}

// TestOpenSSLTenantProcedure runs the tenant's commands on a self-signed
// upload certificate, and decrypts the result with the HSM key.
func TestOpenSSLTenantProcedure(t *testing.T) {
	key, _ := keys(t)
	dir := t.TempDir()
	der, err := SelfSigned(context.Background(), key, testSubject, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "upload.pem", EncodeCertificate(der))
	var outs []string
	for _, c := range tenantCommands {
		outs = append(outs, opensslCmd(t, dir, c))
	}
	fp := sha256.Sum256(der)
	var hexFP []string
	for _, b := range fp {
		hexFP = append(hexFP, strings.ToUpper(hex.EncodeToString([]byte{b})))
	}
	if want := "Fingerprint=" + strings.Join(hexFP, ":") + "\n"; !strings.Contains(outs[0], want) {
		t.Errorf("%s: output %q lacks the SHA-256 fingerprint", tenantCommands[0], outs[0])
	}
	pt := readFile(t, dir, "key.bin")
	if len(pt) != 32 {
		t.Fatalf("key.bin is %d bytes, want 32", len(pt))
	}
	sum := sha256.Sum256(pt)
	if got, want := strings.Fields(outs[2])[0], hex.EncodeToString(sum[:]); got != want {
		t.Errorf("%s = %q, want the hex SHA-256 %s first", tenantCommands[2], outs[2], want)
	}
	decrypt := func(name string) {
		t.Helper()
		ct := readFile(t, dir, name)
		if len(ct) != 512 {
			t.Errorf("%s is %d bytes, want 512", name, len(ct))
		}
		got, err := key.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256})
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("HSM key.Decrypt(%s) = %x, %v; want %x", name, got, err, pt)
		}
	}
	decrypt("key.enc")

	// The one-step variant the documentation mentions.
	opensslCmd(t, dir, "openssl pkeyutl -encrypt -certin -inkey upload.pem -in key.bin -out key2.enc "+
		"-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256")
	decrypt("key2.enc")
}

// TestOpenSSLCA has an OpenSSL CA sign a request, with the documented
// commands, and checks that ParseSigned accepts the result.
func TestOpenSSLCA(t *testing.T) {
	key, _ := keys(t)
	dir := t.TempDir()
	csr, err := Request(context.Background(), key, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	ca := newCA(t)
	caKey, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "upload.csr", EncodeCSR(csr))
	writeFile(t, dir, "ca.pem", EncodeCertificate(ca.cert.Raw))
	writeFile(t, dir, "ca.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: caKey}))
	for _, c := range caCommands {
		opensslCmd(t, dir, c)
	}
	signed := readFile(t, dir, "upload.pem")
	got, err := ParseSigned(signed, key.RSAPublicKey(), time.Now())
	if err != nil {
		t.Fatalf("ParseSigned(openssl x509 -req output) error = %v", err)
	}
	c, err := x509.ParseCertificate(got.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSignatureFrom(ca.cert); err != nil {
		t.Errorf("CheckSignatureFrom(CA) = %v", err)
	}
	if c.KeyUsage != x509.KeyUsageKeyEncipherment || !c.BasicConstraintsValid || c.IsCA {
		t.Errorf("KeyUsage %b, BasicConstraintsValid %v, IsCA %v; want the requested KeyEncipherment, true, false",
			c.KeyUsage, c.BasicConstraintsValid, c.IsCA)
	}
	checkSubject(t, c.Subject)
	if d := got.NotAfter.Sub(got.NotBefore); d != 365*24*time.Hour {
		t.Errorf("validity = %v, want 365 days", d)
	}
	// With its chain, and with openssl's text form before it.
	withText := opensslCmd(t, dir, "openssl x509 -in upload.pem -text")
	for name, data := range map[string][]byte{
		"chain":     append(bytes.Clone(signed), readFile(t, dir, "ca.pem")...),
		"with text": []byte(withText),
	} {
		if again, err := ParseSigned(data, key.RSAPublicKey(), time.Now()); err != nil || !bytes.Equal(again.DER, got.DER) {
			t.Errorf("ParseSigned(%s) error = %v", name, err)
		}
	}
}
