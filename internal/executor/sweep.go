// Sweeping orphaned job resources: a job whose container, network or
// volume could not be removed when it ended (the engine was away at that
// moment) leaves them behind; the sweep removes them once the engine
// answers again.

package executor

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// sweepEvery is how often an executor looks for orphaned containers.
const SweepEvery = 15 * time.Second

// sweepOrphans removes this instance's containers, and then networks and
// volumes, whose jobs no worker is running any more, and the pooled
// containers, networks and volumes its pool no longer knows of (pool.go),
// and returns how many it removed. Containers go first: a network cannot go while one
// is on it.
func (ex *Executor) sweepOrphans(ctx context.Context) (int, error) {
	ex.mu.Lock()
	live := make(map[int64]bool, len(ex.jobs))
	for id := range ex.jobs {
		live[id] = true
	}
	ex.mu.Unlock()
	filter := "label=" + LabelInstance + "=" + ex.cfg.Instance
	format := `{{.Label "` + LabelJob + `"}}`
	removed := 0
	// Containers the pool started ahead carry no job's label (pool.go):
	// one a job took bears that job's name, the others a pooled name.
	out, _, err := ex.docker.Output(ctx, "ps", "-a", "--filter", filter, "--filter", "label="+LabelPool, "--format", "{{.ID}} {{.Names}}")
	if err != nil {
		return removed, err
	}
	prefix := ex.namePrefix()
	var orphans []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		rest, ok := strings.CutPrefix(f[1], prefix)
		if !ok {
			continue
		}
		if job, err := strconv.ParseInt(rest, 10, 64); err == nil && !live[job] ||
			strings.HasPrefix(rest, "pool-") && !ex.pool.isKnown(f[1]) {
			orphans = append(orphans, f[0])
		}
	}
	if len(orphans) > 0 {
		if _, _, err := ex.docker.Output(ctx, append([]string{"rm", "-f"}, orphans...)...); err != nil {
			return removed, err
		}
		removed += len(orphans)
	}
	for _, kind := range []struct{ ls, rm []string }{
		{[]string{"ps", "-a", "--filter", filter, "--format", "{{.ID}} " + format}, []string{"rm", "-f"}},
		{[]string{"network", "ls", "--filter", filter, "--format", "{{.ID}} " + format}, []string{"network", "rm"}},
		{[]string{"volume", "ls", "--filter", filter, "--format", "{{.Name}} " + format}, []string{"volume", "rm", "-f"}},
	} {
		out, _, err := ex.docker.Output(ctx, kind.ls...)
		if err != nil {
			return removed, err
		}
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
			continue
		}
		if _, _, err := ex.docker.Output(ctx, append(kind.rm, orphans...)...); err != nil {
			return removed, err
		}
		removed += len(orphans)
	}
	// Pooled pairs carry no job's label: those neither ready nor in a job
	// are orphans (their job could not remove them). Only names the pool
	// makes are considered.
	poolFilter := "label=" + LabelPool
	prefix = ex.namePrefix() + "pool-"
	for _, kind := range []struct{ ls, rm []string }{
		{[]string{"network", "ls", "--filter", filter, "--filter", poolFilter, "--format", "{{.Name}}"}, []string{"network", "rm"}},
		{[]string{"volume", "ls", "--filter", filter, "--filter", poolFilter, "--format", "{{.Name}}"}, []string{"volume", "rm", "-f"}},
	} {
		out, _, err := ex.docker.Output(ctx, kind.ls...)
		if err != nil {
			return removed, err
		}
		var orphans []string
		for _, name := range strings.Fields(out) {
			if strings.HasPrefix(name, prefix) && !ex.pool.isKnown(name) {
				orphans = append(orphans, name)
			}
		}
		if len(orphans) == 0 {
			continue
		}
		if _, _, err := ex.docker.Output(ctx, append(kind.rm, orphans...)...); err != nil {
			return removed, err
		}
		removed += len(orphans)
	}
	return removed, nil
}

// sweepLoop sweeps every sweepEvery until ctx is done; an engine that does
// not answer is tried again at the next tick.
func (ex *Executor) SweepLoop(ctx context.Context) {
	t := time.NewTicker(SweepEvery)
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
