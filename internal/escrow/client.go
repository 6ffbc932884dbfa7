package escrow

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/strongroom-kms/strongroom/internal/enroll"
)

// maxResponse bounds the JSON answer a client reads: the base64 of the
// largest binary answer, and some room.
const maxResponse = maxAnswer/3*4 + 8<<10

// Fetch asks the escrow at baseURL (https://host:port) for region's bundles
// with nonce, a fresh random value of MinNonce to MaxNonce bytes that the
// caller must never reuse, and checks the answer (Answer.Verify) against the
// pinned primary at now. Any failed check is an error, and no bundle is
// returned. An escrow that holds no bundle of region answers with none.
func Fetch(ctx context.Context, httpClient *http.Client, baseURL, region string, nonce []byte, primary *enroll.Primary, now time.Time) ([]Bundle, error) {
	if err := enroll.ValidRegion(region); err != nil {
		return nil, err
	}
	if len(nonce) < MinNonce || len(nonce) > MaxNonce {
		return nil, fmt.Errorf("escrow: the nonce must be %d to %d bytes, not %d", MinNonce, MaxNonce, len(nonce))
	}
	if primary == nil || primary.Signing == nil {
		return nil, errors.New("escrow: Fetch needs the primary's public keys to check the escrow")
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("escrow: the escrow URL must be https://HOST[:PORT], not %q", baseURL)
	}
	u = u.JoinPath(Path)
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	body, err := json.Marshal(request{Region: region, Nonce: base64.RawURLEncoding.EncodeToString(nonce)})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("escrow: ask %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("escrow: read the answer of %s: %w", u.Redacted(), err)
	}
	if len(data) > maxResponse {
		return nil, fmt.Errorf("escrow: the answer of %s is larger than %d bytes", u.Redacted(), maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			return nil, fmt.Errorf("escrow: %s answered %s", u.Redacted(), resp.Status)
		}
		return nil, fmt.Errorf("escrow: %s answered %s: %s: %s", u.Redacted(), resp.Status, printable(e.Code), printable(e.Message))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r response
	if err := dec.Decode(&r); err != nil || dec.Decode(new(json.RawMessage)) != io.EOF {
		return nil, fmt.Errorf("escrow: %s did not answer with {\"answer\":...}", u.Redacted())
	}
	der, err := base64.StdEncoding.Strict().DecodeString(r.Answer)
	if err != nil {
		return nil, fmt.Errorf("escrow: the answer of %s is not base64", u.Redacted())
	}
	a, err := ParseAnswer(der)
	if err != nil {
		return nil, err
	}
	return a.Verify(primary, region, nonce, now)
}

// printable makes text from the server safe to print: no control
// characters, at most 200 runes.
func printable(s string) string {
	var b strings.Builder
	for i, r := range []rune(s) {
		if i == 200 {
			b.WriteString("…")
			break
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
