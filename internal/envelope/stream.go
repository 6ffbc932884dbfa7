package envelope

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"

	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// FormatStream is the first byte of a streamed ciphertext (format 3): data
// of any size, sealed in fixed-size chunks that are each authenticated, so
// that it is encrypted and decrypted in bounded memory. A stream is
//
//	u8   format = 3
//	u8<> tenant id
//	u8<> key type
//	u32  key version
//	u32  chunk size            MinChunk to MaxChunk
//	[32] salt                  random, per message
//	chunks                     AES-256-GCM(subkey, chunk i, aad), nonce u88 i || u8 last
//
// with
//
//	subkey = HKDF-SHA256(DEK, salt, u8<"strongroom stream v1"> || the header up to the salt, 32)
//	aad    = u8<"strongroom stream v1"> || the whole header || canonical(context)
//
// Every chunk holds exactly chunk size bytes of plaintext but the last,
// which holds 1 to chunk size bytes (0 only when the whole plaintext is
// empty). The byte-level specification is in docs/dataplane.md.
const FormatStream = 3

// Chunk sizes, in bytes of plaintext.
const (
	DefaultChunk = 64 << 10
	MinChunk     = 64
	MaxChunk     = 1 << 20
)

// streamLabel separates the stream's subkey and associated data from every
// other use of a DEK.
const streamLabel = "strongroom stream v1"

// SaltSize is the size of a stream's random salt.
const SaltSize = 32

// StreamHeader is the header of a stream: the key that sealed it, its chunk
// size and its salt.
type StreamHeader struct {
	Header
	Chunk int
	Salt  [SaltSize]byte
}

func (h StreamHeader) marshal() []byte {
	n := h.Header.size() + 4 + SaltSize
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, n))
	h.Header.add(b, FormatStream)
	b.AddUint32(uint32(h.Chunk))
	b.AddBytes(h.Salt[:])
	return b.BytesOrPanic()
}

// Size is the length of the header in bytes.
func (h StreamHeader) Size() int { return h.Header.size() + 4 + SaltSize }

// StreamLength is the length of the stream of n bytes of plaintext under h.
func (h StreamHeader) StreamLength(n int64) int64 {
	chunks := max(1, (n+int64(h.Chunk)-1)/int64(h.Chunk))
	return int64(h.Size()) + n + chunks*primitive.TagSize
}

// ReadStreamHeader reads the header of a stream from r, and nothing more:
// the caller uses it to find the key, then opens the rest with
// OpenStream. A header that does not parse (or another format) is
// ErrMalformed; an error of r other than an end of input is returned as it
// is. A header proves nothing until the chunks open.
func ReadStreamHeader(r io.Reader) (StreamHeader, error) {
	var h StreamHeader
	var b [4]byte
	read := func(p []byte) error {
		_, err := io.ReadFull(r, p)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return ErrMalformed
		}
		return err
	}
	name := func() (string, error) {
		if err := read(b[:1]); err != nil {
			return "", err
		}
		s := make([]byte, b[0])
		if err := read(s); err != nil {
			return "", err
		}
		return string(s), nil
	}
	var err error
	if err = read(b[:1]); err != nil {
		return StreamHeader{}, err
	}
	if b[0] != FormatStream {
		return StreamHeader{}, ErrMalformed
	}
	if h.Tenant, err = name(); err != nil {
		return StreamHeader{}, err
	}
	if h.Type, err = name(); err != nil {
		return StreamHeader{}, err
	}
	if err = read(b[:]); err != nil {
		return StreamHeader{}, err
	}
	h.Version = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if err = read(b[:]); err != nil {
		return StreamHeader{}, err
	}
	chunk := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if err = read(h.Salt[:]); err != nil {
		return StreamHeader{}, err
	}
	if h.Header.Check() != nil || chunk < MinChunk || chunk > MaxChunk {
		return StreamHeader{}, ErrMalformed
	}
	h.Chunk = int(chunk)
	return h, nil
}

// streamKeys returns the chunk cipher and the associated data of a stream.
func streamKeys(dek secret.Key, h StreamHeader, context map[string]string) (*primitive.Stream, []byte, error) {
	c, err := canonical(context)
	if err != nil {
		return nil, nil, err
	}
	if dek.IsZero() {
		return nil, nil, fmt.Errorf("envelope: %w: empty key", primitive.ErrParameter)
	}
	hb := h.marshal()
	info := labelled(streamLabel, hb[:len(hb)-SaltSize], nil)
	raw, err := primitive.HKDF(dek.Bytes(), h.Salt[:], info, secret.Size)
	if err != nil {
		return nil, nil, fmt.Errorf("envelope: %w", err)
	}
	sub, err := secret.New(raw)
	clear(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("envelope: %w", err)
	}
	defer sub.Destroy()
	s, err := primitive.NewStream(sub)
	if err != nil {
		return nil, nil, fmt.Errorf("envelope: %w", err)
	}
	return s, labelled(streamLabel, hb, c), nil
}

// ErrClosed: a write to a stream after Close.
var ErrClosed = errors.New("envelope: the stream is closed")

// SealStream starts a stream to dst under dek, the DEK of the key h names,
// bound to h and to context, in chunks of chunk bytes (0 = DefaultChunk).
// It writes the header at once; Close seals the last chunk, and must be
// called (without it the stream is truncated, and does not open). The
// writer holds one chunk in memory. It fails for an invalid header
// (ErrHeader), context (ErrContext) or chunk size, an empty key, or an
// error of dst.
func SealStream(dst io.Writer, dek secret.Key, h Header, context map[string]string, chunk int) (io.WriteCloser, error) {
	if chunk == 0 {
		chunk = DefaultChunk
	}
	if chunk < MinChunk || chunk > MaxChunk {
		return nil, fmt.Errorf("%w: chunk size %d (%d to %d)", ErrHeader, chunk, MinChunk, MaxChunk)
	}
	if err := h.Check(); err != nil {
		return nil, err
	}
	sh := StreamHeader{Header: h, Chunk: chunk}
	if _, err := rand.Read(sh.Salt[:]); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	return sealStreamWith(dst, dek, sh, context)
}

// sealStreamWith is SealStream with the salt given, in sh.
func sealStreamWith(dst io.Writer, dek secret.Key, sh StreamHeader, context map[string]string) (io.WriteCloser, error) {
	chunk := sh.Chunk
	s, aad, err := streamKeys(dek, sh, context)
	if err != nil {
		return nil, err
	}
	if _, err := dst.Write(sh.marshal()); err != nil {
		return nil, err
	}
	return &streamWriter{s: s, aad: aad, dst: dst, buf: make([]byte, 0, chunk+primitive.TagSize), chunk: chunk}, nil
}

type streamWriter struct {
	s     *primitive.Stream
	aad   []byte
	dst   io.Writer
	buf   []byte // the plaintext of the chunk being filled
	chunk int
	err   error // sticky: an error of dst, or ErrClosed
}

// Write buffers p and seals every chunk it completes. A chunk is sealed only
// once more data follows it, since the last chunk is sealed differently.
func (w *streamWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if w.err != nil {
			return n, w.err
		}
		if len(w.buf) == w.chunk {
			w.err = w.flush(false)
			continue
		}
		k := min(len(p), w.chunk-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p, n = p[k:], n+k
	}
	return n, nil
}

func (w *streamWriter) flush(last bool) error {
	out, err := w.s.Seal(w.buf[:0], w.buf, w.aad, last)
	if err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	w.buf = w.buf[:0]
	_, err = w.dst.Write(out)
	return err
}

// Close seals the last chunk. It does not close dst.
func (w *streamWriter) Close() error {
	if w.err != nil {
		if w.err == ErrClosed {
			return nil
		}
		return w.err
	}
	err := w.flush(true)
	w.err = ErrClosed
	clear(w.buf[:cap(w.buf)])
	return err
}

// OpenStream returns a reader of the plaintext of the stream whose header
// h was read from r (ReadStreamHeader), under dek with context. It returns
// a chunk's plaintext only once that chunk has authenticated, and io.EOF
// only after the last chunk has authenticated and nothing follows it. Every
// failure to open, truncation included, is ErrDecrypt; an error of r other
// than an end of input is returned as it is. Plaintext already returned
// before a failure is authentic but incomplete: a caller that must not act
// on part of the data buffers it, or discards it on error. The reader holds
// one chunk in memory.
func OpenStream(r io.Reader, dek secret.Key, h StreamHeader, context map[string]string) (io.Reader, error) {
	if h.Chunk < MinChunk || h.Chunk > MaxChunk || h.Header.Check() != nil {
		return nil, ErrDecrypt
	}
	s, aad, err := streamKeys(dek, h, context)
	if err != nil {
		return nil, ErrDecrypt
	}
	return &streamReader{s: s, aad: aad, src: r, buf: make([]byte, h.Chunk+primitive.TagSize+1)}, nil
}

type streamReader struct {
	s      *primitive.Stream
	aad    []byte
	src    io.Reader
	buf    []byte // one sealed chunk and the first byte of the next
	pt     []byte // authenticated plaintext not yet returned, in buf
	carry  int    // 1 if the byte after the last chunk read is held
	next   byte   // that byte
	chunks int    // chunks opened
	err    error  // sticky
}

func (r *streamReader) Read(p []byte) (int, error) {
	for len(r.pt) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.s.Done() {
			r.err = io.EOF
			clear(r.buf)
			continue
		}
		if err := r.open(); err != nil {
			r.err = err
			clear(r.buf)
		}
	}
	n := copy(p, r.pt)
	r.pt = r.pt[n:]
	return n, nil
}

// open reads and opens the next chunk. A chunk is the last when the input
// ends within the chunk size plus one byte; otherwise the byte after it is
// kept for the next chunk.
func (r *streamReader) open() error {
	if r.carry == 1 {
		r.buf[0] = r.next
	}
	n, err := io.ReadFull(r.src, r.buf[r.carry:])
	n += r.carry
	last := false
	switch err {
	case nil:
	case io.EOF, io.ErrUnexpectedEOF:
		last = true
	default:
		return err
	}
	sealed := r.buf[:n]
	r.carry = 0
	if !last {
		sealed, r.next, r.carry = r.buf[:n-1], r.buf[n-1], 1
	}
	// An empty last chunk is only the whole of an empty plaintext.
	if len(sealed) < primitive.TagSize || (last && len(sealed) == primitive.TagSize && r.chunks > 0) {
		return ErrDecrypt
	}
	pt, err := r.s.Open(sealed[:0], sealed, r.aad, last)
	if err != nil {
		return ErrDecrypt
	}
	r.pt = pt
	r.chunks++
	return nil
}
