package ceremony

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"sort"

	"github.com/strongroom-kms/strongroom/internal/armor"
	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/plan"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/transcript"
)

// maxTranscript bounds a transcript file.
const maxTranscript = 16 << 20

// VerifyFiles checks ceremony output offline, with nothing but the primary's
// public keys: every bundle's signature, plan, quorum and region binding;
// every transcript's chain and signature; and, where a bundle's transcript is
// among the files, that the transcript recorded that exact bundle (its
// SHA-256) and contains the head the bundle names. It prints what it checked
// to w (with every transcript entry if entries is set) and returns the number
// of files that failed.
func VerifyFiles(w io.Writer, p *enroll.Primary, files map[string][]byte, entries bool) int {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	logs := map[string][]*transcript.Log{} // by release
	bundles := map[string]*release.Bundle{}
	failed := 0
	fail := func(name string, err error) {
		failed++
		fmt.Fprintf(w, "FAIL  %s: %v\n", name, err)
	}
	for _, n := range names {
		block, _ := pem.Decode(files[n])
		if block == nil || block.Type != transcript.PEMType {
			continue
		}
		der, err := armor.Decode(files[n], transcript.PEMType, maxTranscript)
		if err != nil {
			fail(n, err)
			continue
		}
		l, err := transcript.Parse(der, p.Signing)
		if err != nil {
			fail(n, err)
			continue
		}
		logs[l.Release] = append(logs[l.Release], l)
		fmt.Fprintf(w, "OK    %s: transcript of %s, %d entries, hash chain intact, signed by primary %s\n",
			n, l.Release, len(l.Entries), p.SigningKeyID().Short())
		if entries {
			l.Print(w)
		}
	}
	for _, n := range names {
		block, _ := pem.Decode(files[n])
		switch {
		case block != nil && block.Type == transcript.PEMType:
			continue
		case block == nil || block.Type != release.PEMType:
			fail(n, fmt.Errorf("not a bundle or a transcript"))
			continue
		}
		b, pl, err := release.Verify(files[n], p)
		if err != nil {
			fail(n, err)
			continue
		}
		bundles[n] = b
		note, err := crossCheck(b, files[n], logs[b.Release])
		if err != nil {
			fail(n, err)
			continue
		}
		q := plan.CheckQuorum(pl, approvalsOf(b))
		target := "region " + b.Region
		if b.Region == release.PrimaryCopy {
			target = "the primary's copy"
		}
		fmt.Fprintf(w, "OK    %s: release %s for %s, signed by primary %s, quorum %d of %d (%s), %d secrets committed, %d PBKDF2 iterations%s\n",
			n, b.Release, target, p.SigningKeyID().Short(), pl.Quorum, len(pl.Officers), officerNames(q),
			len(b.Secrets), b.Iterations, note)
	}
	return failed
}

// crossCheck ties a bundle to the transcripts of its release, if any.
func crossCheck(b *release.Bundle, file []byte, logs []*transcript.Log) (string, error) {
	if len(logs) == 0 {
		return "; no transcript given to cross-check", nil
	}
	sum := sha256.Sum256(file)
	want := hex.EncodeToString(sum[:])
	for _, l := range logs {
		if !l.Contains(b.Transcript) {
			continue
		}
		for _, e := range l.Entries {
			if e.Event == "bundle.sealed" && e.Get("file") == b.Name() && e.Get("sha256") == want {
				return "; recorded in its transcript (SHA-256 matches)", nil
			}
		}
		return "", fmt.Errorf("the transcript of %s does not record this bundle's SHA-256 %s", b.Release, want[:16])
	}
	return "", fmt.Errorf("its transcript head %s is in no transcript of %s given", hex.EncodeToString(b.Transcript[:8]), b.Release)
}

func approvalsOf(b *release.Bundle) []plan.NamedApproval { return release.Approvals(b) }
