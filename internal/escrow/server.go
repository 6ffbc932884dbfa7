package escrow

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/enroll"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/release"
)

// Path is the one endpoint of the protocol.
const Path = "/v1/escrow/bundles"

// MaxRequestBody bounds a request's JSON body.
const MaxRequestBody = 4 << 10

// BundleSuffix is the suffix of the files the escrow serves. Primary copies
// (release.FileName(id, release.PrimaryCopy), *.primary) never match it.
const BundleSuffix = ".bundle"

// request is the JSON body of a request.
type request struct {
	Region string `json:"region"`
	Nonce  string `json:"nonce"` // base64url, unpadded
}

// response is the JSON body of a successful answer.
type response struct {
	Answer string `json:"answer"` // standard base64 of the binary answer
}

// apiError is the JSON body of an error.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes.
const (
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeTooLarge         = "request_too_large"
	CodeMalformed        = "malformed_request"
	CodeUnknownField     = "unknown_field"
	CodeBadRegion        = "bad_region"
	CodeBadNonce         = "bad_nonce"
	CodeInternal         = "internal_error"
	CodeAnswerTooLarge   = "answer_too_large"
)

type server struct {
	dir     string
	signer  hsm.SigningKey
	cert    *Certificate
	certErr error
	primary *enroll.Primary
	log     *slog.Logger
	now     func() time.Time
}

// NewServer returns the escrow's HTTP handler. It serves the bundle files
// (*.bundle, PEM) of dir, read afresh on each request so that files dropped
// in later are served without a restart. If primary is not nil, each bundle
// is verified (release.Verify) before it is served, and those that fail are
// skipped and logged. cert is the escrow certificate, binary (its key must
// be signer's). The client's nonce is never stored: the client checks
// freshness. Request size limits and timeouts belong to the http.Server.
func NewServer(dir string, signer hsm.SigningKey, cert []byte, primary *enroll.Primary, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &server{dir: dir, signer: signer, primary: primary, log: logger, now: time.Now}
	s.cert, s.certErr = ParseCertificateDER(cert)
	if s.certErr == nil && !s.cert.Signing.Equal(signer.ECDSAPublicKey()) {
		s.certErr = errors.New("escrow: the escrow certificate is for another key than the HSM's escrow signing key")
	}
	if s.certErr != nil {
		logger.Error("escrow misconfigured: every request will fail", "err", s.certErr)
	}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.bundles)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, CodeNotFound, "no such endpoint; the escrow serves POST "+Path)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

func (s *server) bundles(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed, "use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "the request body must be application/json")
		return
	}
	region, nonce, status, code, msg := decodeRequest(w, r)
	if code != "" {
		writeError(w, status, code, msg)
		return
	}
	if s.certErr != nil {
		writeError(w, http.StatusInternalServerError, CodeInternal, "the escrow is misconfigured; see its log")
		return
	}
	entries, err := s.entries(region)
	if err != nil {
		s.log.Error("read the bundle directory", "dir", s.dir, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "the escrow cannot read its bundles; see its log")
		return
	}
	a := &Answer{Region: region, Nonce: nonce, Time: s.now().UTC().Truncate(time.Second), Escrow: s.cert, Entries: entries}
	der, err := a.sign(s.signer)
	if errors.Is(err, errAnswerTooLarge) {
		s.log.Error("answer too large", "region", region, "bundles", len(entries), "err", err)
		writeError(w, http.StatusInternalServerError, CodeAnswerTooLarge, strings.TrimPrefix(errAnswerTooLarge.Error(), "escrow: "))
		return
	}
	if err != nil {
		s.log.Error("sign the answer", "region", region, "err", err)
		writeError(w, http.StatusInternalServerError, CodeInternal, "the escrow cannot sign its answer; see its log")
		return
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	s.log.Info("answered", "region", region, "bundles", strings.Join(names, ","), "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, response{Answer: base64.StdEncoding.EncodeToString(der)})
}

// decodeRequest reads and checks the JSON body. On failure code is set.
func decodeRequest(w http.ResponseWriter, r *http.Request) (region string, nonce []byte, status int, code, msg string) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	dec.DisallowUnknownFields()
	var req request
	err := dec.Decode(&req)
	if err == nil {
		if err = dec.Decode(new(json.RawMessage)); err == io.EOF {
			err = nil
		} else if !errors.As(err, new(*http.MaxBytesError)) {
			err = errors.New("trailing data after the JSON object")
		}
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return "", nil, http.StatusRequestEntityTooLarge, CodeTooLarge, "the request body is larger than 4 KiB"
	case err != nil && strings.HasPrefix(err.Error(), "json: unknown field "):
		return "", nil, http.StatusBadRequest, CodeUnknownField, strings.TrimPrefix(err.Error(), "json: ") + `; the request is {"region":"...","nonce":"..."}`
	case err != nil:
		return "", nil, http.StatusBadRequest, CodeMalformed, `the body must be one JSON object {"region":"...","nonce":"..."}: ` + err.Error()
	}
	if err := enroll.ValidRegion(req.Region); err != nil {
		return "", nil, http.StatusBadRequest, CodeBadRegion, strings.TrimPrefix(err.Error(), "enroll: ")
	}
	nonce, err = base64.RawURLEncoding.Strict().DecodeString(req.Nonce)
	if err != nil {
		return "", nil, http.StatusBadRequest, CodeBadNonce, "the nonce must be unpadded base64url"
	}
	if len(nonce) < MinNonce || len(nonce) > MaxNonce {
		return "", nil, http.StatusBadRequest, CodeBadNonce, "the nonce must be 16 to 64 bytes (at least 128 bits) from a good random source"
	}
	return req.Region, nonce, 0, "", ""
}

// entries reads the bundle directory and returns region's bundles, sorted
// by name. Files that are not readable bundles, or fail verification, are
// skipped and logged.
func (s *server) entries(region string) ([]Entry, error) {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	byName := map[string]Entry{}
	conflicts := map[string]bool{}
	for _, de := range des {
		file := de.Name()
		if !strings.HasSuffix(file, BundleSuffix) || strings.HasPrefix(file, ".") {
			continue
		}
		if !de.Type().IsRegular() {
			s.log.Warn("skipping: not a regular file", "file", file)
			continue
		}
		data, err := readLimited(filepath.Join(s.dir, file), 2*maxBundle+64<<10)
		if err != nil {
			s.log.Warn("skipping: unreadable", "file", file, "err", err)
			continue
		}
		der, err := release.Decode(data)
		if err != nil {
			s.log.Warn("skipping: not a release bundle", "file", file, "err", err)
			continue
		}
		b, err := release.Parse(der)
		if err != nil {
			s.log.Warn("skipping: not a release bundle", "file", file, "err", err)
			continue
		}
		if b.Region != region {
			continue // the primary copy too: its Region is release.PrimaryCopy
		}
		if s.primary != nil {
			if _, _, err := release.Verify(data, s.primary); err != nil {
				s.log.Warn("skipping: bundle does not verify", "file", file, "err", err)
				continue
			}
		}
		e := Entry{Name: b.Name(), SHA256: sha256.Sum256(der), Bundle: der}
		if prev, ok := byName[e.Name]; ok {
			if prev.SHA256 != e.SHA256 {
				s.log.Error("skipping: two different bundles with one name", "bundle", e.Name, "file", file)
				conflicts[e.Name] = true
			}
			continue
		}
		byName[e.Name] = e
	}
	var out []Entry
	for name, e := range byName {
		if !conflicts[name] {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// readLimited reads a file of at most max bytes.
func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errors.New("file too large for a bundle")
	}
	return data, nil
}
