package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/envelope"
)

// inlineLimit is the largest input encrypt sends to the server: its
// ciphertext, in base64 inside JSON, stays well within the server's default
// request body limit (1 MiB), so that decrypt can send it back. Larger
// input, and any with --local, is encrypted here as a stream, with a DEK
// delivered by the server.
const inlineLimit = 512 << 10

// maxSingle bounds a single (format 1) ciphertext that decrypt reads into
// memory; encrypt never writes one larger than inlineLimit and a header.
const maxSingle = 16 << 20

// msgLocalDecrypt is the message of every local decryption failure, like the
// server's.
const msgLocalDecrypt = "decryption failed: the ciphertext was altered or truncated, or the context given differs from the one it was " +
	"encrypted with, or it belongs to another tenant or key"

// decryptFailed is a local decryption failure, explained as the server's.
func decryptFailed(partial bool) error {
	msg := msgLocalDecrypt
	if partial {
		msg += " (the output written so far is incomplete: discard it)"
	}
	return explain(&client.Error{Status: 200, Code: api.CodeDecrypt, Message: msg})
}

// encryptLocal streams in to out under the DEK of the tenant's active key.
func encryptLocal(ctx context.Context, c *client.Client, tenant, typ string, context map[string]string, in io.Reader, out io.Writer) error {
	dek, err := c.DEK(ctx, tenant, typ, 0, 0)
	if err != nil {
		return err
	}
	defer dek.Destroy()
	bw := bufio.NewWriterSize(out, client.StreamChunk+64)
	w, err := dek.EncryptWriter(bw, context)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, in); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// decryptData decrypts what in holds: a stream, or a single format 1
// ciphertext over inlineLimit, here with the DEK of the key version it
// names; any other ciphertext (a smaller one, or a deterministic one with
// its field) on the server.
func decryptData(ctx context.Context, c *client.Client, tenant, field string, context map[string]string, in io.Reader, out io.Writer) error {
	br := bufio.NewReaderSize(in, client.StreamChunk)
	h, stream, err := client.PeekStream(br)
	switch {
	case errors.Is(err, client.ErrDecrypt):
		return decryptFailed(false)
	case err != nil:
		return err
	case stream:
		dek, err := c.DEK(ctx, tenant, h.Type, h.Version, 0)
		if err != nil {
			return err
		}
		defer dek.Destroy()
		r, err := dek.DecryptReader(br, context)
		if errors.Is(err, client.ErrDecrypt) {
			return decryptFailed(false)
		} else if err != nil {
			return err
		}
		cw := &countingWriter{w: out}
		if _, err := io.Copy(cw, r); errors.Is(err, client.ErrDecrypt) {
			return decryptFailed(cw.n > 0)
		} else if err != nil {
			return err
		}
		return nil
	}
	ct, err := io.ReadAll(io.LimitReader(br, maxSingle+1))
	if err != nil {
		return err
	}
	if len(ct) > maxSingle {
		return fmt.Errorf("input larger than %d MiB and not a stream: not a ciphertext of strongroom encrypt", maxSingle>>20)
	}
	var pt []byte
	if len(ct) > inlineLimit && envelope.FormatOf(ct) == envelope.Format {
		eh, err := envelope.ParseHeader(ct)
		if err != nil {
			return decryptFailed(false)
		}
		dek, err := c.DEK(ctx, tenant, eh.Type, eh.Version, 0)
		if err != nil {
			return err
		}
		defer dek.Destroy()
		if pt, err = dek.Decrypt(ct, context); err != nil {
			return decryptFailed(false)
		}
	} else {
		res, err := c.Decrypt(ctx, tenant, api.DecryptItem{Ciphertext: ct, Context: context, Field: field})
		if err != nil {
			return err
		}
		if e := res[0].Error; e != nil {
			return explain(&client.Error{Status: 200, Code: e.Code, Message: e.Message})
		}
		pt = res[0].Plaintext
	}
	_, err = out.Write(pt)
	return err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
