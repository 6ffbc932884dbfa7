package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/httpapi/apitest"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the browser test's screenshots to docs/console/")

// Screenshots are the pages the browser test photographs, in its order;
// docs/console.md shows each.
var Screenshots = []string{"signin", "keys", "rate-limited", "destroy", "certificates", "audit", "tenants", "tenant-audit", "status"}

func TestMain(m *testing.M) {
	code := m.Run()
	apitest.Cleanup()
	os.Exit(code)
}

// chromium finds Debian's chromium (scripts/test.sh installs it), or
// another Chrome; the test skips without one, and fails under CI.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium: scripts/test.sh installs Debian's chromium")
	}
	t.Skip("no chromium installed (apt-get install -y chromium): the browser test skips")
	return ""
}

// tab is a headless Chromium page on the console, with what the page
// reported that it should not have: script exceptions and console errors
// (a CSP violation is one).
type tab struct {
	t   *testing.T
	ctx context.Context
	url string
	dir string // downloads

	shots []string // the screenshots taken, in order

	mu       sync.Mutex
	problems []string
}

func newTab(t *testing.T, exe, url string) *tab {
	// Chromium keeps its singleton socket in a directory of its own under
	// TMPDIR, which outlives it: give it one that the test removes (after
	// the browser stops: cleanups run last-in, first-out).
	tmp := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Env("TMPDIR="+tmp),
		// The test runs as root in CI, where Chromium's sandbox cannot
		// start; the page it loads is this test's own server on loopback.
		chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	b := &tab{t: t, ctx: ctx, url: url, dir: t.TempDir()}
	// The first run starts the browser, on a context without a deadline
	// (a deadline there would stop the browser); each later step has one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// Refused requests (401, 429) are logged by the network
			// source: the test causes them on purpose.
			if m.IsException() || m.Type == chromedp.ConsoleError && m.Source != "network" {
				b.mu.Lock()
				b.problems = append(b.problems, m.String())
				b.mu.Unlock()
			}
		}
	}()
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: b.dir}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 4*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v (page problems: %q)", err, b.report())
	}
}

func (b *tab) report() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

func js(v any) string {
	s, _ := json.Marshal(v)
	return string(s)
}

// waitText waits until the element sel shows text containing want.
func (b *tab) waitText(sel, want string) {
	b.t.Helper()
	b.run(chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && !e.hidden && e.textContent.includes(%s) })()`,
		js(sel), js(want)), chromedp.WithPollingTimeout(3*time.Minute)))
}

// eval evaluates an expression of the page into out.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// set sets a form field as a user would, firing input and change.
func (b *tab) set(sel, value string) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = %s;
		e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return true })()`,
		js(sel), js(value)))
}

// submit submits a form as its submit button would (form.submit() would
// skip the page's handler, and the CSP refuses the navigation).
func (b *tab) submit(sel string) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`(() => { document.querySelector(%s).requestSubmit(); return true })()`, js(sel)))
}

func (b *tab) click(sel string) {
	b.t.Helper()
	b.run(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

func (b *tab) signIn(token, landing string) {
	b.t.Helper()
	// A new document: a hash change alone would keep the page, and the
	// token it holds.
	b.run(chromedp.Navigate("about:blank"), chromedp.Navigate(b.url+"/ui/#/signin"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), token))
	b.submit("#signin")
	b.waitText("h1", landing)
}

// shot photographs the page: into docs/console/NAME.png with
// -update-screenshots, else into a temporary file that must be a PNG of
// the window's size.
func (b *tab) shot(name string) {
	b.t.Helper()
	b.run(chromedp.Sleep(150 * time.Millisecond))
	if junk := eval[string](b, `(document.body.innerText.match(/\b(null|undefined|NaN|Invalid Date)\b|\[object \w+\]/) || [""])[0]`); junk != "" {
		b.t.Errorf("page %s shows %q", name, junk)
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil || img.Bounds().Dx() < 1000 {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := b.dir
	if *updateScreenshots {
		dir = filepath.Join("..", "..", "docs", "console")
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.shots = append(b.shots, name)
}

// The flows of docs/console.md, clicked through in Chromium against a real
// node: a tenant admin signs in, generates, meets the rotation limit,
// rotates, destroys with the typed confirmation, makes and downloads an
// upload certificate and reads its audit log; an operator lists tenants,
// reads the audit log across tenants and the readiness; an auditor sees no
// buttons that would change anything; a revoked token is signed out. The
// page never reports a script error or a CSP violation, and keeps the token
// out of storage, cookies and the URL.
func TestBrowser(t *testing.T) {
	exe := chromium(t)
	srv := apitest.NewServer(t, apitest.Options{})
	srv.Tenant(t, "acme")
	srv.Tenant(t, "globex")
	admin := srv.Token(t, api.RoleTenantAdmin, "acme")
	auditor := srv.Token(t, api.RoleAuditor, "")
	ts := httptest.NewServer(srv.Handler)
	t.Cleanup(ts.Close)
	b := newTab(t, exe, ts.URL)

	// Sign-in: a wrong token is refused with the API's reason.
	b.run(chromedp.Navigate(ts.URL+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.shot("signin")
	b.run(chromedp.SendKeys(chromedp.CSS("#token"), "srt_not-a-token"))
	b.submit("#signin")
	b.waitText("#msg", "Sign-in refused: unauthenticated")

	// A tenant admin lands on its keys, and generates the first one.
	b.signIn(admin, "Keys of acme")
	b.waitText("#main .empty", "No keys")
	b.set("#generate-type", "data")
	b.click("#generate")
	b.waitText(`tr[data-key="acme/data/1"]`, "active")
	b.waitText("#msg", "acme/data/1 is now active")
	b.shot("keys")

	// The token is in no storage, cookie or URL.
	leaks := eval[[]string](b, fmt.Sprintf(`[localStorage.length ? "localStorage" : "", sessionStorage.length ? "sessionStorage" : "",
		document.cookie ? "cookie" : "", location.href.includes(%s) ? "url" : "",
		document.documentElement.outerHTML.includes(%s) ? "page" : ""].filter(Boolean)`, js(admin), js(admin)))
	if len(leaks) > 0 {
		t.Errorf("the token is kept in %q", leaks)
	}

	// The rotation limit is the API's, with the time it lifts.
	b.click("#generate")
	b.waitText("#msg", "rate_limited")
	b.waitText("#msg", "next allowed")
	b.shot("rate-limited")
	srv.Clock.Add(25 * time.Hour)
	b.click("#generate")
	b.waitText(`tr[data-key="acme/data/2"]`, "active")
	b.waitText(`tr[data-key="acme/data/1"]`, "archived")
	b.waitText(`.type-summary[data-type="data"]`, "new data: v2")

	// Destroy asks for the key typed out; nothing else enables it.
	b.click(`tr[data-key="acme/data/1"] button.destroy`)
	b.run(chromedp.WaitVisible(chromedp.CSS("#destroy-dialog")))
	disabled := func() bool {
		return eval[bool](b, `document.querySelector("#confirm-destroy").disabled`)
	}
	if !disabled() {
		t.Error("destroy is enabled before the confirmation is typed")
	}
	b.set("#confirm", "acme/data/2")
	if !disabled() {
		t.Error("destroy is enabled by another key's name")
	}
	b.set("#confirm", "acme/data/1")
	if disabled() {
		t.Fatal("destroy stays disabled with the key typed out")
	}
	b.shot("destroy")
	b.click("#confirm-destroy")
	b.waitText(`tr[data-key="acme/data/1"]`, "destroyed")
	b.waitText("#msg", "acme/data/1 is destroyed")
	var keys api.KeyList
	getJSON(t, ts.URL+"/v1/tenants/acme/keys", srv.Operator, &keys)
	if states := keyStates(keys); states != "data/1 destroyed, data/2 active" {
		t.Errorf("after the console's destroy the API lists %s", states)
	}

	// An upload certificate, made in the HSM and downloaded as PEM.
	b.click(`#nav a[href$="/certificates"]`)
	b.waitText("h1", "Upload certificates of acme")
	b.click("#create-cert")
	b.waitText("#msg", "is active")
	var certs api.UploadCertList
	getJSON(t, ts.URL+"/v1/tenants/acme/upload-certificates", srv.Operator, &certs)
	if len(certs.Certificates) != 1 {
		t.Fatalf("%d upload certificates, want 1", len(certs.Certificates))
	}
	var cert api.UploadCert
	getJSON(t, ts.URL+"/v1/tenants/acme/upload-certificates/"+certs.Certificates[0].ID, srv.Operator, &cert)
	b.click(fmt.Sprintf(`tr[data-cert=%s] button.download`, js(cert.ID)))
	b.waitText("#msg", "Saved acme-"+cert.ID+".crt.pem")
	file := filepath.Join(b.dir, "acme-"+cert.ID+".crt.pem")
	var got []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got, _ = os.ReadFile(file); len(got) > 0 {
			break
		}
	}
	if string(got) != cert.Certificate || !strings.HasPrefix(cert.Certificate, "-----BEGIN CERTIFICATE-----") {
		t.Errorf("downloaded %q, the API has %q", got, cert.Certificate)
	}
	b.shot("certificates")

	// The tenant's audit log: every change above, and the refusal.
	b.click(`#nav a[href$="/audit"]`)
	b.waitText("h1", "Audit log of acme")
	b.waitText("#audit", "key.destroy")
	b.waitText("#audit", "cert.create")
	b.set("#audit-outcome", "refused")
	b.waitText("#audit-count", "1 of ")
	b.waitText("#audit", "key.generate")
	b.shot("audit")
	b.set("#audit-outcome", "")

	// Readiness, as a tenant admin may see it: counts only.
	b.click(`#nav a[href="#/status"]`)
	b.waitText("h1", "Readiness")
	b.waitText("#main .summary", "ok")

	// Signing out forgets the token: any view asks to sign in again.
	b.click("#signout")
	b.run(chromedp.WaitVisible(chromedp.CSS("#token")), chromedp.Navigate(ts.URL+"/ui/#/audit"), chromedp.WaitVisible(chromedp.CSS("#token")))

	// An operator: tenants, one tenant's keys, the audit log across tenants,
	// filtered by the server, and the releases of readiness.
	b.signIn(srv.Operator, "Tenants")
	b.waitText("#main table", "globex")
	b.waitText("#main table", "acme")
	b.shot("tenants")
	b.click(`#main a[href="#/tenants/acme/keys"]`)
	b.waitText("h1", "Keys of acme")
	b.waitText(`tr[data-key="acme/data/2"]`, "active")
	b.click(`.tabs a[href="#/tenants/acme/audit"]`)
	b.waitText("#audit", "key.destroy")
	b.shot("tenant-audit")
	b.click(`#nav a[href="#/audit"]`)
	b.run(chromedp.WaitVisible(chromedp.CSS("#audit-tenant")))
	b.set("#audit-tenant", "globex")
	b.submit("#audit-filter")
	// Only globex's entries, once the server's answer is shown.
	b.run(chromedp.Poll[chromedp.Void](`(() => { const t = [...document.querySelectorAll("#audit tbody tr td:nth-child(4)")].map(e => e.textContent);
		return t.length > 0 && t.every(n => n === "globex") })()`, chromedp.WithPollingTimeout(3*time.Minute)))
	b.click(`#nav a[href="#/status"]`)
	b.waitText("#main table", apitest.Release1)
	b.shot("status")

	// An auditor reads everything and is offered nothing that changes it.
	b.signIn(auditor, "Tenants")
	b.click(`#main a[href="#/tenants/acme/keys"]`)
	b.waitText(`tr[data-key="acme/data/2"]`, "active")
	buttons := eval[int](b, `document.querySelectorAll("#generate, button.destroy").length`)
	if buttons != 0 {
		t.Errorf("an auditor is offered %d buttons that change keys", buttons)
	}

	// A token whose name is markup: shown as text, everywhere. The route
	// "#/tenants/../audit" is no view.
	hostile := `<img src=x onerror="document.title='pwned'"><b>admin</b>`
	var made api.Token
	postJSON(t, ts.URL+"/v1/tokens", srv.Operator, api.CreateTokenRequest{Role: api.RoleTenantAdmin, Tenant: "acme", Name: hostile, TTL: "24h"}, &made)
	other := made.Secret
	b.signIn(other, "Keys of acme")
	b.waitText("#who", hostile)
	b.click("#generate")
	b.waitText("#msg", "rate_limited")
	b.click(`#nav a[href$="/audit"]`)
	b.waitText("#audit", hostile)
	if n := eval[int](b, `document.querySelectorAll("img, #main b, header b:not(.brand)").length`); n != 0 || eval[string](b, `document.title`) == "pwned" {
		t.Errorf("a token name became markup: %d elements", n)
	}
	b.run(chromedp.Navigate(ts.URL + "/ui/#/tenants/../audit"))
	b.waitText("h1", "Keys of acme")

	// A token revoked while signed in is signed out at its next request.
	post(t, ts.URL+"/v1/tokens/self/revoke", other)
	b.click(`#nav a[href$="/audit"]`)
	b.run(chromedp.WaitVisible(chromedp.CSS("#token")))
	b.waitText("#msg", "Signed out: ")

	if p := b.report(); len(p) > 0 {
		t.Errorf("the page reported problems: %q", p)
	}

	// The CSP is enforced: with Trusted Types required, the page cannot
	// turn a string into HTML.
	probe := eval[string](b, `(() => { try { document.body.insertAdjacentHTML("beforeend", "<i>x</i>"); return "allowed" } catch (e) { return e.name } })()`)
	if probe != "TypeError" {
		t.Errorf("building HTML from a string: %s, want a TypeError from Trusted Types", probe)
	}
	if len(b.shots) != len(Screenshots) {
		t.Errorf("took screenshots %q, Screenshots lists %q", b.shots, Screenshots)
	}
}

func keyStates(l api.KeyList) string {
	var s []string
	for _, k := range l.Keys {
		s = append(s, fmt.Sprintf("%s/%d %s", k.Type, k.Version, k.State))
	}
	return strings.Join(s, ", ")
}

func getJSON(t *testing.T, url, token string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func postJSON(t *testing.T, url, token string, body, out any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s", url, res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func post(t *testing.T, url, token string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", url, res.Status)
	}
}
