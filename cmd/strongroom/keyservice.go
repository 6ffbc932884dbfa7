package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/internal/armor"
	"github.com/strongroom-kms/strongroom/internal/keyservice"
)

// keyservicePassEnv holds the key service directory's passphrase.
const keyservicePassEnv = "STRONGROOM_KEYSERVICE_PASSPHRASE"

// Limits of the key service's HTTP server. Strongroom gives up on a fetch
// after 10 seconds (docs/cache-only.md).
const (
	keyserviceReadHeaderTimeout = 5 * time.Second
	keyserviceReadTimeout       = 10 * time.Second
	keyserviceWriteTimeout      = 10 * time.Second
	keyserviceIdleTimeout       = 60 * time.Second
	keyserviceMaxHeaderBytes    = 16 << 10
	keyserviceShutdownTimeout   = 10 * time.Second
	minBearerLen                = 16
)

func keyserviceCommand() *command {
	return &command{
		name:    "keyservice",
		summary: "the reference key service for cache-only keys: a tenant keeps its keys there, and Strongroom fetches them",
		subs: []*command{
			{name: "key", summary: "create, revoke, restore and list the key service's keys",
				subs: []*command{keyserviceCreateCommand(), keyserviceStateCommand("revoke"), keyserviceStateCommand("restore"), keyserviceListCommand()}},
			keyserviceServeCommand(),
			{name: "audit", summary: "the key service's own audit log", subs: []*command{keyserviceAuditVerifyCommand()}},
		},
	}
}

// keyserviceFlags are the flags every key service command takes.
type keyserviceFlags struct {
	dir, passFile *string
}

func (f *keyserviceFlags) register(fs *pflag.FlagSet) {
	f.dir = fs.String("dir", "", "the key service directory (required)")
	f.passFile = fs.String("passphrase-file", "", "file holding the directory's passphrase (default: $"+keyservicePassEnv+")")
}

// open opens the directory; with create, it makes it when it holds no key
// service yet.
func (f *keyserviceFlags) open(e *env, create bool) (*keyservice.Dir, error) {
	if *f.dir == "" {
		return nil, usageErrorf("--dir is required")
	}
	pass, err := readSecret(e, *f.passFile, keyservicePassEnv, "key service passphrase")
	if err != nil {
		return nil, err
	}
	defer clear(pass)
	opts := keyservice.Options{Now: e.now}
	if create {
		ok, err := keyservice.Exists(*f.dir)
		if err != nil {
			return nil, err
		}
		if !ok {
			d, err := keyservice.Init(*f.dir, pass, opts)
			if err != nil {
				return nil, err
			}
			note := e.stdout
			if e.output == "json" {
				note = e.stderr // standard output is the JSON alone
			}
			fmt.Fprintf(note, "made the key service directory %s (keep its passphrase: nothing in it opens without)\n", *f.dir)
			return d, nil
		}
	}
	return keyservice.Open(*f.dir, pass, opts)
}

func keyserviceCreateCommand() *command {
	return &command{
		name:    "create",
		summary: "create a key for Strongroom's recipient key (making the directory if need be)",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var kf keyserviceFlags
			kf.register(fs)
			kid := fs.String("kid", "", "the key's id, as registered at Strongroom, e.g. acme-data-2026 (required)")
			recipient := fs.String("recipient", "", "Strongroom's recipient public key for the tenant, PEM, as shown at registration (required)")
			materialFile := fs.String("material-file", "", "file holding exactly 32 bytes of key material, to move a key here (default: 32 random bytes)")
			return noArgs(func(ctx context.Context) error {
				if *kid == "" || *recipient == "" || *kf.dir == "" {
					return usageErrorf("--dir, --kid and --recipient are required")
				}
				if err := keyservice.ValidKid(*kid); err != nil {
					return err
				}
				pub, err := os.ReadFile(*recipient)
				if err != nil {
					return err
				}
				if _, _, err := keyservice.ParseRecipient(pub); err != nil {
					return fmt.Errorf("%s: %w", *recipient, err)
				}
				var material []byte
				if *materialFile != "" {
					if material, err = os.ReadFile(*materialFile); err != nil {
						return err
					}
					defer clear(material)
					if len(material) != 32 {
						return fmt.Errorf("%s holds %d bytes; key material is exactly 32 bytes (raw, not hex or base64)", *materialFile, len(material))
					}
				}
				d, err := kf.open(e, true)
				if err != nil {
					return err
				}
				defer d.Close()
				info, err := d.Create(*kid, pub, material)
				if err != nil {
					return err
				}
				return e.print(info, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "created key %s (active) for the recipient key %s\n", info.Kid, info.Recipient[:16])
					return err
				})
			})
		},
	}
}

func keyserviceStateCommand(verb string) *command {
	summary := "revoke a key: Strongroom's next fetch is answered 410 revoked, and it evicts the key everywhere"
	if verb == "restore" {
		summary = "make a revoked key active again: Strongroom's next fetch gets it"
	}
	return &command{
		name:    verb,
		summary: summary,
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var kf keyserviceFlags
			kf.register(fs)
			kid := fs.String("kid", "", "the key's id (required)")
			return noArgs(func(ctx context.Context) error {
				if *kid == "" || *kf.dir == "" {
					return usageErrorf("--dir and --kid are required")
				}
				d, err := kf.open(e, false)
				if err != nil {
					return err
				}
				defer d.Close()
				change, done := d.Revoke, "revoked"
				if verb == "restore" {
					change, done = d.Restore, "restored"
				}
				info, err := change(*kid)
				if err != nil {
					return err
				}
				return e.print(info, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "%s key %s: it is %s\n", done, info.Kid, info.State)
					return err
				})
			})
		},
	}
}

func keyserviceListCommand() *command {
	return &command{
		name:    "list",
		summary: "list the keys: id, state, times and recipient (never the material)",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var kf keyserviceFlags
			kf.register(fs)
			return noArgs(func(ctx context.Context) error {
				d, err := kf.open(e, false)
				if err != nil {
					return err
				}
				defer d.Close()
				keys, err := d.List()
				if err != nil {
					return err
				}
				if keys == nil {
					keys = []keyservice.Info{}
				}
				return e.print(keys, func(out io.Writer) error {
					if len(keys) == 0 {
						_, err := fmt.Fprintf(out, "no keys in %s\n", *kf.dir)
						return err
					}
					w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "KID\tSTATE\tCREATED\tREVOKED\tRECIPIENT")
					for _, k := range keys {
						revoked := "-"
						if !k.Revoked.IsZero() {
							revoked = k.Revoked.Format(time.RFC3339)
						}
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", k.Kid, k.State, k.Created.Format(time.RFC3339), revoked, k.Recipient[:16])
					}
					return w.Flush()
				})
			})
		},
	}
}

func keyserviceAuditVerifyCommand() *command {
	return &command{
		name:    "verify",
		summary: "check every line of the key service's audit log, naming the first bad one",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var kf keyserviceFlags
			kf.register(fs)
			return noArgs(func(ctx context.Context) error {
				d, err := kf.open(e, false)
				if err != nil {
					return err
				}
				defer d.Close()
				n, head, err := d.VerifyAudit()
				if err != nil {
					return fmt.Errorf("%w (%d line(s) before it verify)", err, n)
				}
				return e.print(struct {
					Entries int    `json:"entries"`
					Head    string `json:"head_sha256"`
				}{n, head}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "the audit log of %s verifies: %d entries; the last one's SHA-256 is %s\n", *kf.dir, n, head)
					return err
				})
			})
		},
	}
}

func keyserviceServeCommand() *command {
	return &command{
		name:    "serve",
		summary: "serve the keys to Strongroom over HTTPS (POST /v1/keys/{kid}/fetch)",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var kf keyserviceFlags
			kf.register(fs)
			listen := fs.String("listen", "127.0.0.1:9443", "address to listen on")
			tlsCert := fs.String("tls-cert", "", "the server's TLS certificate chain, PEM: the one registered at Strongroom must verify it (required)")
			tlsKey := fs.String("tls-key", "", "the server's TLS private key, PEM, mode 0600 (required)")
			bearerFile := fs.String("bearer-file", "", "file holding the bearer secret Strongroom presents, mode 0600")
			pins := fs.StringArray("client-cert-sha256", nil, "accept the TLS client certificate whose SPKI has this SHA-256, in hex (repeatable)")
			certFiles := fs.StringArray("client-cert", nil, "accept this TLS client certificate, PEM, as Strongroom shows it at registration (repeatable)")
			return noArgs(func(ctx context.Context) error {
				if *kf.dir == "" || *tlsCert == "" || *tlsKey == "" {
					return usageErrorf("--dir, --tls-cert and --tls-key are required")
				}
				if *bearerFile == "" && len(*pins) == 0 && len(*certFiles) == 0 {
					return usageErrorf("no authentication: give --bearer-file, --client-cert-sha256 or --client-cert (or a bearer file and pins: either is then accepted)")
				}
				var a keyservice.Auth
				for _, p := range *pins {
					pin, err := keyservice.ParsePin(p)
					if err != nil {
						return usageErrorf("--client-cert-sha256: %v", strings.TrimPrefix(err.Error(), "keyservice: "))
					}
					a.ClientCerts = append(a.ClientCerts, pin)
				}
				for _, f := range *certFiles {
					pin, err := readCertPin(f)
					if err != nil {
						return err
					}
					a.ClientCerts = append(a.ClientCerts, pin)
				}
				if *bearerFile != "" {
					b, err := readBearer(*bearerFile)
					if err != nil {
						return err
					}
					defer clear(b)
					a.Bearer = b
				}
				ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
				kp, err := loadTLSKeyPair(*tlsCert, *tlsKey)
				if err != nil {
					return err
				}
				d, err := kf.open(e, false)
				if err != nil {
					return err
				}
				defer d.Close()
				keys, err := d.List()
				if err != nil {
					return err
				}
				if _, _, err := d.VerifyAudit(); err != nil {
					return fmt.Errorf("%w; fix the audit log before serving (every fetch is recorded in it)", err)
				}
				logger := slog.New(slog.NewTextHandler(e.stderr, nil))
				h, err := keyservice.NewHandler(d, a, logger)
				if err != nil {
					return err
				}
				ln, err := net.Listen("tcp", *listen)
				if err != nil {
					return err
				}
				srv := &http.Server{
					Handler:           h,
					TLSConfig:         keyservice.TLSConfig(kp, a),
					ReadHeaderTimeout: keyserviceReadHeaderTimeout,
					ReadTimeout:       keyserviceReadTimeout,
					WriteTimeout:      keyserviceWriteTimeout,
					IdleTimeout:       keyserviceIdleTimeout,
					MaxHeaderBytes:    keyserviceMaxHeaderBytes,
					ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
				}
				fmt.Fprintf(e.stdout, "key service serving %d key(s) of %s on https://%s (%s)\n", len(keys), *kf.dir, ln.Addr(), authSummary(a))
				for _, p := range a.ClientCerts {
					fmt.Fprintf(e.stdout, "accepting the client certificate sha256:%s\n", hex.EncodeToString(p[:]))
				}
				if err := serveTLSUntil(ctx, srv, ln, keyserviceShutdownTimeout); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, "key service stopped")
				return nil
			})
		},
	}
}

func authSummary(a keyservice.Auth) string {
	var s []string
	if a.Bearer != nil {
		s = append(s, "bearer secret")
	}
	if n := len(a.ClientCerts); n > 0 {
		s = append(s, fmt.Sprintf("%d pinned client certificate(s)", n))
	}
	return "authentication: " + strings.Join(s, " or ")
}

// readBearer reads the bearer secret, refusing a file that is not private
// (checkPrivateFile), and a secret too short to resist guessing.
func readBearer(path string) ([]byte, error) {
	if err := checkPrivateFile(path, "bearer file"); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b = []byte(strings.TrimRight(string(b), "\r\n"))
	if len(b) < minBearerLen {
		clear(b)
		return nil, fmt.Errorf("the bearer secret in %s is shorter than %d bytes (make one with 'openssl rand -base64 32')", path, minBearerLen)
	}
	return b, nil
}

// readCertPin reads a PEM certificate and returns the SHA-256 of its SPKI.
func readCertPin(path string) ([sha256.Size]byte, error) {
	var pin [sha256.Size]byte
	data, err := os.ReadFile(path)
	if err != nil {
		return pin, err
	}
	der, err := armor.Decode(data, "CERTIFICATE", 64<<10)
	if err != nil {
		return pin, fmt.Errorf("%s: %w", path, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return pin, fmt.Errorf("%s: %w", path, err)
	}
	return keyservice.SPKIPin(cert), nil
}
