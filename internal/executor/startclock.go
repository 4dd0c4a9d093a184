// Timing a job's start: from its claim to the first chunk of its first
// step's log, the wait a user feels on every push. The breakdown is
// logged once per job ("job start"), which is how the start phase of
// bench/ reports where set-up goes, and what an operator reads when jobs
// are slow to start.

package executor

import (
	"log/slog"
	"sync"
	"time"
)

// startClock collects the durations of a job's set-up. Parts that run at
// once each record their own duration, so they add up to more than the
// wall time between claim and first log.
type startClock struct {
	mu      sync.Mutex // guards the fields below
	claimed time.Time  // when the claim returned the job
	attrs   []any      // name, duration pairs, in the order recorded
	done    bool       // the breakdown was logged
}

func newStartClock(claimTook time.Duration) *startClock {
	c := &startClock{claimed: time.Now()}
	c.attrs = append(c.attrs, "claimed_at_ms", c.claimed.UnixMilli(), "claim", ms(claimTook))
	return c
}

// since records the time from t0 to now as part name. A nil clock
// records nothing.
func (c *startClock) since(name string, t0 time.Time) {
	c.add(name, time.Since(t0))
}

// mark records the time from the claim to now as name: a point on the
// way to the first log line rather than the length of one part.
func (c *startClock) mark(name string) {
	if c != nil {
		c.add(name, time.Since(c.claimed))
	}
}

func (c *startClock) add(name string, d time.Duration) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		c.attrs = append(c.attrs, name, ms(d))
	}
}

// firstLog logs the breakdown when the first chunk of a step's log (not
// Set up job's) has reached the source; later calls do nothing.
func (c *startClock) firstLog(log *slog.Logger) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	c.done = true
	attrs := append(c.attrs, "first_log", ms(time.Since(c.claimed)))
	c.mu.Unlock()
	log.Info("job start", attrs...)
}

// ms is d in milliseconds with a tenth: what a breakdown needs.
func ms(d time.Duration) float64 {
	return float64(d.Round(100*time.Microsecond)) / float64(time.Millisecond)
}

// isSetupStep reports whether stepID is the job's Set up job step, whose
// log is not the first line a user waits for.
func (j *execJob) isSetupStep(stepID int64) bool {
	return len(j.job.Steps) > 0 && j.job.Steps[0].Kind == "setup" && j.job.Steps[0].ID == stepID
}
