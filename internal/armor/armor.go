// Package armor is the PEM armour of Strongroom's files: exactly one block of
// the expected type, no headers, nothing but whitespace around it, and a size
// limit checked before parsing.
package armor

import (
	"encoding/pem"
	"fmt"
)

// Decode returns the binary body of data, which must be one PEM block of type
// typ and at most max bytes in all.
func Decode(data []byte, typ string, max int) ([]byte, error) {
	if len(data) > max {
		return nil, fmt.Errorf("file larger than %d bytes: not a %s", max, typ)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != typ {
		return nil, fmt.Errorf("not a %s (expected a PEM block %q)", typ, "BEGIN "+typ)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("unexpected PEM headers in %s", typ)
	}
	for _, c := range rest {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return nil, fmt.Errorf("trailing data after the %s", typ)
		}
	}
	return block.Bytes, nil
}

// Encode armours a binary body as a PEM block of type typ.
func Encode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
