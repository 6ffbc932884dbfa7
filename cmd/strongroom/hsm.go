package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/hsm/hsmuri"
	"github.com/strongroom-kms/strongroom/internal/sign"
)

// hsmFlags are the flags every command that opens an HSM takes.
type hsmFlags struct {
	uri            string
	passphraseFile string
}

func (f *hsmFlags) register(fs *pflag.FlagSet, what string) {
	fs.StringVar(&f.uri, "hsm", "", what+" HSM: soft:PATH or an RFC 7512 pkcs11: URI (required)")
	fs.StringVar(&f.passphraseFile, "passphrase-file", "", "file holding the soft HSM passphrase (default: $STRONGROOM_HSM_PASSPHRASE)")
}

// open opens the HSM; create allows a new soft HSM file.
func (f *hsmFlags) open(ctx context.Context, e *env, create bool) (hsm.HSM, error) {
	if f.uri == "" {
		return nil, usageErrorf("--hsm is required (soft:PATH or pkcs11:token=...)")
	}
	return hsmuri.Open(ctx, f.uri, hsmuri.Options{
		Create: create,
		Passphrase: func() ([]byte, error) {
			return readSecret(e, f.passphraseFile, "STRONGROOM_HSM_PASSPHRASE", "soft HSM passphrase")
		},
	})
}

// openPrimary opens the HSM and checks that it is an initialized primary.
// The caller closes the HSM.
func (f *hsmFlags) openPrimary(ctx context.Context, e *env) (hsm.HSM, enroll.State, error) {
	h, err := f.open(ctx, e, false)
	if err != nil {
		return nil, enroll.State{}, err
	}
	st, err := enroll.Inspect(ctx, h)
	if err == nil && st.Role() != "primary" {
		err = fmt.Errorf("the HSM %s is not an initialized primary (role: %q); run 'strongroom hsm info' to check", f.uri, st.Role())
	}
	if err != nil {
		h.Close()
		return nil, enroll.State{}, err
	}
	return h, st, nil
}

// readSecret reads a passphrase from a file or, failing that, an environment
// variable. Secrets never come from flags or config values.
func readSecret(e *env, file, envVar, what string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("cannot read the %s from %s: %w", what, file, err)
		}
		b = []byte(strings.TrimRight(string(b), "\r\n"))
		if len(b) == 0 {
			return nil, fmt.Errorf("the %s file %s is empty", what, file)
		}
		return b, nil
	}
	if v := e.getenv(envVar); v != "" {
		return []byte(v), nil
	}
	return nil, fmt.Errorf("no %s: set %s or pass --passphrase-file", what, envVar)
}

func hsmCommand() *command {
	return &command{
		name:    "hsm",
		summary: "initialize an HSM for its role and inspect it",
		subs:    []*command{hsmInitCommand(), hsmInfoCommand()},
	}
}

func hsmInitCommand() *command {
	return &command{
		name:    "init",
		summary: "create the primary's key pairs (writes primary.pub) or a region's (writes an enrollment request)",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var hf hsmFlags
			hf.register(fs, "the")
			role := fs.String("role", "", "primary or regional (required)")
			region := fs.String("region", "", "region name, for --role regional (e.g. eu1)")
			out := fs.String("out", "", "output file: primary.pub, or the enrollment request (required)")
			return noArgs(func(ctx context.Context) error {
				switch {
				case *role != "primary" && *role != "regional":
					return usageErrorf("--role must be primary or regional")
				case *out == "":
					return usageErrorf("--out is required")
				case *role == "regional" && *region == "":
					return usageErrorf("--region is required with --role regional")
				case *role == "primary" && *region != "":
					return usageErrorf("--region applies only to --role regional")
				}
				if *role == "regional" {
					if err := enroll.ValidRegion(*region); err != nil {
						return err
					}
				}
				e.outputTo(*out)
				if err := refuseExisting(*out); err != nil {
					return err
				}
				h, err := hf.open(ctx, e, true)
				if err != nil {
					return err
				}
				defer h.Close()
				var data []byte
				if *role == "primary" {
					data, err = enroll.InitPrimary(ctx, h, e.now())
				} else {
					data, err = enroll.InitRegion(ctx, h, *region, e.now())
				}
				if err != nil {
					return err
				}
				if err := e.writeNew(0o644, *out, data); err != nil {
					return err
				}
				if *role == "primary" {
					fmt.Fprintf(e.stdout, "initialized the primary HSM (%s); public keys written to %s\n", h.Info().Backend, *out)
				} else {
					fmt.Fprintf(e.stdout, "initialized the regional HSM for %s (%s); enrollment request written to %s\n", *region, h.Info().Backend, *out)
					fmt.Fprintf(e.stdout, "next, at the primary: strongroom region enroll --hsm PRIMARY --request %s --out %s.cert\n", *out, *region)
				}
				return nil
			})
		},
	}
}

func hsmInfoCommand() *command {
	return &command{
		name:    "info",
		summary: "show the HSM, its Strongroom keys and their ids; optionally re-export primary.pub or a request",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var hf hsmFlags
			hf.register(fs, "the")
			out := fs.String("out", "", "re-export primary.pub (primary) or an enrollment request (regional) to this file")
			region := fs.String("region", "", "region name for a re-exported enrollment request")
			return noArgs(func(ctx context.Context) error {
				h, err := hf.open(ctx, e, false)
				if err != nil {
					return err
				}
				defer h.Close()
				st, err := enroll.Inspect(ctx, h)
				if err != nil {
					return err
				}
				e.outputTo(*out)
				if err := printInfo(e, h.Info(), st); err != nil || *out == "" {
					return err
				}
				if err := refuseExisting(*out); err != nil {
					return err
				}
				var data []byte
				switch st.Role() {
				case "primary":
					data, err = enroll.ExportPrimary(ctx, h, st.PrimaryEncryption, st.PrimarySigning, e.now())
				case "regional":
					if *region == "" {
						return usageErrorf("--region is required to re-export an enrollment request")
					}
					data, err = enroll.ExportRequest(ctx, h, st.RegionEncryption, *region, e.now())
				default:
					return errors.New("nothing to export: the HSM is not initialized for a role")
				}
				if err != nil {
					return err
				}
				if err := e.writeNew(0o644, *out, data); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "written to %s\n", *out)
				return nil
			})
		},
	}
}

// hsmInfo is what 'strongroom hsm info' shows.
type hsmInfo struct {
	Backend     string       `json:"backend"`
	Token       string       `json:"token"`
	Description string       `json:"description"`
	OAEPHashes  []string     `json:"oaep_hashes"`
	Role        string       `json:"role"` // "primary", "regional" or "" (not initialized)
	Keys        []hsmKeyInfo `json:"keys"`
}

type hsmKeyInfo struct {
	Label string `json:"label"`
	ID    string `json:"id"`
	Use   string `json:"use,omitempty"`
}

func printInfo(e *env, info hsm.Info, st enroll.State) error {
	out := hsmInfo{Backend: info.Backend, Token: info.Token, Description: info.Description, Role: st.Role(),
		OAEPHashes: []string{}, Keys: []hsmKeyInfo{}}
	for _, h := range info.OAEPHashes {
		out.OAEPHashes = append(out.OAEPHashes, h.String())
	}
	key := func(label string, pub any, use string) {
		if id, err := sign.KeyIDOf(pub); err == nil {
			out.Keys = append(out.Keys, hsmKeyInfo{Label: label, ID: id.String(), Use: use})
		}
	}
	if st.PrimaryEncryption != nil {
		key(enroll.LabelPrimaryEncryption, st.PrimaryEncryption.Public(), st.PrimaryEncryption.Use().String())
	}
	if st.PrimarySigning != nil {
		key(enroll.LabelPrimarySigning, st.PrimarySigning.Public(), "")
	}
	if st.RegionEncryption != nil {
		key(enroll.LabelRegionEncryption, st.RegionEncryption.Public(), st.RegionEncryption.Use().String())
	}
	return e.print(out, func(w io.Writer) error {
		fmt.Fprintf(w, "backend:      %s\n", out.Backend)
		fmt.Fprintf(w, "token:        %s\n", out.Token)
		fmt.Fprintf(w, "description:  %s\n", out.Description)
		fmt.Fprintf(w, "RSA-OAEP:     %s\n", strings.Join(out.OAEPHashes, ", "))
		role := out.Role
		if role == "" {
			role = "not initialized (run 'strongroom hsm init')"
		}
		fmt.Fprintf(w, "role:         %s\n", role)
		for _, k := range out.Keys {
			note := ""
			if k.Use != "" {
				note = "  " + k.Use
			}
			fmt.Fprintf(w, "key:          %s  id %s%s\n", k.Label, k.ID, note)
		}
		return nil
	})
}
