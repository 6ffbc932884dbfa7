package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
)

// The cache-only commands (docs/cache-only.md), under "key": registering a
// tenant's key service, and listing the registrations.

func cacheOnlyCommands() []*command {
	return []*command{
		apiCommand("register-service", "register your key service for a new cache-only key version (see docs/cache-only.md)", "",
			func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				typ := keyTypeFlag(fs, "data", "the key type")
				url := fs.String("url", "", "the key service's base URL, https://host[:port] (required)")
				kid := fs.String("kid", "", "the key's id at the key service (required)")
				// --ca is the Strongroom server's CA (every API command's flag).
				ca := fs.String("service-ca", "", "the key service's CA certificate, or its self-signed certificate, PEM (required)")
				auth := choiceFlag(fs, "auth", "", "how Strongroom authenticates to the key service: bearer or mtls (required)", "bearer", "mtls")
				bearerFile := fs.String("bearer-file", "", "a `file` holding the bearer secret (auth bearer; kept wrapped, never shown again)")
				oaep := choiceFlag(fs, "oaep", "sha256", "the RSA-OAEP hash the key service encrypts with: sha256 (RSA-OAEP-256) or sha1 (RSA-OAEP)", "sha256", "sha1")
				recipientOut := fs.String("recipient-out", "", "write Strongroom's recipient public key (PEM) here, to install in the key service")
				clientOut := fs.String("client-cert-out", "", "write Strongroom's TLS client certificate (PEM) here, for the key service to pin (auth mtls)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || *url == "" || *kid == "" || *ca == "" || *auth == "" || len(args) > 0 {
						return usageErrorf("--tenant, --url, --kid, --service-ca and --auth are required")
					}
					if (*auth == "bearer") != (*bearerFile != "") {
						return usageErrorf("--bearer-file is required with --auth bearer, and only with it")
					}
					caPEM, err := os.ReadFile(*ca)
					if err != nil {
						return err
					}
					req := api.RegisterKeyServiceRequest{Type: *typ, URL: *url, KID: *kid, CA: string(caPEM), Auth: *auth, OAEP: *oaep}
					if *bearerFile != "" {
						b, err := os.ReadFile(*bearerFile)
						if err != nil {
							return err
						}
						req.Bearer = strings.TrimSpace(string(b))
						clear(b)
						if req.Bearer == "" {
							return fmt.Errorf("%s is empty: it must hold the bearer secret", *bearerFile)
						}
					}
					// The credentials first: the key service needs the
					// recipient key (and, for mtls, the client certificate)
					// before it can answer the registration's test fetch.
					creds, err := c.KeyServiceCredentials(ctx, *tenant)
					if err != nil {
						return err
					}
					for _, out := range []struct{ path, data string }{{*recipientOut, creds.RecipientKey}, {*clientOut, creds.ClientCertificate}} {
						if err := writeSame(out.path, []byte(out.data)); err != nil {
							return err
						}
					}
					reg, err := c.RegisterKeyService(ctx, *tenant, req)
					var ae *client.Error
					if errors.As(err, &ae) && ae.Code == api.CodeKeyServiceRefused {
						return fmt.Errorf("%w; install Strongroom's recipient key%s in the key service%s, and run this again",
							explain(err), inFile(*recipientOut), pinHint(*auth, *clientOut))
					}
					if err != nil {
						return err
					}
					return e.print(reg, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "%s/%s/%d %s (source %s, %s), key service %s kid %s (%s)\n", *tenant, reg.Key.Type,
							reg.Key.Version, reg.Key.State, reg.Key.Source, reg.Service.Availability, reg.Service.URL, reg.Service.KID, reg.Service.Auth)
						return err
					})
				}
			}),
		apiCommand("key-services", "list a tenant's key-service registrations (cache-only keys)", "",
			func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || len(args) > 0 {
						return usageErrorf("--tenant is required and no arguments are taken")
					}
					kss, err := c.KeyServices(ctx, *tenant)
					if err != nil {
						return err
					}
					return e.print(api.KeyServiceList{Services: kss}, func(out io.Writer) error {
						w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
						fmt.Fprintln(w, "TYPE\tVERSION\tAVAILABILITY\tAUTH\tKID\tURL\tCREATED")
						for _, ks := range kss {
							fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", ks.Type, ks.Version, ks.Availability, ks.Auth, ks.KID, ks.URL,
								ks.Created.Format(time.RFC3339))
						}
						return w.Flush()
					})
				}
			}),
	}
}

// writeSame writes a public file (0644) unless path is empty; an existing
// file is left as it is if it holds the same bytes (a registration run
// again), and refused otherwise.
func writeSame(path string, data []byte) error {
	if path == "" {
		return nil
	}
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		return nil
	case err == nil:
		return fmt.Errorf("%s already exists with other contents; refusing to overwrite it (move it away first)", path)
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return writeNewFileMode(0o644, path, data)
}

func inFile(path string) string {
	if path == "" {
		return " (--recipient-out writes it)"
	}
	return " (" + path + ")"
}

func pinHint(auth, clientOut string) string {
	if auth != "mtls" {
		return ""
	}
	if clientOut == "" {
		return ", have it pin Strongroom's client certificate (--client-cert-out writes it)"
	}
	return ", have it pin Strongroom's client certificate (" + clientOut + ")"
}
