package siv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
)

// cmac is AES-CMAC (RFC 4493, NIST SP 800-38B) under one block cipher: the
// PRF of S2V. It is not exported: Strongroom uses CMAC only inside AES-SIV.
type cmac struct {
	block  cipher.Block
	k1, k2 [aes.BlockSize]byte // the subkeys
}

// newCMAC derives the subkeys: L = AES(K, 0), K1 = dbl(L), K2 = dbl(K1).
func newCMAC(block cipher.Block) *cmac {
	c := &cmac{block: block}
	block.Encrypt(c.k1[:], c.k1[:])
	dbl(&c.k1)
	c.k2 = c.k1
	dbl(&c.k2)
	return c
}

// sum returns CMAC(K, msg): CBC-MAC over msg whose last block is XORed with
// K1 if it is complete, or padded with 10* and XORed with K2 if it is not
// (or msg is empty).
func (c *cmac) sum(msg []byte) [aes.BlockSize]byte {
	var x [aes.BlockSize]byte
	for len(msg) > aes.BlockSize {
		subtle.XORBytes(x[:], x[:], msg[:aes.BlockSize])
		c.block.Encrypt(x[:], x[:])
		msg = msg[aes.BlockSize:]
	}
	var last [aes.BlockSize]byte
	copy(last[:], msg)
	if len(msg) == aes.BlockSize {
		subtle.XORBytes(last[:], last[:], c.k1[:])
	} else {
		last[len(msg)] = 0x80
		subtle.XORBytes(last[:], last[:], c.k2[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	c.block.Encrypt(x[:], x[:])
	return x
}
