package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/strongroom-kms/strongroom/client"
	"github.com/strongroom-kms/strongroom/internal/resync"
)

// syncCommand is `strongroom sync`: internal/resync over the server's
// rewrap, with a progress bar on a terminal and plain lines otherwise.
func syncCommand() *command {
	return apiCommand("sync", "re-encrypt a column of your own SQLite or PostgreSQL table from archived key versions to the active one, through rewrap (app; see docs/sync.md)", "",
		func(fs *pflag.FlagSet, e *env) func(context.Context, *client.Client, []string) error {
			j := &resync.Job{}
			fs.StringVar(&j.Tenant, "tenant", "", "the tenant (required)")
			fs.StringVar(&j.DSN, "db", "", "your database: sqlite:PATH or postgres://… (required)")
			fs.StringVar(&j.Table, "table", "", "the table, [schema.]name (required)")
			fs.StringVar(&j.Key, "key", "id", "its primary-key column")
			fs.StringSliceVar(&j.Columns, "column", nil, "a ciphertext column (BLOB/bytea, or base64 text); repeat")
			ctxf := contextFlags{}
			fs.Var(ctxf, "context", "KEY=VALUE bound to every value, as given to encrypt; repeat")
			ctxCols := contextFlags{}
			fs.Var(ctxCols, "context-column", "KEY=COLUMN: the row's COLUMN bound under KEY; repeat")
			fs.IntVar(&j.Batch, "batch", 100, "rows per batch and per transaction, and values per rewrap call")
			fs.Float64Var(&j.Rate, "rate", 0, "at most this many rows per second (0: no limit)")
			checkpoint := fs.String("checkpoint", "", "the checkpoint file (default strongroom-sync-TABLE.checkpoint)")
			fs.BoolVar(&j.DryRun, "dry-run", false, "read and count only: nothing is rewrapped or written")
			progress := fs.String("progress", "auto", "auto (a bar on a terminal, else lines), bar, lines or none")
			return func(ctx context.Context, c *client.Client, args []string) error {
				switch {
				case len(args) > 0:
					return usageErrorf("sync takes no arguments: name the table with --table")
				case j.Tenant == "" || j.DSN == "" || j.Table == "" || len(j.Columns) == 0:
					return usageErrorf("--tenant, --db, --table and at least one --column are required")
				case j.Batch < 1 || j.Batch > 1000:
					return usageErrorf("--batch %d: 1 to 1000", j.Batch)
				case j.Rate < 0:
					return usageErrorf("--rate must not be negative")
				}
				j.Context, j.ContextColumns = ctxf, ctxCols
				j.Checkpoint = *checkpoint
				if j.Checkpoint == "" {
					j.Checkpoint = "strongroom-sync-" + strings.ReplaceAll(j.Table, ".", "-") + ".checkpoint"
				}
				j.Rewrap = c
				p, err := newSyncProgress(*progress, e.stderr)
				if err != nil {
					return err
				}
				j.Progress = p
				rep, err := j.Run(ctx)
				p.finish()
				if err != nil {
					if errors.Is(err, context.Canceled) && !j.DryRun {
						return fmt.Errorf("sync interrupted: the batches done so far are written to the table and recorded in %s; run the same command again to resume", j.Checkpoint)
					}
					if !j.DryRun {
						return fmt.Errorf("%w (the batches done so far are recorded in %s; run the same command again to resume)", err, j.Checkpoint)
					}
					return err
				}
				return e.print(rep, func(w io.Writer) error {
					how := "synced"
					if rep.DryRun {
						how = "dry run:"
					}
					fmt.Fprintf(w, "%s %d rows, %d values of %s: %d moved", how, rep.Rows, rep.Values, j.Table, rep.Moved)
					if rep.Resumed {
						fmt.Fprint(w, " (resumed from the checkpoint)")
					}
					fmt.Fprintln(w)
					if rep.Malformed > 0 {
						fmt.Fprintf(w, "%d values are not Strongroom ciphertexts and were left as they are\n", rep.Malformed)
					}
					if rep.Conflict > 0 {
						fmt.Fprintf(w, "%d values were changed by the application during the run and left as it wrote them\n", rep.Conflict)
					}
					for _, l := range rep.Lines(j.Table, j.Columns) {
						fmt.Fprintln(w, l)
					}
					return nil
				})
			}
		})
}

// syncProgress shows a sync's progress on standard error: a bar with the
// rate and the time left on a terminal, else a line every few seconds.
type syncProgress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar // nil: lines (or none)
	w     io.Writer                // lines; nil: none
	total int64
	done  int64
	start time.Time
	last  time.Time
	every time.Duration
}

func newSyncProgress(mode string, w io.Writer) (*syncProgress, error) {
	p := &syncProgress{every: 5 * time.Second}
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	switch mode {
	case "auto":
		if tty {
			mode = "bar"
		} else {
			mode = "lines"
		}
	case "bar", "lines", "none":
	default:
		return nil, usageErrorf("--progress %q: auto, bar, lines or none", mode)
	}
	switch mode {
	case "bar":
		p.bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("sync"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionFullWidth(), progressbar.OptionClearOnFinish())
	case "lines":
		p.w = w
	}
	return p, nil
}

func (p *syncProgress) Start(total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total, p.start, p.last = total, time.Now(), time.Now()
	if p.bar != nil {
		p.bar.ChangeMax64(total)
	}
	if p.w != nil {
		fmt.Fprintf(p.w, "sync: %d rows to go\n", total)
	}
}

func (p *syncProgress) Add(rows int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += rows
	if p.bar != nil {
		p.bar.Add64(rows)
		return
	}
	if p.w != nil && time.Since(p.last) >= p.every {
		p.last = time.Now()
		p.line()
	}
}

// line prints the progress, its rate and the time left; the caller holds
// mu.
func (p *syncProgress) line() {
	elapsed := time.Since(p.start)
	perSec := float64(p.done) / max(elapsed.Seconds(), 1e-3)
	eta := "-"
	if perSec > 0 && p.total >= p.done {
		eta = time.Duration(float64(time.Second) * float64(p.total-p.done) / perSec).Round(time.Second).String()
	}
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	fmt.Fprintf(p.w, "sync: %d/%d rows (%.0f%%), %.0f rows/s, %s left\n", p.done, p.total, pct, perSec, eta)
}

func (p *syncProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
	}
	if p.w != nil && p.done > 0 {
		p.line()
	}
}
