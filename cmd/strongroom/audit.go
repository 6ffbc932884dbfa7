package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/auditlog"
	"github.com/strongroom-kms/strongroom/internal/config"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/store"
)

func readPublicKey(path string) (*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%s: want one PEM PUBLIC KEY block (as 'strongroom audit key' writes)", path)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA public key", path)
	}
	return k, nil
}

// defaultConfig is the configuration local node commands read by default:
// $STRONGROOM_CONFIG, else the dev environment's if there is one.
func defaultConfig(e *env) string {
	if p := e.getenv("STRONGROOM_CONFIG"); p != "" {
		return p
	}
	if dir := defaultDevDir(e); dir != "" {
		p := filepath.Join(dir, "strongroom.yaml")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// withNode opens the regional HSM and store of a configuration for a local
// command (not the server).
func withNode(ctx context.Context, e *env, cfgPath string, fn func(h hsm.HSM, st *store.Store, cfg *config.Config) error) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	hf := hsmFlags{uri: cfg.HSM.URI, passphraseFile: cfg.HSM.PassphraseFile}
	h, err := hf.open(ctx, e, false)
	if err != nil {
		return err
	}
	defer h.Close()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(h, st, cfg)
}

func auditCommand() *command {
	return &command{
		name:    "audit",
		summary: "list and verify the audit log",
		subs: []*command{
			apiCommand("list", "list audit entries (operator, auditor; a tenant-admin with --tenant)", "",
				func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
					tenant := fs.String("tenant", "", "only this tenant's entries (by name)")
					key := fs.String("key", "", "only this key (data/3) or key type (data)")
					since := fs.String("since", "", "only entries at or after this RFC 3339 time")
					until := fs.String("until", "", "only entries before this RFC 3339 time")
					limit := fs.Int("limit", 0, "at most this many entries (default: all, in pages)")
					ids := fs.Bool("ids", false, "show tenants and actors by id instead of by name")
					return func(ctx context.Context, c *client.Client, args []string) error {
						if len(args) > 0 {
							return usageErrorf("no arguments are taken")
						}
						var q client.AuditQuery
						q.Key = *key
						for _, p := range []struct {
							flag, v string
							dst     *time.Time
						}{{"since", *since, &q.Since}, {"until", *until, &q.Until}} {
							if p.v == "" {
								continue
							}
							t, err := time.Parse(time.RFC3339Nano, p.v)
							if err != nil {
								return usageErrorf("--%s %q: use an RFC 3339 time such as 2026-11-27T12:00:00Z", p.flag, p.v)
							}
							*p.dst = t
						}
						var all []api.AuditEntry // for --output json
						w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
						if e.output != "json" {
							fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tROLE\tTENANT\tACTION\tKEY\tOUTCOME\tREASON\tCOUNT")
						}
						n := 0
						for {
							if *limit > 0 {
								q.Limit = min(*limit-n, 1000)
							}
							page, err := c.Audit(ctx, *tenant, q)
							if err != nil {
								return err
							}
							for _, a := range page.Entries {
								if e.output == "json" {
									all = append(all, a)
									continue
								}
								actor, tn := auditNames(a, *ids)
								fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", a.Seq, a.Time.Format(time.RFC3339),
									actor, dash(a.Role), tn, a.Action, dash(a.Key), a.Outcome, dash(a.Reason), max(a.Count, 1))
							}
							n += len(page.Entries)
							if page.Next == 0 || (*limit > 0 && n >= *limit) {
								break
							}
							q.After = page.Next
						}
						if e.output == "json" {
							return e.print(api.AuditList{Entries: append([]api.AuditEntry{}, all...)}, nil)
						}
						return w.Flush()
					}
				}),
			{
				name: "verify", summary: "verify the whole audit log, its signed checkpoints and the node's witness (on a node: reads its store, HSM and witness file)",
				usage: "--config FILE [--trust PUB.pem]... [--witness FILE | --no-witness]",
				flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
					var o verifyOptions
					fs.StringVar(&o.config, "config", defaultConfig(e), "the node's configuration (default $STRONGROOM_CONFIG, else the dev environment's)")
					fs.StringArrayVar(&o.trust, "trust", nil, "another node's audit public key (PEM, from 'strongroom audit key'); repeat")
					fs.StringVar(&o.witness, "witness", "", "the node's witness file (default: the configuration's audit.witness_file)")
					fs.BoolVar(&o.noWitness, "no-witness", false, "verify the database alone, without the node's witness (it then cannot catch a rewrite whose checkpoints were deleted too)")
					return func(ctx context.Context, args []string) error {
						if o.config == "" || len(args) > 0 {
							return usageErrorf("--config is required (or set STRONGROOM_CONFIG)")
						}
						if o.noWitness && o.witness != "" {
							return usageErrorf("--witness and --no-witness exclude each other")
						}
						return verifyAudit(ctx, e, o)
					}
				},
			},
			{
				name: "key", summary: "write the node's audit checkpoint public key (PEM), for auditors' 'audit verify --trust'",
				usage: "--config FILE --out FILE",
				flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
					cfgPath := fs.String("config", defaultConfig(e), "the node's configuration (default $STRONGROOM_CONFIG, else the dev environment's)")
					out := fs.String("out", "", "the public key file to write (required; must not exist)")
					return func(ctx context.Context, args []string) error {
						if *cfgPath == "" || *out == "" || len(args) > 0 {
							return usageErrorf("--config and --out are required")
						}
						e.outputTo(*out)
						if err := refuseExisting(*out); err != nil {
							return err
						}
						return withNode(ctx, e, *cfgPath, func(h hsm.HSM, st *store.Store, cfg *config.Config) error {
							k, err := auditlog.SigningKey(ctx, h)
							if err != nil {
								return err
							}
							der, err := x509.MarshalPKIXPublicKey(k.ECDSAPublicKey())
							if err != nil {
								return err
							}
							return e.writeNew(0o644, *out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
						})
					}
				},
			},
		},
	}
}

// verifyOptions are the flags of 'audit verify'.
type verifyOptions struct {
	config    string
	trust     []string
	witness   string // "" = the configuration's
	noWitness bool
}

// verifyAudit is 'audit verify': it verifies the node's store's audit log
// against the checkpoint keys it trusts (the node's HSM audit key, and
// every --trust key) and the node's witness, and prints the report. A
// missing witness fails, unless o.noWitness.
func verifyAudit(ctx context.Context, e *env, o verifyOptions) error {
	var trusted []*ecdsa.PublicKey
	for _, p := range o.trust {
		k, err := readPublicKey(p)
		if err != nil {
			return err
		}
		trusted = append(trusted, k)
	}
	return withNode(ctx, e, o.config, func(h hsm.HSM, st *store.Store, cfg *config.Config) error {
		l := auditlog.New(st, cfg.Region)
		var own *ecdsa.PublicKey
		k, err := h.SigningKey(ctx, audit.LabelSigning)
		if err == nil {
			own = k.ECDSAPublicKey()
			trusted = append(trusted, own)
		} else if !errors.Is(err, hsm.ErrNotFound) {
			return err
		}
		var w *auditlog.Witness
		if !o.noWitness {
			if w, err = readWitness(l, cmp.Or(o.witness, cfg.Audit.WitnessFile), own); err != nil {
				return err
			}
		}
		r, err := l.Verify(ctx, trusted, w)
		if err != nil {
			return fmt.Errorf("the audit log does NOT verify: %w", err)
		}
		out := auditReport{Verified: true, Entries: r.Entries, Checkpoints: r.Checkpoints, Unchecked: r.Unchecked, WitnessChecked: w != nil}
		if r.Latest != nil {
			out.LatestSize, out.LatestTime = r.Latest.Size, &r.Latest.Time
		}
		if w != nil {
			out.Witness = w.String()
		}
		return e.print(out, func(wr io.Writer) error {
			fmt.Fprintf(wr, "audit log verified: %d entries, %d signed checkpoints", r.Entries, r.Checkpoints)
			if r.Latest != nil {
				fmt.Fprintf(wr, ", the latest at entry %d (%s)", r.Latest.Size, r.Latest.Time.Format(time.RFC3339))
			}
			fmt.Fprintln(wr)
			if r.Unchecked > 0 {
				fmt.Fprintf(wr, "%d entries after the latest checkpoint are chain-checked only; the next checkpoint covers them\n", r.Unchecked)
			}
			if w != nil {
				fmt.Fprintf(wr, "the log extends this node's witness %s\n", w)
			} else {
				fmt.Fprintln(wr, "the node's witness was NOT checked (--no-witness): a rewrite of the log whose checkpoints were deleted from the database too goes unnoticed")
			}
			return nil
		})
	})
}

// readWitness reads the node's witness for 'audit verify', which fails
// without one: the node has signed no checkpoint yet, the file was lost, or
// the configuration names the wrong one.
func readWitness(l *auditlog.Log, path string, own *ecdsa.PublicKey) (*auditlog.Witness, error) {
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("the audit log is NOT verified: there is no witness at %s (the node has signed no checkpoint yet, or the file was lost); "+
			"give --witness FILE, or verify the database alone with --no-witness", path)
	case err != nil:
		return nil, err
	case own == nil:
		return nil, fmt.Errorf("the audit log is NOT verified: the HSM has no audit signing key (%s), so the witness %s cannot be checked", audit.LabelSigning, path)
	}
	w, err := l.ReadWitness(path, own)
	if err != nil {
		return nil, fmt.Errorf("the audit log is NOT verified: %w", err)
	}
	return w, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// auditNames is how 'audit list' shows an entry's actor and tenant: by
// name where the server resolved one (an actor without a name, such as a
// revoked token, stays its id), or by id with --ids.
func auditNames(a api.AuditEntry, ids bool) (actor, tenant string) {
	actor, tenant = a.Actor, dash(a.Tenant)
	if ids {
		return actor, tenant
	}
	if a.ActorName != "" {
		actor = a.ActorName
	}
	if a.TenantName != "" {
		tenant = a.TenantName
	}
	return actor, tenant
}

// auditReport is what 'audit verify' found, for --output json.
type auditReport struct {
	Verified       bool       `json:"verified"`
	Entries        uint64     `json:"entries"`
	Checkpoints    int        `json:"checkpoints"`
	LatestSize     uint64     `json:"latest_checkpoint_size,omitempty"`
	LatestTime     *time.Time `json:"latest_checkpoint_time,omitempty"`
	Unchecked      uint64     `json:"unchecked"`
	WitnessChecked bool       `json:"witness_checked"`
	Witness        string     `json:"witness,omitempty"`
}
