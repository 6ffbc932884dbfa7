package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
)

// rewrapCommand moves one ciphertext to the active key of its type, on the
// server: standard input to standard output, the plaintext never sent back.
// A table of them is `strongroom sync`'s work.
func rewrapCommand() *command {
	return apiCommand("rewrap", "move a ciphertext on standard input to the active key of its type, without decrypting it here (app)", "",
		func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
			tenant := fs.String("tenant", "", "the tenant (required)")
			ctxf := contextFlags{}
			fs.Var(ctxf, "context", "KEY=VALUE the ciphertext is bound to; repeat; the new one is bound to the same")
			return func(ctx context.Context, c *client.Client, args []string) error {
				if *tenant == "" || len(args) > 0 {
					return usageErrorf("--tenant is required; the ciphertext comes on standard input")
				}
				in, err := io.ReadAll(io.LimitReader(e.stdin, 1<<20+1))
				if err != nil {
					return err
				}
				if len(in) > 1<<20 {
					return usageErrorf("input larger than 1 MiB: a server-side ciphertext is smaller than the server's body limit")
				}
				res, err := c.Rewrap(ctx, *tenant, api.RewrapItem{Ciphertext: in, Context: ctxf})
				if err != nil {
					return err
				}
				r := res[0]
				if r.Error != nil {
					return explain(&client.Error{Status: 200, Code: r.Error.Code, Message: r.Error.Message})
				}
				if _, err := e.stdout.Write(r.Ciphertext); err != nil {
					return err
				}
				if r.Rewrapped {
					fmt.Fprintf(e.stderr, "rewrapped from %s/%d to %s/%d\n", r.Type, r.From, r.Type, r.Version)
				} else {
					fmt.Fprintf(e.stderr, "already under the active key %s/%d: unchanged\n", r.Type, r.Version)
				}
				return nil
			}
		})
}
