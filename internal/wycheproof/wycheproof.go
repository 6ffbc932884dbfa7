// Package wycheproof gives tests access to the Project Wycheproof test
// vectors (https://github.com/C2SP/wycheproof) at a pinned version.
//
// The vectors ship as the Go module github.com/c2sp/wycheproof, but that
// module embeds about 111 MB of JSON, so Strongroom never imports it. Instead
// this package asks the go command to download the pinned module version into
// the module cache (`go mod download -json`), checks that the go command
// reports the pinned module hash, and reads files from the extracted
// directory. That works on a fresh clone on any machine with Go and access to
// a module proxy (or a module cache that already holds the version), and needs
// no directory outside the repository.
//
// This package is test support: import it only from _test.go files. Every
// failure to locate or decode a file is a test failure (t.Fatal), never a
// skip, so that a missing vector file cannot make a test pass vacuously.
package wycheproof

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The pinned module version and its go.sum hash (the h1: hash of the module
// zip). A different version must change both.
const (
	Module  = "github.com/c2sp/wycheproof"
	Version = "v0.0.0-20260902155932-3fa63dd0344a"
	Sum     = "h1:pNbL2nztRsWfW/ispAwsvcDFxs9Id38uIsR2/Up5G2c="
)

// vectorDir is the directory inside the module that holds the vector files.
const vectorDir = "testvectors_v1"

// moduleDir downloads the pinned module once per process and returns its
// directory.
var moduleDir = sync.OnceValues(func() (string, error) {
	return download(Module, Version, Sum)
})

// download runs the go command for path@version and checks that it reports
// the module hash sum.
//
// It runs in an empty temporary directory with GOWORK=off so that the result
// depends only on the pin and the user's module proxy and cache settings, not
// on the state of this repository's go.mod, which it never modifies.
func download(path, version, sum string) (string, error) {
	tmp, err := os.MkdirTemp("", "wycheproof-download-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)

	cmd := exec.Command("go", "mod", "download", "-json", path+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOWORK=off", "GO111MODULE=on")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	// On failure the go command still prints JSON with an Error field.
	var m struct {
		Path, Version, Dir, Sum, Error string
	}
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		if runErr != nil {
			return "", fmt.Errorf("go mod download %s@%s: %v: %s", path, version, runErr, strings.TrimSpace(stderr.String()))
		}
		return "", fmt.Errorf("go mod download %s@%s: decoding output: %v", path, version, err)
	}
	switch {
	case m.Error != "":
		return "", fmt.Errorf("go mod download %s@%s: %s", path, version, m.Error)
	case runErr != nil:
		return "", fmt.Errorf("go mod download %s@%s: %v: %s", path, version, runErr, strings.TrimSpace(stderr.String()))
	case m.Path != path || m.Version != version:
		return "", fmt.Errorf("go mod download reported %s@%s, want %s@%s", m.Path, m.Version, path, version)
	case m.Sum != sum:
		return "", fmt.Errorf("go mod download %s@%s: module hash %q, want pinned %q", path, version, m.Sum, sum)
	case m.Dir == "":
		return "", fmt.Errorf("go mod download %s@%s: no directory reported", path, version)
	}
	fi, err := os.Stat(filepath.Join(m.Dir, vectorDir))
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", filepath.Join(m.Dir, vectorDir))
	}
	return m.Dir, nil
}

// Dir returns the directory of the pinned module in the module cache,
// downloading the module on first use. It calls t.Fatal on any failure.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := moduleDir()
	if err != nil {
		t.Fatalf("wycheproof: %v", err)
	}
	return dir
}

// Load reads the vector file testvectors_v1/<name> of the pinned module and
// JSON-decodes it into v. It calls t.Fatal if the file is missing, cannot be
// read or does not decode into v.
func Load(t testing.TB, name string, v any) {
	t.Helper()
	if !filepath.IsLocal(name) || strings.ContainsAny(name, `/\`) {
		t.Fatalf("wycheproof: invalid vector file name %q", name)
	}
	path := filepath.Join(Dir(t), vectorDir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("wycheproof: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("wycheproof: decoding %s: %v", name, err)
	}
}

// Hex is a byte string that appears hex-encoded in the vector files.
type Hex []byte

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hex) UnmarshalText(text []byte) error {
	b := make([]byte, hex.DecodedLen(len(text)))
	if _, err := hex.Decode(b, text); err != nil {
		return fmt.Errorf("wycheproof: bad hex string: %w", err)
	}
	*h = b
	return nil
}

// Result is the outcome a vector expects: valid, invalid or acceptable.
type Result string

// The results a vector file can give. Strongroom treats acceptable inputs
// (legal but weak or unusual) like invalid ones: it rejects them.
const (
	Valid      Result = "valid"
	Invalid    Result = "invalid"
	Acceptable Result = "acceptable"
)

// UnmarshalText implements encoding.TextUnmarshaler and refuses any result
// other than the three known ones, so that a typo or a new value in a vector
// file cannot silently fall through a test's switch.
func (r *Result) UnmarshalText(text []byte) error {
	switch v := Result(text); v {
	case Valid, Invalid, Acceptable:
		*r = v
		return nil
	}
	return fmt.Errorf("wycheproof: unknown result %q", text)
}
