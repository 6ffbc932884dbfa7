package plan

// The internals the external tests (package plan_test) need: they build
// non-canonical encodings and approvals Approve would not make.

func (p *Plan) Canonical() *Plan        { return p.canonical() }
func (p *Plan) Encode() ([]byte, error) { return p.encode() }
func (a *Approval) Body() []byte        { return a.body() }

const ApprovalDomain = approvalDomain

var (
	EncodePEM        = encodePEM
	DecodePEM        = decodePEM
	ParseApprovalDER = parseApprovalDER
)
