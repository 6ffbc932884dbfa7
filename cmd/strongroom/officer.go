package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/internal/officer"
)

func officerCommand() *command {
	return &command{
		name:    "officer",
		summary: "make crypto officers' identity keys",
		subs:    []*command{officerNewCommand()},
	}
}

func officerNewCommand() *command {
	return &command{
		name:    "new",
		summary: "make a crypto officer's Ed25519 key pair: a passphrase-sealed key file and a public key file",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			name := fs.String("name", "", "the officer's name, e.g. alice (required)")
			out := fs.String("out", "", "the private key file to write, e.g. alice.key; the public key goes next to it as alice.pub (required)")
			passFile := fs.String("passphrase-file", "", "file holding the passphrase that seals the key (default: $STRONGROOM_OFFICER_PASSPHRASE)")
			return noArgs(func(ctx context.Context) error {
				if *name == "" || *out == "" {
					return usageErrorf("--name and --out are required")
				}
				if *out == "-" {
					return usageErrorf("--out names the private key file (the public key goes next to it): it cannot be standard output")
				}
				if err := officer.ValidName(*name); err != nil {
					return err
				}
				pubPath := officerPubPath(*out)
				if err := refuseExisting(*out); err != nil {
					return err
				}
				if err := refuseExisting(pubPath); err != nil {
					return err
				}
				pass, err := readSecret(e, *passFile, "STRONGROOM_OFFICER_PASSPHRASE", "officer passphrase")
				if err != nil {
					return err
				}
				defer clear(pass)
				keyPEM, pubPEM, err := officer.New(*name, pass, e.now())
				if err != nil {
					return err
				}
				if err := writeNewFileMode(0o600, *out, keyPEM); err != nil {
					return err
				}
				if err := writeNewFile(pubPath, pubPEM); err != nil {
					os.Remove(*out) // made just now: no key without its public half
					return err
				}
				pub, err := officer.ParsePublic(pubPEM)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "made officer %s: private key in %s (keep it, and its passphrase, to yourself)\n", pub.Name, *out)
				fmt.Fprintf(e.stdout, "public key in %s: give it to whoever prepares ceremony plans\n", pubPath)
				fmt.Fprintf(e.stdout, "officer id %x (confirm it with them out of band)\n", pub.ID())
				return nil
			})
		},
	}
}

// officerPubPath is where the public key goes: alice.key -> alice.pub.
func officerPubPath(keyPath string) string {
	if base, ok := strings.CutSuffix(keyPath, ".key"); ok {
		return base + ".pub"
	}
	return keyPath + ".pub"
}
