package auth

import (
	"strconv"
	"strings"
	"time"

	"github.com/strongroom-kms/strongroom/internal/reason"
)

// MaxTTL is the longest time to live ParseTTL accepts: 100 years (36500d).
const MaxTTL = 36500 * Day

// Day is 24 hours, the unit of a TTL such as "30d".
const Day = 24 * time.Hour

// ParseTTL parses a token's time to live: a whole number of days ("30d"),
// or a Go duration ("720h", "90m", "1h30m"). It must be positive and at
// most MaxTTL. The error names the accepted forms; it is ErrInvalid.
func ParseTTL(s string) (time.Duration, error) {
	var d time.Duration
	var ok bool
	if n, found := strings.CutSuffix(s, "d"); found {
		// Digits only: no sign, no fraction, no spaces.
		if days, err := strconv.ParseUint(n, 10, 32); err == nil && days <= uint64(MaxTTL/Day) {
			d, ok = time.Duration(days)*Day, true
		}
	} else if v, err := time.ParseDuration(s); err == nil {
		d, ok = v, true
	}
	if !ok || d <= 0 || d > MaxTTL {
		return 0, reason.New(ErrInvalid, "ttl %q: use a whole number of days such as 30d, or a duration such as 720h or 90m (at most %dd)",
			s, MaxTTL/Day)
	}
	return d, nil
}

// FormatTTL writes a duration as ParseTTL reads it: whole days as "30d",
// anything else as a Go duration.
func FormatTTL(d time.Duration) string {
	if d > 0 && d%Day == 0 {
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	}
	return d.String()
}
