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
	"github.com/strongroom-kms/strongroom/internal/envelope"
	"github.com/strongroom-kms/strongroom/internal/hsm"
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
// in order, with their status and code. The message is the error's own:
// the store, envelope and tenant packages never put key material in one.
var keyErrors = []struct {
	err    error
	status int
	code   string
}{
	{tenant.ErrNoActiveKey, http.StatusConflict, api.CodeNoActiveKey},
	{tenant.ErrKeyDestroyed, http.StatusConflict, api.CodeKeyDestroyed},
	{tenant.ErrKeyArchived, http.StatusConflict, api.CodeKeyArchived},
	{byok.ErrUploadRefused, http.StatusBadRequest, api.CodeUploadRefused},
	{byok.ErrDuplicateUpload, http.StatusConflict, api.CodeDuplicateKey},
	{byok.ErrOptOutDisabled, http.StatusForbidden, api.CodeOptOutDisabled},
	{byok.ErrNoUploadCert, http.StatusConflict, api.CodeNoUploadCert},
	{byok.ErrCertState, http.StatusConflict, api.CodeCertState},
	{byok.ErrImportRefused, http.StatusConflict, api.CodeImportRefused},
	{release.ErrInvalidBundle, http.StatusBadRequest, api.CodeInvalidBundle},
	{release.ErrInstalledOther, http.StatusConflict, api.CodeConflict},
	{auth.ErrInvalid, http.StatusBadRequest, api.CodeBadRequest},
	{hsm.ErrUnsupported, http.StatusBadRequest, api.CodeUnsupported},
	{store.ErrNotFound, http.StatusNotFound, api.CodeNotFound},
	{store.ErrExists, http.StatusConflict, api.CodeExists},
	{store.ErrConflict, http.StatusConflict, api.CodeConflict},
	{store.ErrTooManyKeys, http.StatusConflict, api.CodeTooManyKeys},
	{store.ErrTooManyCerts, http.StatusConflict, api.CodeTooManyCerts},
	{store.ErrTooManyTokens, http.StatusConflict, api.CodeTooManyTokens},
	{store.ErrRevoked, http.StatusConflict, api.CodeAlreadyRevoked},
	{store.ErrDuplicate, http.StatusConflict, api.CodeExists},
	{store.ErrDestroyed, http.StatusConflict, api.CodeKeyDestroyed},
	{store.ErrInvalid, http.StatusBadRequest, api.CodeBadRequest},
	{envelope.ErrDecrypt, http.StatusBadRequest, api.CodeDecrypt},
	{envelope.ErrMalformed, http.StatusBadRequest, api.CodeDecrypt},
	{envelope.ErrContext, http.StatusBadRequest, api.CodeBadRequest},
	{envelope.ErrKEM, http.StatusBadRequest, api.CodeBadRequest},
	{envelope.ErrPublicKey, http.StatusBadRequest, api.CodeBadRequest},
	{envelope.ErrHeader, http.StatusBadRequest, api.CodeBadRequest},
}

// problem maps an error to its status and API error. Errors it does not
// know are server faults: 500, with a message that points to the log.
func problem(err error, requestID string) (int, api.Error) {
	var ae *apiError
	var rl *store.RateLimitedError
	var ul *store.UploadLimitedError
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
		return http.StatusTooManyRequests, api.Error{Code: api.CodeRateLimited, Message: err.Error(), NextAllowed: &next}
	case errors.As(err, &ul):
		next := ul.Next.UTC()
		return http.StatusTooManyRequests, api.Error{Code: api.CodeRateLimited, Message: err.Error(), NextAllowed: &next}
	case errors.Is(err, store.ErrRateLimited):
		return http.StatusTooManyRequests, api.Error{Code: api.CodeRateLimited, Message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, api.Error{Code: api.CodeTimeout,
			Message: fmt.Sprintf("the request ran out of time (request %s)", requestID)}
	case errors.Is(err, release.ErrUnknownRelease):
		return http.StatusServiceUnavailable, api.Error{Code: api.CodeNotReady,
			Message: fmt.Sprintf("a release this needs is not loaded at this node (request %s): see /v1/status", requestID)}
	}
	for _, ke := range keyErrors {
		if errors.Is(err, ke.err) {
			return ke.status, api.Error{Code: ke.code, Message: err.Error()}
		}
	}
	return http.StatusInternalServerError, api.Error{Code: api.CodeInternal,
		Message: fmt.Sprintf("internal error (request %s): see the server log", requestID)}
}

// writeError answers err. Server faults are logged with the error (never
// the request body); client errors only in the access log, by code.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	info := infoFrom(r.Context())
	status, e := problem(err, info.id)
	info.setCode(e.Code)
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
func itemError(err error) (*api.Error, bool) {
	status, e := problem(err, "")
	if status >= 500 {
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
