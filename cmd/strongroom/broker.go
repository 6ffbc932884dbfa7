package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/enroll"
)

// brokerCommand is the regional key broker: it pulls the region's bundles
// from the key escrow with a fresh nonce from the regional HSM, checks the
// escrow's signed answer, and installs each bundle into the regional server
// (which verifies and opens it before storing it). Installing is idempotent,
// so the broker can poll.
func brokerCommand() *command {
	return &command{
		name:    "broker",
		summary: "pull the region's release bundles from the key escrow and install them into the regional server",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var hf hsmFlags
			hf.register(fs, "the regional")
			var af apiFlags
			af.register(fs, e)
			src := escrowSource{}
			fs.StringVar(&src.url, "escrow", "", "the escrow's URL, https://HOST:PORT (required)")
			fs.StringVar(&src.region, "region", "", "this region (required)")
			fs.StringVar(&src.primary, "primary", "", "the primary's public keys, primary.pub (required)")
			fs.StringVar(&src.ca, "escrow-ca", "", "CA certificates (PEM) to trust for the escrow's TLS certificate")
			fs.DurationVar(&src.timeout, "timeout", time.Minute, "how long to wait for the escrow")
			interval := fs.Duration("interval", 0, "keep polling at this interval (default: once)")
			return noArgs(func(ctx context.Context) error {
				if src.url == "" || src.region == "" || src.primary == "" {
					return usageErrorf("--escrow, --region and --primary are required")
				}
				if err := enroll.ValidRegion(src.region); err != nil {
					return err
				}
				c, err := af.client()
				if err != nil {
					return err
				}
				for {
					err := brokerOnce(ctx, e, &hf, src, c)
					if *interval == 0 {
						return err
					}
					if err != nil {
						fmt.Fprintf(e.stderr, "strongroom broker: %v (retrying in %v)\n", err, *interval)
					}
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(*interval):
					}
				}
			})
		},
	}
}

func brokerOnce(ctx context.Context, e *env, hf *hsmFlags, src escrowSource, c *client.Client) error {
	bundles, err := fetchFromEscrow(ctx, e, hf, src)
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range bundles {
		r, err := c.InstallRelease(ctx, b.PEM)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.Name, explain(err)))
			continue
		}
		fmt.Fprintf(e.stdout, "installed %s (release %s)\n", b.Name, r.ID)
	}
	if len(bundles) == 0 {
		fmt.Fprintf(e.stdout, "the escrow holds no bundle for %s\n", src.region)
	}
	return errors.Join(errs...)
}
