package release

import "time"

// Installation is a release bundle installed at a region, as the region
// keeps it. The bundle is kept as installed (the PEM file); it is verified
// and opened (Open, Ring.Load) every time a node loads it.
type Installation struct {
	ID        string // the release id (plan.ValidRelease)
	Bundle    []byte
	Installed time.Time
}
