package dataplane_test

import (
	"context"
	"testing"

	"github.com/strongroom-kms/strongroom/internal/node/nodetest"
)

var ctx = context.Background()

func TestMain(m *testing.M) { nodetest.Main(m) }
