// Sweeping orphaned job containers: a job whose container could not be
// removed when it ended (the engine was away at that moment) leaves one
// running; the sweep removes it once the engine answers again.

package main

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// sweepEvery is how often an executor looks for orphaned containers.
const sweepEvery = 15 * time.Second

// sweepOrphans removes this instance's containers whose jobs no worker is
// running any more, and returns how many it removed.
func (ex *executor) sweepOrphans(ctx context.Context) (int, error) {
	out, _, err := ex.docker.output(ctx, "ps", "-a", "--filter", "label="+labelInstance+"="+ex.cfg.Instance,
		"--format", `{{.ID}} {{.Label "`+labelJob+`"}}`)
	if err != nil {
		return 0, err
	}
	ex.mu.Lock()
	live := make(map[int64]bool, len(ex.jobs))
	for id := range ex.jobs {
		live[id] = true
	}
	ex.mu.Unlock()
	var orphans []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if job, err := strconv.ParseInt(f[1], 10, 64); err == nil && !live[job] {
			orphans = append(orphans, f[0])
		}
	}
	if len(orphans) == 0 {
		return 0, nil
	}
	if _, _, err := ex.docker.output(ctx, append([]string{"rm", "-f"}, orphans...)...); err != nil {
		return 0, err
	}
	return len(orphans), nil
}

// sweepLoop sweeps every sweepEvery until ctx is done; an engine that does
// not answer is tried again at the next tick.
func (ex *executor) sweepLoop(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := ex.sweepOrphans(ctx); err == nil && n > 0 {
			ex.log.Warn("removed containers of jobs that had ended while the engine was away", "count", n)
		}
	}
}
