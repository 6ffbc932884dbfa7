//go:build race

package client_test

// raceEnabled: the race detector slows the large stream test down.
const raceEnabled = true
