// `check`: the database's integrity and the stuck states no process will
// move on: open runs whose jobs are all done, running jobs nobody runs,
// queued jobs nobody can take.

package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"shithub-actions/internal/protocol"
)

// checkLostAfter is how long a runner may be silent before its running
// jobs count as held by nobody; the reaper fails them after as long.
const checkLostAfter = 2 * time.Minute

// checkReport is what check found; Problems is empty when all is well.
type checkReport struct {
	Problems []string
	OpenRuns int
	OpenJobs int
}

// check examines the database. quick uses quick_check, which skips the
// index-content comparison and takes seconds on a large file, not minutes.
func (s *Store) Check(ctx context.Context, quick bool) (*checkReport, error) {
	rep := &checkReport{}
	add := func(format string, args ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...)) }
	pragma := "PRAGMA integrity_check(100)"
	if quick {
		pragma = "PRAGMA quick_check(100)"
	}
	lines, err := s.strings(ctx, pragma)
	if err != nil {
		return nil, err
	}
	if len(lines) != 1 || lines[0] != "ok" {
		for _, l := range lines {
			add("integrity: %s", l)
		}
	}
	rows, err := s.db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			rows.Close()
			return nil, err
		}
		add("foreign key: %s row %d refers to a missing %s row", table, rowid.Int64, parent)
	}
	rows.Close()

	// Open runs: each should have an open job; a run without jobs is half-made.
	type openRun struct {
		id, repo, index int64
		status          string
		open, jobs      int
	}
	var runs []openRun
	rows, err = s.db.QueryContext(ctx, `SELECT r.id, r.repo_id, r.run_index, r.status,
			(SELECT COUNT(*) FROM jobs j WHERE j.run_id = r.id AND j.status != 'completed'),
			(SELECT COUNT(*) FROM jobs j WHERE j.run_id = r.id)
		FROM runs r WHERE r.status != 'completed' ORDER BY r.id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var r openRun
		if err := rows.Scan(&r.id, &r.repo, &r.index, &r.status, &r.open, &r.jobs); err != nil {
			rows.Close()
			return nil, err
		}
		runs = append(runs, r)
	}
	rows.Close()
	rep.OpenRuns = len(runs)
	for _, r := range runs {
		switch {
		case r.jobs == 0:
			add("run %d (repository %d, #%d) is %s and has no jobs: it was half-made", r.id, r.repo, r.index, r.status)
		case r.open == 0:
			add("run %d (repository %d, #%d) is %s but all its jobs are completed", r.id, r.repo, r.index, r.status)
		}
	}
	var halfMade []int64
	if err := s.ints(ctx, &halfMade, `SELECT r.id FROM runs r WHERE r.status = 'completed'
		AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id)`); err != nil {
		return nil, err
	}
	for _, id := range halfMade {
		add("run %d is completed and has no jobs: it was half-made", id)
	}

	// Open jobs.
	type runnerRow struct {
		id     int64
		name   string
		labels []string
		seen   int64
	}
	var runners []runnerRow
	rows, err = s.db.QueryContext(ctx, "SELECT id, name, labels, COALESCE(last_seen_at, 0) FROM runners")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var r runnerRow
		var labels string
		if err := rows.Scan(&r.id, &r.name, &labels, &r.seen); err != nil {
			rows.Close()
			return nil, err
		}
		if err := decodeColumn("runners.labels", labels, &r.labels); err != nil {
			rows.Close()
			return nil, err
		}
		runners = append(runners, r)
	}
	rows.Close()
	now := s.NowMS()
	rows, err = s.db.QueryContext(ctx, `SELECT id, run_id, status, ready, cancel_requested, runs_on, needs, COALESCE(runner_id, 0)
		FROM jobs WHERE status != 'completed' ORDER BY id`)
	if err != nil {
		return nil, err
	}
	type openJob struct {
		id, run, runner int64
		status          string
		ready, cancel   bool
		runsOn, needs   []string
	}
	var jobs []openJob
	for rows.Next() {
		var j openJob
		var runsOn, needs string
		if err := rows.Scan(&j.id, &j.run, &j.status, &j.ready, &j.cancel, &runsOn, &needs, &j.runner); err != nil {
			rows.Close()
			return nil, err
		}
		if err := decodeColumn("jobs.runs_on", runsOn, &j.runsOn); err != nil {
			rows.Close()
			return nil, err
		}
		if err := decodeColumn("jobs.needs", needs, &j.needs); err != nil {
			rows.Close()
			return nil, err
		}
		jobs = append(jobs, j)
	}
	rows.Close()
	rep.OpenJobs = len(jobs)
	for _, j := range jobs {
		switch j.status {
		case protocol.StatusRunning:
			i := slices.IndexFunc(runners, func(r runnerRow) bool { return r.id == j.runner })
			switch {
			case i < 0:
				add("job %d (run %d) is running with no runner", j.id, j.run)
			case now-runners[i].seen > checkLostAfter.Milliseconds():
				age := "never heard from"
				if runners[i].seen > 0 {
					age = "silent for " + (time.Duration(now-runners[i].seen) * time.Millisecond).Truncate(time.Second).String()
				}
				add("job %d (run %d) is running on runner %s, %s", j.id, j.run, runners[i].name, age)
			}
		case protocol.StatusQueued:
			if !slices.ContainsFunc(runners, func(r runnerRow) bool { return labelsFit(j.runsOn, r.labels) }) {
				add("job %d (run %d) is queued for runs-on [%s], which no registered runner has", j.id, j.run, strings.Join(j.runsOn, ", "))
			}
			if !j.ready && len(j.needs) > 0 {
				done, err := s.neededDone(ctx, j.run, j.needs)
				if err != nil {
					return nil, err
				}
				if done {
					add("job %d (run %d) is queued but not ready though every job it needs succeeded", j.id, j.run)
				}
			}
		}
	}
	if err := s.CheckKeptCounts(ctx, add); err != nil {
		return nil, err
	}
	return rep, nil
}

// keptCounts pairs each table of kept counts (what the runs list, the tab
// and the badge read instead of counting) with the count of runs it keeps,
// both as (key, runs, newest run) rows; the newest run is 0 where a table
// keeps none.
var keptCounts = []struct{ name, kept, counted string }{
	{"workflows",
		"SELECT id, run_count, COALESCE(last_run_id, 0) FROM workflows",
		`SELECT w.id, COUNT(r.id), COALESCE(MAX(r.id), 0) FROM workflows w LEFT JOIN runs r ON r.workflow_id = w.id GROUP BY w.id`},
	{"run_branches",
		"SELECT repo_id || ' ' || head_ref, runs, last_run_id FROM run_branches",
		`SELECT repo_id || ' ' || head_ref, COUNT(*), MAX(id) FROM runs WHERE substr(head_ref, 1, 11) = 'refs/heads/' GROUP BY repo_id, head_ref`},
	{"run_heads",
		"SELECT workflow_id || ' ' || head_ref, runs, last_run_id FROM run_heads",
		"SELECT workflow_id || ' ' || head_ref, COUNT(*), MAX(id) FROM runs WHERE workflow_id IS NOT NULL GROUP BY workflow_id, head_ref"},
	{"run_blocks",
		"SELECT repo_id || ' ' || workflow_id || ' ' || block, runs, 0 FROM run_blocks",
		`SELECT repo_id || ' ' || w || ' ' || (run_index >> 10), COUNT(*), 0 FROM (SELECT repo_id, 0 AS w, run_index FROM runs
			UNION ALL SELECT repo_id, workflow_id, run_index FROM runs WHERE workflow_id IS NOT NULL) GROUP BY repo_id, w, run_index >> 10`},
	{"run_facets",
		"SELECT repo_id || ' ' || facet || ' ' || value, runs, 0 FROM run_facets WHERE runs != 0",
		`SELECT repo_id || ' ' || facet || ' ' || value, COUNT(*), 0 FROM (SELECT repo_id, 'actor' AS facet, CAST(actor_id AS TEXT) AS value FROM runs
			UNION ALL SELECT repo_id, 'event', event FROM runs UNION ALL SELECT repo_id, 'status', status FROM runs
			UNION ALL SELECT repo_id, 'conclusion', conclusion FROM runs) GROUP BY 1`},
}

// checkKeptCounts compares every kept count with the runs it counts (a
// scan of runs per table: this is the operator's check, not a read path).
// Triggers keep them in the transactions that change runs, so a
// difference means the file was changed behind the program's back.
func (s *Store) CheckKeptCounts(ctx context.Context, add func(string, ...any)) error {
	for _, k := range keptCounts {
		for _, side := range []struct{ from, minus, says string }{
			{k.kept, k.counted, "keeps"},
			{k.counted, k.kept, "lacks"},
		} {
			rows, err := s.db.QueryContext(ctx, "SELECT * FROM ("+side.from+" EXCEPT "+side.minus+") LIMIT 10")
			if err != nil {
				return fmt.Errorf("checking %s: %w", k.name, err)
			}
			for rows.Next() {
				var key string
				var n, last int64
				if err := rows.Scan(&key, &n, &last); err != nil {
					rows.Close()
					return err
				}
				add("kept counts: %s %s %q with %d runs (newest %d), which the runs do not match", k.name, side.says, key, n, last)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// neededDone reports whether every job of a run named in needs succeeded.
func (s *Store) neededDone(ctx context.Context, runID int64, needs []string) (bool, error) {
	var ok int
	q := "SELECT COUNT(*) FROM jobs WHERE run_id = ? AND conclusion = 'success' AND job_key IN (?" + strings.Repeat(", ?", len(needs)-1) + ")"
	args := []any{runID}
	for _, n := range needs {
		args = append(args, n)
	}
	err := s.db.QueryRowContext(ctx, q, args...).Scan(&ok)
	return ok == len(needs), err
}

func (s *Store) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) ints(ctx context.Context, out *[]int64, q string, args ...any) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return err
		}
		*out = append(*out, v)
	}
	return rows.Err()
}
