package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
)

// statusReport is what 'strongroom status' found.
type statusReport struct {
	Server string    `json:"server"`
	Ready  api.Ready `json:"ready"`
	// Status is the node's detail, for operator and auditor tokens.
	Status *api.Status `json:"status,omitempty"`
	// Token is the caller's own token, without its secret.
	Token *api.TokenInfo `json:"token,omitempty"`
	// TokenProblem says why the token was not accepted, if it was not.
	TokenProblem string `json:"token_problem,omitempty"`
}

func statusCommand() *command {
	return &command{
		name:    "status",
		summary: "show the server, its readiness and releases, and who the token is",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var af apiFlags
			af.register(fs, e)
			return noArgs(func(ctx context.Context) error {
				c, err := af.server()
				if err != nil {
					return err
				}
				rep := statusReport{Server: af.addr}
				if rep.Ready, err = c.Ready(ctx); err != nil {
					var ae *client.Error
					if !errors.As(err, &ae) || ae.Code != api.CodeNotReady {
						return fmt.Errorf("%s does not answer as a Strongroom server: %w", af.addr, err)
					}
				}
				if af.token != "" {
					rep.statusWithToken(ctx, c)
				}
				return e.print(rep, rep.text)
			})
		},
	}
}

// statusWithToken adds what the caller's token may see.
func (r *statusReport) statusWithToken(ctx context.Context, c *client.Client) {
	me, err := c.Self(ctx)
	if err != nil {
		r.TokenProblem = explain(err).Error()
		return
	}
	r.Token = &me
	if me.Role == api.RoleOperator || me.Role == api.RoleAuditor {
		if st, err := c.Status(ctx); err == nil {
			r.Status = &st
		}
	}
}

func (r statusReport) text(w io.Writer) error {
	fmt.Fprintf(w, "server:    %s", r.Server)
	if r.Ready.Region != "" {
		fmt.Fprintf(w, " (region %s)", r.Ready.Region)
	}
	fmt.Fprintln(w)
	if r.Ready.Status == "ok" {
		fmt.Fprintf(w, "ready:     yes, %d release(s) loaded\n", r.Ready.Releases)
	} else {
		fmt.Fprintf(w, "ready:     no, %d problem(s)\n", r.Ready.Problems)
	}
	switch {
	case r.Token != nil:
		fmt.Fprintf(w, "token:     %s\n", describeToken(*r.Token))
	case r.TokenProblem != "":
		fmt.Fprintf(w, "token:     not accepted: %s\n", r.TokenProblem)
	default:
		fmt.Fprintln(w, "token:     none (set STRONGROOM_TOKEN to see more)")
	}
	if r.Status != nil {
		for _, rel := range r.Status.Releases {
			fmt.Fprintf(w, "release:   %s (%d PBKDF2 iterations)\n", rel.ID, rel.Iterations)
		}
		for _, p := range r.Status.Problems {
			fmt.Fprintf(w, "problem:   %s\n", p)
		}
	} else if r.Ready.Status != "ok" && r.Token != nil {
		fmt.Fprintln(w, "           (an operator or auditor token lists the problems)")
	}
	return nil
}
