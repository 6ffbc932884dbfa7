package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockDev takes the dev directory's lock, DIR.lock (an flock, so a crashed
// dev leaves no stale lock), and writes this process's id in it. A second
// 'strongroom dev' on the same directory is refused with the first one's id.
func lockDev(dir string) (release func(), err error) {
	path := dir + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid, _ := os.ReadFile(path)
			return nil, fmt.Errorf("another strongroom dev (PID %s) is running on %s: stop it first, or give this one another --dir",
				strings.TrimSpace(string(pid)), dir)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// checkLoopback refuses a dev listen address that is not on a loopback
// interface: the dev environment's keys and tokens sit in plain files, and
// its certificate names only 127.0.0.1, ::1 and localhost.
func checkLoopback(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return usageErrorf("--listen %q: use HOST:PORT, e.g. 127.0.0.1:8443", listen)
	}
	if loopbackHost(host) {
		return nil
	}
	return usageErrorf("--listen %q is not a loopback address: strongroom dev keeps its keys and tokens in plain files and is for this machine only (use 127.0.0.1:PORT; run 'strongroom server' to serve others)", listen)
}

// loopbackHost reports whether a host name or address is this machine's
// loopback.
func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// stopWhenOrphaned cancels when this process's parent goes away, as when
// 'go run' is killed without passing the signal on: a dev server must not
// outlive the command that started it.
func stopWhenOrphaned(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	parent := os.Getppid()
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != parent {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}
