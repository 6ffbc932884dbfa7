// Package docs is test support: it reads the known-answer examples that the
// byte-level specifications in docs/ carry, so that the package owning each
// format can recompute them with its own code and fail on any difference.
//
// An example is the fenced block that follows a marker line
//
//	<!-- kat: NAME -->
//
// Inside it, a line that starts with a non-space character starts a field:
// its first word is the field's name and the rest of the line its value.
// Lines that start with a space continue the previous field's value. A '#'
// outside a quoted string starts a comment, which runs to the end of the
// line. A value is read as hex (spaces ignored), as one Go-quoted string,
// or as a decimal number. Every field must be read by the test: a field
// that nothing checks fails it.
package docs

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/secret"
)

// Example is one known-answer example of a document.
type Example struct {
	t      testing.TB
	where  string
	fields map[string]string
	order  []string
	read   map[string]bool
}

// KAT returns the example marked NAME in the Markdown file at path. It fails
// t if there is no such example, or if it is malformed. At the end of the
// test, every field of the example must have been read.
func KAT(t testing.TB, path, name string) *Example {
	t.Helper()
	e := read(t, path, name)
	t.Cleanup(func() {
		for _, name := range e.order {
			if !e.read[name] {
				t.Errorf("docs: %s: field %s is checked by no test", e.where, name)
			}
		}
	})
	return e
}

// Peek is KAT for a test that takes a part of an example that another
// test (the one that calls KAT) checks in full: fields it leaves unread
// do not fail it.
func Peek(t testing.TB, path, name string) *Example {
	t.Helper()
	return read(t, path, name)
}

func read(t testing.TB, path, name string) *Example {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("docs: %v", err)
	}
	defer f.Close()
	e := &Example{t: t, where: path + " (kat: " + name + ")", fields: map[string]string{}, read: map[string]bool{}}
	marker := "<!-- kat: " + name + " -->"
	state, found := 0, false // 0 before the marker, 1 before the fence, 2 inside the block
	last := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case state == 0 && strings.TrimSpace(line) == marker:
			if found {
				t.Fatalf("docs: %s: line %d: a second example of that name", e.where, n)
			}
			found, state = true, 1
		case state == 1:
			if !strings.HasPrefix(line, "```") {
				t.Fatalf("docs: %s: line %d: want a fenced block right after the marker", e.where, n)
			}
			state = 2
		case state == 2 && strings.HasPrefix(line, "```"):
			state = 0
		case state == 2:
			text := strings.TrimRight(uncomment(line), " \t")
			switch {
			case strings.TrimSpace(text) == "":
			case text[0] == ' ' || text[0] == '\t':
				if last == "" {
					t.Fatalf("docs: %s: line %d: a continuation line before any field", e.where, n)
				}
				e.fields[last] += " " + strings.TrimSpace(text)
			default:
				name, value, _ := strings.Cut(text, " ")
				if _, dup := e.fields[name]; dup {
					t.Fatalf("docs: %s: line %d: field %s given twice", e.where, n, name)
				}
				e.fields[name], last = strings.TrimSpace(value), name
				e.order = append(e.order, name)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("docs: %s: %v", e.where, err)
	}
	if !found || state != 0 {
		t.Fatalf("docs: %s: no such example, or its block is not closed", e.where)
	}
	return e
}

// uncomment drops a '#' comment that is not inside a quoted string.
func uncomment(line string) string {
	quoted := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == '#' && !quoted:
			return line[:i]
		}
	}
	return line
}

// Raw returns a field's value as written, comments and line breaks removed.
func (e *Example) Raw(name string) string {
	e.t.Helper()
	v, ok := e.fields[name]
	if !ok {
		e.t.Fatalf("docs: %s: no field %s", e.where, name)
	}
	e.read[name] = true
	return v
}

// Hex returns a field written in hex, spaces ignored.
func (e *Example) Hex(name string) []byte {
	e.t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(e.Raw(name), " ", ""))
	if err != nil {
		e.t.Fatalf("docs: %s: field %s: %v", e.where, name, err)
	}
	return b
}

// Text returns a field written as one Go-quoted string.
func (e *Example) Text(name string) string {
	e.t.Helper()
	s, err := strconv.Unquote(e.Raw(name))
	if err != nil {
		e.t.Fatalf("docs: %s: field %s is not one quoted string: %v", e.where, name, err)
	}
	return s
}

// Uint returns a field written as a decimal number.
func (e *Example) Uint(name string) uint64 {
	e.t.Helper()
	n, err := strconv.ParseUint(strings.ReplaceAll(e.Raw(name), " ", ""), 10, 64)
	if err != nil {
		e.t.Fatalf("docs: %s: field %s: %v", e.where, name, err)
	}
	return n
}

// Key returns a field written in hex as a 32-byte key.
func (e *Example) Key(name string) secret.Key {
	e.t.Helper()
	k, err := secret.New(e.Hex(name))
	if err != nil {
		e.t.Fatalf("docs: %s: field %s: %v", e.where, name, err)
	}
	return k
}

// GCM is AES-256-GCM with a given nonce, as the examples of formats with
// random nonces are made: nonce || ciphertext || tag.
func GCM(t testing.TB, key, nonce, plaintext, aad []byte) []byte {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		t.Fatal(err)
	}
	return g.Seal(bytes.Clone(nonce), nonce, plaintext, aad)
}

// P384 returns the ECDSA P-384 key whose private scalar a field gives in
// hex, as a signer that signs deterministically (RFC 6979), so that an
// example's signatures can be made again byte for byte.
func (e *Example) P384(name string) crypto.Signer {
	e.t.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), e.Hex(name))
	if err != nil {
		e.t.Fatalf("docs: %s: field %s: %v", e.where, name, err)
	}
	return deterministic{k}
}

type deterministic struct{ k *ecdsa.PrivateKey }

func (d deterministic) Public() crypto.PublicKey { return d.k.Public() }

func (d deterministic) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return d.k.Sign(nil, digest, opts)
}
