package wycheproof

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	var f struct {
		Algorithm     string `json:"algorithm"`
		NumberOfTests int    `json:"numberOfTests"`
		TestGroups    []struct {
			Tests []struct {
				TcID   int    `json:"tcId"`
				Key    Hex    `json:"key"`
				Result Result `json:"result"`
			} `json:"tests"`
		} `json:"testGroups"`
	}
	Load(t, "aes_wrap_test.json", &f)
	if f.Algorithm != "AES-WRAP" {
		t.Fatalf("algorithm = %q, want AES-WRAP", f.Algorithm)
	}
	n := 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			n++
			if len(tc.Key) == 0 {
				t.Errorf("tcId %d: empty key", tc.TcID)
			}
		}
	}
	if n != f.NumberOfTests || n != 165 {
		t.Fatalf("decoded %d tests, header says %d, want 165", n, f.NumberOfTests)
	}
}

func TestDir(t *testing.T) {
	dir := Dir(t)
	if Dir(t) != dir {
		t.Fatal("Dir is not stable")
	}
	if _, err := os.Stat(filepath.Join(dir, vectorDir, "aes_gcm_test.json")); err != nil {
		t.Fatal(err)
	}
}

// TestDownloadChecksSum checks that a module hash other than the pinned one
// is refused.
func TestDownloadChecksSum(t *testing.T) {
	Dir(t) // the module is in the cache from here on
	_, err := download(Module, Version, "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	if err == nil || !strings.Contains(err.Error(), "module hash") {
		t.Fatalf("wrong pinned sum: err = %v, want a module hash mismatch", err)
	}
}

func TestHex(t *testing.T) {
	var v struct{ A, B Hex }
	if err := json.Unmarshal([]byte(`{"A":"00ff10","B":""}`), &v); err != nil {
		t.Fatal(err)
	}
	if string(v.A) != "\x00\xff\x10" || v.B == nil || len(v.B) != 0 {
		t.Fatalf("got %x %x", v.A, v.B)
	}
	for _, bad := range []string{`{"A":"0"}`, `{"A":"zz"}`, `{"A":12}`} {
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("%s: decoded without error", bad)
		}
	}
}

func TestResult(t *testing.T) {
	var r Result
	for _, s := range []Result{Valid, Invalid, Acceptable} {
		if err := r.UnmarshalText([]byte(s)); err != nil || r != s {
			t.Errorf("%q: got %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Valid", "ok"} {
		if err := r.UnmarshalText([]byte(s)); err == nil {
			t.Errorf("%q: accepted", s)
		}
	}
}

// TestLoadRejectsPaths checks that names that would escape the vector
// directory are refused.
func TestLoadRejectsPaths(t *testing.T) {
	for _, name := range []string{"../go.mod", "/etc/passwd", "a/b.json", ""} {
		ft := &fatalRecorder{TB: t}
		func() {
			defer func() { _ = recover() }()
			var v any
			Load(ft, name, &v)
		}()
		if !ft.failed {
			t.Errorf("Load(%q) did not fail", name)
		}
	}
}

// fatalRecorder records Fatalf instead of stopping the test; it panics to
// unwind Load like runtime.Goexit would.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
func (f *fatalRecorder) Helper()               {}
