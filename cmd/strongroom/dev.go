package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/ceremony"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/world"
)

// The dev environment: everything on one machine, for trying Strongroom out.
// It is not for production: its HSMs are soft HSMs whose passphrase sits in
// the dev directory, and its officers' keys are all there too.
const (
	devRegion  = "dev"
	devRelease = "dev-1"
)

func devCommand() *command {
	return &command{
		name:    "dev",
		summary: "run the whole system on this machine with no set-up (soft HSMs, a dev ceremony, SQLite, TLS on loopback)",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			dir := fs.String("dir", defaultDevDir(e), "the dev directory (created on first start, reused after)")
			listen := fs.String("listen", "127.0.0.1:8443", "HTTPS address to listen on (loopback only)")
			realLimits := fs.Bool("real-limits", false, "keep the production rotation limits (a new key per type every 24 h, 4 h for sandboxes) instead of dev's 10 s")
			return noArgs(func(ctx context.Context) error {
				if err := checkLoopback(*listen); err != nil {
					return err
				}
				ctx, stop := stopWhenOrphaned(ctx)
				defer stop()
				return runDev(ctx, e, devOptions{dir: *dir, listen: *listen, realLimits: *realLimits}, nil)
			})
		},
	}
}

func defaultDevDir(e *env) string {
	if h := e.getenv("HOME"); h != "" {
		return filepath.Join(h, ".strongroom", "dev")
	}
	return "strongroom-dev"
}

// devRotation is the dev environment's minimum interval between new keys of
// a type, for every environment and type (unless --real-limits), so that
// rotation can be tried at once.
const devRotation = 10 * time.Second

// devOptions are the flags of 'strongroom dev'.
type devOptions struct {
	dir, listen string
	realLimits  bool
}

// runDev sets the dev directory up if needed, then serves until ctx ends.
func runDev(ctx context.Context, e *env, o devOptions, ready chan<- string) error {
	dir := o.dir
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	unlock, err := lockDev(dir)
	if err != nil {
		return err
	}
	defer unlock()
	cfgPath := filepath.Join(dir, "strongroom.yaml")
	fresh := false
	if _, err := os.Stat(cfgPath); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(e.stdout, "setting up a dev environment in %s (first start; this takes a few seconds)\n", dir)
		if err := setupDev(ctx, e, dir, plan.DefaultIterations); err != nil {
			return fmt.Errorf("dev set-up: %w", err)
		}
		fresh = true
	} else if err != nil {
		return err
	} else {
		fmt.Fprintf(e.stdout, "reusing the dev environment in %s\n", dir)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	cfg.Listen = o.listen
	if !o.realLimits {
		devLimits(cfg)
	}
	tenants, err := devTenants(ctx, cfg)
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(dir, "operator.token")
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return err
	}
	token := strings.TrimSpace(string(tok))
	started := make(chan string, 1)
	errc := make(chan error, 1)
	devEnv := *e
	devEnv.getenv = func(k string) string {
		if k == "STRONGROOM_HSM_PASSPHRASE" {
			return "" // the dev HSMs' passphrase comes from their file
		}
		return e.getenv(k)
	}
	go func() { errc <- runServer(ctx, &devEnv, cfg, started) }()
	select {
	case err := <-errc:
		return err
	case addr := <-started:
		ca := filepath.Join(dir, "ca.pem")
		envFile := filepath.Join(dir, "env")
		exports := fmt.Sprintf("export STRONGROOM_ADDR=https://%s\nexport STRONGROOM_TOKEN=%s\nexport STRONGROOM_CA=%s\nexport STRONGROOM_CONFIG=%s\n",
			addr, token, ca, cfgPath)
		if err := os.WriteFile(envFile, []byte(exports), 0o600); err != nil {
			return err
		}
		printTour(e, tour{addr: addr, token: token, ca: ca, envFile: envFile, fresh: fresh, realLimits: o.realLimits, tenants: tenants})
		if ready != nil {
			ready <- addr
		}
	}
	return <-errc
}

// devLimits shortens every rotation limit to devRotation.
func devLimits(cfg *config.Config) {
	short := map[string]config.Duration{}
	for _, t := range config.KeyTypes {
		short[t] = config.Duration(devRotation)
	}
	cfg.Rotation.Production, cfg.Rotation.Developer, cfg.Rotation.Sandbox = short, short, short
}

// devTenants names the tenants the dev environment already has.
func devTenants(ctx context.Context, cfg *config.Config) ([]string, error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	ts, err := st.Tenants(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, t := range ts {
		names = append(names, t.Name)
	}
	return names, nil
}

// tour is what the dev banner tells.
type tour struct {
	addr, token, ca, envFile string
	fresh, realLimits        bool
	tenants                  []string // the tenants there already are
}

func printTour(e *env, t tour) {
	w := e.stdout
	fmt.Fprintf(w, "\nStrongroom dev is running at https://%s (region %s, release %s)\n", t.addr, devRegion, devRelease)
	fmt.Fprintf(w, "  operator token: %s\n", t.token)
	fmt.Fprintf(w, "  CA certificate: %s\n", t.ca)
	fmt.Fprintf(w, "  web console:    https://%s/ui/ (sign in with the operator token; the browser must trust the CA certificate)\n", t.addr)
	if t.realLimits {
		fmt.Fprintf(w, "  rotation:       production limits (a new key per type every 24 h; 4 h for sandboxes)\n")
	} else {
		fmt.Fprintf(w, "  rotation:       a new key per type every %s (dev only; production: every 24 h, 4 h for sandboxes; --real-limits keeps those)\n", devRotation)
	}
	fmt.Fprintf(w, "\nIn another shell:\n\n")
	fmt.Fprintf(w, "  . %s    # STRONGROOM_ADDR, STRONGROOM_TOKEN, STRONGROOM_CA, STRONGROOM_CONFIG\n", t.envFile)
	fmt.Fprintf(w, "  strongroom status\n")
	name := "acme"
	if len(t.tenants) > 0 {
		name = t.tenants[0]
		fmt.Fprintf(w, "  strongroom tenant list\n")
	} else {
		fmt.Fprintf(w, "  strongroom tenant create acme --env production\n")
	}
	// On a restart under production limits, a new key may not be allowed
	// yet: the tour then starts with what always works.
	if len(t.tenants) == 0 || !t.realLimits {
		fmt.Fprintf(w, "  strongroom key generate --tenant %s --type data\n", name)
	}
	fmt.Fprintf(w, "  strongroom key list --tenant %s\n", name)
	fmt.Fprintf(w, "  export STRONGROOM_TOKEN=$(strongroom token create --role app --tenant %s --quiet)\n", name)
	fmt.Fprintf(w, "  echo 'card 4111 1111 1111 1111' | strongroom encrypt --tenant %s --context field=card > card.enc\n", name)
	fmt.Fprintf(w, "  strongroom decrypt --tenant %s --context field=card < card.enc\n", name)
	fmt.Fprintf(w, "\nBring your own key: docs/byok.md. The audit log: strongroom audit verify\n")
	if t.fresh {
		fmt.Fprintf(w, "\nThe dev ceremony's files (plan, approvals, bundles, transcript) are in %s.\n", filepath.Dir(t.envFile))
	}
	fmt.Fprintf(w, "Stop with Ctrl-C; 'strongroom dev' again reuses everything.\n")
}

// setupDev makes the dev directory: soft HSMs, enrollment, three officers, a
// dev ceremony with quorum 2, TLS, the configuration, the database with the
// release installed, and the first operator token. It works in DIR.tmp and
// renames it into place at the end, so a failed set-up leaves nothing.
// setupDev makes a dev environment in dir whose release derives DEKs with
// the given PBKDF2 iteration count (plan.DefaultIterations for people;
// tests that restart servers often take fewer).
func setupDev(ctx context.Context, e *env, dir string, iterations uint32) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	tmp := dir + ".setup"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	path := func(n string) string { return filepath.Join(tmp, n) }
	final := func(n string) string { return filepath.Join(dir, n) }

	pass := make([]byte, 16)
	rand.Read(pass)
	passHex := []byte(hex.EncodeToString(pass))
	if err := os.WriteFile(path("passphrase"), passHex, 0o600); err != nil {
		return err
	}
	now := e.now()
	bundle, err := devCeremony(ctx, e, tmp, passHex, now, iterations)
	if err != nil {
		return err
	}
	if err := writeDevTLS(tmp, now); err != nil {
		return err
	}
	dsn := "sqlite:" + final("kms.db")
	if err := os.WriteFile(path("dsn"), []byte(dsn+"\n"), 0o600); err != nil {
		return err
	}
	cfgText := fmt.Sprintf(`# Strongroom dev configuration (not for production).
version: 1
region: %s
listen: 127.0.0.1:8443
tls:
  cert: %s
  key: %s
hsm:
  uri: "soft:%s"
  passphrase_file: %s
primary: %s
certificate: %s
officers:
  keys: [%s, %s, %s]
  min_quorum: 2
store:
  dsn_file: %s
log:
  level: info
  format: text
`, devRegion, final("server.pem"), final("server.key"), final("region.hsm"), final("passphrase"),
		final("primary.pub"), final("dev.cert"), final("alice.pub"), final("bob.pub"), final("carol.pub"), final("dsn"))
	if err := os.WriteFile(path("strongroom.yaml"), []byte(cfgText), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("%w (if %s is left from an earlier attempt, remove it)", err, dir)
	}
	// The database lives at its final path: install the release and mint the
	// token there; on failure, remove the new directory again.
	if err := initDevStore(ctx, final, bundle, now); err != nil {
		os.RemoveAll(dir)
		return err
	}
	return nil
}

// devCeremony builds the dev world in dir: the soft HSMs primary.hsm and
// region.hsm (sealed with pass), enrollment, three officers whose keys are
// sealed with pass too, and the dev-1 ceremony with quorum 2, approved by
// alice and bob. It writes every file of it and returns the region's bundle.
func devCeremony(ctx context.Context, e *env, dir string, pass []byte, now time.Time, iterations uint32) ([]byte, error) {
	path := func(n string) string { return filepath.Join(dir, n) }
	w, err := world.New(ctx, world.Options{
		Regions: []string{devRegion}, Officers: []string{"alice", "bob", "carol"}, Quorum: 2,
		Iterations: iterations, Now: now, Clock: e.now, Validity: 10 * 365 * 24 * time.Hour, Passphrase: pass, Dir: dir,
		OpenHSM: func(ctx context.Context, region string) (hsm.HSM, error) {
			file := "region.hsm"
			if region == "" {
				file = "primary.hsm"
			}
			hf := hsmFlags{uri: "soft:" + path(file), passphraseFile: path("passphrase")}
			return hf.open(ctx, e, true)
		},
	})
	if err != nil {
		return nil, err
	}
	defer w.Close()
	rel, err := w.Release(ctx, devRelease, world.Spec{})
	if err != nil {
		return nil, err
	}
	if err := ceremony.Write(path("ceremony"), rel.Output); err != nil {
		return nil, err
	}
	region := w.Regions[devRegion]
	files := map[string][]byte{
		"primary.pub": w.Primary.PEM, devRegion + ".req": region.Request, devRegion + ".cert": region.CertPEM,
		devRelease + ".plan": rel.Plan.Marshal(),
	}
	for _, o := range w.Officers {
		if err := os.WriteFile(path(o.Name+".key"), o.KeyPEM, 0o600); err != nil {
			return nil, err
		}
		files[o.Name+".pub"] = o.PublicPEM
	}
	for _, a := range rel.Approvals {
		files[a.Source] = a.Data
	}
	for name, data := range files {
		if err := os.WriteFile(path(name), data, 0o644); err != nil {
			return nil, err
		}
	}
	return rel.Bundles[devRegion], nil
}

func initDevStore(ctx context.Context, final func(string) string, bundle []byte, now time.Time) error {
	cfg, err := config.Load(final("strongroom.yaml"))
	if err != nil {
		return err
	}
	sto, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer sto.Close()
	rec := cliEntry(now, audit.ActionReleaseInstall, "the dev release, installed by strongroom dev")
	if _, err := sto.InstallRelease(ctx, release.Installation{ID: devRelease, Bundle: bundle, Installed: now}, rec); err != nil {
		return err
	}
	token, err := initialOperator(ctx, sto, now)
	if err != nil {
		return err
	}
	return os.WriteFile(final("operator.token"), []byte(token+"\n"), 0o600)
}
