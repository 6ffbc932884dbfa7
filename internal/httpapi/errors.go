package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/api"
	"github.com/strongroom-kms/strongroom/internal/auth"
	"github.com/strongroom-kms/strongroom/internal/byok"
	"github.com/strongroom-kms/strongroom/internal/cacheonly"
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/hsm"
	"github.com/strongroom-kms/strongroom/internal/reason"
	"github.com/strongroom-kms/strongroom/internal/release"
	"github.com/strongroom-kms/strongroom/internal/store"
	"github.com/strongroom-kms/strongroom/internal/tenant"
)

// This file is the one place where errors become HTTP statuses and API
// error codes.

// apiError is an error the API answers as it is.
type apiError struct {
	status int
	code   string
	msg    string
	next   *time.Time
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// errForbidden is every refusal of an authenticated caller: the same answer
// whether the role is wrong, the tenant is another's, or the tenant does not
// exist, so that a scoped token learns nothing about other tenants. The
// route wrapper answers it with the route's own wording (forbidden.go),
// which depends on the route and the tenant its path names only.
var errForbidden = &apiError{status: http.StatusForbidden, code: api.CodeForbidden,
	msg: "this token is not allowed to do that"}

func badRequestf(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, code: api.CodeBadRequest, msg: fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) error {
	return &apiError{status: http.StatusNotFound, code: api.CodeNotFound, msg: fmt.Sprintf(format, args...)}
}

func tooLargef(format string, args ...any) error {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: api.CodeTooLarge, msg: fmt.Sprintf(format, args...)}
}

// keyErrors are the domain errors of tenant keys and ciphertexts, checked
// in order, with their status, code and message. The message is the
// error's reason (internal/reason) if it has one, else the one here: never
// the error's own text, whose chain of package prefixes and internal ids
// is for the server's log.
var keyErrors = []struct {
	err    error
	status int
	code   string
	msg    string
}{
	{tenant.ErrNoActiveKey, http.StatusConflict, api.CodeNoActiveKey, "there is no active key of this type: generate or upload one first"},
	{tenant.ErrKeyDestroyed, http.StatusConflict, api.CodeKeyDestroyed, "the key was destroyed: data under it can no longer be decrypted"},
	{tenant.ErrKeyArchived, http.StatusConflict, api.CodeKeyArchived, "the key is archived: it decrypts only; encrypt with the active key"},
	{tenant.ErrKeyUnavailable, http.StatusServiceUnavailable, api.CodeKeyUnavailable,
		"the key is unavailable: the tenant's key service did not give it; this node retries on its schedule"},
	{tenant.ErrKeyRevoked, http.StatusConflict, api.CodeKeyRevoked, "the key was revoked by the tenant's key service"},
	{cacheonly.ErrRegistrationRefused, http.StatusBadRequest, api.CodeKeyServiceRefused,
		"the key service did not answer the test fetch correctly: nothing was registered"},
	{byok.ErrUploadRefused, http.StatusBadRequest, api.CodeUploadRefused, "the uploaded key material was refused"},
	{byok.ErrDuplicateUpload, http.StatusConflict, api.CodeDuplicateKey,
		"this key material was uploaded before: the same value is never accepted twice for a tenant"},
	{byok.ErrOptOutDisabled, http.StatusForbidden, api.CodeOptOutDisabled,
		"derivation opt-out (mode none) is disabled for this tenant by an operator"},
	{byok.ErrNoUploadCert, http.StatusConflict, api.CodeNoUploadCert,
		"the tenant has no active, unexpired upload certificate: make one first"},
	{byok.ErrCertState, http.StatusConflict, api.CodeCertState, "the upload certificate is not in a state that allows this"},
	{byok.ErrImportRefused, http.StatusConflict, api.CodeImportRefused, "the backup was refused"},
	{release.ErrInvalidBundle, http.StatusBadRequest, api.CodeInvalidBundle, "the bundle failed verification and was not installed"},
	{release.ErrInstalledOther, http.StatusConflict, api.CodeConflict,
		"another bundle of this release is installed: this one was not"},
	{auth.ErrInvalid, http.StatusBadRequest, api.CodeBadRequest, "the token cannot be made as asked"},
	{hsm.ErrUnsupported, http.StatusBadRequest, api.CodeUnsupported, "this region's HSM cannot do what was asked"},
	{store.ErrNotFound, http.StatusNotFound, api.CodeNotFound, "not found"},
	{store.ErrExists, http.StatusConflict, api.CodeExists, "it exists already"},
	{store.ErrConflict, http.StatusConflict, api.CodeConflict, "it conflicts with what is stored"},
	{store.ErrTooManyKeys, http.StatusConflict, api.CodeTooManyKeys,
		"the tenant has the most active and archived keys of this type allowed: destroy one first"},
	{store.ErrTooManyCerts, http.StatusConflict, api.CodeTooManyCerts,
		"the tenant holds the most pending or active upload certificates allowed: retire one first"},
	{store.ErrTooManyTokens, http.StatusConflict, api.CodeTooManyTokens,
		"the tenant has the most live app tokens that its tenant-admins may make: revoke one first, or let one expire"},
	{store.ErrRevoked, http.StatusConflict, api.CodeAlreadyRevoked, "the token was revoked already"},
	{store.ErrDuplicate, http.StatusConflict, api.CodeExists, "the tenant has a key of the same value"},
	{store.ErrDestroyed, http.StatusConflict, api.CodeKeyDestroyed, "the key was destroyed already"},
	{store.ErrInvalid, http.StatusBadRequest, api.CodeBadRequest, "the request is invalid"},
	{envelope.ErrDecrypt, http.StatusBadRequest, api.CodeDecrypt, msgDecrypt},
	{envelope.ErrMalformed, http.StatusBadRequest, api.CodeDecrypt, msgDecrypt},
	{envelope.ErrContext, http.StatusBadRequest, api.CodeBadRequest, "the context is invalid"},
	{envelope.ErrField, http.StatusBadRequest, api.CodeBadRequest, "the field is invalid, missing, or not for this key type"},
	{envelope.ErrFold, http.StatusBadRequest, api.CodeBadRequest, "a case-insensitive plaintext must be UTF-8"},
	{envelope.ErrKEM, http.StatusBadRequest, api.CodeBadRequest, "unsupported HPKE KEM"},
	{envelope.ErrPublicKey, http.StatusBadRequest, api.CodeBadRequest, "the public key is not a valid key of its KEM"},
	{envelope.ErrHeader, http.StatusBadRequest, api.CodeBadRequest, "the key named is invalid"},
}

// msgDecrypt is the message of every decryption failure: deliberately the
// same whatever the cause, which the service does not tell apart.
const msgDecrypt = "decryption failed: the ciphertext was altered, or the context given differs from the one it was " +
	"encrypted with, or it belongs to another tenant or key"

// problem maps an error to its status and API error. Errors it does not
// know are server faults: 500, with a message that points to the log.
func problem(err error, requestID string) (int, api.Error) {
	var ae *apiError
	var rl *store.RateLimitedError
	var ul *store.UploadLimitedError
	var rv *store.RevokedError
	var io *release.InstalledOtherError
	switch {
	case errors.As(err, &ae):
		return ae.status, api.Error{Code: ae.code, Message: ae.msg, NextAllowed: ae.next}
	case errors.Is(err, auth.ErrRevoked):
		return http.StatusUnauthorized, api.Error{Code: api.CodeTokenRevoked, Message: strings.TrimPrefix(err.Error(), "auth: ") + ": use another token"}
	case errors.Is(err, auth.ErrExpired):
		return http.StatusUnauthorized, api.Error{Code: api.CodeTokenExpired, Message: strings.TrimPrefix(err.Error(), "auth: ") + ": use another token"}
	case errors.Is(err, auth.ErrUnauthenticated):
		return http.StatusUnauthorized, api.Error{Code: api.CodeUnauthenticated,
			Message: "a valid API token is required: Authorization: Bearer srt_…"}
	case errors.As(err, &rl):
		next := rl.Next.UTC()
		return http.StatusTooManyRequests, api.Error{Code: api.CodeRateLimited, NextAllowed: &next,
			Message: "too soon: the next key of this type may be made at " + next.Format(time.RFC3339Nano)}
	case errors.As(err, &ul):
		next := ul.Next.UTC()
		return http.StatusTooManyRequests, api.Error{Code: api.CodeRateLimited, NextAllowed: &next,
			Message: fmt.Sprintf("%d uploads of this tenant failed within %d minutes, the most allowed: the next may start at %s",
				ul.Failures, int(byok.FailedUploadWindow/time.Minute), next.Format(time.RFC3339Nano))}
	case errors.As(err, &rv) && !rv.Maker:
		return http.StatusConflict, api.Error{Code: api.CodeAlreadyRevoked,
			Message: fmt.Sprintf("token %s was revoked already, at %s", rv.ID, rv.At.UTC().Format(time.RFC3339))}
	case errors.As(err, &rv):
		return http.StatusConflict, api.Error{Code: api.CodeAlreadyRevoked,
			Message: fmt.Sprintf("token %s, which would make the new token, was revoked at %s", rv.ID, rv.At.UTC().Format(time.RFC3339))}
	case errors.As(err, &io):
		return http.StatusConflict, api.Error{Code: api.CodeConflict, Message: io.Error() + ": this one was not installed"}
	case errors.Is(err, store.ErrRateLimited):
		return http.StatusTooManyRequests, api.Error{Code: api.CodeRateLimited, Message: "too soon: try again later"}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, api.Error{Code: api.CodeTimeout,
			Message: fmt.Sprintf("the request ran out of time (request %s)", requestID)}
	case errors.Is(err, release.ErrUnknownRelease):
		return http.StatusServiceUnavailable, api.Error{Code: api.CodeNotReady,
			Message: fmt.Sprintf("a release this needs is not loaded at this node (request %s): see /v1/status", requestID)}
	}
	for _, ke := range keyErrors {
		if errors.Is(err, ke.err) {
			msg, ok := reason.Of(err)
			if !ok {
				msg = ke.msg
			}
			return ke.status, api.Error{Code: ke.code, Message: msg}
		}
	}
	return http.StatusInternalServerError, api.Error{Code: api.CodeInternal,
		Message: fmt.Sprintf("internal error (request %s): see the server log", requestID)}
}

// writeError answers err. Server faults are logged with the error (never
// the request body); client errors in the access log, by code, and with
// the error's own text (its chain, for the operator) when the answer's
// message is not it.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && errors.Is(r.Context().Err(), context.Canceled) {
		// The client went away (the request's own context was canceled,
		// not timed out): there is no one to answer, and it is not a
		// fault; the access log records 499 canceled. A Canceled from
		// anywhere else is answered like any other error.
		return
	}
	info := infoFrom(r.Context())
	status, e := problem(err, info.id)
	info.setCode(e.Code)
	var ae *apiError
	if status < 500 && !errors.As(err, &ae) {
		info.setErr(err.Error())
	}
	if status >= 500 && !errors.Is(err, context.Canceled) {
		route, token, tenant, _ := info.get()
		s.Logger.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("request_id", info.id), slog.String("route", route),
			slog.String("token_id", token), slog.String("tenant", tenant), slog.String("err", err.Error()))
	}
	if e.NextAllowed != nil {
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfter(*e.NextAllowed, s.Now()), 10))
	}
	writeJSON(w, status, e)
}

// itemError is the error of one batch item, or nil and false if err is not
// about the item (a server fault, a timeout): then the whole request fails.
// A cache-only key that is unavailable (503 for a whole request) is the
// item's.
func itemError(err error) (*api.Error, bool) {
	status, e := problem(err, "")
	if status >= 500 && e.Code != api.CodeKeyUnavailable {
		return nil, false
	}
	return &e, true
}

// retryAfter is the Retry-After value for next: whole seconds, rounded up,
// at least 1.
func retryAfter(next, now time.Time) int64 {
	secs := math.Ceil(next.Sub(now).Seconds())
	if secs < 1 {
		return 1
	}
	return int64(secs)
}

// newRequestID is a random id for a request, for logs and error messages.
func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
