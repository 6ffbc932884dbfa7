package escrow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// startEscrow serves dir over TLS on loopback.
func startEscrow(t *testing.T, dir string, signer hsm.SigningKey, cert []byte, primary *enroll.Primary) (*httptest.Server, *syncBuffer) {
	t.Helper()
	var logs syncBuffer
	ts := httptest.NewTLSServer(NewServer(dir, signer, cert, primary, slog.New(slog.NewTextHandler(&logs, nil))))
	t.Cleanup(ts.Close)
	return ts, &logs
}

func fetch(t *testing.T, ts *httptest.Server, region string) ([]Bundle, error) {
	t.Helper()
	return Fetch(context.Background(), ts.Client(), ts.URL, region, random(t, 32), getFixture(t).primary, now.Add(time.Hour))
}

func names(bs []Bundle) []string {
	var n []string
	for _, b := range bs {
		n = append(n, b.Name)
	}
	return n
}

// TestRegionGetsOnlyItsBundles: (a) eu1 and us1 bundles, the primary copy
// (as *.primary and misnamed *.bundle) and junk in the directory; each region
// gets exactly its own, and files dropped in later are served.
func TestRegionGetsOnlyItsBundles(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	files := map[string][]byte{
		"2026-1.eu1.bundle": writeBundle(t, dir, "2026-1.eu1.bundle", fakeBundle(t, f.primarySigner, "2026-1", "eu1")),
		"2026-2.eu1.bundle": writeBundle(t, dir, "2026-2.eu1.bundle", fakeBundle(t, f.primarySigner, "2026-2", "eu1")),
		"2026-1.us1.bundle": writeBundle(t, dir, "2026-1.us1.bundle", fakeBundle(t, f.primarySigner, "2026-1", "us1")),
	}
	writeBundle(t, dir, "2026-1.primary", fakeBundle(t, f.primarySigner, "2026-1", release.PrimaryCopy))
	writeBundle(t, dir, "primary-copy.bundle", fakeBundle(t, f.primarySigner, "2026-2", release.PrimaryCopy))
	// The same eu1 bundle under another file name is served once, by its
	// conventional name.
	os.WriteFile(filepath.Join(dir, "copy-of-eu1.bundle"), files["2026-1.eu1.bundle"], 0o644)
	os.WriteFile(filepath.Join(dir, "junk.bundle"), []byte("not a bundle"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello"), 0o644)
	os.Mkdir(filepath.Join(dir, "sub.bundle"), 0o755)
	ts, logs := startEscrow(t, dir, f.escrow1, f.cert1.Raw(), nil)

	for region, want := range map[string][]string{
		"eu1": {"2026-1.eu1.bundle", "2026-2.eu1.bundle"},
		"us1": {"2026-1.us1.bundle"},
		"ap1": nil,
	} {
		got, err := fetch(t, ts, region)
		if err != nil {
			t.Fatalf("Fetch(%s) error = %v", region, err)
		}
		if !slices.Equal(names(got), want) {
			t.Errorf("Fetch(%s) = %v, want %v", region, names(got), want)
		}
		for _, b := range got {
			if !bytes.Equal(b.PEM, files[b.Name]) {
				t.Errorf("Fetch(%s): %s differs from the file served", region, b.Name)
			}
			parsed, err := release.Decode(b.PEM)
			if err != nil {
				t.Fatal(err)
			}
			if pb, _ := release.Parse(parsed); pb.Region != region {
				t.Errorf("Fetch(%s) returned a bundle of region %q", region, pb.Region)
			}
		}
	}
	if l := logs.String(); !strings.Contains(l, "junk.bundle") || !strings.Contains(l, "sub.bundle") {
		t.Errorf("the escrow did not log the files it skipped:\n%s", l)
	}

	// A bundle dropped in later is served without a restart.
	writeBundle(t, dir, "2026-3.eu1.bundle", fakeBundle(t, f.primarySigner, "2026-3", "eu1"))
	got, err := fetch(t, ts, "eu1")
	if err != nil || !slices.Equal(names(got), []string{"2026-1.eu1.bundle", "2026-2.eu1.bundle", "2026-3.eu1.bundle"}) {
		t.Errorf("Fetch(eu1) after a new file = %v, %v", names(got), err)
	}
}

func TestConflictingBundlesNotServed(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	writeBundle(t, dir, "2026-1.eu1.bundle", fakeBundle(t, f.primarySigner, "2026-1", "eu1"))
	writeBundle(t, dir, "again.bundle", fakeBundle(t, f.primarySigner, "2026-1", "eu1"))
	writeBundle(t, dir, "2026-2.eu1.bundle", fakeBundle(t, f.primarySigner, "2026-2", "eu1"))
	ts, logs := startEscrow(t, dir, f.escrow1, f.cert1.Raw(), nil)
	got, err := fetch(t, ts, "eu1")
	if err != nil || !slices.Equal(names(got), []string{"2026-2.eu1.bundle"}) {
		t.Errorf("Fetch(eu1) = %v, %v; want only 2026-2.eu1.bundle", names(got), err)
	}
	if !strings.Contains(logs.String(), "two different bundles with one name") {
		t.Errorf("the conflict was not logged:\n%s", logs)
	}
}

// recorder passes requests on and keeps the last answer's body.
type recorder struct {
	rt   http.RoundTripper
	body []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if r.body, err = io.ReadAll(resp.Body); err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(r.body))
	return resp, nil
}

// replayer answers every request with a recorded body.
type replayer []byte

func (r replayer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader(r)), Request: req,
	}, nil
}

// recordAnswer fetches region's bundles with nonce and returns the JSON body.
func recordAnswer(t *testing.T, ts *httptest.Server, region string, nonce []byte) []byte {
	t.Helper()
	rec := &recorder{rt: ts.Client().Transport}
	if _, err := Fetch(context.Background(), &http.Client{Transport: rec}, ts.URL, region, nonce, getFixture(t).primary, now.Add(time.Hour)); err != nil {
		t.Fatalf("Fetch(%s) error = %v", region, err)
	}
	return rec.body
}

// getBundle returns the one bundle of an answer.
func getBundle(t *testing.T, der []byte) []byte {
	t.Helper()
	a, err := ParseAnswer(der)
	if err != nil || len(a.Entries) != 1 {
		t.Fatalf("ParseAnswer() = %v, want one entry", err)
	}
	return a.Entries[0].Bundle
}

func answerDER(t *testing.T, body []byte) []byte {
	t.Helper()
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	der, err := base64.StdEncoding.DecodeString(r.Answer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestReplayedAnswerRefused: (b) a recorded answer, replayed to a request with
// another nonce or for another region, is refused; the original still passes.
func TestReplayedAnswerRefused(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	writeBundle(t, dir, "2026-1.eu1.bundle", fakeBundle(t, f.primarySigner, "2026-1", "eu1"))
	ts, _ := startEscrow(t, dir, f.escrow1, f.cert1.Raw(), nil)
	nonce := random(t, 32)
	body := recordAnswer(t, ts, "eu1", nonce)
	client := &http.Client{Transport: replayer(body)}
	ctx := context.Background()

	got, err := Fetch(ctx, client, ts.URL, "eu1", nonce, f.primary, now.Add(time.Hour))
	if err != nil || len(got) != 1 {
		t.Fatalf("Fetch(recorded answer, its own nonce) = %v, %v", names(got), err)
	}
	other := bytes.Clone(nonce)
	other[31] ^= 1
	for name, n := range map[string][]byte{"another nonce": other, "a shorter nonce": nonce[:16], "a longer nonce": append(bytes.Clone(nonce), 0)} {
		got, err := Fetch(ctx, client, ts.URL, "eu1", n, f.primary, now.Add(time.Hour))
		if err == nil || !strings.Contains(err.Error(), "nonce") || got != nil {
			t.Errorf("Fetch(replayed answer, %s) = %v, %v; want a nonce error and no bundles", name, names(got), err)
		}
	}
	got, err = Fetch(ctx, client, ts.URL, "us1", nonce, f.primary, now.Add(time.Hour))
	if err == nil || !strings.Contains(err.Error(), `answered for region "eu1", but "us1" was asked for`) || got != nil {
		t.Errorf("Fetch(eu1's answer replayed to us1) = %v, %v", names(got), err)
	}
}

// fakeEscrow answers every request with what answer makes of its region and
// nonce.
func fakeEscrow(t *testing.T, answer func(region string, nonce []byte) []byte) *httptest.Server {
	t.Helper()
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		json.NewDecoder(r.Body).Decode(&req)
		nonce, _ := base64.RawURLEncoding.DecodeString(req.Nonce)
		writeJSON(w, http.StatusOK, response{Answer: base64.StdEncoding.EncodeToString(answer(req.Region, nonce))})
	}))
	t.Cleanup(ts.Close)
	return ts
}

// craft signs an answer with signer, embedding cert.
func craft(t *testing.T, signer hsm.SigningKey, cert *Certificate, region string, nonce []byte, entries ...Entry) []byte {
	t.Helper()
	a := &Answer{Region: region, Nonce: nonce, Time: now, Escrow: cert, Entries: entries}
	der, err := a.sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func entry(name string, der []byte) Entry {
	return Entry{Name: name, SHA256: sha256.Sum256(der), Bundle: der}
}

// TestUncertifiedEscrowRefused: (c) answers signed by keys the primary did not
// certify are refused, whatever certificate they carry.
func TestUncertifiedEscrowRefused(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	eu1 := fakeBundle(t, f.primarySigner, "2026-1", "eu1")
	writeBundle(t, dir, "2026-1.eu1.bundle", eu1)
	e := entry("2026-1.eu1.bundle", eu1)

	// escrow2 is certified by another primary.
	ts, _ := startEscrow(t, dir, f.escrow2, f.cert2.Raw(), nil)
	if got, err := fetch(t, ts, "eu1"); err == nil || !strings.Contains(err.Error(), "issued by primary signing key") || got != nil {
		t.Errorf("Fetch(escrow certified by another primary) = %v, %v", names(got), err)
	}
	forged := forgeCertificate(t, f.otherSigner, f.primary.SigningKeyID(), "escrow2", f.escrow2)
	for name, ans := range map[string]func(string, []byte) []byte{
		// escrow2's key with escrow1's certificate.
		"another key than the certified one": func(region string, nonce []byte) []byte {
			return craft(t, f.escrow2, f.cert1, region, nonce, e)
		},
		// A certificate naming our primary as issuer, signed by another.
		"a forged certificate": func(region string, nonce []byte) []byte {
			return craft(t, f.escrow2, forged, region, nonce, e)
		},
	} {
		got, err := fetch(t, fakeEscrow(t, ans), "eu1")
		if err == nil || !strings.Contains(err.Error(), "does not verify") || got != nil {
			t.Errorf("Fetch(answer signed with %s) = %v, %v", name, names(got), err)
		}
	}

	// The right escrow, but its certificate has expired.
	ts, _ = startEscrow(t, dir, f.escrow1, f.cert1.Raw(), nil)
	got, err := Fetch(context.Background(), ts.Client(), ts.URL, "eu1", random(t, 16), f.primary, f.cert1.NotAfter)
	if err == nil || !strings.Contains(err.Error(), "is valid from") || got != nil {
		t.Errorf("Fetch(expired escrow certificate) = %v, %v", names(got), err)
	}
	// And pinned to another primary, escrow1 is refused.
	got, err = Fetch(context.Background(), ts.Client(), ts.URL, "eu1", random(t, 16), f.other, now)
	if err == nil || got != nil {
		t.Errorf("Fetch(pinned to another primary) = %v, %v", names(got), err)
	}
}

// TestAlteredAnswerRefused: (d) any changed byte of a genuine answer makes it
// fail, as does truncation or a trailing byte.
func TestAlteredAnswerRefused(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	writeBundle(t, dir, "2026-1.eu1.bundle", fakeBundle(t, f.primarySigner, "2026-1", "eu1"))
	ts, _ := startEscrow(t, dir, f.escrow1, f.cert1.Raw(), nil)
	nonce := random(t, 16)
	body := recordAnswer(t, ts, "eu1", nonce)
	der := answerDER(t, body)
	check := func(b []byte) error {
		a, err := ParseAnswer(b)
		if err != nil {
			return err
		}
		_, err = a.Verify(f.primary, "eu1", nonce, now.Add(time.Hour))
		return err
	}
	if err := check(der); err != nil {
		t.Fatalf("the genuine answer fails: %v", err)
	}
	// Every byte but those inside the bundle, of which every 16th: the
	// answer's signature covers them alike, and an ECDSA verification costs
	// ~10 ms under the race detector.
	start := bytes.Index(der, getBundle(t, der))
	end := start + len(getBundle(t, der))
	var wg sync.WaitGroup
	for i := range der {
		if i > start && i < end-1 && i%16 != 0 {
			continue
		}
		wg.Go(func() {
			bad := bytes.Clone(der)
			bad[i] ^= 0x01
			if err := check(bad); err == nil {
				t.Errorf("answer with byte %d ^ 0x01 accepted", i)
			}
		})
	}
	wg.Wait()
	if err := check(der[:len(der)-1]); err == nil {
		t.Error("truncated answer accepted")
	}
	if err := check(append(bytes.Clone(der), 0)); err == nil {
		t.Error("answer with a trailing byte accepted")
	}

	// Through Fetch too: the last byte of the signature changed.
	bad := bytes.Clone(der)
	bad[len(bad)-1] ^= 1
	badBody, _ := json.Marshal(response{Answer: base64.StdEncoding.EncodeToString(bad)})
	got, err := Fetch(context.Background(), &http.Client{Transport: replayer(badBody)}, ts.URL, "eu1", nonce, f.primary, now.Add(time.Hour))
	if err == nil || got != nil {
		t.Errorf("Fetch(altered answer) = %v, %v", names(got), err)
	}
}

// TestCompromisedEscrowRefused: a certified escrow that signs a wrong answer
// still cannot hand a region a bundle that is not its own.
func TestCompromisedEscrowRefused(t *testing.T) {
	f := getFixture(t)
	nonce := random(t, 16)
	eu1 := fakeBundle(t, f.primarySigner, "2026-1", "eu1")
	us1 := fakeBundle(t, f.primarySigner, "2026-1", "us1")
	fromOther := fakeBundle(t, f.otherSigner, "2026-2", "eu1")
	wrongHash := entry("2026-1.eu1.bundle", eu1)
	wrongHash.SHA256[0] ^= 1
	for name, tc := range map[string]struct {
		e    Entry
		want string
	}{
		"a wrong SHA-256":              {wrongHash, "does not match its SHA-256"},
		"another region's bundle":      {entry("2026-1.us1.bundle", us1), `is for region "us1", not "eu1"`},
		"a renamed bundle":             {entry("2026-9.eu1.bundle", eu1), "is named 2026-9.eu1.bundle in the answer"},
		"a bundle of another primary":  {entry("2026-2.eu1.bundle", fromOther), "not the pinned"},
		"a bundle that does not parse": {entry("x.bundle", []byte("garbage")), "bundle x.bundle: release:"},
	} {
		a, err := ParseAnswer(craft(t, f.escrow1, f.cert1, "eu1", nonce, entry("2026-0.eu1.bundle", fakeBundle(t, f.primarySigner, "2026-0", "eu1")), tc.e))
		if err != nil {
			t.Fatalf("%s: ParseAnswer() error = %v", name, err)
		}
		got, err := a.Verify(f.primary, "eu1", nonce, now)
		if err == nil || !strings.Contains(err.Error(), tc.want) || got != nil {
			t.Errorf("Verify(answer with %s) = %v, %v; want an error containing %q and no bundles", name, names(got), err, tc.want)
		}
	}
	// Repeated names are refused by the parser.
	if _, err := ParseAnswer(craft(t, f.escrow1, f.cert1, "eu1", nonce, entry("2026-1.eu1.bundle", eu1), entry("2026-1.eu1.bundle", eu1))); err == nil {
		t.Error("ParseAnswer(repeated file names) error = nil")
	}
	if _, err := ParseAnswer(craft(t, f.escrow1, f.cert1, "eu1", nonce, entry("../2026-1.eu1.bundle", eu1))); err == nil {
		t.Error("ParseAnswer(file name with a path) error = nil")
	}
}

// TestBadRequests: (e) malformed requests get a 4xx with a clear code.
func TestBadRequests(t *testing.T) {
	f := getFixture(t)
	ts, _ := startEscrow(t, t.TempDir(), f.escrow1, f.cert1.Raw(), nil)
	nonce := base64.RawURLEncoding.EncodeToString(random(t, 16))
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"short nonce", "POST", Path, "application/json", `{"region":"eu1","nonce":"` + base64.RawURLEncoding.EncodeToString(random(t, 15)) + `"}`, 400, CodeBadNonce},
		{"long nonce", "POST", Path, "application/json", `{"region":"eu1","nonce":"` + base64.RawURLEncoding.EncodeToString(random(t, 65)) + `"}`, 400, CodeBadNonce},
		{"no nonce", "POST", Path, "application/json", `{"region":"eu1"}`, 400, CodeBadNonce},
		{"padded nonce", "POST", Path, "application/json", `{"region":"eu1","nonce":"` + base64.URLEncoding.EncodeToString(random(t, 16)) + `"}`, 400, CodeBadNonce},
		{"standard base64 nonce", "POST", Path, "application/json", `{"region":"eu1","nonce":"+/+/+/+/+/+/+/+/+/+/+/"}`, 400, CodeBadNonce},
		{"unknown field", "POST", Path, "application/json", `{"region":"eu1","nonce":"` + nonce + `","release":"2026-1"}`, 400, CodeUnknownField},
		{"bad region", "POST", Path, "application/json", `{"region":"EU_1","nonce":"` + nonce + `"}`, 400, CodeBadRegion},
		{"no region", "POST", Path, "application/json", `{"nonce":"` + nonce + `"}`, 400, CodeBadRegion},
		{"not JSON", "POST", Path, "application/json", `region=eu1`, 400, CodeMalformed},
		{"two objects", "POST", Path, "application/json", `{"region":"eu1","nonce":"` + nonce + `"}{}`, 400, CodeMalformed},
		{"wrong types", "POST", Path, "application/json", `{"region":1,"nonce":"` + nonce + `"}`, 400, CodeMalformed},
		{"too large", "POST", Path, "application/json", `{"region":"eu1","nonce":"` + nonce + `"}` + strings.Repeat(" ", MaxRequestBody), 413, CodeTooLarge},
		{"not JSON content type", "POST", Path, "text/plain", `{"region":"eu1","nonce":"` + nonce + `"}`, 415, CodeUnsupportedMedia},
		{"GET", "GET", Path, "", "", 405, CodeMethodNotAllowed},
		{"other path", "POST", "/v1/escrow/bundle", "application/json", "{}", 404, CodeNotFound},
	} {
		req, err := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var e apiError
		dec := json.NewDecoder(resp.Body)
		dec.DisallowUnknownFields()
		err = dec.Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != tc.status || err != nil || e.Code != tc.code || e.Message == "" ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: got %d %q %q (%v), want %d %q with a message", tc.name, resp.StatusCode, e.Code, e.Message, err, tc.status, tc.code)
		}
	}
}

func TestFetchRefusesBadArguments(t *testing.T) {
	f := getFixture(t)
	ctx := context.Background()
	n := random(t, 16)
	for name, err := range map[string]error{
		"http URL": func() error { _, err := Fetch(ctx, nil, "http://127.0.0.1:1", "eu1", n, f.primary, now); return err }(),
		"no host":  func() error { _, err := Fetch(ctx, nil, "https://", "eu1", n, f.primary, now); return err }(),
		"short nonce": func() error {
			_, err := Fetch(ctx, nil, "https://127.0.0.1:1", "eu1", n[:15], f.primary, now)
			return err
		}(),
		"bad region": func() error { _, err := Fetch(ctx, nil, "https://127.0.0.1:1", "EU1", n, f.primary, now); return err }(),
		"no primary": func() error { _, err := Fetch(ctx, nil, "https://127.0.0.1:1", "eu1", n, nil, now); return err }(),
	} {
		if err == nil {
			t.Errorf("Fetch(%s) error = nil", name)
		}
	}
}

// TestServerErrorsReachTheClient: a misconfigured escrow answers 500 with a
// code, which Fetch reports.
func TestServerErrorsReachTheClient(t *testing.T) {
	f := getFixture(t)
	// escrow2's key with escrow1's certificate.
	ts, logs := startEscrow(t, t.TempDir(), f.escrow2, f.cert1.Raw(), nil)
	if _, err := fetch(t, ts, "eu1"); err == nil || !strings.Contains(err.Error(), "500 Internal Server Error: internal_error: the escrow is misconfigured") {
		t.Errorf("Fetch(misconfigured escrow) error = %v", err)
	}
	if !strings.Contains(logs.String(), "another key") {
		t.Errorf("the misconfiguration was not logged:\n%s", logs)
	}
	// A directory that does not exist.
	ts, _ = startEscrow(t, filepath.Join(t.TempDir(), "missing"), f.escrow1, f.cert1.Raw(), nil)
	if _, err := fetch(t, ts, "eu1"); err == nil || !strings.Contains(err.Error(), "internal_error") {
		t.Errorf("Fetch(escrow without its directory) error = %v", err)
	}
}

// TestAnswerTooLarge: bundles beyond what one answer holds (16 MiB) get a
// clear error rather than a truncated answer.
func TestAnswerTooLarge(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	for i := range 5 {
		id := fmt.Sprintf("2026-%d", i)
		b := bundleTemplate(t, f.primarySigner, id, "eu1", bytes.Repeat([]byte{'p'}, 3500<<10), nil, sign.KeyID{})
		writeBundle(t, dir, id+".eu1.bundle", signBundle(t, f.primarySigner, b))
	}
	ts, logs := startEscrow(t, dir, f.escrow1, f.cert1.Raw(), nil)
	if _, err := fetch(t, ts, "eu1"); err == nil || !strings.Contains(err.Error(), "answer_too_large") {
		t.Errorf("Fetch(17 MiB of bundles) error = %v, want answer_too_large", err)
	}
	if !strings.Contains(logs.String(), "answer too large") {
		t.Errorf("not logged:\n%s", logs)
	}
}
