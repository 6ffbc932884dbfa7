package fuzzcorpus

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing, and
// holds cleanups until told to run them.
type recorder struct {
	testing.TB
	errs, fatals []string
	cleanups     []func()
}

func (r *recorder) Error(args ...any) {
	r.errs = append(r.errs, fmt.Sprint(args...))
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Failed() bool     { return len(r.errs)+len(r.fatals) > 0 }
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *recorder) Fatal(args ...any) {
	r.fatals = append(r.fatals, fmt.Sprint(args...))
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }

// run calls f as a test body would run: in its own goroutine, which Fatal
// ends. Then it runs the cleanups.
func (r *recorder) run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func addSeeds(w *Writer) {
	w.Add("FuzzOpen", "valid", []byte("\x01ct"), "field", "ssn")
	w.Add("FuzzOpen", "no-context", []byte("\x01"), "", "")
	w.Add("FuzzParse", "valid", []byte{0, 1, 2})
}

var wantFiles = map[string]string{
	"FuzzOpen/valid":      "go test fuzz v1\n[]byte(\"\\x01ct\")\nstring(\"field\")\nstring(\"ssn\")\n",
	"FuzzOpen/no-context": "go test fuzz v1\n[]byte(\"\\x01\")\nstring(\"\")\nstring(\"\")\n",
	"FuzzParse/valid":     "go test fuzz v1\n[]byte(\"\\x00\\x01\\x02\")\n",
}

// checkFiles checks that dir holds exactly wantFiles.
func checkFiles(t *testing.T, dir string) {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(dir, path)
		got, _ := os.ReadFile(path)
		if want, ok := wantFiles[filepath.ToSlash(rel)]; !ok || string(got) != want {
			t.Errorf("%s = %q, want %q", rel, got, want)
		}
		return nil
	})
	if n != len(wantFiles) {
		t.Errorf("%s holds %d files, want %d", dir, n, len(wantFiles))
	}
}

func TestWriterRegeneratesThenChecks(t *testing.T) {
	committed := filepath.Join(t.TempDir(), "testdata", "fuzz")
	r := &recorder{TB: t}
	var w *Writer
	r.run(func() {
		w = newWriter(r, committed, true)
		addSeeds(w)
	})
	if r.Failed() || !w.Regenerating() {
		t.Fatalf("regenerating: Regenerating() = %v, errors %q %q, want true and none", w.Regenerating(), r.errs, r.fatals)
	}
	checkFiles(t, committed)

	// Without STRONGROOM_WRITE_CORPUS, the same seeds go to a temporary
	// directory, and the committed corpora pass the check.
	writeFile(t, filepath.Join(committed, "FuzzParse", "found-by-fuzzing"), "go test fuzz v1\n[]byte(\"\\xff\")\n")
	r = &recorder{TB: t}
	r.run(func() {
		w = newWriter(r, committed, false)
		addSeeds(w)
	})
	if r.Failed() || w.Regenerating() {
		t.Fatalf("checking: Regenerating() = %v, errors %q %q, want false and none", w.Regenerating(), r.errs, r.fatals)
	}
	checkFiles(t, w.dir)
	if got, err := os.ReadFile(filepath.Join(committed, "FuzzOpen", "valid")); err != nil || string(got) != wantFiles["FuzzOpen/valid"] {
		t.Errorf("checking rewrote a committed file: %q, %v", got, err)
	}
}

func TestWriterReportsBadCorpora(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // committed files; a name ending in / is a directory
		want  []string          // one error containing each, in order
	}{
		{"missing", nil, []string{"no committed seed corpus", "no committed seed corpus"}},
		{"empty", map[string]string{"FuzzOpen/": "", "FuzzParse/sub/": ""}, []string{"FuzzOpen is empty", "FuzzParse is empty"}},
		{"malformed", map[string]string{
			"FuzzOpen/valid":  "go test fuzz v1\n[]byte(\"a\")\nstring(\"b\")\nstring(\"c\")\n",
			"FuzzOpen/bad":    "go test fuzz v1\n[]byte(\"a\")\nstring(b)\nstring(\"c\")\n",
			"FuzzParse/valid": "go test fuzz v2\n[]byte(\"a\")\n",
		}, []string{"FuzzOpen/bad: line 3", "FuzzParse/valid: first line"}},
		{"other types", map[string]string{
			"FuzzOpen/valid":  "go test fuzz v1\n[]byte(\"a\")\nstring(\"b\")\n",
			"FuzzParse/valid": "go test fuzz v1\nstring(\"a\")\n",
		}, []string{"holds ([]uint8, string), want ([]uint8, string, string)", "holds (string), want ([]uint8)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			committed := filepath.Join(t.TempDir(), "fuzz")
			for name, data := range tt.files {
				if strings.HasSuffix(name, "/") {
					os.MkdirAll(filepath.Join(committed, name), 0o755)
				} else {
					writeFile(t, filepath.Join(committed, name), data)
				}
			}
			r := &recorder{TB: t}
			r.run(func() { addSeeds(newWriter(r, committed, false)) })
			if len(r.fatals) != 0 || len(r.errs) != len(tt.want) {
				t.Fatalf("errors %q, fatal %q, want %d errors", r.errs, r.fatals, len(tt.want))
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(r.errs[i], "fuzzcorpus: ") || !strings.Contains(filepath.ToSlash(r.errs[i]), want) {
					t.Errorf("error %d = %q, want it to contain %q", i, r.errs[i], want)
				}
			}
		})
	}
}

func TestWriterRefuses(t *testing.T) {
	tests := []struct {
		name string
		add  func(w *Writer)
		want string
	}{
		{"no seeds", func(w *Writer) {}, "no seeds"},
		{"types differ", func(w *Writer) {
			w.Add("FuzzParse", "a", []byte("x"))
			w.Add("FuzzParse", "b", "x")
		}, "seed FuzzParse/b holds (string), but an earlier seed of FuzzParse holds ([]uint8)"},
		{"unsupported value", func(w *Writer) { w.Add("FuzzParse", "a", 1i) }, "complex128"},
		{"no values", func(w *Writer) { w.Add("FuzzParse", "a") }, "at least one value"},
		{"bad fuzz name", func(w *Writer) { w.Add("TestParse", "a", "x") }, "not the name of a fuzz test"},
		{"bad seed name", func(w *Writer) { w.Add("FuzzParse", "../a", "x") }, "not a plain file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			committed := filepath.Join(t.TempDir(), "fuzz")
			r := &recorder{TB: t}
			r.run(func() { tt.add(newWriter(r, committed, true)) })
			failures := append(r.fatals, r.errs...)
			if len(failures) == 0 || !strings.Contains(failures[0], tt.want) {
				t.Errorf("failures %q, want the first to contain %q", failures, tt.want)
			}
		})
	}
}

func TestCheckNames(t *testing.T) {
	tests := []struct {
		fuzz, seed string
		ok         bool
	}{
		{"FuzzParse", "valid", true},
		{"FuzzParse_v2", "seed-0123abcd", true},
		{"FuzzÄ", "no-context", true},
		{"Fuzz", "valid", true},
		{"TestParse", "valid", false},
		{"", "valid", false},
		{"Fuzz/Parse", "valid", false},
		{"Fuzz Parse", "valid", false},
		{"FuzzParse", "", false},
		{"FuzzParse", ".", false},
		{"FuzzParse", "..", false},
		{"FuzzParse", ".hidden", false},
		{"FuzzParse", "a/b", false},
		{"FuzzParse", `a\b`, false},
		{"FuzzParse", "/abs", false},
	}
	for _, tt := range tests {
		if err := checkNames(tt.fuzz, tt.seed); (err == nil) != tt.ok {
			t.Errorf("checkNames(%q, %q) = %v, want ok %v", tt.fuzz, tt.seed, err, tt.ok)
		}
	}
}
