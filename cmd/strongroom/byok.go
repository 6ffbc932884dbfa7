package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
)

// The BYOK commands (S10–S12), under "key": upload certificates, uploads,
// export and import; and "tenant set" for the opt-out setting.

func tenantSetCommand() *command {
	return apiCommand("set", "change a tenant's operator settings (operator)", "NAME",
		func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
			optOut := fs.String("derivation-opt-out", "", "allow (true) or forbid (false) uploads in derivation mode none")
			return func(ctx context.Context, c *client.Client, args []string) error {
				name, err := requireOne(args, "tenant name")
				if err != nil {
					return err
				}
				if *optOut == "" {
					return usageErrorf("nothing to change: pass --derivation-opt-out=true or --derivation-opt-out=false")
				}
				allowed, err := strconv.ParseBool(*optOut)
				if err != nil {
					return usageErrorf("--derivation-opt-out %q: true or false", *optOut)
				}
				t, err := c.SetDerivationOptOut(ctx, name, allowed)
				if err != nil {
					return err
				}
				return e.print(t, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "tenant %s: derivation opt-out %s\n", t.Name, map[bool]string{true: "allowed", false: "forbidden"}[t.DerivationOptOut])
					return err
				})
			}
		})
}

func byokCommands() []*command {
	return []*command{
		apiCommand("upload-cert", "make an upload certificate: self-signed (--out), or a request for your CA (--csr)", "",
			func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				out := fs.String("out", "", "write the self-signed certificate (PEM) here")
				csr := fs.String("csr", "", "write a certificate request (PEM) for your CA here instead; then run 'key complete-cert'")
				days := fs.Int("days", 0, "validity of a self-signed certificate in days (default 365, at most 730)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || len(args) > 0 || (*out == "") == (*csr == "") {
						return usageErrorf("--tenant and exactly one of --out and --csr are required")
					}
					path := *out
					if *csr != "" {
						path = *csr
					}
					e.outputTo(path)
					if err := refuseExisting(path); err != nil {
						return err
					}
					uc, err := c.CreateUploadCert(ctx, *tenant, api.CreateUploadCertRequest{CSR: *csr != "", ValidDays: *days})
					if err != nil {
						return err
					}
					if *csr != "" {
						if err := e.writeNew(0o644, path, []byte(uc.CSR)); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "upload certificate %s is pending: have your CA sign %s, then run\n"+
							"  strongroom key complete-cert --tenant %s --id %s --cert SIGNED.pem\n", uc.ID, path, *tenant, uc.ID)
						return nil
					}
					if err := e.writeNew(0o644, path, []byte(uc.Certificate)); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "upload certificate %s, valid until %s, written to %s\nSHA-256 fingerprint %s\n",
						uc.ID, uc.NotAfter.Format(time.RFC3339), path, uc.Fingerprint)
					return nil
				}
			}),
		apiCommand("complete-cert", "upload the certificate your CA signed for a pending upload certificate", "",
			func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				id := fs.String("id", "", "the upload certificate's id (required)")
				cert := fs.String("cert", "", "the signed certificate, PEM (required)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || *id == "" || *cert == "" || len(args) > 0 {
						return usageErrorf("--tenant, --id and --cert are required")
					}
					pemBytes, err := os.ReadFile(*cert)
					if err != nil {
						return err
					}
					uc, err := c.CompleteUploadCert(ctx, *tenant, *id, pemBytes)
					if err != nil {
						return err
					}
					return e.print(uc, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "upload certificate %s is %s until %s\n", uc.ID, uc.State, uc.NotAfter.Format(time.RFC3339))
						return err
					})
				}
			}),
		apiCommand("upload-certs", "list a tenant's upload certificates", "",
			func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || len(args) > 0 {
						return usageErrorf("--tenant is required and no arguments are taken")
					}
					cs, err := c.UploadCerts(ctx, *tenant)
					if err != nil {
						return err
					}
					return e.print(api.UploadCertList{Certificates: cs}, func(out io.Writer) error {
						w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
						fmt.Fprintln(w, "ID\tSTATE\tNOT AFTER\tCREATED\tSHA-256 FINGERPRINT")
						for _, uc := range cs {
							na := "-"
							if uc.NotAfter != nil {
								na = uc.NotAfter.Format(time.RFC3339)
							}
							fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", uc.ID, uc.State, na, uc.Created.Format(time.RFC3339), dash(uc.Fingerprint))
						}
						return w.Flush()
					})
				}
			}),
		apiCommand("retire-cert", "retire an upload certificate: uploads to it are refused from now on", "",
			func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				id := fs.String("id", "", "the upload certificate's id (required)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || *id == "" || len(args) > 0 {
						return usageErrorf("--tenant and --id are required")
					}
					uc, err := c.RetireUploadCert(ctx, *tenant, *id)
					if err != nil {
						return err
					}
					return e.print(uc, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "upload certificate %s is %s\n", uc.ID, uc.State)
						return err
					})
				}
			}),
		apiCommand("upload", "upload your own key material, encrypted with RSA-OAEP to an upload certificate (see docs/byok.md)", "",
			func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				typ := keyTypeFlag(fs, "data", "the key type")
				wrapped := fs.String("wrapped", "", "the RSA-OAEP ciphertext of the 32 bytes: a binary file, as openssl pkeyutl writes it, or base64 (required)")
				sum := fs.String("sha256", "", "the SHA-256 of the 32 plaintext bytes, in hex (required)")
				derivation := choiceFlag(fs, "derivation", "pbkdf2", "pbkdf2 (the DEK is derived from it) or none (it is the DEK: back it up yourself)", "pbkdf2", "none")
				hash := choiceFlag(fs, "oaep-hash", "sha256", "the OAEP and MGF1 hash: sha256, sha512 or sha1", "sha256", "sha512", "sha1")
				cert := fs.String("cert", "", "the upload certificate's id (default: the newest active one)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || *wrapped == "" || *sum == "" || len(args) > 0 {
						return usageErrorf("--tenant, --wrapped and --sha256 are required")
					}
					ct, err := readCiphertext(*wrapped)
					if err != nil {
						return err
					}
					k, err := c.UploadKey(ctx, *tenant, *typ, api.UploadKeyRequest{Certificate: *cert, Wrapped: ct,
						OAEPHash: *hash, SHA256: strings.ToLower(strings.TrimSpace(*sum)), Derivation: *derivation})
					if err != nil {
						return err
					}
					return e.print(k, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "%s/%s/%d %s (source %s, derivation %s, release %s)\n",
							*tenant, k.Type, k.Version, k.State, k.Source, k.Derivation, k.Release)
						return err
					})
				}
			}),
		apiCommand("export", "write an encrypted backup file of a key version", "",
			func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				typ := keyTypeFlag(fs, "data", "the key type")
				version := fs.Uint("version", 0, "the version (required)")
				out := fs.String("out", "", "the backup file to write (required; must not exist)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					if *tenant == "" || *version == 0 || *out == "" || len(args) > 0 {
						return usageErrorf("--tenant, --version and --out are required")
					}
					e.outputTo(*out)
					if err := refuseExisting(*out); err != nil {
						return err
					}
					b, err := c.ExportKey(ctx, *tenant, *typ, uint32(*version))
					if err != nil {
						return err
					}
					if err := e.writeNew(0o600, *out, []byte(b.Backup)); err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "backup of %s/%s/%d written to %s\n", *tenant, b.Key.Type, b.Key.Version, *out)
					return nil
				}
			}),
		apiCommand("import", "bring a destroyed key version back, archived, from its backup file", "[--file] FILE",
			func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
				tenant := fs.String("tenant", "", "the tenant (required)")
				file := fs.String("file", "", "the backup file (or give it as the argument)")
				return func(ctx context.Context, c *client.Client, args []string) error {
					path := *file
					if path == "" {
						var err error
						if path, err = requireOne(args, "backup file"); err != nil {
							return err
						}
					} else if len(args) > 0 {
						return usageErrorf("give the backup file once: --file FILE or FILE")
					}
					if *tenant == "" {
						return usageErrorf("--tenant is required")
					}
					data, err := os.ReadFile(path)
					if err != nil {
						return err
					}
					k, err := c.ImportKey(ctx, *tenant, data)
					if err != nil {
						return err
					}
					return e.print(k, func(w io.Writer) error {
						_, err := fmt.Fprintf(w, "imported %s/%s/%d: %s\n", *tenant, k.Type, k.Version, k.State)
						return err
					})
				}
			}),
	}
}

// rsa4096Bytes is the size of an RSA-4096 ciphertext.
const rsa4096Bytes = 512

// readCiphertext reads an RSA-OAEP ciphertext file: binary (512 bytes) or
// base64 text.
func readCiphertext(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == rsa4096Bytes {
		return b, nil
	}
	d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(d) != rsa4096Bytes {
		return nil, fmt.Errorf("%s: an RSA-4096 ciphertext is %d bytes, binary or base64; this file is %d bytes", path, rsa4096Bytes, len(b))
	}
	return d, nil
}
