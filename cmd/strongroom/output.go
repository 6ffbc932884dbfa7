package main

import (
	"encoding/json"
	"io"
	"os"
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
