package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/auth"
)

// apiFlags are the flags of every command that talks to a server.
type apiFlags struct {
	addr, token, ca, tokenFile string
}

func (f *apiFlags) register(fs *pflag.FlagSet, e *env) {
	fs.StringVar(&f.addr, "addr", e.getenv("STRONGROOM_ADDR"), "the server, e.g. https://127.0.0.1:8443 (default $STRONGROOM_ADDR)")
	fs.StringVar(&f.ca, "ca", e.getenv("STRONGROOM_CA"), "the server's CA certificate file (default $STRONGROOM_CA)")
	fs.StringVar(&f.token, "token", e.getenv("STRONGROOM_TOKEN"), "the API token (default $STRONGROOM_TOKEN; others on this machine may see command lines: prefer the variable or --token-file)")
	fs.StringVar(&f.tokenFile, "token-file", "", "a `file` holding the API token")
}

// server returns the client for commands that may run without a token.
func (f *apiFlags) server() (*client.Client, error) {
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, err
		}
		f.token = string(b)
	}
	f.token = strings.TrimSpace(f.token)
	if f.addr == "" {
		return nil, usageErrorf("no server: set STRONGROOM_ADDR or pass --addr (run 'strongroom dev' for a local one)")
	}
	var opts []client.Option
	if f.ca != "" {
		opts = append(opts, client.WithCAFile(f.ca))
	}
	return client.New(f.addr, f.token, opts...)
}

func (f *apiFlags) client() (*client.Client, error) {
	c, err := f.server()
	if err == nil && f.token == "" {
		return nil, usageErrorf("no API token: set STRONGROOM_TOKEN, or pass --token-file or --token")
	}
	return c, err
}

// apiCommand builds a command that calls the API.
func apiCommand(name, summary, usage string, setup func(fs *pflag.FlagSet, e *env) func(ctx context.Context, c *client.Client, args []string) error) *command {
	return &command{
		name: name, summary: summary, usage: usage,
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var af apiFlags
			af.register(fs, e)
			run := setup(fs, e)
			return func(ctx context.Context, args []string) error {
				c, err := af.client()
				if err != nil {
					return err
				}
				return explain(run(ctx, c, args))
			}
		},
	}
}

// explain makes an API error read as the command line's: the answer's code
// and message without the HTTP framing, and what to do for the errors people
// meet most. The *client.Error stays reachable with errors.As.
func explain(err error) error {
	var ae *client.Error
	var ua x509.UnknownAuthorityError
	var cv *tls.CertificateVerificationError
	var dns *net.DNSError
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*apiError)):
		return err // explained already
	case errors.As(err, &ae):
		// Keep what the command said around it ("FILE: ..."), in front.
		ex := &apiError{ae: ae, hint: hintFor(ae.Code)}
		if prefix, ok := strings.CutSuffix(err.Error(), ae.Error()); ok && prefix != "" {
			return fmt.Errorf("%s%w", prefix, ex)
		}
		return ex
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("cannot reach the server: connection refused (is it running? check STRONGROOM_ADDR or --addr)")
	case errors.As(err, &dns):
		return fmt.Errorf("cannot reach the server: no address for %s (check STRONGROOM_ADDR or --addr)", dns.Name)
	case errors.As(err, &ua), errors.As(err, &cv):
		return errors.New("the server's TLS certificate is not trusted: set STRONGROOM_CA or --ca to its CA certificate")
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("the server did not answer in time")
	}
	return err
}

// hintFor is what to do about an error code, or "".
func hintFor(code string) string {
	switch code {
	case api.CodeUnauthenticated:
		return "check STRONGROOM_TOKEN, --token or --token-file"
	case api.CodeDecrypt:
		return "decrypt needs exactly the --context the data was encrypted with, and the same tenant"
	}
	return ""
}

// apiError is an API error as the command line prints it.
type apiError struct {
	ae   *client.Error
	hint string
}

func (e *apiError) Error() string {
	s := e.ae.Message
	if s == "" {
		s = fmt.Sprintf("the server answered HTTP %d", e.ae.Status)
	}
	if e.ae.Code != "" {
		s = e.ae.Code + ": " + s
	}
	if e.ae.NextAllowed != nil {
		s += " (next allowed at " + e.ae.NextAllowed.UTC().Format(time.RFC3339) + ")"
	}
	if e.hint != "" {
		s += "; " + e.hint
	}
	return s
}

func (e *apiError) Unwrap() error { return e.ae }

func requireOne(args []string, what string) (string, error) {
	if len(args) != 1 {
		return "", usageErrorf("give exactly one %s", what)
	}
	return args[0], nil
}

func tenantCommand() *command {
	return &command{
		name:    "tenant",
		summary: "create, list and configure tenants (operator)",
		subs: []*command{
			apiCommand("create", "create a tenant", "NAME", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				envName := choiceFlag(fs, "env", "production", "production, developer or sandbox", "production", "developer", "sandbox")
				return func(ctx context.Context, c *client.Client, args []string) error {
					name, err := requireOne(args, "tenant name")
					if err != nil {
						return err
					}
					t, err := c.CreateTenant(ctx, name, *envName)
					if err != nil {
						return err
					}
					return e.print(t, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "created tenant %s (%s), id %s\n", t.Name, t.Env, t.ID)
						return err
					})
				}
			}),
			apiCommand("list", "list tenants", "", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				return func(ctx context.Context, c *client.Client, args []string) error {
					ts, err := c.Tenants(ctx)
					if err != nil {
						return err
					}
					return e.print(api.TenantList{Tenants: ts}, func(out io.Writer) error {
						w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
						fmt.Fprintln(w, "NAME\tENV\tID\tCREATED")
						for _, t := range ts {
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, t.Env, t.ID, t.Created.Format(time.RFC3339))
						}
						return w.Flush()
					})
				}
			}),
			tenantSetCommand(),
		},
	}
}

func tokenCommand() *command {
	return &command{
		name:    "token",
		summary: "create, list, show and revoke API tokens",
		subs: []*command{
			apiCommand("create", "create a token (its secret is shown once)", "", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				role := choiceFlag(fs, "role", "", "operator, tenant-admin, app or auditor (required)", "operator", "tenant-admin", "app", "auditor")
				tenant := fs.String("tenant", "", "the tenant, for tenant-admin and app tokens")
				name := fs.String("name", "", "a label for humans, shown by 'token list' and 'audit list'")
				ttl := fs.String("ttl", "", "lifetime in days (30d) or as a duration (12h) (default: no expiry; a tenant-admin's app tokens: at most 90d)")
				quiet := fs.Bool("quiet", false, "print only the token")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if len(args) > 0 || *role == "" {
						return usageErrorf("--role is required and no arguments are taken")
					}
					tok, err := c.CreateToken(ctx, api.CreateTokenRequest{Role: *role, Tenant: *tenant, Name: *name, TTL: *ttl})
					if err != nil {
						return err
					}
					if *quiet {
						fmt.Fprintln(e.stdout, tok.Secret)
						return nil
					}
					return e.print(tok, func(w io.Writer) error {
						scope := "all tenants"
						if tok.Tenant != "" {
							scope = "tenant " + tok.Tenant
						}
						_, err := fmt.Fprintf(w, "created %s token %s for %s; it is shown only now:\n%s\n", auth.Role(tok.Role).A(), tok.ID, scope, tok.Secret)
						return err
					})
				}
			}),
			apiCommand("list", "list tokens, never their secrets (operator, auditor: all; tenant-admin: its tenant's app tokens and itself)", "", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "only this tenant's tokens")
				state := choiceFlag(fs, "state", "", "only tokens in this state: live, expired or revoked", api.TokenLive, api.TokenExpired, api.TokenRevoked)
				return func(ctx context.Context, c *client.Client, args []string) error {
					if len(args) > 0 {
						return usageErrorf("no arguments are taken")
					}
					toks, err := c.Tokens(ctx, *tenant, *state)
					if err != nil {
						return err
					}
					return e.print(api.TokenList{Tokens: toks}, func(out io.Writer) error {
						w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
						fmt.Fprintln(w, "ID\tNAME\tROLE\tTENANT\tSTATE\tEXPIRES\tLAST USED")
						for _, t := range toks {
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, dash(t.Name), t.Role, dash(t.Tenant), t.State,
								timeOrDash(t.Expires, "never"), timeOrDash(t.LastUsed, "never"))
						}
						return w.Flush()
					})
				}
			}),
			apiCommand("show", "show the token in use: who am I (any token)", "", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				return func(ctx context.Context, c *client.Client, args []string) error {
					if len(args) > 0 {
						return usageErrorf("no arguments are taken")
					}
					me, err := c.Self(ctx)
					if err != nil {
						return err
					}
					return e.print(me, func(w io.Writer) error {
						_, err := fmt.Fprintln(w, describeToken(me))
						return err
					})
				}
			}),
			apiCommand("revoke", "revoke a token at once, and every token it made (operator: any; tenant-admin: its tenant's app tokens; --self: any token itself)", "[ID]", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				self := fs.Bool("self", false, "revoke the token in use (STRONGROOM_TOKEN, --token or --token-file)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					var r api.Revocation
					var err error
					switch {
					case *self && len(args) == 0:
						r, err = c.RevokeSelf(ctx)
					case *self:
						return usageErrorf("give a token id or --self, not both")
					default:
						id, uerr := requireOne(args, "token id (as 'token create' or 'token list' print it), or --self")
						if uerr != nil {
							return uerr
						}
						r, err = c.RevokeToken(ctx, id)
					}
					if err != nil {
						return err
					}
					return e.print(r, func(w io.Writer) error {
						fmt.Fprintf(w, "revoked token %s", r.Token.ID)
						if n := len(r.Cascaded); n > 0 {
							fmt.Fprintf(w, " and the %d token(s) it made: %s", n, strings.Join(r.Cascaded, ", "))
						}
						_, err := fmt.Fprintln(w)
						return err
					})
				}
			}),
		},
	}
}

// describeToken says who a token is, in one line.
func describeToken(t api.TokenInfo) string {
	s := auth.Role(t.Role).A() + " token"
	if t.Tenant != "" {
		s += " for " + t.Tenant
	}
	s += ", id " + t.ID
	if t.Name != "" {
		s += fmt.Sprintf(" (%q)", t.Name)
	}
	if t.Expires != nil {
		s += ", expires " + t.Expires.UTC().Format(time.RFC3339)
	} else {
		s += ", never expires"
	}
	return s
}

// timeOrDash formats an optional time, or says none.
func timeOrDash(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

func keyCommand() *command {
	return &command{
		name:    "key",
		summary: "generate, upload, list, export, import and destroy tenant key material",
		subs: append([]*command{
			apiCommand("generate", "make a new active key (the previous one is archived)", "", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				typ := keyTypeFlag(fs, "data", "the key type")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || len(args) > 0 {
						return usageErrorf("--tenant is required and no arguments are taken")
					}
					k, err := c.GenerateKey(ctx, *tenant, *typ)
					if err != nil {
						return err
					}
					return e.print(k, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "%s/%s/%d %s (release %s)\n", *tenant, k.Type, k.Version, k.State, k.Release)
						return err
					})
				}
			}),
			apiCommand("list", "list a tenant's keys", "", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				typ := keyTypeFlag(fs, "", "only this key type")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || len(args) > 0 {
						return usageErrorf("--tenant is required and no arguments are taken")
					}
					keys, err := c.Keys(ctx, *tenant, *typ)
					if err != nil {
						return err
					}
					return e.print(api.KeyList{Keys: keys}, func(out io.Writer) error {
						w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
						fmt.Fprintln(w, "TYPE\tVERSION\tSTATE\tSOURCE\tDERIVATION\tRELEASE\tCREATED")
						for _, k := range keys {
							source := k.Source
							if k.Availability != "" {
								source += " (" + k.Availability + ")" // a cache-only key's, at this node
							}
							fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", k.Type, k.Version, k.State, source, k.Derivation, k.Release, k.Created.Format(time.RFC3339))
						}
						return w.Flush()
					})
				}
			}),
			apiCommand("destroy", "destroy a key version for good: data under it can no longer be decrypted", "", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				typ := keyTypeFlag(fs, "data", "the key type")
				version := fs.Uint("version", 0, "the version (required)")
				confirm := fs.String("confirm", "", "must be TENANT/TYPE/VERSION (required)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || *version == 0 || len(args) > 0 {
						return usageErrorf("--tenant and --version are required")
					}
					want := fmt.Sprintf("%s/%s/%d", *tenant, *typ, *version)
					if *confirm != want {
						return usageErrorf("destroying is irreversible: confirm with --confirm %s", want)
					}
					k, err := c.DestroyKey(ctx, *tenant, *typ, uint32(*version), *confirm)
					if err != nil {
						return err
					}
					return e.print(k, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "destroyed %s/%s/%d\n", *tenant, k.Type, k.Version)
						return err
					})
				}
			}),
		}, append(append(byokCommands(), cacheOnlyCommands()...), keyUsageCommand())...),
	}
}

// contextFlags collects repeated --context KEY=VALUE flags.
type contextFlags map[string]string

func (c contextFlags) String() string { return fmt.Sprint(map[string]string(c)) }
func (c contextFlags) Type() string   { return "KEY=VALUE" }
func (c contextFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("context must be KEY=VALUE, got %q", v)
	}
	if _, dup := c[k]; dup {
		return fmt.Errorf("context key %q given twice: each key names one value", k)
	}
	c[k] = val
	return nil
}

func dataCommand(name string) *command {
	summary := "encrypt standard input to standard output under a tenant's active key (app)"
	if name == "decrypt" {
		summary = "decrypt standard input to standard output (app)"
	}
	return apiCommand(name, summary, "", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
		tenant := fs.String("tenant", "", "the tenant (required)")
		typ := keyTypeFlag(fs, "data", "the key type (encrypt)")
		ctxf := contextFlags{}
		fs.Var(ctxf, "context", "KEY=VALUE bound to the ciphertext; repeat; decrypt needs the same")
		field := fs.String("field", "", "the field a deterministic key encrypts for, e.g. users.email (required for --type deterministic; decrypt needs the same)")
		var fold, local *bool
		if name == "encrypt" {
			fold = fs.Bool("case-insensitive", false, "fold case (Unicode case folding and NFC) before a deterministic encryption; decrypt gives the folded form")
			local = fs.Bool("local", false, "encrypt here, as a stream, with a DEK the server delivers (automatic for input over 512 KiB; not for deterministic keys)")
		}
		return func(ctx context.Context, c *client.Client, args []string) error {
			if *tenant == "" || len(args) > 0 {
				return usageErrorf("--tenant is required; the data comes on standard input")
			}
			if name == "decrypt" {
				return decryptData(ctx, c, *tenant, *field, ctxf, e.stdin, e.stdout)
			}
			deterministic := *field != "" || *typ == "deterministic"
			if *local && deterministic {
				return usageErrorf("--local streams data under a key of type data (or another randomized type), not a deterministic one")
			}
			limit := int64(inlineLimit)
			if deterministic {
				limit = 1 << 20 // the server refuses what is too large
			}
			in, err := io.ReadAll(io.LimitReader(e.stdin, limit+1))
			if err != nil {
				return err
			}
			switch {
			case *local || (!deterministic && len(in) > inlineLimit):
				return encryptLocal(ctx, c, *tenant, *typ, ctxf, io.MultiReader(bytes.NewReader(in), e.stdin), e.stdout)
			case int64(len(in)) > limit:
				return errors.New("input larger than 1 MiB: deterministic encryption is for short values (use --type data for files)")
			}
			res, err := c.Encrypt(ctx, *tenant, *typ, api.EncryptItem{Plaintext: in, Context: ctxf, Field: *field, CaseInsensitive: *fold})
			if err != nil {
				return err
			}
			if itemErr := res[0].Error; itemErr != nil {
				return explain(&client.Error{Status: 200, Code: itemErr.Code, Message: itemErr.Message})
			}
			_, err = e.stdout.Write(res[0].Ciphertext)
			return err
		}
	})
}

func releaseCommand() *command {
	return &command{
		name:    "release",
		summary: "install release bundles into a regional server and list them (operator)",
		subs: []*command{
			apiCommand("install", "verify and install release bundle files", "BUNDLE...", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				return func(ctx context.Context, c *client.Client, args []string) error {
					if len(args) == 0 {
						return usageErrorf("give at least one bundle file")
					}
					for _, f := range args {
						data, err := os.ReadFile(f)
						if err != nil {
							return err
						}
						r, err := c.InstallRelease(ctx, data)
						if err != nil {
							return fmt.Errorf("%s: %w", f, err)
						}
						fmt.Fprintf(e.stdout, "installed release %s from %s (%d PBKDF2 iterations)\n", r.ID, f, r.Iterations)
					}
					return nil
				}
			}),
			apiCommand("list", "list installed releases", "", func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				return func(ctx context.Context, c *client.Client, args []string) error {
					rs, err := c.Releases(ctx)
					if err != nil {
						return err
					}
					return e.print(api.ReleaseList{Releases: rs}, func(w io.Writer) error {
						for _, r := range rs {
							fmt.Fprintf(w, "%s\t%d iterations\tcreated %s\n", r.ID, r.Iterations, r.Created.Format(time.RFC3339))
						}
						return nil
					})
				}
			}),
		},
	}
}
