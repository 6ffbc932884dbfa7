package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/k8splugin"
)

// k8sPluginCommand serves the Kubernetes KMS v2 API on a unix socket for
// kube-apiserver, with a tenant's key (docs/kubernetes.md).
func k8sPluginCommand() *command {
	return apiCommand("k8s-plugin", "serve the Kubernetes KMS v2 plugin API on a unix socket, encrypting with a tenant's key (app token)", "",
		func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
			socket := fs.String("socket", k8splugin.DefaultSocket, "the unix socket to serve on (made with mode 0600; a stale one is replaced)")
			tenant := fs.String("tenant", "", "the tenant whose key encrypts (required)")
			typ := keyTypeFlag(fs, "data", "the key type whose active version encrypts")
			refresh := fs.Duration("refresh", k8splugin.DefaultRefresh, "how often to ask the server for the active version and confirm the cached DEKs")
			maxAge := fs.Duration("dek-max-age", k8splugin.DefaultDEKMaxAge, "how long a cached DEK serves after the server last confirmed it (while the server cannot be reached)")
			return func(ctx context.Context, c *client.Client, args []string) error {
				if *tenant == "" || len(args) > 0 {
					return usageErrorf("--tenant is required, and k8s-plugin takes no arguments")
				}
				if *refresh <= 0 || *maxAge <= 0 {
					return usageErrorf("--refresh and --dek-max-age must be positive")
				}
				logger := slog.New(slog.NewTextHandler(e.stderr, nil))
				p, err := k8splugin.New(k8splugin.Options{
					Source: c, Tenant: *tenant, Type: *typ,
					Refresh: *refresh, DEKMaxAge: *maxAge, Logger: logger,
				})
				if err != nil {
					return usageErrorf("%v", err)
				}
				ln, err := k8splugin.Listen(*socket)
				if err != nil {
					return err
				}
				logger.Info("k8s-plugin: starting", "tenant", *tenant, "type", *typ, "refresh", refresh.String(), "dek_max_age", maxAge.String())
				ctx, stop := context.WithCancel(ctx)
				defer stop()
				ran := make(chan struct{})
				go func() { p.Run(ctx); close(ran) }()
				err = k8splugin.Serve(ctx, ln, p, logger)
				stop()
				select {
				case <-ran:
				case <-time.After(k8splugin.ShutdownTimeout):
				}
				return err
			}
		})
}
