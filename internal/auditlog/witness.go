package auditlog

import (
	"crypto/ecdsa"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
)

// Witness is a node's witness file: the last checkpoint the node signed and
// the log's state at that size (audit.Witness), kept outside the database,
// next to the node's HSM configuration (docs/audit.md, "The witness").
type Witness struct {
	Path string
	*audit.Witness
}

// String names the witness and what it covers, for messages.
func (w *Witness) String() string {
	return fmt.Sprintf("%s (its checkpoint of entries 1 to %d, signed at %s)", w.Path, w.Checkpoint.Size,
		w.Checkpoint.Time.Format(time.RFC3339))
}

// maxWitnessFile bounds what ReadWitness reads: a witness is under 3 KiB.
const maxWitnessFile = 8 << 10

// ReadWitness reads the witness file at path and checks it: its
// checkpoint is for this log and signed by pub (the node's audit key), and
// its state is the one the checkpoint signs. A missing file is an error
// wrapping fs.ErrNotExist; any other failure says that the file cannot be
// used.
func (l *Log) ReadWitness(path string, pub *ecdsa.PublicKey) (*Witness, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auditlog: reading the witness: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxWitnessFile+1))
	if err != nil {
		return nil, fmt.Errorf("auditlog: reading the witness: %w", err)
	}
	w, err := audit.ParseWitness(data, []*ecdsa.PublicKey{pub})
	if err == nil && w.Checkpoint.Origin != l.origin {
		err = fmt.Errorf("it is for log %q, not %q", w.Checkpoint.Origin, l.origin)
	}
	if err != nil {
		return nil, fmt.Errorf("auditlog: the witness %s is damaged, altered or not this node's: %w", path, err)
	}
	return &Witness{Path: path, Witness: w}, nil
}

// writeWitness replaces the file at path with w, mode 0600, atomically: a
// temporary file in the same directory, synced, renamed over path, and the
// directory synced. A crash leaves the old witness or the new one.
func writeWitness(path string, w *audit.Witness) error {
	data, err := w.MarshalBinary()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("auditlog: writing the witness: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("auditlog: writing the witness %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
