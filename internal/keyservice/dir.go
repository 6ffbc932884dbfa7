// Package keyservice is Strongroom's reference key service: the tenant's side
// of the cache-only protocol (docs/cache-only.md). It keeps each key in a
// file of one directory, sealed under a key derived from a passphrase,
// answers Strongroom's fetches with a JWE encrypted to Strongroom's
// recipient key, and records every fetch and every change in a hash-chained
// audit log of its own in the same directory (docs/keyservice.md).
package keyservice

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/scrypt"

	"github.com/strongroom-kms/strongroom/internal/atomicfile"
	"github.com/strongroom-kms/strongroom/internal/primitive"
	"github.com/strongroom-kms/strongroom/internal/secret"
)

// The directory file, DIR/keyservice, byte by byte (docs/keyservice.md):
//
//	magic     "SRKEYSERVICE" (12 bytes)
//	version   u8 = 1
//	kdf       u8 = 1 (scrypt)
//	logN, r, p  u8 each: 10..20, 1..16, 1..4
//	salt      16 bytes
//	check     16 bytes  HMAC-SHA256(K, "strongroom keyservice passphrase check")[:16]
//
// K = scrypt(passphrase, salt, 2^logN, r, p, 32). The key files are sealed
// under HKDF-SHA256(K, info "strongroom keyservice key file"), the audit
// log's MACs keyed by HKDF-SHA256(K, info "strongroom keyservice audit"):
// scrypt runs once when the directory is opened, not on every fetch.

const (
	dirFileName  = "keyservice"
	lockFileName = ".lock"
	dirMagic     = "SRKEYSERVICE"
	dirVersion   = 1
	kdfScrypt    = 1
	saltSize     = 16
	checkSize    = 16
	dirFileSize  = len(dirMagic) + 5 + saltSize + checkSize
	checkMessage = "strongroom keyservice passphrase check"
	infoKeyFile  = "strongroom keyservice key file"
	infoAudit    = "strongroom keyservice audit"
)

var (
	// ErrWrongPassphrase: the passphrase does not open the directory.
	ErrWrongPassphrase = errors.New("keyservice: wrong passphrase")
	// ErrNotFound: no key of that kid.
	ErrNotFound = errors.New("keyservice: no such key")
	// ErrDamaged: a file of the directory is damaged or was altered.
	ErrDamaged = errors.New("keyservice: damaged or altered")
	// ErrNotInitialized: the directory holds no keyservice file.
	ErrNotInitialized = errors.New("keyservice: not a key service directory")
)

// kdfParams are the scrypt parameters of a directory.
type kdfParams struct {
	logN, r, p uint8
}

// defaultKDF is scrypt's recommended interactive cost (N=2^15, r=8, p=1).
var defaultKDF = kdfParams{logN: 15, r: 8, p: 1}

func (k kdfParams) valid() bool {
	return k.logN >= 10 && k.logN <= 20 && k.r >= 1 && k.r <= 16 && k.p >= 1 && k.p <= 4
}

// Dir is an opened key service directory.
type Dir struct {
	path     string
	fileKey  secret.Key
	auditKey secret.Key
	now      func() time.Time
}

// Options are a directory's optional settings.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Exists reports whether path is an initialized key service directory.
func Exists(path string) (bool, error) {
	_, err := os.Stat(filepath.Join(path, dirFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Init makes path (mode 0700, created if missing, which must hold no
// key service yet) a key service directory sealed under passphrase, and
// opens it.
func Init(path string, passphrase []byte, opts Options) (*Dir, error) {
	return initDir(path, passphrase, defaultKDF, opts)
}

func initDir(path string, passphrase []byte, kdf kdfParams, opts Options) (*Dir, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("keyservice: empty passphrase")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("keyservice: %w", err)
	}
	unlock, err := lock(path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if ok, err := Exists(path); err != nil {
		return nil, fmt.Errorf("keyservice: %w", err)
	} else if ok {
		return nil, fmt.Errorf("keyservice: %s is a key service directory already", path)
	}
	var salt [saltSize]byte
	rand.Read(salt[:])
	k, check, err := deriveRoot(passphrase, salt[:], kdf)
	if err != nil {
		return nil, err
	}
	defer k.Destroy()
	b := make([]byte, 0, dirFileSize)
	b = append(b, dirMagic...)
	b = append(b, dirVersion, kdfScrypt, kdf.logN, kdf.r, kdf.p)
	b = append(b, salt[:]...)
	b = append(b, check[:]...)
	if err := writeAtomic(filepath.Join(path, dirFileName), b); err != nil {
		return nil, err
	}
	return newDir(path, k, opts)
}

// Open opens the key service directory path with its passphrase. A wrong
// passphrase is ErrWrongPassphrase.
func Open(path string, passphrase []byte, opts Options) (*Dir, error) {
	data, err := os.ReadFile(filepath.Join(path, dirFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s file (make one with 'strongroom keyservice key create')", ErrNotInitialized, path, dirFileName)
	} else if err != nil {
		return nil, fmt.Errorf("keyservice: %w", err)
	}
	if len(data) != dirFileSize || string(data[:len(dirMagic)]) != dirMagic {
		return nil, fmt.Errorf("%w: %s is not a key service directory file", ErrDamaged, dirFileName)
	}
	p := data[len(dirMagic):]
	if p[0] != dirVersion {
		return nil, fmt.Errorf("keyservice: directory version %d is not supported (want %d)", p[0], dirVersion)
	}
	kdf := kdfParams{logN: p[2], r: p[3], p: p[4]}
	if p[1] != kdfScrypt || !kdf.valid() {
		return nil, fmt.Errorf("%w: unknown key derivation or scrypt parameters out of range", ErrDamaged)
	}
	salt, want := p[5:5+saltSize], p[5+saltSize:]
	if len(passphrase) == 0 {
		return nil, errors.New("keyservice: empty passphrase")
	}
	k, check, err := deriveRoot(passphrase, salt, kdf)
	if err != nil {
		return nil, err
	}
	defer k.Destroy()
	if subtle.ConstantTimeCompare(check[:], want) != 1 {
		return nil, fmt.Errorf("%w for %s", ErrWrongPassphrase, path)
	}
	return newDir(path, k, opts)
}

func newDir(path string, root secret.Key, opts Options) (*Dir, error) {
	d := &Dir{path: path, now: opts.Now}
	if d.now == nil {
		d.now = time.Now
	}
	var err error
	if d.fileKey, err = subkey(root, infoKeyFile); err != nil {
		return nil, err
	}
	if d.auditKey, err = subkey(root, infoAudit); err != nil {
		return nil, err
	}
	return d, nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// Close forgets the directory's keys (best effort).
func (d *Dir) Close() {
	d.fileKey.Destroy()
	d.auditKey.Destroy()
}

func deriveRoot(passphrase, salt []byte, kdf kdfParams) (secret.Key, [checkSize]byte, error) {
	var check [checkSize]byte
	b, err := scrypt.Key(passphrase, salt, 1<<kdf.logN, int(kdf.r), int(kdf.p), secret.Size)
	if err != nil {
		return secret.Key{}, check, fmt.Errorf("keyservice: key derivation: %w", err)
	}
	k, _ := secret.New(b)
	clear(b)
	m := hmac.New(sha256.New, k.Bytes())
	m.Write([]byte(checkMessage))
	copy(check[:], m.Sum(nil))
	return k, check, nil
}

func subkey(root secret.Key, info string) (secret.Key, error) {
	b, err := primitive.HKDF(root.Bytes(), nil, []byte(info), secret.Size)
	if err != nil {
		return secret.Key{}, fmt.Errorf("keyservice: %w", err)
	}
	defer clear(b)
	return secret.New(b)
}

// lock takes the directory's exclusive lock (flock on DIR/.lock), held while
// a key file is changed or the audit log appended to, by this process or by
// the command line while it serves.
func lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keyservice: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("keyservice: lock: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// writeAtomic is atomicfile.Write: a crash leaves the old file or the new one.
func writeAtomic(path string, data []byte) error { return atomicfile.Write(path, data) }

// u8 is a helper for cryptobyte length-prefixed strings.
func addU8String(b *cryptobyte.Builder, s string) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s)) })
}
