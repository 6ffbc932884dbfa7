package audit

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// testLeaves are the leaf data the vectors in testdata/merkle are made from
// (see its LICENSE-NOTE.md).
var testLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

func testLeafHashes(t *testing.T) [][32]byte {
	t.Helper()
	var hs [][32]byte
	for _, l := range testLeaves {
		d, err := hex.DecodeString(l)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, hashLeaf(d))
	}
	return hs
}

// refRoot is RFC 6962's MTH, written as the recursive definition.
func refRoot(d [][32]byte) [32]byte {
	switch n := len(d); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return d[0]
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		return hashChildren(refRoot(d[:k]), refRoot(d[k:]))
	}
}

type inclusionVector struct {
	LeafIdx  uint64   `json:"leafIdx"`
	TreeSize uint64   `json:"treeSize"`
	Root     []byte   `json:"root"`
	LeafHash []byte   `json:"leafHash"`
	Proof    [][]byte `json:"proof"`
	Desc     string   `json:"desc"`
	WantErr  bool     `json:"wantErr"`
}

type consistencyVector struct {
	Size1   uint64 `json:"size1"`
	Size2   uint64 `json:"size2"`
	Root1   []byte `json:"root1"`
	Root2   []byte `json:"root2"`
	WantErr bool   `json:"wantErr"`
}

func readVectors[T any](t *testing.T, pattern string) map[string]T {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("Glob(%s) = %v, %v, want files", pattern, files, err)
	}
	out := map[string]T{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = v
	}
	return out
}

func to32(b []byte) ([32]byte, bool) {
	var h [32]byte
	if len(b) != 32 {
		return h, false
	}
	copy(h[:], b)
	return h, true
}

func TestTreeRootVectors(t *testing.T) {
	leaves := testLeafHashes(t)
	roots := map[uint64][]byte{}
	for f, v := range readVectors[inclusionVector](t, "testdata/merkle/inclusion/[0-9]/happy-path.json") {
		roots[v.TreeSize] = v.Root
		if h, _ := to32(v.LeafHash); h != leaves[v.LeafIdx] {
			t.Errorf("%s: leaf hash of leaf %d = %x, want %x", f, v.LeafIdx, leaves[v.LeafIdx], v.LeafHash)
		}
	}
	for _, v := range readVectors[consistencyVector](t, "testdata/merkle/consistency/*/happy-path.json") {
		roots[v.Size1], roots[v.Size2] = v.Root1, v.Root2
	}
	if len(roots) < 6 {
		t.Fatalf("only %d distinct root vectors", len(roots))
	}
	for size, want := range roots {
		var tr Tree
		for _, l := range leaves[:size] {
			tr.Append(l)
		}
		if got := tr.Root(); base64.StdEncoding.EncodeToString(got[:]) != base64.StdEncoding.EncodeToString(want) {
			t.Errorf("Tree.Root() of %d leaves = %x, want %x", size, got, want)
		}
		if got := refRoot(leaves[:size]); base64.StdEncoding.EncodeToString(got[:]) != base64.StdEncoding.EncodeToString(want) {
			t.Errorf("refRoot(%d leaves) = %x, want %x", size, got, want)
		}
	}
	// The empty tree.
	var tr Tree
	if got := tr.Root(); hex.EncodeToString(got[:]) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty Tree.Root() = %x, want SHA-256 of nothing", got)
	}
}

// TestTreeMatchesReference checks the compact range against the recursive
// definition at every size up to 300, and that copies are independent.
func TestTreeMatchesReference(t *testing.T) {
	var leaves [][32]byte
	var tr Tree
	var snapshots []Tree
	for i := range 300 {
		l := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		leaves = append(leaves, l)
		tr.Append(l)
		if got, want := tr.Root(), refRoot(leaves); got != want {
			t.Fatalf("Tree.Root() after %d leaves = %x, want %x", i+1, got, want)
		}
		snapshots = append(snapshots, tr)
	}
	for i, s := range snapshots {
		if got, want := s.Root(), refRoot(leaves[:i+1]); got != want || s.Size() != uint64(i+1) {
			t.Fatalf("snapshot %d: Root() = %x, Size() = %d, want %x, %d (a later Append changed a copy)", i, got, s.Size(), want, i+1)
		}
	}
}

func TestInclusionVectors(t *testing.T) {
	leaves := testLeafHashes(t)
	vectors := readVectors[inclusionVector](t, "testdata/merkle/inclusion/*/*.json")
	if len(vectors) < 86 {
		t.Fatalf("only %d inclusion vectors", len(vectors))
	}
	for f, v := range vectors {
		t.Run(f, func(t *testing.T) {
			root, okRoot := to32(v.Root)
			leaf, okLeaf := to32(v.LeafHash)
			ok := okRoot && okLeaf
			var proof [][32]byte
			for _, p := range v.Proof {
				h, okP := to32(p)
				ok = ok && okP
				proof = append(proof, h)
			}
			// Inputs that are not 32-byte hashes cannot even be passed.
			err := errInclusion
			if ok {
				err = VerifyInclusion(v.LeafIdx, v.TreeSize, leaf, proof, root)
			}
			if got := err != nil; got != v.WantErr {
				t.Fatalf("VerifyInclusion(%d, %d, …) (%s) = %v, want error %v", v.LeafIdx, v.TreeSize, v.Desc, err, v.WantErr)
			}
			if v.WantErr || v.TreeSize > uint64(len(leaves)) || v.Desc == "matching root and leaf" {
				return
			}
			got, err := InclusionProof(leaves[:v.TreeSize], v.LeafIdx)
			if err != nil {
				t.Fatalf("InclusionProof(%d leaves, %d) error = %v", v.TreeSize, v.LeafIdx, err)
			}
			if len(got) != len(proof) {
				t.Fatalf("InclusionProof(%d leaves, %d) = %d hashes, want %d", v.TreeSize, v.LeafIdx, len(got), len(proof))
			}
			for i := range got {
				if got[i] != proof[i] {
					t.Errorf("InclusionProof(%d leaves, %d)[%d] = %x, want %x", v.TreeSize, v.LeafIdx, i, got[i], proof[i])
				}
			}
		})
	}
}

// TestInclusionAllPositions proves every leaf of every tree up to 70 leaves,
// and checks that a proof for one leaf fails for its neighbours.
func TestInclusionAllPositions(t *testing.T) {
	var leaves [][32]byte
	for i := range 70 {
		leaves = append(leaves, sha256.Sum256([]byte{byte(i)}))
	}
	for n := 1; n <= len(leaves); n++ {
		root := refRoot(leaves[:n])
		for i := range n {
			p, err := InclusionProof(leaves[:n], uint64(i))
			if err != nil {
				t.Fatalf("InclusionProof(%d leaves, %d) error = %v", n, i, err)
			}
			if err := VerifyInclusion(uint64(i), uint64(n), leaves[i], p, root); err != nil {
				t.Fatalf("VerifyInclusion(%d, %d) error = %v", i, n, err)
			}
			if i+1 < n && VerifyInclusion(uint64(i+1), uint64(n), leaves[i], p, root) == nil {
				t.Fatalf("VerifyInclusion(%d, %d) with the proof of leaf %d = nil, want error", i+1, n, i)
			}
			if n < len(leaves) && VerifyInclusion(uint64(i), uint64(n+1), leaves[i], p, refRoot(leaves[:n+1])) == nil {
				t.Fatalf("VerifyInclusion(%d, %d) with a proof for size %d = nil, want error", i, n+1, n)
			}
		}
	}
	if _, err := InclusionProof(leaves[:3], 3); err == nil {
		t.Error("InclusionProof(3 leaves, 3) error = nil, want error")
	}
}
