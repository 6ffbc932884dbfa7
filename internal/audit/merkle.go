package audit

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
)

// RFC 6962 (section 2.1) Merkle trees, with SHA-256:
//
//	leaf hash  = SHA-256(0x00 || leaf data)
//	node hash  = SHA-256(0x01 || left || right)
//	MTH({})    = SHA-256("")
//	MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
//
// Leaf i of an audit log is entry Seq i+1.

// EmptyRoot is the root of the empty tree, SHA-256 of nothing.
var EmptyRoot = sha256.Sum256(nil)

func hashLeaf(data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func hashChildren(l, r [32]byte) [32]byte {
	var buf [1 + 64]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

// Tree is an append-only RFC 6962 Merkle tree kept as a compact range: the
// roots of the perfect subtrees its leaves split into, one per bit set in its
// size, largest (leftmost) first. Appending costs O(log n) time and the state
// is O(log n) hashes. The zero Tree is empty.
//
// Copies of a Tree are independent: Append never writes into memory a copy
// may share.
type Tree struct {
	size  uint64
	peaks [][32]byte
}

// Size is the number of leaves.
func (t *Tree) Size() uint64 { return t.size }

// Append adds a leaf hash.
func (t *Tree) Append(leaf [32]byte) {
	h := leaf
	for s := t.size; s&1 == 1; s >>= 1 {
		h = hashChildren(t.peaks[len(t.peaks)-1], h)
		t.peaks = t.peaks[:len(t.peaks)-1]
	}
	// The full slice expression makes append copy rather than write past
	// the end into an array another Tree value may share.
	t.peaks = append(t.peaks[:len(t.peaks):len(t.peaks)], h)
	t.size++
}

// Root returns the Merkle tree hash of the leaves.
func (t *Tree) Root() [32]byte {
	if t.size == 0 {
		return EmptyRoot
	}
	h := t.peaks[len(t.peaks)-1]
	for i := len(t.peaks) - 2; i >= 0; i-- {
		h = hashChildren(t.peaks[i], h)
	}
	return h
}

// rootOf returns the Merkle tree hash of leaves.
func rootOf(leaves [][32]byte) [32]byte {
	var t Tree
	for _, l := range leaves {
		t.Append(l)
	}
	return t.Root()
}

// InclusionProof returns the RFC 6962 audit path (section 2.1.1) of leaf
// index in the tree of the given leaf hashes, bottom up. For an audit log,
// leaves are the leaf hashes of entries 1…n of a checkpoint of size n, and
// index is Seq−1. It costs O(n) hashing.
func InclusionProof(leaves [][32]byte, index uint64) ([][32]byte, error) {
	if index >= uint64(len(leaves)) {
		return nil, fmt.Errorf("audit: leaf %d is not in a tree of %d leaves", index, len(leaves))
	}
	var path [][32]byte
	var walk func(m uint64, d [][32]byte)
	walk = func(m uint64, d [][32]byte) {
		n := uint64(len(d))
		if n <= 1 {
			return
		}
		k := uint64(1) << (bits.Len64(n-1) - 1)
		if m < k {
			walk(m, d[:k])
			path = append(path, rootOf(d[k:]))
		} else {
			walk(m-k, d[k:])
			path = append(path, rootOf(d[:k]))
		}
	}
	walk(index, leaves)
	return path, nil
}

var errInclusion = errors.New("audit: inclusion proof does not verify")

// VerifyInclusion checks an RFC 6962 inclusion proof that leaf is leaf
// index of the tree of the given size and root, by the algorithm of RFC 9162
// section 2.1.3.2.
func VerifyInclusion(index, size uint64, leaf [32]byte, proof [][32]byte, root [32]byte) error {
	if index >= size {
		return fmt.Errorf("audit: leaf %d is not in a tree of %d leaves", index, size)
	}
	fn, sn, r := index, size-1, leaf
	for _, p := range proof {
		if sn == 0 {
			return errInclusion // proof too long
		}
		if fn&1 == 1 || fn == sn {
			r = hashChildren(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = hashChildren(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || r != root {
		return errInclusion
	}
	return nil
}
