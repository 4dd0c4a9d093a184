package store

import (
	"context"
	"testing"
	"time"
)

// TestCreatedAtMonotonic: a clock that steps back does not give a new run
// a created_at before the newest run's, so the run-number order of the
// unfiltered list and the created_at order of the filtered ones and the
// feed stay the same.
func TestCreatedAtMonotonic(t *testing.T) {
	ts := newTestStore(t)
	r1, _ := ts.newRun(ts.pub)
	ts.clock.Add(-time.Hour)
	r2, _ := ts.newRun(ts.pub)
	if r2.RunIndex != r1.RunIndex+1 || r2.CreatedAt.Before(r1.CreatedAt) {
		t.Errorf("run #%d created %v after run #%d created %v: want the next number, not earlier", r2.RunIndex, r2.CreatedAt, r1.RunIndex, r1.CreatedAt)
	}
	runs, _, err := ts.ListRuns(context.Background(), ts.pub.ID, RunFilter{Event: r1.Event}, 1, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != r2.ID {
		t.Errorf("filtered list = %d runs (%v), want run #%d first", len(runs), err, r2.RunIndex)
	}
}
