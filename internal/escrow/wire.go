package escrow

import (
	"errors"
	"fmt"

	"github.com/strongroom-kms/strongroom/internal/armor"
)

// Common pieces of the escrow formats. Each is a "to be signed" body
// followed by a signature over [sign.Message](domain, body), where domain
// names the format and its version. The byte-level formats are in
// docs/escrow.md.

const (
	formatVersion = 1
	maxPEMSize    = 64 << 10
)

var errTruncated = errors.New("escrow: truncated or malformed data")

// decodePEM unwraps exactly one PEM block of the given type.
func decodePEM(data []byte, typ string) ([]byte, error) {
	der, err := armor.Decode(data, typ, maxPEMSize)
	if err != nil {
		return nil, fmt.Errorf("escrow: %w", err)
	}
	return der, nil
}

func encodePEM(typ string, der []byte) []byte { return armor.Encode(typ, der) }
