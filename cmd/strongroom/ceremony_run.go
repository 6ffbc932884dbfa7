package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/internal/ceremony"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/plan"
)

func readApprovals(files []string) ([]plan.NamedApproval, error) {
	var out []plan.NamedApproval
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, plan.NamedApproval{Source: filepath.Base(f), Data: data})
	}
	return out, nil
}

// ceremonyExecCommand is 'ceremony run' or 'ceremony export'.
func ceremonyExecCommand(name, summary string, export bool) *command {
	return &command{
		name:    name,
		summary: summary,
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var hf hsmFlags
			hf.register(fs, "the primary")
			planFile := fs.String("plan", "", "the ceremony plan (required)")
			var approvals []string
			fs.StringArrayVar(&approvals, "approval", nil, "an officer's approval file (repeat for each)")
			out := fs.String("out", "", "directory for the bundles and the transcript (required)")
			var from *string
			if export {
				from = fs.String("primary-copy", "", "the primary's copy of the release, RELEASE.primary (required)")
			}
			return noArgs(func(ctx context.Context) error {
				if *planFile == "" || *out == "" {
					return usageErrorf("--plan and --out are required")
				}
				if export && *from == "" {
					return usageErrorf("--primary-copy is required")
				}
				in := ceremony.Inputs{}
				var err error
				if in.Plan, err = os.ReadFile(*planFile); err != nil {
					return err
				}
				if in.Approvals, err = readApprovals(approvals); err != nil {
					return err
				}
				if export {
					if in.PrimaryCopy, err = os.ReadFile(*from); err != nil {
						return err
					}
				}
				// Before the primary HSM records the release id: an output
				// that cannot be written must not cost it.
				if err := ceremony.CheckOutput(*out); err != nil {
					return err
				}
				h, err := hf.open(ctx, e, false)
				if err != nil {
					return err
				}
				defer h.Close()
				run := ceremony.Run
				if export {
					run = ceremony.Export
				}
				res, err := run(ctx, h, in, e.now)
				if err != nil {
					return err
				}
				if err := ceremony.Write(*out, res); err != nil {
					return err
				}
				names := make([]string, 0, len(res.Files))
				for n := range res.Files {
					names = append(names, n)
				}
				sort.Strings(names)
				fmt.Fprintf(e.stdout, "ceremony for release %s complete; %d steps recorded; written to %s:\n", res.Release, len(res.Transcript.Entries), *out)
				for _, n := range names {
					fmt.Fprintf(e.stdout, "  %s\n", n)
				}
				return nil
			})
		},
	}
}

func ceremonyVerifyCommand() *command {
	return &command{
		name:    "verify",
		summary: "check bundles and transcripts offline against primary.pub",
		usage:   "FILE...",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			primaryFile := fs.String("primary", "", "the primary's public keys, primary.pub (required)")
			show := fs.Bool("transcript", false, "also print every transcript entry")
			return func(ctx context.Context, args []string) error {
				if *primaryFile == "" || len(args) == 0 {
					return usageErrorf("--primary and at least one file are required")
				}
				pdata, err := os.ReadFile(*primaryFile)
				if err != nil {
					return err
				}
				p, err := enroll.ParsePrimary(pdata)
				if err != nil {
					return fmt.Errorf("%s: %w", *primaryFile, err)
				}
				files := map[string][]byte{}
				for _, f := range args {
					if files[f], err = os.ReadFile(f); err != nil {
						return err
					}
				}
				fmt.Fprintf(e.stdout, "primary signing key %s (self-signatures verified)\n", p.SigningKeyID().Short())
				failed := ceremony.VerifyFiles(e.stdout, p, files, *show)
				if failed > 0 {
					return fmt.Errorf("%d of %d files failed verification", failed, len(args))
				}
				fmt.Fprintf(e.stdout, "all %d files verified\n", len(args))
				return nil
			}
		},
	}
}
