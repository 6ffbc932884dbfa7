package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/internal/enroll"
)

func regionCommand() *command {
	return &command{
		name:    "region",
		summary: "certify regional HSMs (at the primary) and check certificates",
		subs:    []*command{regionEnrollCommand(), regionVerifyCommand()},
	}
}

func regionEnrollCommand() *command {
	return &command{
		name:    "enroll",
		summary: "check a region's enrollment request and sign its certificate with the primary HSM",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var hf hsmFlags
			hf.register(fs, "the primary")
			reqFile := fs.String("request", "", "the region's enrollment request (required)")
			out := fs.String("out", "", "where to write the region certificate (required)")
			validity := fs.Duration("validity", enroll.DefaultValidity, "how long the certificate is valid")
			sha1 := fs.Bool("allow-sha1-oaep", false, "accept RSA-OAEP with SHA-1 for this region (only for HSMs without OAEP-SHA-256)")
			return noArgs(func(ctx context.Context) error {
				if *reqFile == "" || *out == "" {
					return usageErrorf("--request and --out are required")
				}
				e.outputTo(*out)
				if err := refuseExisting(*out); err != nil {
					return err
				}
				req, err := readParsed(*reqFile, enroll.ParseRequest)
				if err != nil {
					return err
				}
				h, st, err := hf.openPrimary(ctx, e)
				if err != nil {
					return err
				}
				defer h.Close()
				certPEM, cert, err := enroll.Certify(ctx, st.PrimarySigning, req, enroll.CertifyOptions{
					Now: e.now(), Validity: *validity, AllowSHA1: *sha1,
				})
				if err != nil {
					return err
				}
				if err := e.writeNew(0o644, *out, certPEM); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "certified region %s: key %s, OAEP %s, valid until %s; written to %s\n",
					cert.Region, cert.KeyID().Short(), hashNames(cert), cert.NotAfter.Format(time.RFC3339), *out)
				return nil
			})
		},
	}
}

func regionVerifyCommand() *command {
	return &command{
		name:    "verify",
		summary: "check region certificates against primary.pub",
		usage:   "CERT...",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			primaryFile := fs.String("primary", "", "the primary's public keys, primary.pub (required)")
			return func(ctx context.Context, args []string) error {
				if *primaryFile == "" || len(args) == 0 {
					return usageErrorf("--primary and at least one certificate are required")
				}
				pdata, err := os.ReadFile(*primaryFile)
				if err != nil {
					return err
				}
				p, err := enroll.ParsePrimary(pdata)
				if err != nil {
					return fmt.Errorf("%s: %w", *primaryFile, err)
				}
				fmt.Fprintf(e.stdout, "primary signing key %s (self-signatures verified)\n", p.SigningKeyID().Short())
				var failed int
				for _, f := range args {
					data, err := os.ReadFile(f)
					if err == nil {
						var c *enroll.Certificate
						if c, err = enroll.ParseCertificate(data); err == nil {
							if err = c.Verify(p, e.now()); err == nil {
								fmt.Fprintf(e.stdout, "OK    %s: region %s, key %s, OAEP %s, valid until %s\n",
									f, c.Region, c.KeyID().Short(), hashNames(c), c.NotAfter.Format(time.RFC3339))
								continue
							}
						}
					}
					failed++
					fmt.Fprintf(e.stdout, "FAIL  %s: %v\n", f, err)
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d certificates failed verification", failed, len(args))
				}
				return nil
			}
		},
	}
}

func hashNames(c *enroll.Certificate) string {
	var s []string
	for _, h := range c.OAEPHashes {
		s = append(s, h.String())
	}
	return strings.Join(s, ",")
}

// refuseExisting refuses to overwrite an output file ("-" is standard
// output, never refused).
func refuseExisting(path string) error {
	if path == "-" {
		return nil
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists; refusing to overwrite it (move it away first)", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// writeNewFile writes a public file (mode 0644) that must not exist yet.
func writeNewFile(path string, data []byte) error { return writeNewFileMode(0o644, path, data) }

// writeNewFileMode writes a file that must not exist yet, atomically: a
// temporary file with the given mode is linked into place, so a crash never
// leaves half a file and a concurrent writer cannot be overwritten.
func writeNewFileMode(mode os.FileMode, path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists; refusing to overwrite it", path)
		}
		return err
	}
	return nil
}
