// Package httpbody reads HTTP bodies whole, into one buffer sized from the
// message's Content-Length: io.ReadAll starts at 512 bytes and grows by
// copying, which cost the data plane's server and client a few copies of
// every body (a 1 KiB plaintext is a 1.4 KiB body in base64).
package httpbody

import (
	"bytes"
	"io"
)

// ReadAll reads r to its end. length is the message's Content-Length (-1
// if unknown): a buffer of that size is made up front if it is at most
// limit and at most Presize; a longer body grows it as it arrives, so that
// a peer that claims a large length and sends nothing holds no more than
// Presize of memory. The caller bounds r itself (http.MaxBytesReader,
// io.LimitReader).
func ReadAll(r io.Reader, length, limit int64) ([]byte, error) {
	var b bytes.Buffer
	if length > 0 && length <= limit {
		b.Grow(int(min(length, Presize)) + bytes.MinRead) // MinRead: room for the read that sees EOF
	}
	_, err := b.ReadFrom(r)
	return b.Bytes(), err
}

// Presize bounds the buffer made before a body arrives: the data plane's
// bodies (a batch of a few items of a few KiB) fit.
const Presize = 64 << 10
