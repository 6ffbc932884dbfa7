package auditlog

import (
	"context"
	"log/slog"
	"time"

	"github.com/strongroom-kms/strongroom/internal/audit"
	"github.com/strongroom-kms/strongroom/internal/hsm"
)

// Checkpointer appends the data plane's aggregate entries and signs a
// checkpoint of the log whenever it grew, every interval and once more
// when its context ends.
type Checkpointer struct {
	log    *Log
	key    hsm.SigningKey
	agg    *Aggregate
	logger *slog.Logger
	last   uint64
}

// NewCheckpointer returns a Checkpointer of l that signs with key and
// flushes agg (nil: none) first. Failures go to logger.
func NewCheckpointer(l *Log, key hsm.SigningKey, agg *Aggregate, logger *slog.Logger) *Checkpointer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Checkpointer{log: l, key: key, agg: agg, logger: logger}
}

// Run works every interval until ctx ends, then once more (within 10 s).
func (c *Checkpointer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			c.Once(final)
			cancel()
			return
		case <-t.C:
			c.Once(ctx)
		}
	}
}

// Once flushes the aggregate and signs a checkpoint if the log grew.
func (c *Checkpointer) Once(ctx context.Context) {
	if c.agg != nil {
		if err := c.agg.Flush(ctx, c.log); err != nil {
			c.logger.Error("audit: appending the data-plane aggregate failed; kept for the next try", "err", err)
		}
	}
	if err := c.Checkpoint(ctx); err != nil {
		c.logger.Error("audit: signing a checkpoint failed", "err", err)
	}
}

// Checkpoint signs and stores a checkpoint of the log as it stands, unless
// it is empty or has not grown since the last one.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	state, err := c.log.st.AuditState(ctx)
	if err != nil {
		return err
	}
	if state.Size() == 0 || state.Size() == c.last {
		return nil
	}
	signed, err := audit.SignCheckpoint(ctx, c.key, state.Checkpoint(c.log.origin, time.Now()))
	if err != nil {
		return err
	}
	if err := c.log.st.AddCheckpoint(ctx, state.Size(), signed); err != nil {
		return err
	}
	c.last = state.Size()
	return nil
}
