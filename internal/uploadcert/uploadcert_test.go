package uploadcert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func TestSelfSigned(t *testing.T) {
	key, _ := keys(t)
	ctx := context.Background()
	notBefore := time.Date(2026, 3, 1, 10, 0, 0, 999_000_000, time.FixedZone("CET", 3600))
	notAfter := notBefore.Add(365 * 24 * time.Hour)
	der, err := SelfSigned(ctx, key, testSubject, notBefore, notAfter)
	if err != nil {
		t.Fatalf("SelfSigned() error = %v", err)
	}
	for name, data := range map[string][]byte{"DER": der, "PEM": EncodeCertificate(der)} {
		c, err := ParseCertificate(data)
		if err != nil {
			t.Fatalf("ParseCertificate(%s) error = %v", name, err)
		}
		if !bytes.Equal(c.Raw, der) {
			t.Errorf("ParseCertificate(%s).Raw differs from the DER", name)
		}
	}
	c, _ := x509.ParseCertificate(der)

	if c.Version != 3 {
		t.Errorf("Version = %d, want 3", c.Version)
	}
	if c.SignatureAlgorithm != x509.SHA256WithRSAPSS {
		t.Errorf("SignatureAlgorithm = %v, want SHA256-RSAPSS", c.SignatureAlgorithm)
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("SerialNumber = %v, want a positive number of at most 128 bits", c.SerialNumber)
	}
	if !key.RSAPublicKey().Equal(c.PublicKey) {
		t.Error("the certificate's public key is not the HSM key's")
	}
	// The certificate is not a CA, so c.CheckSignatureFrom(c) refuses it on
	// principle; check the self-signature directly, then with the explicit
	// PSS parameters (salt length 32).
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		t.Errorf("CheckSignature(self) = %v", err)
	}
	d := sha256.Sum256(c.RawTBSCertificate)
	if err := rsa.VerifyPSS(key.RSAPublicKey(), crypto.SHA256, d[:], c.Signature, &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}); err != nil {
		t.Errorf("rsa.VerifyPSS(salt 32) = %v", err)
	}
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		t.Error("issuer != subject in a self-signed certificate")
	}

	checkSubject(t, c.Subject)

	if c.KeyUsage != x509.KeyUsageKeyEncipherment {
		t.Errorf("KeyUsage = %b, want KeyEncipherment only", c.KeyUsage)
	}
	if len(c.ExtKeyUsage) != 0 || len(c.UnknownExtKeyUsage) != 0 {
		t.Errorf("ExtKeyUsage = %v %v, want none", c.ExtKeyUsage, c.UnknownExtKeyUsage)
	}
	if !c.BasicConstraintsValid || c.IsCA {
		t.Errorf("BasicConstraintsValid, IsCA = %v, %v, want true, false", c.BasicConstraintsValid, c.IsCA)
	}
	for _, e := range c.Extensions {
		if (e.Id.Equal(oidKeyUsage) || e.Id.Equal(oidBasicConstraints)) && !e.Critical {
			t.Errorf("extension %v is not critical", e.Id)
		}
	}
	wantNB, wantNA := notBefore.UTC().Truncate(time.Second), notAfter.UTC().Truncate(time.Second)
	if !c.NotBefore.Equal(wantNB) || !c.NotAfter.Equal(wantNA) {
		t.Errorf("validity = %v to %v, want %v to %v", c.NotBefore, c.NotAfter, wantNB, wantNA)
	}

	// Serial numbers are random.
	der2, err := SelfSigned(ctx, key, testSubject, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := x509.ParseCertificate(der2)
	if c2.SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two certificates have the same serial number")
	}

	// Without a region, there is no locality.
	s := testSubject
	s.Region = ""
	der3, err := SelfSigned(ctx, key, s, notBefore, notAfter)
	if err != nil {
		t.Fatalf("SelfSigned(no region) error = %v", err)
	}
	c3, _ := x509.ParseCertificate(der3)
	if len(c3.Subject.Locality) != 0 {
		t.Errorf("Subject.Locality = %q without a region, want none", c3.Subject.Locality)
	}
}

func checkSubject(t *testing.T, n pkix.Name) {
	t.Helper()
	want := "SERIALNUMBER=0123456789abcdef0123456789abcdef,CN=Strongroom upload certificate fedcba9876543210fedcba9876543210,OU=acme-prod,O=Strongroom,L=eu1"
	if got := n.String(); got != want {
		t.Errorf("Subject = %q, want %q", got, want)
	}
}

func TestSelfSignedRefuses(t *testing.T) {
	key, _ := keys(t)
	ctx := context.Background()
	now := time.Now()
	long := strings.Repeat("a", 65)
	cases := []struct {
		name     string
		s        Subject
		nb, na   time.Time
		wantText string
	}{
		{"no tenant ID", Subject{TenantName: "a", CertID: "b"}, now, now.Add(time.Hour), "needs a tenant ID"},
		{"no tenant name", Subject{TenantID: "a", CertID: "b"}, now, now.Add(time.Hour), "needs a tenant name"},
		{"no cert ID", Subject{TenantID: "a", TenantName: "b"}, now, now.Add(time.Hour), "needs a certificate ID"},
		{"tenant ID not printable", Subject{TenantID: "tenant_1", TenantName: "b", CertID: "c"}, now, now.Add(time.Hour), "PrintableString"},
		{"tenant name too long", Subject{TenantID: "a", TenantName: long, CertID: "c"}, now, now.Add(time.Hour), "at most 64"},
		{"cert ID too long", Subject{TenantID: "a", TenantName: "b", CertID: strings.Repeat("c", 35)}, now, now.Add(time.Hour), "at most 34"},
		{"control character", Subject{TenantID: "a", TenantName: "b\nc", CertID: "c"}, now, now.Add(time.Hour), "non-printable"},
		{"invalid UTF-8", Subject{TenantID: "a", TenantName: "b\xff", CertID: "c"}, now, now.Add(time.Hour), "UTF-8"},
		{"ends before it begins", testSubject, now, now.Add(-time.Hour), "ends"},
		{"empty validity", testSubject, now, now, "ends"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := SelfSigned(ctx, key, tc.s, tc.nb, tc.na)
			if err == nil || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("SelfSigned() error = %v, want one containing %q", err, tc.wantText)
			}
			if tc.nb.Before(tc.na) {
				if _, err := Request(ctx, key, tc.s); err == nil || !strings.Contains(err.Error(), tc.wantText) {
					t.Errorf("Request() error = %v, want one containing %q", err, tc.wantText)
				}
			}
		})
	}

	small := newMemKey(t, 2048)
	if _, err := SelfSigned(ctx, small, testSubject, now, now.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "RSA-2048") {
		t.Errorf("SelfSigned(RSA-2048 key) error = %v, want a key size error", err)
	}
	if _, err := Request(ctx, small, testSubject); err == nil || !strings.Contains(err.Error(), "RSA-2048") {
		t.Errorf("Request(RSA-2048 key) error = %v, want a key size error", err)
	}
}

func TestSigner(t *testing.T) {
	key, _ := keys(t)
	s := Signer(context.Background(), key)
	if !key.RSAPublicKey().Equal(s.Public()) {
		t.Error("Signer.Public() is not the key's public key")
	}
	d := sha256.Sum256([]byte("tbs"))
	for _, salt := range []int{rsa.PSSSaltLengthEqualsHash, 32} {
		opts := &rsa.PSSOptions{SaltLength: salt, Hash: crypto.SHA256}
		sig, err := s.Sign(rand.Reader, d[:], opts)
		if err != nil {
			t.Fatalf("Sign(PSS, salt %d) error = %v", salt, err)
		}
		if err := rsa.VerifyPSS(key.RSAPublicKey(), crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: 32}); err != nil {
			t.Errorf("Sign(PSS, salt %d): VerifyPSS(salt 32) = %v", salt, err)
		}
	}
	d384 := make([]byte, 48)
	refused := []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
	}{
		{"PKCS#1 v1.5", d[:], crypto.SHA256},
		{"nil options", d[:], nil},
		{"nil PSS options", d[:], (*rsa.PSSOptions)(nil)},
		{"PSS SHA-384", d384, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA384}},
		{"PSS auto salt", d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: crypto.SHA256}},
		{"PSS salt 20", d[:], &rsa.PSSOptions{SaltLength: 20, Hash: crypto.SHA256}},
		{"PSS no hash", d[:], &rsa.PSSOptions{SaltLength: 32}},
		{"short digest", d[:31], &rsa.PSSOptions{SaltLength: 32, Hash: crypto.SHA256}},
	}
	for _, tc := range refused {
		if sig, err := s.Sign(rand.Reader, tc.digest, tc.opts); err == nil {
			t.Errorf("Sign(%s) = %x, want an error", tc.name, sig[:8])
		}
	}
}

func TestRequest(t *testing.T) {
	key, _ := keys(t)
	der, err := Request(context.Background(), key, testSubject)
	if err != nil {
		t.Fatalf("Request() error = %v", err)
	}
	for name, data := range map[string][]byte{"DER": der, "PEM": EncodeCSR(der)} {
		csr, err := ParseCSR(data)
		if err != nil {
			t.Fatalf("ParseCSR(%s) error = %v", name, err)
		}
		if !bytes.Equal(csr.Raw, der) {
			t.Errorf("ParseCSR(%s).Raw differs from the DER", name)
		}
	}
	csr, _ := x509.ParseCertificateRequest(der)
	if csr.SignatureAlgorithm != x509.SHA256WithRSAPSS {
		t.Errorf("SignatureAlgorithm = %v", csr.SignatureAlgorithm)
	}
	if !key.RSAPublicKey().Equal(csr.PublicKey) {
		t.Error("the request's key is not the HSM key")
	}
	if err := csr.CheckSignature(); err != nil {
		t.Errorf("CheckSignature() = %v", err)
	}
	checkSubject(t, csr.Subject)
	// The requested extensions, as a CA that copies them would put them in
	// the certificate.
	tmpl := &x509.Certificate{}
	for _, e := range csr.Extensions {
		if !e.Critical {
			t.Errorf("requested extension %v is not critical", e.Id)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, e)
	}
	if len(csr.Extensions) != 2 {
		t.Fatalf("the request asks for %d extensions, want 2", len(csr.Extensions))
	}
	ca := newCA(t)
	signed := ca.sign(t, csr.PublicKey, func(c *x509.Certificate) {
		c.KeyUsage, c.ExtKeyUsage, c.BasicConstraintsValid = 0, nil, false
		c.ExtraExtensions = tmpl.ExtraExtensions
	})
	c, err := x509.ParseCertificate(signed)
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyUsage != x509.KeyUsageKeyEncipherment || !c.BasicConstraintsValid || c.IsCA {
		t.Errorf("certificate with the requested extensions: KeyUsage %b, BasicConstraintsValid %v, IsCA %v; want KeyEncipherment, true, false",
			c.KeyUsage, c.BasicConstraintsValid, c.IsCA)
	}
}

func TestParseCSRRefuses(t *testing.T) {
	key, _ := keys(t)
	der, err := Request(context.Background(), key, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	p := EncodeCSR(der)
	tampered := bytes.Clone(der)
	tampered[len(tampered)-10] ^= 1
	small := newMemKey(t, 2048)
	smallPSS, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "x"}, SignatureAlgorithm: x509.SHA256WithRSAPSS}, small.priv)
	if err != nil {
		t.Fatal(err)
	}
	smallPKCS1, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "x"}, SignatureAlgorithm: x509.SHA256WithRSA}, small.priv)
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecCSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, ec)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := SelfSigned(context.Background(), key, testSubject, time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":            {nil, "empty"},
		"garbage":          {[]byte("hello, world"), "not a certificate request"},
		"DER garbage":      {[]byte{0x30, 0x03, 1, 2, 3}, "not a valid PKCS#10"},
		"DER trailing":     {append(bytes.Clone(der), 0), "not a valid PKCS#10"},
		"PEM trailing":     {append(bytes.Clone(p), "junk\n"...), "after the PEM"},
		"two blocks":       {append(bytes.Clone(p), p...), "exactly one"},
		"wrong PEM type":   {pem.EncodeToMemory(&pem.Block{Type: "NEW CERTIFICATE REQUEST", Bytes: der}), `"NEW CERTIFICATE REQUEST" block`},
		"a certificate":    {EncodeCertificate(cert), `"CERTIFICATE" block`},
		"certificate DER":  {cert, "not a valid PKCS#10"},
		"PEM headers":      {pem.EncodeToMemory(&pem.Block{Type: pemRequest, Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: der}), "headers"},
		"malformed PEM":    {[]byte("-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n"), "not a certificate request"},
		"tampered":         {tampered, "does not verify"},
		"RSA-2048":         {smallPSS, "RSA-2048"},
		"PKCS#1 v1.5":      {smallPKCS1, "signed with SHA256-RSA"},
		"ECDSA":            {ecCSR, "signed with ECDSA"},
		"oversize":         {append(bytes.Clone(p), bytes.Repeat([]byte(" "), MaxCSRSize)...), "more than"},
		"oversize garbage": {bytes.Repeat([]byte{0x30}, MaxCSRSize+1), "more than"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			csr, err := ParseCSR(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseCSR() = %v, %v; want an error containing %q", csr != nil, err, tc.want)
			}
		})
	}
}

func TestParseSigned(t *testing.T) {
	key, _ := keys(t)
	ca := newCA(t)
	leaf := ca.sign(t, key.RSAPublicKey(), nil)
	now := time.Now()
	c, _ := x509.ParseCertificate(leaf)
	text := "Certificate:\n    Data:\n        Version: 3 (0x2)\n        (as openssl ca writes it)\n"
	inputs := map[string][]byte{
		"DER":                leaf,
		"PEM":                EncodeCertificate(leaf),
		"PEM with chain":     append(EncodeCertificate(leaf), EncodeCertificate(ca.cert.Raw)...),
		"explanatory text":   append([]byte(text), EncodeCertificate(leaf)...),
		"CRLF and spaces":    append(bytes.ReplaceAll(EncodeCertificate(leaf), []byte("\n"), []byte("\r\n")), " \r\n\t"...),
		"no key usage":       EncodeCertificate(ca.sign(t, key.RSAPublicKey(), func(c *x509.Certificate) { c.KeyUsage = 0 })),
		"no basic constr.":   EncodeCertificate(ca.sign(t, key.RSAPublicKey(), func(c *x509.Certificate) { c.BasicConstraintsValid = false })),
		"any ext. key usage": EncodeCertificate(ca.sign(t, key.RSAPublicKey(), func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning} })),
	}
	for name, data := range inputs {
		got, err := ParseSigned(data, key.RSAPublicKey(), now)
		if err != nil {
			t.Errorf("ParseSigned(%s) error = %v", name, err)
			continue
		}
		if name == "DER" || strings.HasPrefix(name, "PEM") || name == "explanatory text" || name == "CRLF and spaces" {
			if !bytes.Equal(got.DER, leaf) || !got.NotBefore.Equal(c.NotBefore) || !got.NotAfter.Equal(c.NotAfter) {
				t.Errorf("ParseSigned(%s) = %v to %v, %d bytes; want the leaf, %v to %v", name, got.NotBefore, got.NotAfter, len(got.DER), c.NotBefore, c.NotAfter)
			}
		}
	}
	// The validity includes its ends.
	for _, at := range []time.Time{c.NotBefore, c.NotAfter} {
		if _, err := ParseSigned(leaf, key.RSAPublicKey(), at); err != nil {
			t.Errorf("ParseSigned(now = %v) error = %v", at, err)
		}
	}
	// The returned DER is a copy.
	buf := bytes.Clone(leaf)
	got, _ := ParseSigned(buf, key.RSAPublicKey(), now)
	buf[0] = 0
	if !bytes.Equal(got.DER, leaf) {
		t.Error("ParseSigned returned DER that aliases its input")
	}
}

func TestParseSignedRefuses(t *testing.T) {
	key, other := keys(t)
	ca := newCA(t)
	pub := key.RSAPublicKey()
	now := time.Now()
	leaf := ca.sign(t, pub, nil)
	lp := EncodeCertificate(leaf)
	csr, err := Request(context.Background(), key, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	asCA := func(c *x509.Certificate) {
		c.IsCA, c.KeyUsage = true, x509.KeyUsageCertSign|x509.KeyUsageKeyEncipherment
	}
	unknownCritical := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{5, 0}}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"another key":      {ca.sign(t, other.RSAPublicKey(), nil), "the certificate's public key is not this upload request's key"},
		"the CA itself":    {ca.cert.Raw, "not this upload request's key"},
		"chain reversed":   {append(EncodeCertificate(ca.cert.Raw), lp...), "certificate 2 of 2"},
		"expired":          {ca.sign(t, pub, func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(-48*time.Hour), now.Add(-24*time.Hour) }), "expired on"},
		"not yet valid":    {ca.sign(t, pub, func(c *x509.Certificate) { c.NotBefore = now.Add(time.Hour) }), "not valid until"},
		"inverted":         {ca.sign(t, pub, func(c *x509.Certificate) { c.NotBefore, c.NotAfter = now.Add(time.Hour), now.Add(-time.Hour) }), "ends"},
		"CA certificate":   {ca.sign(t, pub, asCA), "must not be a CA"},
		"signing only":     {ca.sign(t, pub, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }), "keyEncipherment"},
		"unknown critical": {ca.sign(t, pub, func(c *x509.Certificate) { c.ExtraExtensions = []pkix.Extension{unknownCritical} }), "critical extension"},
		"empty":            {nil, "empty"},
		"garbage":          {[]byte("garbage"), "not a certificate"},
		"DER garbage":      {[]byte{0x30, 0x80, 0xff}, "not a valid X.509"},
		"DER trailing":     {append(bytes.Clone(leaf), 0, 0), "not a valid X.509"},
		"two DER":          {append(bytes.Clone(leaf), leaf...), "not a valid X.509"},
		"PEM trailing":     {append(bytes.Clone(lp), "trailing"...), "after the PEM"},
		"PEM trailing DER": {append(bytes.Clone(lp), leaf...), "after the PEM"},
		"a CSR":            {EncodeCSR(csr), `"CERTIFICATE REQUEST" block`},
		"a key in chain":   {append(bytes.Clone(lp), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})...), `"PRIVATE KEY" block`},
		"PEM headers":      {pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Headers: map[string]string{"a": "b"}, Bytes: leaf}), "headers"},
		"malformed 2nd":    {append(bytes.Clone(lp), "-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----\n"...), "malformed PEM"},
		"bad base64":       {[]byte("-----BEGIN CERTIFICATE-----\nMII%\n-----END CERTIFICATE-----\n"), "not a certificate"},
		"empty block":      {[]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), "not a valid X.509"},
		"oversize":         {append(bytes.Clone(lp), bytes.Repeat([]byte("\n"), MaxCertSize)...), "more than"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseSigned(tc.data, pub, now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseSigned() = %d bytes, %v; want an error containing %q", len(got.DER), err, tc.want)
			}
		})
	}
	if _, err := ParseSigned(leaf, nil, now); err == nil {
		t.Error("ParseSigned(want = nil) error = nil, want an error")
	}
}

func TestParseCertificate(t *testing.T) {
	key, _ := keys(t)
	ca := newCA(t)
	leaf := ca.sign(t, key.RSAPublicKey(), nil)
	for name, data := range map[string][]byte{"DER": leaf, "PEM": EncodeCertificate(leaf)} {
		if c, err := ParseCertificate(data); err != nil || !bytes.Equal(c.Raw, leaf) {
			t.Errorf("ParseCertificate(%s) error = %v", name, err)
		}
	}
	small := newMemKey(t, 2048)
	cases := map[string]struct {
		data []byte
		want string
	}{
		"ECDSA":      {ca.cert.Raw, "not RSA-4096"},
		"RSA-2048":   {ca.sign(t, small.RSAPublicKey(), nil), "RSA-2048"},
		"with chain": {append(EncodeCertificate(leaf), EncodeCertificate(ca.cert.Raw)...), "exactly one"},
		"trailing":   {append(EncodeCertificate(leaf), 'x'), "after the PEM"},
		"garbage":    {[]byte("x"), "not a certificate"},
		"oversize":   {bytes.Repeat([]byte{'x'}, MaxCertSize+1), "more than"},
	}
	for name, tc := range cases {
		if _, err := ParseCertificate(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCertificate(%s) error = %v, want one containing %q", name, err, tc.want)
		}
	}
}

func TestOAEPRoundTrip(t *testing.T) {
	key, _ := keys(t)
	der, err := SelfSigned(context.Background(), key, testSubject, time.Now(), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCertificate(EncodeCertificate(der))
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte{0x42}, 32)
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, c.PublicKey.(*rsa.PublicKey), msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := key.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256})
	if err != nil || !bytes.Equal(got, msg) {
		t.Errorf("Decrypt(EncryptOAEP(certificate key)) = %x, %v; want %x", got, err, msg)
	}
}
