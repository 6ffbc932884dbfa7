package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auditlog"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/keycache"
	"github.com/strongroom-kms/strongroom/internal/metrics"
	"github.com/strongroom-kms/strongroom/internal/node"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/sign"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/store/engine"
)

func serverCommand() *command {
	return &command{
		name:    "server",
		summary: "run a regional key server (or, with --init, create its database and first operator token)",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			cfgFile := fs.String("config", "", "the configuration file (required)")
			initOut := fs.String("init", "", "initialize instead of serving: create the schema and write the first operator token to this file (mode 0600)")
			return noArgs(func(ctx context.Context) error {
				if *cfgFile == "" {
					return usageErrorf("--config is required")
				}
				cfg, err := config.Load(*cfgFile)
				if err != nil {
					return err
				}
				if *initOut == "" {
					return runServer(ctx, e, cfg, nil)
				}
				e.outputTo(*initOut)
				if err := refuseExisting(*initOut); err != nil {
					return err
				}
				st, err := openStore(ctx, cfg)
				if err != nil {
					return err
				}
				defer st.Close()
				secret, err := initialOperator(ctx, st, e.now())
				if err != nil {
					return err
				}
				if err := e.writeNew(0o600, *initOut, []byte(secret+"\n")); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "database ready; the first operator token is in %s (keep it secret)\n", *initOut)
				return nil
			})
		},
	}
}

// initialOperatorID is the fixed id of the first operator token, so that a
// second initialization is refused instead of minting another.
const initialOperatorID = "00000000000000000000000000000001"

func initialOperator(ctx context.Context, st *store.Store, now time.Time) (string, error) {
	secret, tok, err := auth.New(string(auth.RoleOperator), "", "initial operator", time.Time{})
	if err != nil {
		return "", err
	}
	tok.ID, tok.Created = initialOperatorID, now
	rec := cliEntry(now, "token.create", "the first operator token, made by strongroom server --init")
	if _, err := st.CreateToken(ctx, tok, 0, rec); errors.Is(err, store.ErrExists) {
		return "", errors.New("the server is already initialized: its first operator token exists (create more with 'strongroom token create')")
	} else if err != nil {
		return "", err
	}
	return secret, nil
}

func openStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	dsn, err := cfg.DSN()
	if err != nil {
		return nil, err
	}
	return engine.Open(ctx, dsn)
}

// cliEntry is the audit entry of a change a local command makes in the
// store (not through the API).
func cliEntry(now time.Time, action audit.Action, detail string) audit.Entry {
	return audit.Entry{Time: now, Actor: audit.ActorCLI, Action: action, Detail: detail}
}

// regional is a started regional node: what the server serves from.
type regional struct {
	*node.Node
	h  hsm.HSM
	st *store.Store
	// checkpoints signs the audit log's checkpoints, its witness loaded.
	checkpoints *auditlog.Checkpointer
}

func (r *regional) Close() {
	r.Node.Close()
	r.st.Close()
	r.h.Close()
}

// startRegional opens the HSM, checks that its regional key is the one the
// region certificate (issued by the pinned primary) certifies, opens the
// store and loads every installed release (S7). Releases that fail keep the
// node not ready; they do not stop it.
func startRegional(ctx context.Context, e *env, cfg *config.Config, logger *slog.Logger) (*regional, error) {
	p, err := readParsed(cfg.Primary, enroll.ParsePrimary)
	if err != nil {
		return nil, err
	}
	cert, err := readParsed(cfg.Certificate, enroll.ParseCertificate)
	if err != nil {
		return nil, err
	}
	if err := cert.Verify(p, e.now()); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Certificate, err)
	}
	if cert.Region != cfg.Region {
		return nil, fmt.Errorf("%s certifies region %s, the configuration says %s", cfg.Certificate, cert.Region, cfg.Region)
	}
	hf := hsmFlags{uri: cfg.HSM.URI, passphraseFile: cfg.HSM.PassphraseFile}
	h, err := hf.open(ctx, e, false)
	if err != nil {
		return nil, err
	}
	// The node's metrics time every HSM and store operation (docs/metrics.md).
	m := metrics.New()
	h = m.HSM(h)
	fail := func(err error) (*regional, error) { h.Close(); return nil, err }
	rk, err := h.EncryptionKey(ctx, enroll.LabelRegionEncryption)
	if err != nil {
		return fail(fmt.Errorf("the HSM has no regional key; run 'strongroom hsm init --role regional': %w", err))
	}
	if id, _ := sign.KeyIDOf(rk.Public()); id != cert.KeyID() {
		return fail(fmt.Errorf("the HSM's regional key %s is not the key %s that %s certifies; refusing to start", id.Short(), cert.KeyID().Short(), cfg.Certificate))
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	roster, err := readRoster(cfg.Officers)
	if err != nil {
		st.Close()
		return fail(err)
	}
	if roster == nil {
		logger.Warn("officers.allow_any is set: no officer roster is pinned, and bundles are accepted with whatever officers the primary accepted")
	}
	n, err := node.New(node.Options{HSM: h, Store: m.Store(st), Metrics: m, Trust: release.Trust{Primary: p, Region: cfg.Region, Officers: roster},
		Policy: policy{cfg}, Cache: keycache.Options{MaxEntries: cfg.Cache.MaxEntries, TTL: time.Duration(cfg.Cache.TTL)},
		CacheOnly: cacheonly.Options{MaxAge: time.Duration(cfg.CacheOnly.MaxAge)}})
	if err != nil {
		st.Close()
		return fail(err)
	}
	err = n.LoadReleases(ctx, func(id string, m release.Meta, err error) {
		if err != nil {
			logger.Error("release failed to validate", "release", id, "err", err)
		} else {
			logger.Info("release loaded", "release", m.ID, "iterations", m.Iterations)
		}
	})
	if err != nil {
		n.Close()
		st.Close()
		return fail(err)
	}
	// A witness that cannot be used (damaged, altered, another node's, or
	// in a directory this node cannot write) would stop every checkpoint:
	// refuse to start instead. A missing one is a first start.
	ak, err := auditlog.SigningKey(ctx, h)
	var cp *auditlog.Checkpointer
	if err == nil {
		cp = auditlog.NewCheckpointer(n.Audit, ak, cfg.Audit.WitnessFile, n.Aggregate, logger)
		if err = cp.Load(); err != nil {
			err = fmt.Errorf("refusing to start: %w (audit.witness_file; see \"The witness\" in docs/audit.md)", err)
		}
	}
	if err != nil {
		n.Close()
		st.Close()
		return fail(err)
	}
	m.WatchAudit(func(ctx context.Context) (metrics.AuditProgress, error) {
		p := cp.Progress()
		a := metrics.AuditProgress{Checkpointed: p.Size, Signed: p.Signed, Rounds: p.Rounds, Refused: p.Refused, Failed: p.Failed}
		state, err := st.AuditState(ctx)
		a.Entries = state.Size()
		return a, err
	}, e.now)
	return &regional{Node: n, h: h, st: st, checkpoints: cp}, nil
}

// readRoster reads the pinned officers; nil if none are configured (the
// configuration then says officers.allow_any, or it would not have loaded).
func readRoster(o config.Officers) (*release.Roster, error) {
	if len(o.Keys) == 0 {
		return nil, nil
	}
	r := &release.Roster{IDs: map[[32]byte]string{}, MinQuorum: o.MinQuorum}
	for _, f := range o.Keys {
		pub, err := readParsed(f, officer.ParsePublic)
		if err != nil {
			return nil, err
		}
		r.IDs[pub.ID()] = pub.Name
	}
	return r, nil
}

// policy adapts the configuration to lifecycle.Policy.
type policy struct{ cfg *config.Config }

func (p policy) RotationInterval(env, keyType string) time.Duration {
	return p.cfg.RotationInterval(env, keyType)
}
func (p policy) MaxKeys() int { return p.cfg.Rotation.MaxKeys }

func newLogger(w io.Writer, cfg *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// runServer serves the API over TLS until ctx ends, then shuts down
// gracefully. ready, if not nil, receives the listening address.
// serverGCPercent is the garbage collector's target for a serving node when
// the environment does not set GOGC: a request allocates a few kilobytes
// that are garbage once it is answered, and at Go's default of 100 the
// collector took about a quarter of the CPU under load (BenchmarkHTTPParallel:
// 25–35% more requests per second at 400). The heap may grow to five times
// what is live (docs/deployment.md, "Memory"); GOGC and GOMEMLIMIT in the
// environment take precedence.
const serverGCPercent = 400

// tuneGC sets the server's garbage collector target unless GOGC is set.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serverGCPercent)
	}
}

func runServer(ctx context.Context, e *env, cfg *config.Config, ready chan<- string) error {
	tuneGC(e.getenv)
	logger := newLogger(e.stderr, cfg)
	rn, err := startRegional(ctx, e, cfg, logger)
	if err != nil {
		return err
	}
	defer rn.Close()
	// Evict destroyed keys' DEKs, whichever node destroyed them (stopped
	// before the node closes its store).
	watch, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := rn.Data.EvictDestroyed(watch, 0, func(err error) {
		logger.Warn("re-checking destroyed keys failed; trying again", "err", err)
	}); err != nil {
		return err
	}
	cert, err := loadTLSKeyPair(cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return err
	}
	handler := rn.Handler(cfg.Limits, logger)
	// The audit log: the data plane's aggregate and signed checkpoints, at
	// start, every interval and at shutdown (after the last request), each
	// extending the node's witness.
	cpCtx, stopCheckpoints := context.WithCancel(context.WithoutCancel(ctx))
	cpDone := make(chan struct{})
	go func() { defer close(cpDone); rn.checkpoints.Run(cpCtx, time.Duration(cfg.Audit.CheckpointInterval)) }()
	defer func() { stopCheckpoints(); <-cpDone }()
	srv := &http.Server{
		Handler:           handler,
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Duration(cfg.Limits.RequestTimeout),
		WriteTimeout:      time.Duration(cfg.Limits.RequestTimeout) + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	if err := rn.Ring.Ready(); err != nil {
		logger.Warn("not ready", "reason", err)
	}
	logger.Info("serving", "addr", "https://"+addr, "region", cfg.Region)
	if ready != nil {
		ready <- addr
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shut)
}
