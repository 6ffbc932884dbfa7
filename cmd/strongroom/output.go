package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// print prints what a command found: v as JSON with --output json, else
// what text writes. v should be the API's own type where there is one, so
// that scripts read the same fields the API documents.
func (e *env) print(v any, text func(w io.Writer) error) error {
	if e.output == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return text(e.stdout)
}

// outputTo prepares a command whose output file is path: when path is "-",
// the file's bytes go to standard output, and what the command says goes to
// standard error instead, so that the output can be piped.
func (e *env) outputTo(path string) {
	if path == "-" && e.data == nil {
		e.data, e.stdout = e.stdout, e.stderr
	}
}

// writeNew writes an output file that must not exist yet (writeNewFileMode),
// or to standard output when path is "-" (after outputTo).
func (e *env) writeNew(mode os.FileMode, path string, data []byte) error {
	if path == "-" {
		w := e.data
		if w == nil {
			w = e.stdout
		}
		_, err := w.Write(data)
		return err
	}
	return writeNewFileMode(mode, path, data)
}

// choice is a string flag that takes one of a fixed set of values: anything
// else is a usage error naming the flag and the values.
type choice struct {
	v       *string
	allowed []string
}

func (c choice) String() string {
	if c.v == nil {
		return ""
	}
	return *c.v
}

func (c choice) Type() string { return "string" }

func (c choice) Set(s string) error {
	if !slices.Contains(c.allowed, s) {
		return fmt.Errorf("use one of %s", strings.Join(c.allowed, ", "))
	}
	*c.v = s
	return nil
}

// choiceFlag defines a choice flag with a default value.
func choiceFlag(fs *pflag.FlagSet, name, value, usage string, allowed ...string) *string {
	v := value
	fs.Var(choice{v: &v, allowed: allowed}, name, usage)
	return &v
}

// keyTypeFlag is --type: one of the product's key types.
func keyTypeFlag(fs *pflag.FlagSet, value, usage string) *string {
	return choiceFlag(fs, "type", value, usage+" ("+strings.Join(tenant.KeyTypes(), ", ")+")", tenant.KeyTypes()...)
}
