// Package audit is Strongroom's tamper-evident audit log.
//
// Every key event is one Entry. Entries are numbered 1, 2, 3… (Seq) and form
// two structures at once:
//
//   - a hash chain: each entry's Hash covers its content and the previous
//     entry's Hash (Prev), so that an entry altered, dropped, inserted or
//     moved without recomputing every later hash is caught at that entry;
//   - an RFC 6962 Merkle tree over the entries' leaf hashes, whose root, with
//     the chain head, is signed in periodic checkpoints by an ECDSA P-384 key
//     held in the regional HSM. A checkpoint catches what the chain alone
//     cannot: a rewrite that recomputes every later hash, and a truncated tail.
//
// The package is storage-agnostic. A store keeps the entries (with their Seq,
// Prev and Hash) and a State, and appends with State.Append in the same
// transaction as the event it records; something signs State.Checkpoint from
// time to time with SignCheckpoint; Verify (or a Verifier, to stream) walks
// the stored entries and checkpoints and names the first bad entry.
//
// The encodings and hash constructions are specified in docs/audit.md.
package audit

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Entry is one audit record.
type Entry struct {
	// Seq numbers the entries of a log 1, 2, 3… without gaps.
	Seq uint64
	// Time is when the event happened, to the microsecond (Chain and
	// State.Append truncate it and convert it to UTC).
	Time time.Time
	// Actor is who acted: an API token ID, or ActorSystem, ActorCLI or
	// ActorAnonymous.
	Actor string
	// Role is the actor's role ("operator", "tenant-admin", "app",
	// "auditor", …), or "" when the actor has none.
	Role string
	// Tenant is the tenant ID the event concerns, or "".
	Tenant string
	// Action is what was done or attempted (one of the Action constants, or
	// any name of the same shape).
	Action Action
	// Key names the key concerned, e.g. "data/3" (type/version within
	// Tenant), or "".
	Key string
	// Outcome says whether the action was done, refused or failed.
	Outcome Outcome
	// Reason is a short error class ("forbidden", "not_found",
	// "rate_limited"…); required unless Outcome is OutcomeOK, empty if it is.
	Reason string
	// Remote is the client's address, or "".
	Remote string
	// Request is the request ID, or "".
	Request string
	// Detail is a little free text for people. Never secrets.
	Detail string
	// Count is 0 for a single event. An aggregate entry (encryptions and
	// decryptions are recorded this way) sets it to the number of operations
	// it stands for.
	Count uint64

	// Prev is the chain hash of entry Seq−1; all zeros for entry 1.
	Prev [32]byte
	// Hash is the chain hash of this entry: ChainHash(Prev, LeafHash(e)).
	Hash [32]byte
}

// Head is the end of a chain: the Seq and Hash of its last entry. The zero
// Head is the empty log's.
type Head struct {
	Seq  uint64
	Hash [32]byte
}

// Head returns the chain head that e ends.
func (e Entry) Head() Head { return Head{Seq: e.Seq, Hash: e.Hash} }

// Action names what an entry records: lower-case dotted words, such as
// "key.rotate". New actions need no change here, only the right shape.
type Action string

// The actions Strongroom records.
const (
	ActionGenerate       Action = "key.generate"    // a tenant key made in the region
	ActionUpload         Action = "key.upload"      // a tenant key brought in (BYOK)
	ActionWrap           Action = "key.wrap"        // a key wrapped for a caller
	ActionUnwrap         Action = "key.unwrap"      // a wrapped key opened for a caller
	ActionDerive         Action = "key.derive"      // a key derived for a caller
	ActionDeliver        Action = "key.deliver"     // a DEK handed to an application
	ActionEncrypt        Action = "key.encrypt"     // server-side encryptions (aggregate)
	ActionRewrap         Action = "key.rewrap"      // server-side rewraps, counted under the version left (aggregate)
	ActionDecrypt        Action = "key.decrypt"     // server-side decryptions (aggregate)
	ActionRotate         Action = "key.rotate"      // a new active version
	ActionDestroy        Action = "key.destroy"     // a key version destroyed
	ActionExport         Action = "key.export"      // a key exported (wrapped)
	ActionImport         Action = "key.import"      // a key imported from an export
	ActionReleaseInstall Action = "release.install" // a release bundle installed
	ActionCeremonyStep   Action = "ceremony.step"   // a ceremony step run at the region
	ActionTokenUse       Action = "token.use"       // a token presented (or refused)
)

// Outcome is how an action ended.
type Outcome string

// The outcomes. Every refusal is recorded, with OutcomeRefused and a Reason.
const (
	OutcomeOK      Outcome = "ok"
	OutcomeRefused Outcome = "refused" // not allowed, invalid, rate limited…
	OutcomeError   Outcome = "error"   // allowed but failed
)

// Actors that are not API tokens.
const (
	ActorSystem    = "system"    // the server itself (schedules, start-up)
	ActorCLI       = "cli"       // a local command run against the store
	ActorAnonymous = "anonymous" // a caller that presented no valid credentials
)

// Bounds on the fields, in bytes.
const (
	maxActor   = 128
	maxRole    = 32
	maxTenant  = 64
	maxAction  = 64
	maxKey     = 128
	maxReason  = 64
	maxRemote  = 128
	maxRequest = 128
)

// MaxDetail is the most bytes an entry's Detail may hold.
const MaxDetail = 1024

// isWord reports whether s is a lower-case letter followed by lower-case
// letters, digits, '.', '_' or '-': the shape of roles and reasons.
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || i > 0 && ('0' <= c && c <= '9' || c == '.' || c == '_' || c == '-')) {
			return false
		}
	}
	return s != ""
}

// isAction reports whether s is two or more dot-separated words, each a
// lower-case letter followed by lower-case letters, digits or '-'.
func isAction(s string) bool {
	words := 0
	for w := range strings.SplitSeq(s, ".") {
		if w == "" || strings.ContainsAny(w, "._") || !isWord(w) {
			return false
		}
		words++
	}
	return words >= 2
}

// maxTime is the last microsecond of year 9999.
var maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

// Validate checks the entry's content (not Prev and Hash): Seq at least 1;
// Time after 1970, before year 10000, to the microsecond; every string valid,
// printable UTF-8 (no control characters) within its bound; Actor and Action
// present; Action, Role and Reason of the right shape; Outcome known; Reason
// given exactly when Outcome is not OutcomeOK.
func (e Entry) Validate() error {
	if e.Seq == 0 {
		return errors.New("audit: entry seq must be at least 1")
	}
	if err := validTime(e.Time); err != nil {
		return err
	}
	for _, f := range []struct {
		name, val string
		max       int
		required  bool
	}{
		{"actor", e.Actor, maxActor, true},
		{"role", e.Role, maxRole, false},
		{"tenant", e.Tenant, maxTenant, false},
		{"action", string(e.Action), maxAction, true},
		{"key", e.Key, maxKey, false},
		{"reason", e.Reason, maxReason, false},
		{"remote", e.Remote, maxRemote, false},
		{"request", e.Request, maxRequest, false},
		{"detail", e.Detail, MaxDetail, false},
	} {
		if len(f.val) > f.max || (f.required && f.val == "") || !printable(f.val) {
			req := "up to"
			if f.required {
				req = "1 to"
			}
			return fmt.Errorf("audit: entry %s %.40q is not %s %d bytes of printable UTF-8", f.name, f.val, req, f.max)
		}
	}
	if !isAction(string(e.Action)) {
		return fmt.Errorf("audit: entry action %q is not lower-case dotted words (e.g. key.rotate)", e.Action)
	}
	if e.Role != "" && !isWord(e.Role) {
		return fmt.Errorf("audit: entry role %q is not a lower-case word", e.Role)
	}
	switch e.Outcome {
	case OutcomeOK:
		if e.Reason != "" {
			return fmt.Errorf("audit: entry reason %q given for outcome ok", e.Reason)
		}
	case OutcomeRefused, OutcomeError:
		if !isWord(e.Reason) {
			return fmt.Errorf("audit: entry reason %q for outcome %s is not a lower-case word (e.g. forbidden)", e.Reason, e.Outcome)
		}
	default:
		return fmt.Errorf("audit: entry outcome %.40q is not ok, refused or error", e.Outcome)
	}
	return nil
}

// validTime checks a time for the encodings: a whole number of microseconds
// after the Unix epoch, before year 10000.
func validTime(t time.Time) error {
	if t.UnixMicro() <= 0 || t.After(maxTime) || t.Nanosecond()%1000 != 0 {
		return fmt.Errorf("audit: time %s is not a whole microsecond between 1970 and 9999", t.Format(time.RFC3339Nano))
	}
	return nil
}

// normalTime is t as the encodings keep it: UTC, truncated to the
// microsecond, without a monotonic clock reading.
func normalTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// printable reports whether s is valid UTF-8 of printable characters
// (unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the
// ASCII space).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}
