package uploadcert

import "time"

// State is where an upload certificate is in its life.
type State string

// The certificate states.
const (
	// StatePending: the key pair exists and a CSR was issued; the
	// CA-signed certificate has not been uploaded yet. Not usable.
	StatePending State = "pending"
	// StateActive: usable for uploads until NotAfter.
	StateActive State = "active"
	// StateRetired: no longer accepted for uploads.
	StateRetired State = "retired"
)

// Valid reports whether s is one of the states.
func (s State) Valid() bool { return s == StatePending || s == StateActive || s == StateRetired }

// Cert is a tenant's upload certificate as the region keeps it: an RSA-4096
// key pair whose private half lives in the regional HSM under KeyLabel, and
// its X.509 certificate (SelfSigned by that key, or signed by the tenant's
// CA for the key's Request).
type Cert struct {
	ID       string // a record ID (tenant.NewID)
	Tenant   string // tenant ID
	KeyLabel string // the HSM label of the key pair; at most 128 bytes
	State    State
	// CSR is the DER certificate request (CA-signed flow); nil otherwise.
	CSR []byte
	// Certificate is the DER certificate; nil while pending.
	Certificate []byte
	// NotBefore and NotAfter are the certificate's validity (zero while
	// pending).
	NotBefore time.Time
	NotAfter  time.Time
	Created   time.Time
	Retired   time.Time // zero unless retired
}
