// Retention: removing old logs and old runs in small batches, handing
// freed pages back to the filesystem, and checkpointing the WAL; the
// background loop `serve` runs and the `prune` command.

package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Batch bounds: each batch is one write transaction, and these keep it to
// a few milliseconds, so the API's writes wait no longer than that.
const (
	pruneRunsPerBatch  = 20      // runs examined per batch
	pruneRunsPerRead   = 2000    // runs examined per batch of a dry run, which writes nothing
	pruneLogBatchBytes = 4 << 20 // log bytes removed per batch, at least one run's
	vacuumPagesPerStep = 512     // pages incremental_vacuum frees per step
)

// retention is what `serve --keep-logs/--keep-runs` keeps; 0 keeps forever.
type retention struct {
	Logs, Runs time.Duration
}

// pruneReport is what a pass removed (or, dry, would remove).
type pruneReport struct {
	LogRuns  int   // runs whose logs were removed
	LogSteps int   // steps whose logs were removed
	LogBytes int64 // bytes of those logs
	Runs     int   // runs removed, with their jobs, steps and logs
	Pushes   int   // push records left without runs, removed

	Batches int           // write transactions (or, dry, read passes)
	Longest time.Duration // the longest batch: how long other writers could wait
}

func (r pruneReport) empty() bool { return r.LogRuns == 0 && r.Runs == 0 && r.Pushes == 0 }

func batchSize(dry bool) int {
	if dry {
		return pruneRunsPerRead
	}
	return pruneRunsPerBatch
}

// parseAge reads a retention age: Nd (days), or a Go duration (36h, 90m);
// "0" means keep forever.
func parseAge(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "0" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 || n > 100_000 {
			return 0, fmt.Errorf("bad age %q: want a number of days like 90d, a duration like 36h, or 0", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur <= 0 {
		return 0, fmt.Errorf("bad age %q: want a number of days like 90d, a duration like 36h, or 0", v)
	}
	return dur, nil
}

// ageText says an age the way the removed-log line does: "90 days".
func ageText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		if d == 24*time.Hour {
			return "1 day"
		}
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// prunedLogLine is what a removed log reads as, in place of its text.
func prunedLogLine(keep time.Duration) string {
	return fmt.Sprintf("##[notice]log removed after %s (the server's log retention)\n", ageText(keep))
}

// pruneLogsBatch removes the logs of completed runs created before cutoff,
// oldest first, from the run after `after` on: each step's chunks give way
// to one line saying the log was removed. It returns where to go on from
// and whether no older run is left. Runs still open are passed over.
func (s *Store) pruneLogsBatch(ctx context.Context, cutoff time.Time, keep time.Duration, after int64, dry bool, rep *pruneReport) (int64, bool, error) {
	done := false
	work := func(q querier, exec func(string, ...any) (sql.Result, error)) error {
		rows, err := q.QueryContext(ctx, `SELECT id, created_at, status FROM runs WHERE logs_pruned_at IS NULL AND id > ?
			ORDER BY id LIMIT ?`, after, batchSize(dry))
		if err != nil {
			return err
		}
		var ids []int64
		n := 0
		for rows.Next() {
			var id, created int64
			var status string
			if err := rows.Scan(&id, &created, &status); err != nil {
				rows.Close()
				return err
			}
			n++
			if created >= cutoff.UnixMilli() {
				done = true
				break
			}
			after = id
			if status == statusCompleted {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n < batchSize(dry) {
			done = true
		}
		marker := []byte(prunedLogLine(keep))
		var bytes int64
		for i, id := range ids {
			if bytes >= pruneLogBatchBytes { // the rest wait for the next batch
				after, done = ids[i]-1, false
				break
			}
			steps, err := q.QueryContext(ctx, `SELECT s.id, s.log_size FROM jobs j JOIN steps s ON s.job_id = j.id
				WHERE j.run_id = ? AND s.log_size > 0`, id)
			if err != nil {
				return err
			}
			type step struct{ id, size int64 }
			var list []step
			for steps.Next() {
				var st step
				if err := steps.Scan(&st.id, &st.size); err != nil {
					steps.Close()
					return err
				}
				list = append(list, st)
			}
			steps.Close()
			if err := steps.Err(); err != nil {
				return err
			}
			for _, st := range list {
				bytes += st.size
				rep.LogSteps++
				rep.LogBytes += st.size
				if dry {
					continue
				}
				if _, err := exec("DELETE FROM log_chunks WHERE step_id = ?", st.id); err != nil {
					return err
				}
				if _, err := exec("INSERT INTO log_chunks (step_id, seq, data) VALUES (?, 1, ?)", st.id, marker); err != nil {
					return err
				}
				if _, err := exec("UPDATE steps SET log_size = ?, log_truncated = 0 WHERE id = ?", len(marker), st.id); err != nil {
					return err
				}
			}
			rep.LogRuns++
			if !dry {
				if _, err := exec("UPDATE runs SET logs_pruned_at = ? WHERE id = ?", s.nowMS(), id); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if dry {
		return after, done, work(s.db, func(string, ...any) (sql.Result, error) { return nil, nil })
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		return work(tx, func(q string, args ...any) (sql.Result, error) { return tx.Exec(q, args...) })
	})
	return after, done, err
}

// pruneRunsBatch removes completed runs created before cutoff, oldest
// first, from the run after `after` on, with their jobs, steps and logs
// (the foreign keys cascade). Their re-runs keep going with a null
// parent_run_id; the feed's validators of each repository touched change.
func (s *Store) pruneRunsBatch(ctx context.Context, cutoff time.Time, after int64, dry bool, rep *pruneReport) (int64, bool, error) {
	done := false
	work := func(q querier, exec func(string, ...any) (sql.Result, error)) error {
		rows, err := q.QueryContext(ctx, "SELECT id, repo_id, push_id, created_at, status FROM runs WHERE id > ? ORDER BY id LIMIT ?",
			after, batchSize(dry))
		if err != nil {
			return err
		}
		type victim struct{ id, repo, push int64 }
		var victims []victim
		n := 0
		for rows.Next() {
			var v victim
			var push sql.NullInt64
			var created int64
			var status string
			if err := rows.Scan(&v.id, &v.repo, &push, &created, &status); err != nil {
				rows.Close()
				return err
			}
			n++
			if created >= cutoff.UnixMilli() {
				done = true
				break
			}
			after = v.id
			if status == statusCompleted {
				v.push = push.Int64
				victims = append(victims, v)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n < batchSize(dry) {
			done = true
		}
		rep.Runs += len(victims)
		if dry {
			return nil
		}
		now := s.nowMS()
		repos := map[int64]bool{}
		for _, v := range victims {
			if _, err := exec("UPDATE runs SET parent_run_id = NULL WHERE parent_run_id = ?", v.id); err != nil {
				return err
			}
			if _, err := exec("DELETE FROM runs WHERE id = ?", v.id); err != nil {
				return err
			}
			repos[v.repo] = true
		}
		for _, v := range victims {
			if v.push == 0 {
				continue
			}
			res, err := exec("DELETE FROM pushes WHERE id = ? AND NOT EXISTS (SELECT 1 FROM runs WHERE push_id = ?)", v.push, v.push)
			if err != nil {
				return err
			}
			if k, err := res.RowsAffected(); err == nil {
				rep.Pushes += int(k)
			}
		}
		for id := range repos {
			if _, err := exec("UPDATE repos SET runs_version = runs_version + 1, runs_updated_at = ? WHERE id = ?", now, id); err != nil {
				return err
			}
		}
		return nil
	}
	if dry {
		return after, done, work(s.db, nil)
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		return work(tx, func(q string, args ...any) (sql.Result, error) { return tx.Exec(q, args...) })
	})
	return after, done, err
}

// prune runs whole passes of both kinds of batch, pausing between batches
// so that other writers get the lock; a zero age skips that kind.
func (s *Store) prune(ctx context.Context, keep retention, dry bool, pause time.Duration) (pruneReport, error) {
	var rep pruneReport
	now := s.now()
	for _, kind := range []struct {
		age   time.Duration
		batch func(after int64) (int64, bool, error)
	}{
		{keep.Logs, func(after int64) (int64, bool, error) {
			return s.pruneLogsBatch(ctx, now.Add(-keep.Logs), keep.Logs, after, dry, &rep)
		}},
		{keep.Runs, func(after int64) (int64, bool, error) {
			return s.pruneRunsBatch(ctx, now.Add(-keep.Runs), after, dry, &rep)
		}},
	} {
		if kind.age <= 0 {
			continue
		}
		var after int64
		for {
			start := time.Now()
			next, done, err := kind.batch(after)
			if err != nil {
				return rep, err
			}
			rep.Batches++
			rep.Longest = max(rep.Longest, time.Since(start))
			after = next
			if done || ctx.Err() != nil {
				break
			}
			if pause > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		}
	}
	if !dry {
		s.metrics.prunedLogs.Add(int64(rep.LogRuns))
		s.metrics.prunedBytes.Add(rep.LogBytes)
		s.metrics.prunedRuns.Add(int64(rep.Runs))
	}
	return rep, ctx.Err()
}

// releaseFreePages hands free pages back to the filesystem, a few at a
// time, each step a short write of its own. It returns how many it freed.
func (s *Store) releaseFreePages(ctx context.Context, pause time.Duration) (int64, error) {
	var total int64
	for ctx.Err() == nil {
		var free int64
		if err := s.db.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
			return total, err
		}
		if free == 0 {
			return total, nil
		}
		step := min(free, vacuumPagesPerStep)
		if _, err := s.wdb.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA incremental_vacuum(%d)", step)); err != nil {
			return total, s.writeFailed(err)
		}
		total += step
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	return total, ctx.Err()
}

// checkpoint folds the WAL into the database file and truncates it. It
// runs on a read connection with a short busy timeout, so that a long
// reader makes it give up rather than hold writers back.
func (s *Store) checkpoint(ctx context.Context) (busy bool, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 50"); err != nil {
		return false, err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA busy_timeout = 10000")
	var b, logPages, done int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&b, &logPages, &done); err != nil {
		return false, err
	}
	return b != 0, nil
}

// analyzeLimit bounds the rows ANALYZE reads per index: estimates, enough
// for the planner to tell a selective index from a broad one.
const analyzeLimit = 400

// analyze refreshes the planner's statistics one index at a time, each a
// short write of its own with a pause between, so writers never wait long.
// Without statistics the planner may pick a broad index over a selective
// one (a runs list filtered by branch and workflow read the workflow's
// whole history). It returns how many indexes it analyzed.
func (s *Store) analyze(ctx context.Context, pause time.Duration) (int, error) {
	names, err := s.strings(ctx, "SELECT name FROM sqlite_schema WHERE type = 'index' ORDER BY name")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		q := fmt.Sprintf(`PRAGMA analysis_limit = %d; ANALYZE "%s"`, analyzeLimit, strings.ReplaceAll(name, `"`, `""`))
		if _, err := s.wdb.ExecContext(context.WithoutCancel(ctx), q); err != nil {
			return n, s.writeFailed(err)
		}
		n++
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	return n, nil
}

// maintainer is serve's background upkeep: retention passes, handing
// freed pages back, checkpointing the WAL once writes pause, the planner's
// statistics, and the in-process pool's sign of life.
type maintainer struct {
	store    *Store
	log      *slog.Logger
	keep     retention
	every    time.Duration // between retention passes
	idle     time.Duration // how long writes must pause before a checkpoint
	localRun int64         // the pool's runner row, touched as a sign of life
}

func (m *maintainer) run(ctx context.Context) {
	tick := time.NewTicker(m.idle)
	defer tick.Stop()
	nextPrune := time.Now().Add(10 * time.Second)
	nextAnalyze := time.Now().Add(30 * time.Second)
	checkpointed := int64(0) // lastWrite at the last checkpoint
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if m.localRun != 0 {
			if err := m.store.touchRunner(ctx, m.localRun); err != nil && ctx.Err() == nil {
				m.log.Warn("marking the job pool alive", "err", err)
			}
		}
		if !time.Now().Before(nextPrune) {
			nextPrune = time.Now().Add(m.every)
			m.pass(ctx)
		}
		if !time.Now().Before(nextAnalyze) {
			nextAnalyze = time.Now().Add(24 * time.Hour)
			start := time.Now()
			if n, err := m.store.analyze(ctx, 50*time.Millisecond); err != nil {
				if ctx.Err() == nil {
					m.log.Warn("refreshing the planner's statistics", "err", err)
				}
			} else {
				m.log.Info("refreshed the planner's statistics", "indexes", n, "took", time.Since(start).Round(time.Millisecond))
			}
		}
		last := m.store.lastWrite.Load()
		if last != checkpointed && time.Since(time.Unix(0, last)) >= m.idle {
			if busy, err := m.store.checkpoint(ctx); err != nil {
				if ctx.Err() == nil {
					m.log.Warn("checkpointing the WAL", "err", err)
				}
			} else if !busy {
				checkpointed = last
			}
		}
	}
}

// pass is one retention pass, then the freed pages go back.
func (m *maintainer) pass(ctx context.Context) {
	if m.keep.Logs <= 0 && m.keep.Runs <= 0 {
		return
	}
	start := time.Now()
	rep, err := m.store.prune(ctx, m.keep, false, 20*time.Millisecond)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("retention", "err", err)
		}
		return
	}
	pages, err := m.store.releaseFreePages(ctx, 20*time.Millisecond)
	if err != nil && ctx.Err() == nil {
		m.log.Error("handing free pages back", "err", err)
	}
	if !rep.empty() || pages > 0 {
		m.log.Info("retention", "logs_of_runs", rep.LogRuns, "log_bytes", rep.LogBytes, "runs", rep.Runs,
			"pushes", rep.Pushes, "pages_released", pages, "took", time.Since(start).Round(time.Millisecond))
	}
}
