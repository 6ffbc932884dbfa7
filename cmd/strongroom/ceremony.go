package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/officer"
	"github.com/strongroom-kms/strongroom/internal/plan"
)

func ceremonyCommand() *command {
	return &command{
		name:    "ceremony",
		summary: "the release ceremony: plan, approve, run, export to late regions, verify, show",
		// One entry per subcommand; each may live in its own file.
		subs: []*command{
			ceremonyPlanCommand(),
			ceremonyApproveCommand(),
			ceremonyShowCommand(),
			ceremonyExecCommand("run", "with a quorum of approvals, make the release secrets in the primary HSM and seal them to every region", false),
			ceremonyExecCommand("export", "with a quorum of approvals, seal an issued release to regions enrolled later", true),
			ceremonyVerifyCommand(),
		},
	}
}

func ceremonyPlanCommand() *command {
	return &command{
		name:    "plan",
		summary: "write the plan of a release (or export) ceremony for the crypto officers to approve",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var regions, officers []string
			release := fs.String("release", "", "the release id, e.g. 2026-1 (required)")
			primaryFile := fs.String("primary", "", "the primary's public keys, primary.pub (required)")
			fs.StringArrayVar(&regions, "region", nil, "a region certificate `FILE`; repeat for each region (at least one)")
			fs.StringArrayVar(&officers, "officer", nil, "a crypto officer's public key `FILE`; repeat for each officer (at least one)")
			quorum := fs.Int("quorum", 0, "how many distinct officers must approve (required)")
			iterations := fs.Uint("iterations", plan.DefaultIterations, fmt.Sprintf("PBKDF2 iteration count (%d to %d)", plan.MinIterations, plan.MaxIterations))
			export := fs.Bool("export", false, "an export ceremony: give the already issued release to the regions listed (enrolled since)")
			out := fs.String("out", "", "where to write the plan, e.g. 2026-1.plan (required)")
			return noArgs(func(ctx context.Context) error {
				switch {
				case *release == "" || *primaryFile == "" || *out == "":
					return usageErrorf("--release, --primary and --out are required")
				case len(regions) == 0:
					return usageErrorf("at least one --region certificate is required")
				case len(officers) == 0:
					return usageErrorf("at least one --officer public key is required")
				case *quorum < 1 || *quorum > len(officers):
					return usageErrorf("--quorum must be between 1 and the number of officers (%d)", len(officers))
				case *quorum > plan.MaxOfficers:
					return usageErrorf("--quorum must be at most %d", plan.MaxOfficers)
				case *iterations < plan.MinIterations || *iterations > plan.MaxIterations:
					return usageErrorf("--iterations must be between %d and %d", plan.MinIterations, plan.MaxIterations)
				}
				if err := plan.ValidRelease(*release); err != nil {
					return err
				}
				e.outputTo(*out)
				if err := refuseExisting(*out); err != nil {
					return err
				}
				now := e.now()
				primary, err := readPrimaryFile(*primaryFile)
				if err != nil {
					return err
				}
				p := plan.Plan{
					Kind:       plan.Release,
					Release:    *release,
					Created:    now,
					Iterations: uint32(*iterations),
					Primary:    primary.SigningKeyID(),
					Quorum:     uint8(*quorum),
				}
				if *export {
					p.Kind = plan.Export
				}
				for _, f := range regions {
					c, err := readParsed(f, enroll.ParseCertificate)
					if err != nil {
						return err
					}
					if err := c.Verify(primary, now); err != nil {
						return fmt.Errorf("%s: %w", f, err)
					}
					p.Regions = append(p.Regions, c)
				}
				for _, f := range officers {
					o, err := readParsed(f, officer.ParsePublic)
					if err != nil {
						return err
					}
					p.Officers = append(p.Officers, o)
				}
				made, err := plan.New(p)
				if err != nil {
					return err
				}
				if err := made.VerifyRegions(primary, now); err != nil {
					return err
				}
				if err := e.writeNew(0o644, *out, made.Marshal()); err != nil {
					return err
				}
				printPlan(e.stdout, made)
				fmt.Fprintf(e.stdout, "plan written to %s\n", *out)
				fmt.Fprintf(e.stdout, "next, each officer: strongroom ceremony approve --plan %s --primary %s --key OFFICER.key --out OFFICER.approval\n", *out, *primaryFile)
				return nil
			})
		},
	}
}

func ceremonyApproveCommand() *command {
	return &command{
		name:    "approve",
		summary: "show a ceremony plan and approve it with your officer key",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			planFile := fs.String("plan", "", "the ceremony plan (required)")
			keyFile := fs.String("key", "", "your officer key file, e.g. alice.key (required)")
			out := fs.String("out", "", "where to write your approval, e.g. alice.approval (required)")
			primaryFile := fs.String("primary", "", "primary.pub: check the plan's region certificates against it first (recommended)")
			passFile := fs.String("passphrase-file", "", "file holding your officer key's passphrase (default: $STRONGROOM_OFFICER_PASSPHRASE)")
			return noArgs(func(ctx context.Context) error {
				if *planFile == "" || *keyFile == "" || *out == "" {
					return usageErrorf("--plan, --key and --out are required")
				}
				e.outputTo(*out)
				if err := refuseExisting(*out); err != nil {
					return err
				}
				now := e.now()
				p, err := readParsed(*planFile, plan.Parse)
				if err != nil {
					return err
				}
				keyPEM, err := os.ReadFile(*keyFile)
				if err != nil {
					return err
				}
				verified := "NOT checked (pass --primary primary.pub to check them)"
				if *primaryFile != "" {
					primary, err := readPrimaryFile(*primaryFile)
					if err != nil {
						return err
					}
					if err := p.VerifyRegions(primary, now); err != nil {
						return fmt.Errorf("refusing to approve %s: %w", *planFile, err)
					}
					verified = "verified against " + *primaryFile
				}
				fmt.Fprintf(e.stdout, "You are approving this ceremony plan (%s):\n\n", *planFile)
				printPlan(e.stdout, p)
				fmt.Fprintf(e.stdout, "certificates: %s\n\n", verified)
				pass, err := readSecret(e, *passFile, "STRONGROOM_OFFICER_PASSPHRASE", "officer passphrase")
				if err != nil {
					return err
				}
				defer clear(pass)
				s, err := officer.Open(keyPEM, pass)
				if err != nil {
					return fmt.Errorf("%s: %w", *keyFile, err)
				}
				defer s.Destroy()
				me := s.Public()
				o := p.Officer(me.Key)
				if o == nil {
					return fmt.Errorf("the key of officer %s (id %s) is not among the officers of this plan; nothing was signed", me.Name, me.ShortID())
				}
				if err := e.writeNew(0o644, *out, plan.Approve(s, p, now)); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "approved by %s (id %s): %s %s, plan digest %x\n", o.Name, o.ShortID(), p.Kind, p.Release, p.Digest())
				fmt.Fprintf(e.stdout, "approval written to %s: send it to the primary site\n", *out)
				return nil
			})
		},
	}
}

func ceremonyShowCommand() *command {
	return &command{
		name:    "show",
		summary: "print a ceremony plan, an approval or an officer public key",
		usage:   "FILE",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			return func(ctx context.Context, args []string) error {
				if len(args) != 1 {
					return usageErrorf("give exactly one file")
				}
				data, err := os.ReadFile(args[0])
				if err != nil {
					return err
				}
				typ := ""
				if block, _ := pem.Decode(data); block != nil {
					typ = block.Type
				}
				switch typ {
				case plan.PlanPEMType:
					p, err := plan.Parse(data)
					if err != nil {
						return fmt.Errorf("%s: %w", args[0], err)
					}
					printPlan(e.stdout, p)
				case plan.ApprovalPEMType:
					a, err := plan.ParseApproval(data)
					if err != nil {
						return fmt.Errorf("%s: %w", args[0], err)
					}
					printApproval(e.stdout, a)
				case officer.PublicPEMType:
					o, err := officer.ParsePublic(data)
					if err != nil {
						return fmt.Errorf("%s: %w", args[0], err)
					}
					fmt.Fprintf(e.stdout, "officer:      %s\n", o.Name)
					fmt.Fprintf(e.stdout, "id:           %x\n", o.ID())
					fmt.Fprintf(e.stdout, "created:      %s\n", o.Created.Format(time.RFC3339))
					fmt.Fprintf(e.stdout, "self-signature verified\n")
				default:
					return fmt.Errorf("%s is not a ceremony plan, an approval or an officer public key", args[0])
				}
				return nil
			}
		},
	}
}

func printPlan(w io.Writer, p *plan.Plan) {
	var names []string
	for _, c := range p.Regions {
		names = append(names, c.Region)
	}
	fmt.Fprintf(w, "plan:         %s %s\n", p.Kind, p.Release)
	switch p.Kind {
	case plan.Release:
		fmt.Fprintf(w, "meaning:      issue release %s to %s\n", p.Release, strings.Join(names, ", "))
	case plan.Export:
		fmt.Fprintf(w, "meaning:      give the already issued release %s to %s\n", p.Release, strings.Join(names, ", "))
	}
	fmt.Fprintf(w, "created:      %s\n", p.Created.Format(time.RFC3339))
	fmt.Fprintf(w, "primary:      signing key %s\n", p.Primary)
	fmt.Fprintf(w, "iterations:   %d (PBKDF2-HMAC-SHA256)\n", p.Iterations)
	fmt.Fprintf(w, "regions:      %d\n", len(p.Regions))
	for _, c := range p.Regions {
		fmt.Fprintf(w, "  %-10s  key %s  OAEP %s  valid until %s\n", c.Region, c.KeyID(), hashNames(c), c.NotAfter.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "officers:     %d, quorum %d of %d\n", len(p.Officers), p.Quorum, len(p.Officers))
	for _, o := range p.Officers {
		fmt.Fprintf(w, "  %-10s  id %x\n", o.Name, o.ID())
	}
	fmt.Fprintf(w, "digest:       %x\n", p.Digest())
}

func printApproval(w io.Writer, a *plan.Approval) {
	fmt.Fprintf(w, "approval of:  %s %s\n", a.Kind, a.Release)
	fmt.Fprintf(w, "plan digest:  %x\n", a.PlanDigest)
	fmt.Fprintf(w, "officer:      id %x\n", a.OfficerID())
	fmt.Fprintf(w, "time:         %s\n", a.Time.Format(time.RFC3339))
	fmt.Fprintf(w, "signature:    valid (whether the key is an officer of the plan is checked against the plan)\n")
}

func readPrimaryFile(path string) (*enroll.Primary, error) {
	return readParsed(path, enroll.ParsePrimary)
}

// readParsed reads and parses a file, naming it in errors.
func readParsed[T any](path string, parse func([]byte) (T, error)) (T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := parse(data)
	if err != nil {
		return v, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
