package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
)

// keyUsageCommand is strongroom key usage: what each key version was used
// for (docs/keys-usage.md).
func keyUsageCommand() *command {
	return apiCommand("usage", "show what each key version was used for: encryptions, decryptions, AES-GCM seals and their nonce state, DEK deliveries, last uses, and whether an archived version looks safe to destroy", "",
		func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
			tenant := fs.String("tenant", "", "the tenant (required)")
			typ := keyTypeFlag(fs, "", "only this key type")
			return func(ctx context.Context, c *client.Client, args []string) error {
				if *tenant == "" || len(args) > 0 {
					return usageErrorf("--tenant is required and no arguments are taken")
				}
				us, err := c.KeyUsage(ctx, *tenant, *typ)
				if err != nil {
					return err
				}
				return e.print(api.KeyUsageList{Usage: us}, func(out io.Writer) error {
					w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "TYPE\tVERSION\tSTATE\tENCRYPTIONS\tDECRYPTIONS\tSEALED\tNONCES\tDELIVERIES\tLAST ENCRYPT\tLAST DECRYPT\tROWS LEFT\tSAFE TO DESTROY\tHINT")
					for _, u := range us {
						rows := "-"
						if u.RowsLeft != nil {
							rows = strconv.FormatUint(*u.RowsLeft, 10)
						}
						safe := "no"
						if u.SafeToDestroy {
							safe = "yes"
						}
						fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", u.Type, u.Version, u.State,
							u.Encryptions, u.Decryptions, u.Sealed, u.Nonces, u.Deliveries, usageTime(u.LastEncrypt), usageTime(u.LastDecrypt),
							rows, safe, u.Hint)
					}
					return w.Flush()
				})
			}
		})
}

// usageTime is a last use, or "-" for none.
func usageTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
