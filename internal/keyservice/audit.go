package keyservice

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// The audit log, DIR/audit.jsonl: one JSON object a line, appended under the
// directory's lock, never rewritten (docs/keyservice.md):
//
//	{"seq":1,"time":"…","action":"fetch","kid":"…","outcome":"ok","reason":"",
//	 "remote":"127.0.0.1:50000","client":"bearer","prev":"<hex>","mac":"<hex>"}
//
// seq counts from 1; prev is the SHA-256 of the previous line (without its
// newline), 64 zeros on the first; mac is HMAC-SHA256 under the directory's
// audit key of the same object with "mac" left out, so that a line changed
// on purpose (its hashes recomputed) is caught too, and named. The fields
// are in that order and encoded as encoding/json does: a line that does not
// encode back to itself is refused.

const (
	auditFileName = "audit.jsonl"
	maxAuditLine  = 16 << 10
)

// Actions of the audit log.
const (
	ActionFetch   = "fetch"
	ActionCreate  = "key.create"
	ActionRevoke  = "key.revoke"
	ActionRestore = "key.restore"
)

// Outcomes of the audit log.
const (
	OutcomeOK         = "ok"
	OutcomeRevoked    = "revoked"
	OutcomeUnknownKid = "unknown_kid"
	OutcomeRefused    = "refused"
	OutcomeError      = "error"
)

// Entry is one record of the audit log. It never holds key material.
type Entry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Action  string    `json:"action"`
	Kid     string    `json:"kid"`
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason"`
	// Remote is the client's address, for fetches.
	Remote string `json:"remote"`
	// Client is who fetched: "bearer", or "sha256:<hex>" of the pinned
	// client certificate's SPKI; for a refused fetch, what was presented.
	Client string `json:"client"`
	Prev   string `json:"prev"`
	MAC    string `json:"mac,omitempty"`
}

// AuditError names the first bad line of an audit log.
type AuditError struct {
	Line   int
	Reason string
}

func (e *AuditError) Error() string {
	return fmt.Sprintf("keyservice: audit log line %d: %s", e.Line, e.Reason)
}

var zeroHash = hex.EncodeToString(make([]byte, sha256.Size))

func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

func (d *Dir) mac(e Entry) string {
	e.MAC = ""
	b, err := json.Marshal(e)
	if err != nil {
		panic(err) // unreachable: plain strings and a time
	}
	m := hmac.New(sha256.New, d.auditKey.Bytes())
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil))
}

// check parses one line and checks its encoding and MAC.
func (d *Dir) check(line []byte) (Entry, string) {
	var e Entry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || dec.More() {
		return e, "not a well-formed entry"
	}
	if b, err := json.Marshal(e); err != nil || !bytes.Equal(b, line) {
		return e, "not in the canonical encoding (the line was changed)"
	}
	if !hmac.Equal([]byte(d.mac(e)), []byte(e.MAC)) {
		return e, "its MAC does not verify (the line was changed, or written under another passphrase)"
	}
	return e, ""
}

// Append adds e to the audit log, under the directory's lock; Seq, Prev and
// MAC are set here, and Time when zero.
func (d *Dir) Append(e Entry) error {
	unlock, err := lock(d.path)
	if err != nil {
		return err
	}
	defer unlock()
	return d.appendLocked(e)
}

// appendLocked appends e; the caller holds the lock.
func (d *Dir) appendLocked(e Entry) error {
	f, err := os.OpenFile(filepath.Join(d.path, auditFileName), os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("keyservice: audit log: %w", err)
	}
	defer f.Close()
	if e.Seq, e.Prev, err = d.tail(f); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = d.now()
	}
	e.Time = e.Time.UTC()
	e.MAC = d.mac(e)
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("keyservice: audit log: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("keyservice: audit log: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("keyservice: audit log: %w", err)
	}
	return nil
}

// tail returns the sequence number and prev of the next entry of the open
// log f, refusing to go on from a last line that is bad.
func (d *Dir) tail(f *os.File) (uint64, string, error) {
	last, err := lastLine(f)
	if err != nil || last == nil {
		return 1, zeroHash, err
	}
	prev, bad := d.check(last)
	if bad != "" {
		return 0, "", fmt.Errorf("keyservice: audit log: the last line is bad (%s); run 'strongroom keyservice audit verify'", bad)
	}
	return prev.Seq + 1, lineHash(last), nil
}

// appendable checks, before a change, that its entry can be appended; the
// caller holds the lock.
func (d *Dir) appendable() error {
	f, err := os.Open(filepath.Join(d.path, auditFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("keyservice: audit log: %w", err)
	}
	defer f.Close()
	_, _, err = d.tail(f)
	return err
}

// lastLine returns the last line of f without its newline, nil if f is
// empty.
func lastLine(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyservice: audit log: %w", err)
	}
	size := st.Size()
	if size == 0 {
		return nil, nil
	}
	n := min(size, maxAuditLine+1)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, size-n); err != nil {
		return nil, fmt.Errorf("keyservice: audit log: %w", err)
	}
	if buf[len(buf)-1] != '\n' {
		return nil, errors.New("keyservice: audit log: the last line is incomplete; run 'strongroom keyservice audit verify'")
	}
	buf = buf[:len(buf)-1]
	i := bytes.LastIndexByte(buf, '\n')
	if i < 0 && n == size {
		return buf, nil
	}
	if i < 0 {
		return nil, errors.New("keyservice: audit log: the last line is too long")
	}
	return buf[i+1:], nil
}

// VerifyAudit reads the whole audit log and checks every line: its
// encoding, its MAC, its sequence number and its link to the line before.
// It returns the number of entries and the SHA-256 of the last line (keep
// it: a log cut short after that line is told apart only by comparing), or
// an *AuditError naming the first bad line. An absent log has no entries.
func (d *Dir) VerifyAudit() (int, string, error) {
	f, err := os.Open(filepath.Join(d.path, auditFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, zeroHash, nil
	} else if err != nil {
		return 0, "", fmt.Errorf("keyservice: audit log: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	prev, n := zeroHash, 0
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return n, prev, nil
		}
		n++
		switch {
		case errors.Is(err, bufio.ErrBufferFull) || len(line) > maxAuditLine+1:
			return n - 1, prev, &AuditError{n, "too long"}
		case errors.Is(err, io.EOF):
			return n - 1, prev, &AuditError{n, "incomplete (no newline at its end)"}
		case err != nil:
			return n - 1, prev, fmt.Errorf("keyservice: audit log: %w", err)
		}
		line = line[:len(line)-1]
		e, bad := d.check(line)
		switch {
		case bad != "":
			return n - 1, prev, &AuditError{n, bad}
		case e.Seq != uint64(n):
			return n - 1, prev, &AuditError{n, fmt.Sprintf("sequence number %d, want %d (a line was dropped, added or moved)", e.Seq, n)}
		case e.Prev != prev:
			return n - 1, prev, &AuditError{n, "does not chain to the line before it (its prev is not that line's SHA-256)"}
		}
		prev = lineHash(line)
	}
}
