// Command strongroom is the one binary of Strongroom, an HSM-rooted,
// multi-tenant key management service. Run 'strongroom help' for the commands.
//
// The command tree is declared as data (command, below) and run by
// spf13/cobra: cobra parses the flags (GNU style, with pflag), prints help on
// standard output, suggests commands ("did you mean"), and generates shell
// completion. What is Strongroom's own is only the convention every command
// shares: errors in one line with a hint, exit status 2 for a usage error
// and 1 for a failure, and --output for commands that print data.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// command is one node of the command tree.
type command struct {
	name    string
	summary string
	usage   string // arguments after the command path
	// flags declares the command's flags and returns the function that runs
	// it once they are parsed.
	flags func(fs *pflag.FlagSet, e *env) func(ctx context.Context, args []string) error
	subs  []*command
}

// env is what a command may touch of the outside world.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	now            func() time.Time
	// output is the --output format: "text" or "json".
	output string
	// data is where an output file named "-" goes (outputTo).
	data io.Writer
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
			statusCommand(),
			tenantCommand(),
			tokenCommand(),
			keyCommand(),
			auditCommand(),
			dataCommand("encrypt"),
			dataCommand("decrypt"),
			rewrapCommand(),
			syncCommand(),
			benchCommand(),
			releaseCommand(),
			brokerCommand(),
			keyserviceCommand(),
			k8sPluginCommand(),
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
	cli := cobraCommand(root(), e)
	cli.Version = version
	cli.SetVersionTemplate(versionLine() + "\n")
	cli.SilenceErrors, cli.SilenceUsage = true, true
	cli.SetIn(e.stdin)
	cli.SetOut(e.stdout)
	cli.SetErr(e.stderr)
	cli.SetArgs(args)
	cli.PersistentFlags().StringVarP(&e.output, "output", "o", "text", "how commands that print data print it: text or json")
	cli.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErrorf("%v", err) })
	cli.PersistentPreRunE = func(*cobra.Command, []string) error {
		if e.output != "text" && e.output != "json" {
			return usageErrorf("--output must be text or json, not %q", e.output)
		}
		return nil
	}
	cmd, err := cli.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	path := "strongroom"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	fmt.Fprintf(e.stderr, "%s: %s\n", path, strings.TrimPrefix(userMessage(err), errUsage.Error()+": "))
	if errors.Is(err, errUsage) {
		fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", path)
		return 2
	}
	return 1
}

// cobraCommand turns c and its subcommands into cobra commands.
func cobraCommand(c *command, e *env) *cobra.Command {
	cc := &cobra.Command{
		Use:   strings.TrimSpace(c.name + " " + c.usage),
		Short: c.summary,
		// Commands say when they take no arguments themselves, with a
		// message that tells what they do take.
		Args:                  cobra.ArbitraryArgs,
		DisableFlagsInUseLine: true,
	}
	if c.flags != nil {
		fn := c.flags(cc.Flags(), e)
		cc.RunE = func(cmd *cobra.Command, args []string) error { return fn(cmd.Context(), args) }
		return cc
	}
	for _, s := range c.subs {
		cc.AddCommand(cobraCommand(s, e))
	}
	cc.SuggestionsMinimumDistance = 2
	// A group run alone prints its help; with an unknown word it says so,
	// with cobra's suggestions.
	cc.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q", cmd.CommandPath()+" "+args[0])
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", cmd.CommandPath()+" "+s[0])
		}
		return usageErrorf("%s", msg)
	}
	return cc
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

func versionLine() string {
	return fmt.Sprintf("strongroom %s (PKCS#11 support: %s)", version, pkcs11Support)
}

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print the version and what is built in",
		flags: func(fs *pflag.FlagSet, e *env) func(context.Context, []string) error {
			return noArgs(func(context.Context) error {
				return e.print(struct {
					Version string `json:"version"`
					PKCS11  string `json:"pkcs11"`
				}{version, pkcs11Support}, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, versionLine())
					return err
				})
			})
		},
	}
}
