package byok_test

import (
	"context"
	"os"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
)

var ctx = context.Background()

// The tests run on real nodes (nodetest): the world's HSMs and releases
// are made once, on first use, and closed here.
func TestMain(m *testing.M) {
	code := m.Run()
	nodetest.Cleanup()
	os.Exit(code)
}
