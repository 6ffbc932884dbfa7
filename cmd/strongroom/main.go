// Command strongroom is the one binary of Strongroom, an HSM-rooted,
// multi-tenant key management service. Run 'strongroom help' for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// command is one node of the command tree.
type command struct {
	name    string
	summary string
	usage   string // arguments after the command path
	// flags declares the command's flags and returns the function that runs
	// it once they are parsed.
	flags func(fs *flag.FlagSet, e *env) func(ctx context.Context, args []string) error
	subs  []*command
}

// env is what a command may touch of the outside world.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
}

// errUsage marks an error in how the command was called (exit status 2).
var errUsage = errors.New("usage")

func usageErrorf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

func root() *command {
	return &command{
		name:    "strongroom",
		summary: "HSM-rooted, multi-tenant key management",
		subs: []*command{
			hsmCommand(),
			regionCommand(),
			officerCommand(),
			ceremonyCommand(),
			escrowCommand(),
			serverCommand(),
			devCommand(),
			tenantCommand(),
			tokenCommand(),
			keyCommand(),
			auditCommand(),
			dataCommand("encrypt"),
			dataCommand("decrypt"),
			releaseCommand(),
			brokerCommand(),
			versionCommand(),
		},
	}
}

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, now: time.Now}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, e, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes args and returns the exit status.
func run(ctx context.Context, e *env, args []string) int {
	cmd, path, rest := root(), "strongroom", args
	for len(cmd.subs) > 0 {
		if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
			printHelp(e.stdout, path, cmd)
			if len(rest) == 0 {
				return 2
			}
			return 0
		}
		next := find(cmd, rest[0])
		if next == nil {
			fmt.Fprintf(e.stderr, "strongroom: unknown command %q; run '%s help'\n", strings.TrimSpace(path+" "+rest[0]), path)
			return 2
		}
		cmd, path, rest = next, path+" "+next.name, rest[1:]
	}
	fs := flag.NewFlagSet(path, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fn := cmd.flags(fs, e)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s [flags] %s\n\n%s\n\nFlags:\n", path, cmd.usage, cmd.summary)
		fs.PrintDefaults()
	}
	positional, err := parseInterspersed(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := fn(ctx, positional); err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", path, strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		if errors.Is(err, errUsage) {
			fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", path)
			return 2
		}
		return 1
	}
	return 0
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments ("tenant create acme --env production"); "--" ends
// the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

func find(c *command, name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

func printHelp(w io.Writer, path string, c *command) {
	fmt.Fprintf(w, "%s: %s\n\nUsage: %s <command> [flags]\n\nCommands:\n", path, c.summary, path)
	subs := append([]*command(nil), c.subs...)
	sort.Slice(subs, func(i, j int) bool { return subs[i].name < subs[j].name })
	for _, s := range subs {
		fmt.Fprintf(w, "  %-10s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> --help' for details.\n", path)
}

// noArgs wraps a command body that takes no positional arguments.
func noArgs(fn func(ctx context.Context) error) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			return usageErrorf("unexpected arguments %q", args)
		}
		return fn(ctx)
	}
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print the version and what is built in",
		flags: func(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
			return noArgs(func(context.Context) error {
				fmt.Fprintf(e.stdout, "strongroom %s (PKCS#11 support: %s)\n", version, pkcs11Support)
				return nil
			})
		},
	}
}
