package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// FormatStream is the first byte of a stream that EncryptWriter writes
// (format 3 of docs/dataplane.md); the ciphertexts of Encrypt and of the
// server start with 1. A program that stores both kinds tells them apart by
// it.
const FormatStream byte = envelope.FormatStream

// StreamChunk is the number of bytes of plaintext in each chunk of a stream
// (64 KiB): what EncryptWriter and DecryptReader hold in memory.
const StreamChunk = envelope.DefaultChunk

// EncryptWriter returns a writer that encrypts what is written to it under
// the DEK, bound to context, as a stream (docs/dataplane.md, format 3) to
// dst, for data of any size in bounded memory: it holds one chunk
// (StreamChunk bytes) at a time, each sealed with AES-256-GCM under a key of
// its own derived for this stream. It writes the header to dst at once.
// Close seals the last chunk and must be called: a stream not closed is
// truncated, and does not decrypt. Close does not close dst.
//
// The stream does not open on the server (it is not a single ciphertext
// under the body limit); DecryptReader opens it, with the DEK of the key
// version it names. A key of type deterministic refuses (ErrField).
func (d DEK) EncryptWriter(dst io.Writer, context map[string]string) (io.WriteCloser, error) {
	if d.typ == typeDeterministic {
		return nil, fmt.Errorf("%w: keys of type %s encrypt per field, not streams", ErrField, d.typ)
	}
	var w io.WriteCloser
	_, err := d.use(func(key secret.Key) ([]byte, error) {
		var err error
		w, err = envelope.SealStream(dst, key, d.header(), context, 0)
		return nil, err
	})
	if err != nil {
		if errors.Is(err, ErrDestroyed) {
			return nil, err
		}
		return nil, fmt.Errorf("client: encrypting: %w", err)
	}
	return w, nil
}

// DecryptReader reads the header of a stream that EncryptWriter wrote from
// src, and returns a reader of its plaintext under the DEK with context.
// The reader returns the plaintext of a chunk only once that chunk has
// authenticated, and io.EOF only once the last chunk has and nothing
// follows it; a stream that is altered, truncated, reordered or extended,
// or opened with another context, is ErrDecrypt (after the plaintext of the
// chunks before the damage, which is authentic but incomplete: do not act
// on it before the reader's io.EOF). A stream that names another key
// version is ErrDecrypt at once, saying which key it needs. An error of src
// other than its end is returned as it is.
func (d DEK) DecryptReader(src io.Reader, context map[string]string) (io.Reader, error) {
	h, err := readStreamHeader(src)
	if err != nil {
		return nil, err
	}
	return d.openStream(h, src, context)
}

// readStreamHeader reads a stream's header from src: a malformed one is
// ErrDecrypt, an error of src is returned as it is.
func readStreamHeader(src io.Reader) (envelope.StreamHeader, error) {
	h, err := envelope.ReadStreamHeader(src)
	if errors.Is(err, envelope.ErrMalformed) {
		return h, ErrDecrypt
	}
	return h, err
}

// openStream opens the rest of a stream whose header h was read from src.
func (d DEK) openStream(h envelope.StreamHeader, src io.Reader, context map[string]string) (io.Reader, error) {
	if h.Header != d.header() {
		return nil, fmt.Errorf("%w: the stream names tenant %s key %s version %d, this DEK is tenant %s key %s version %d",
			ErrDecrypt, h.Tenant, h.Type, h.Version, d.tenantID, d.typ, d.version)
	}
	var r io.Reader
	_, err := d.use(func(key secret.Key) ([]byte, error) {
		var err error
		r, err = envelope.OpenStream(src, key, h, context)
		return nil, err
	})
	if errors.Is(err, ErrDestroyed) {
		return nil, err
	}
	if err != nil {
		return nil, ErrDecrypt
	}
	return streamReader{r}, nil
}

// streamReader turns the envelope's decryption failure into ErrDecrypt.
type streamReader struct{ r io.Reader }

func (s streamReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == envelope.ErrDecrypt {
		err = ErrDecrypt
	}
	return n, err
}

// StreamHeader is what the header of a stream names: the key that sealed
// it. PeekStream reads it; it proves nothing until the stream opens.
type StreamHeader struct {
	TenantID string
	Type     string
	Version  uint32
}

// PeekStream reports whether the data br holds next is a stream
// (FormatStream) and, if so, the key it names, without consuming it: pass
// br on to DecryptReader of that key's DEK. A stream whose header does not
// parse is ErrDecrypt. br must buffer at least 600 bytes, the longest header
// (bufio.NewReader buffers 4096).
func PeekStream(br *bufio.Reader) (StreamHeader, bool, error) {
	first, err := br.Peek(1)
	if err != nil || first[0] != FormatStream {
		if err == io.EOF {
			err = nil
		}
		return StreamHeader{}, false, err
	}
	// The longest header: two names of 255 bytes.
	b, err := br.Peek(min(br.Size(), 1+2*(1+envelope.MaxName)+8+envelope.SaltSize))
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return StreamHeader{}, true, err
	}
	h, err := envelope.ReadStreamHeader(bytes.NewReader(b))
	if err != nil {
		return StreamHeader{}, true, ErrDecrypt
	}
	return StreamHeader{TenantID: h.Tenant, Type: h.Type, Version: h.Version}, true, nil
}
