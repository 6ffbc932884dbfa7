package k8splugin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"regexp"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	kmsapi "k8s.io/kms/apis/v2"
	"k8s.io/kms/pkg/service"
)

// SocketMode is the mode of the plugin's socket: only its owner (the user
// kube-apiserver runs as, normally root) may connect.
const SocketMode = 0o600

// ShutdownTimeout bounds how long Serve waits for calls in flight once its
// context ends.
const ShutdownTimeout = 10 * time.Second

// grpcError makes err a gRPC status whose message is its reason.
func grpcError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrDecrypt):
		code = codes.InvalidArgument
	case errors.Is(err, ErrUnavailable):
		code = codes.Unavailable
	case errors.Is(err, ErrDestroyed), errors.Is(err, ErrRefused):
		code = codes.FailedPrecondition
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	return status.Error(code, prefixes.ReplaceAllString(err.Error(), "$1"))
}

// prefixes are the package prefixes a message to kube-apiserver goes
// without.
var prefixes = regexp.MustCompile(`(^|: )(?:k8splugin|client|envelope): `)

// Listen listens on the unix socket path with mode SocketMode. A socket
// left there by a plugin that is gone is removed; anything else at path (a
// file, or a socket something still answers on) is an error.
func Listen(path string) (net.Listener, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("k8splugin: %w", err)
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("k8splugin: %s exists and is not a socket: remove it, or choose another --socket", path)
	default:
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("k8splugin: something listens on %s already (another plugin?)", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("k8splugin: removing the stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("k8splugin: %w", err)
	}
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("k8splugin: %w", err)
	}
	return ln, nil
}

// Serve serves svc's KMS v2 API (k8s.io/kms/apis/v2) on ln until ctx ends,
// then stops gracefully (ShutdownTimeout at most) and closes ln, which
// removes a unix socket's file.
func Serve(ctx context.Context, ln net.Listener, svc service.Service, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gs := grpc.NewServer()
	// k8s.io/kms's GRPCService is the adapter from its Service to the
	// generated API; the listener is ours, for the socket's mode.
	kmsapi.RegisterKeyManagementServiceServer(gs, service.NewGRPCService(ln.Addr().String(), ShutdownTimeout, svc))
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(ln) }()
	logger.Info("k8s-plugin: serving the KMS v2 API", "socket", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("k8splugin: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(ShutdownTimeout):
		gs.Stop()
		<-stopped
	}
	<-errc
	logger.Info("k8s-plugin: stopped")
	return nil
}
