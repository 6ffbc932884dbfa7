package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/escrow"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

func escrowCommand() *command {
	return &command{
		name:    "escrow",
		summary: "the key escrow server: its signing key, serving release bundles, fetching them",
		subs:    []*command{escrowInitCommand(), escrowEnrollCommand(), escrowServeCommand(), escrowFetchCommand()},
	}
}

func escrowInitCommand() *command {
	return &command{
		name:    "init",
		summary: "create the escrow's signing key in its HSM and write its enrollment request",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var hf hsmFlags
			hf.register(fs, "the escrow's")
			name := fs.String("name", "", "the escrow's name, e.g. escrow1 (required)")
			out := fs.String("out", "", "where to write the enrollment request (required)")
			return noArgs(func(ctx context.Context) error {
				if *name == "" || *out == "" {
					return usageErrorf("--name and --out are required")
				}
				if err := escrow.ValidName(*name); err != nil {
					return err
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
				data, err := escrow.Init(ctx, h, *name, e.now())
				if err != nil {
					return err
				}
				if err := e.writeNew(0o644, *out, data); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "created the escrow signing key of %s (%s); enrollment request written to %s\n", *name, h.Info().Backend, *out)
				fmt.Fprintf(e.stdout, "next, at the primary: strongroom escrow enroll --hsm PRIMARY --request %s --out %s.cert\n", *out, *name)
				return nil
			})
		},
	}
}

func escrowEnrollCommand() *command {
	return &command{
		name:    "enroll",
		summary: "check an escrow's enrollment request and sign its certificate with the primary HSM",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var hf hsmFlags
			hf.register(fs, "the primary")
			reqFile := fs.String("request", "", "the escrow's enrollment request (required)")
			out := fs.String("out", "", "where to write the escrow certificate (required)")
			validity := fs.Duration("validity", escrow.DefaultValidity, "how long the certificate is valid")
			return noArgs(func(ctx context.Context) error {
				if *reqFile == "" || *out == "" {
					return usageErrorf("--request and --out are required")
				}
				e.outputTo(*out)
				if err := refuseExisting(*out); err != nil {
					return err
				}
				req, err := readParsed(*reqFile, escrow.ParseRequest)
				if err != nil {
					return err
				}
				h, st, err := hf.openPrimary(ctx, e)
				if err != nil {
					return err
				}
				defer h.Close()
				certPEM, cert, err := escrow.Certify(ctx, st.PrimarySigning, req, escrow.CertifyOptions{Now: e.now(), Validity: *validity})
				if err != nil {
					return err
				}
				if err := e.writeNew(0o644, *out, certPEM); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "certified escrow %s: key %s, valid until %s; written to %s\n",
					cert.Name, cert.KeyID().Short(), cert.NotAfter.Format(time.RFC3339), *out)
				return nil
			})
		},
	}
}

// Limits of the escrow's HTTP server. An answer may carry up to 16 MiB of
// bundles, hence the generous write timeout.
const (
	escrowReadHeaderTimeout = 5 * time.Second
	escrowReadTimeout       = 10 * time.Second
	escrowWriteTimeout      = 60 * time.Second
	escrowIdleTimeout       = 60 * time.Second
	escrowMaxHeaderBytes    = 16 << 10
	escrowShutdownTimeout   = 10 * time.Second
)

func escrowServeCommand() *command {
	return &command{
		name:    "serve",
		summary: "serve a directory of release bundles to the regions over HTTPS, signing each answer",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var hf hsmFlags
			hf.register(fs, "the escrow's")
			dir := fs.String("dir", "", "directory of bundle files (*.bundle), read on each request (required)")
			listen := fs.String("listen", "127.0.0.1:8600", "address to listen on")
			certFile := fs.String("cert", "", "the escrow certificate, from 'strongroom escrow enroll' (required)")
			primaryFile := fs.String("primary", "", "the primary's public keys, primary.pub: check the escrow certificate at start and verify each bundle before serving it (recommended)")
			tlsCert := fs.String("tls-cert", "", "the server's TLS certificate chain, PEM (required)")
			tlsKey := fs.String("tls-key", "", "the server's TLS private key, PEM, mode 0600 (required)")
			return noArgs(func(ctx context.Context) error {
				if *dir == "" || *certFile == "" || *tlsCert == "" || *tlsKey == "" {
					return usageErrorf("--dir, --cert, --tls-cert and --tls-key are required")
				}
				// main stops on SIGINT and SIGTERM already; doing it here too
				// keeps the shutdown graceful wherever run is called from.
				ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
				if st, err := os.Stat(*dir); err != nil {
					return err
				} else if !st.IsDir() {
					return fmt.Errorf("%s is not a directory", *dir)
				}
				kp, err := loadTLSKeyPair(*tlsCert, *tlsKey)
				if err != nil {
					return err
				}
				data, err := os.ReadFile(*certFile)
				if err != nil {
					return err
				}
				cert, err := escrow.ParseCertificate(data)
				if err != nil {
					return fmt.Errorf("%s: %w", *certFile, err)
				}
				var p *enroll.Primary
				if *primaryFile != "" {
					if p, err = escrowReadPrimary(*primaryFile); err != nil {
						return err
					}
					if err := cert.Verify(p, e.now()); err != nil {
						return fmt.Errorf("%s: %w; the regions would refuse every answer", *certFile, err)
					}
				}
				h, err := hf.open(ctx, e, false)
				if err != nil {
					return err
				}
				defer h.Close()
				key, err := h.SigningKey(ctx, escrow.LabelSigning)
				if errors.Is(err, hsm.ErrNotFound) {
					return fmt.Errorf("the HSM %s holds no escrow signing key (%s); run 'strongroom escrow init' first", hf.uri, escrow.LabelSigning)
				} else if err != nil {
					return err
				}
				if !cert.Signing.Equal(key.ECDSAPublicKey()) {
					return fmt.Errorf("%s certifies key %s, but the HSM's escrow signing key is another; use the certificate enrolled for this HSM", *certFile, cert.KeyID().Short())
				}
				logger := slog.New(slog.NewTextHandler(e.stderr, nil))
				if p == nil {
					logger.Warn("no --primary: bundles are served without verification (the regions verify them)")
				}
				ln, err := net.Listen("tcp", *listen)
				if err != nil {
					return err
				}
				srv := &http.Server{
					Handler:           escrow.NewServer(*dir, key, cert.Raw(), p, logger),
					TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{kp}},
					ReadHeaderTimeout: escrowReadHeaderTimeout,
					ReadTimeout:       escrowReadTimeout,
					WriteTimeout:      escrowWriteTimeout,
					IdleTimeout:       escrowIdleTimeout,
					MaxHeaderBytes:    escrowMaxHeaderBytes,
					ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
				}
				fmt.Fprintf(e.stdout, "escrow %s (key %s) serving the bundles of %s on https://%s\n", cert.Name, cert.KeyID().Short(), *dir, ln.Addr())
				if err := serveTLSUntil(ctx, srv, ln, escrowShutdownTimeout); err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, "escrow stopped")
				return nil
			})
		},
	}
}

func escrowReadPrimary(file string) (*enroll.Primary, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	p, err := enroll.ParsePrimary(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return p, nil
}

func escrowFetchCommand() *command {
	return &command{
		name:    "fetch",
		summary: "fetch a region's release bundles from the key escrow, checking its signed answer",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			var hf hsmFlags
			hf.register(fs, "the regional")
			url := fs.String("escrow", "", "the escrow's URL, https://HOST:PORT (required)")
			region := fs.String("region", "", "the region whose bundles to fetch (required)")
			primaryFile := fs.String("primary", "", "the primary's public keys, primary.pub (required)")
			caFile := fs.String("ca", "", "CA certificates (PEM) to trust for the escrow's TLS certificate (default: the system's)")
			out := fs.String("out", "", "directory to write the bundles to (required)")
			timeout := fs.Duration("timeout", time.Minute, "how long to wait for the escrow")
			return noArgs(func(ctx context.Context) error {
				if *url == "" || *region == "" || *primaryFile == "" || *out == "" {
					return usageErrorf("--escrow, --region, --primary and --out are required")
				}
				if err := enroll.ValidRegion(*region); err != nil {
					return err
				}
				bundles, err := fetchFromEscrow(ctx, e, &hf, escrowSource{url: *url, region: *region, primary: *primaryFile, ca: *caFile, timeout: *timeout})
				if err != nil {
					return err
				}
				return escrowWriteBundles(e, *out, bundles, *region, *url)
			})
		},
	}
}

// escrowSource is where and how to fetch a region's bundles.
type escrowSource struct {
	url, region, primary, ca string
	timeout                  time.Duration
}

// fetchFromEscrow asks the escrow for the region's bundles with a fresh
// nonce drawn from the regional HSM, and checks the signed answer.
func fetchFromEscrow(ctx context.Context, e *env, hf *hsmFlags, src escrowSource) ([]escrow.Bundle, error) {
	p, err := escrowReadPrimary(src.primary)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS13}
	if src.ca != "" {
		pem, err := os.ReadFile(src.ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", src.ca)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	client := &http.Client{Transport: tr, Timeout: src.timeout}
	defer tr.CloseIdleConnections()
	h, err := hf.open(ctx, e, false)
	if err != nil {
		return nil, err
	}
	nonce, err := h.Random(ctx, 32)
	h.Close()
	if err != nil {
		return nil, fmt.Errorf("draw the nonce from the HSM: %w", err)
	}
	return escrow.Fetch(ctx, client, src.url, src.region, nonce, p, e.now())
}

// escrowWriteBundles writes fetched bundles into dir. A file that exists with the
// same content is left as it is; one with other content is never overwritten,
// and then nothing is written.
func escrowWriteBundles(e *env, dir string, bundles []escrow.Bundle, region, url string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var fresh []escrow.Bundle
	var conflicts []string
	for _, b := range bundles {
		path := filepath.Join(dir, b.Name)
		old, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			fresh = append(fresh, b)
		case err != nil:
			return err
		case !bytes.Equal(old, b.PEM):
			conflicts = append(conflicts, path)
		}
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("%s: already present with other content; refusing to overwrite, nothing was written (move the old files away first)", strings.Join(conflicts, ", "))
	}
	for _, b := range fresh {
		if err := writeNewFile(filepath.Join(dir, b.Name), b.PEM); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote     %s\n", filepath.Join(dir, b.Name))
	}
	fmt.Fprintf(e.stdout, "fetched %d bundle(s) of %s from %s: %d new, %d already present\n",
		len(bundles), region, url, len(fresh), len(bundles)-len(fresh))
	return nil
}
