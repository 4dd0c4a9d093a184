// Retention: removing old logs and old runs in short write transactions,
// handing freed pages back to the filesystem, and checkpointing the WAL;
// the background loop `serve` runs and the `prune` command.

package store

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"shithub-actions/internal/protocol"
)

// Every write transaction retention makes is short, so that the API's
// writes never wait long behind one: it does units of work (one run's
// deletion, the end of one step's log, one incremental_vacuum step) until
// pruneTxBudget is spent, at least one, and each unit is bounded.
const (
	pruneTxBudget    = 2 * time.Millisecond // a write transaction commits once its work took this long
	PruneTxSlow      = 5 * time.Millisecond // the report counts transactions longer than this
	pruneRunsPerRead = 2000                 // runs examined per read of a dry run, which writes nothing
	// pruneGroupBytes and pruneGroupRows bound one statement's deletion of
	// log chunks (at least one chunk): two of a runner's 64 KiB chunks
	// take about a millisecond.
	PruneGroupBytes = 128 << 10
	pruneGroupRows  = 64
	// pruneRunLogBytes is how much log a run's deletion may take with it;
	// a run with more loses it first, a group at a time.
	pruneRunLogBytes = 256 << 10
	// incremental_vacuum's cost per page grows with the free list, which
	// it searches for each free page it drops from the file's end (half a
	// millisecond a page at 250,000 free pages, some microseconds at a
	// few thousand), so pruning hands pages back as it goes, whenever more
	// than vacuumHighWater are free, rather than all at the end.
	vacuumHighWater  = 2048
	vacuumFirstPages = 16  // the first step's pages, before the cost of one is known
	vacuumMaxPages   = 256 // pages one step frees at most (its commit writes as many, and their parents)
	// pruneCheckpointPages is about how many pages retention lets the WAL
	// gather before it checkpoints them (SQLite's own checkpoint comes at
	// 1,000).
	pruneCheckpointPages = 300
	// pruneServePause is serve's pause between retention's transactions:
	// it holds the write lock a sixth of the time at most, and a backlog
	// (retention turned on over years of history) still goes in minutes.
	pruneServePause = 10 * time.Millisecond
	// pruneCLIPause is the prune command's: serve's writers, waiting on
	// SQLite's busy handler, need gaps to get in.
	PruneCLIPause = 1 * time.Millisecond
)

// retention is what `serve --keep-logs/--keep-runs` keeps; 0 keeps forever.
type Retention struct {
	Logs, Runs time.Duration
}

// pruneOpts says how a prune goes.
type PruneOpts struct {
	Dry       bool          // say what would go, and change nothing
	Pause     time.Duration // between write transactions, so that other processes' writers get the lock
	KeepPages bool          // leave freed pages in the file (a VACUUM follows)
}

// pruneReport is what a prune removed (or, dry, would remove).
type PruneReport struct {
	LogRuns  int   // runs whose logs were removed
	LogSteps int   // steps whose logs were removed
	LogBytes int64 // bytes of those logs
	Runs     int   // runs removed, with their jobs, steps and logs
	Pushes   int   // push records left without runs, removed
	Pages    int64 // free pages handed back to the filesystem

	Batches     int           // writes: transactions and checkpoints (or, dry, read passes)
	VacuumSteps int           // of those, the incremental_vacuum steps
	Checkpoints int           // and the checkpoints, on the write connection
	Longest     time.Duration // the longest: how long other writers could wait
	Slow        int           // transactions over pruneTxSlow
	Took        []time.Duration
}

func (r PruneReport) Empty() bool { return r.LogRuns == 0 && r.Runs == 0 && r.Pushes == 0 }

// add counts what a committed transaction did.
func (r *PruneReport) Add(o PruneReport) {
	r.LogRuns += o.LogRuns
	r.LogSteps += o.LogSteps
	r.LogBytes += o.LogBytes
	r.Runs += o.Runs
	r.Pushes += o.Pushes
}

// wrote records a write: how long it held the write connection.
func (r *PruneReport) wrote(d time.Duration) {
	r.Batches++
	r.Longest = max(r.Longest, d)
	if d > PruneTxSlow {
		r.Slow++
	}
	r.Took = append(r.Took, d)
}

// percentile is the q-quantile (0 < q ≤ 1) of the write transactions' times.
func (r PruneReport) Percentile(q float64) time.Duration {
	if len(r.Took) == 0 {
		return 0
	}
	s := slices.Clone(r.Took)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// parseAge reads a retention age: Nd (days), or a Go duration (36h, 90m);
// "0" means keep forever.
func ParseAge(v string) (time.Duration, error) {
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
func PrunedLogLine(keep time.Duration) string {
	return prunedLogStart + ageText(keep) + prunedLogEnd
}

const (
	prunedLogStart = "##[notice]log removed after "
	prunedLogEnd   = " (the server's log retention)\n"
	prunedLogMax   = 256 // no removal line is longer
)

// isPrunedLog says whether a step's whole log is a removal line: a pass
// that was interrupted finished that step.
func isPrunedLog(b []byte) bool {
	return len(b) <= prunedLogMax && bytes.HasPrefix(b, []byte(prunedLogStart)) && bytes.HasSuffix(b, []byte(prunedLogEnd))
}

// pruner does a prune: its passes, in short write transactions, and what
// they did.
type Pruner struct {
	S       *Store
	o       PruneOpts
	Rep     PruneReport   // what committed transactions did
	tx      PruneReport   // what the running transaction did, counted once it commits
	now     int64         // the running transaction's time
	perPage time.Duration // what incremental_vacuum took per page last

	sinceCkpt, ckptEvery int           // write transactions since the last checkpoint, and between checkpoints
	rested               time.Duration // how long the last checkpoint let other writers in

	stmts map[string]*sql.Stmt // prepared on the write connection
	fresh []string             // statements run since, to prepare

	// For tests: the work per transaction (1ns: one unit each, instead of
	// pruneTxBudget), and a call after each committed one, told whether
	// its pass has more to do.
	Budget  time.Duration
	AfterTx func(more bool)
}

// prune removes, oldest first, completed runs older than keep.Runs with
// their jobs, steps and logs, then the logs of completed runs older than
// keep.Logs (each step's log gives way to one line saying so); a zero age
// skips that kind. Unless dry or told to keep them, freed pages go back to
// the filesystem as it goes and at the end. Another prune, in this process
// or another, may run at once, and one interrupted (ctx, a crash) leaves
// nothing half-done that the next does not finish.
func (s *Store) Prune(ctx context.Context, keep Retention, o PruneOpts) (PruneReport, error) {
	p := &Pruner{S: s, o: o}
	err := p.Prune(ctx, keep)
	return p.Rep, err
}

func (p *Pruner) Prune(ctx context.Context, keep Retention) error {
	defer p.closeStmts()
	s, o := p.S, p.o
	now := s.now()
	var err error
	if keep.Runs > 0 { // first: the logs of the runs that go need no removal line
		err = p.Runs(ctx, now.Add(-keep.Runs))
	}
	if err == nil && keep.Logs > 0 {
		err = p.Logs(ctx, now.Add(-keep.Logs), keep.Logs)
	}
	if err == nil && !o.Dry { // the flaky days the tab no longer counts (history.go)
		err = s.pruneFlaky(ctx, keep.Runs)
	}
	if err == nil && !o.Dry && !o.KeepPages {
		err = p.Release(ctx, 0)
	}
	if !o.Dry {
		s.metrics.PrunedLogs.Add(int64(p.Rep.LogRuns))
		s.metrics.PrunedBytes.Add(p.Rep.LogBytes)
		s.metrics.PrunedRuns.Add(int64(p.Rep.Runs))
	}
	return err
}

// write runs one write transaction: unit after unit until one says there
// is nothing more or the budget is spent, then finish. It says whether
// there is more to do.
func (p *Pruner) write(ctx context.Context, unit func(tx pruneTx) (bool, error), finish func(tx pruneTx) error) (bool, error) {
	more := false
	var began time.Time
	budget := cmp.Or(p.Budget, pruneTxBudget)
	p.tx = PruneReport{}
	err := p.S.WithTx(ctx, func(tx *sql.Tx) error {
		began, p.now = time.Now(), p.S.NowMS()
		ptx := pruneTx{tx, p}
		for last := began; ; {
			var err error
			if more, err = unit(ptx); err != nil {
				return err
			}
			// Another unit if it fits, were it to take as long as this one.
			now := time.Now()
			if !more || now.Sub(began)+now.Sub(last) > budget {
				break
			}
			last = now
		}
		if finish != nil {
			if err := finish(ptx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	p.Rep.wrote(time.Since(began))
	p.Rep.Add(p.tx)
	if p.AfterTx != nil {
		p.AfterTx(more)
	}
	p.prepare(ctx)
	return more, p.checkpoint(ctx, 1)
}

// drive runs write transactions of unit until it says there is nothing
// more, handing pages back between them. Stopped by ctx, it returns its
// error; a prune started again goes on where it stopped.
func (p *Pruner) drive(ctx context.Context, unit func(tx pruneTx) (bool, error), finish func(tx pruneTx) error) error {
	for {
		more, err := p.write(ctx, unit, finish)
		if err != nil || !more {
			return err
		}
		if !p.o.KeepPages {
			if err := p.Release(ctx, vacuumHighWater); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		p.rest(ctx)
	}
}

// checkpoint copies the WAL's pages into the database file every few of
// retention's write transactions. Otherwise a commit that finds 1,000
// pages in the WAL checkpoints them itself while it holds the write
// connection: one of retention's transactions in fifty took 10–40 ms
// instead of 2. weight is the transaction's, in units of a pruning one
// (some tens of pages); the interval adapts to keep about
// pruneCheckpointPages in the WAL.
//
// The copying is done on a read connection (PASSIVE: it holds no writer
// back), then once more on the write connection, which copies what other
// writers added meanwhile (often nothing) while none can add more: the WAL
// starts over only when a writer begins with all of it copied, and under a
// steady stream of the API's writes it otherwise grew past 1,000 pages,
// and every commit checkpointed. (In a goroutine of its own, alongside the
// writes, the checkpoint slowed them, and the WAL grew likewise.)
func (p *Pruner) checkpoint(ctx context.Context, weight int) error {
	if p.S.noCheckpoints { // Litestream checkpoints (Options.LeaveCheckpoints)
		return nil
	}
	if p.sinceCkpt += weight; p.sinceCkpt < max(p.ckptEvery, 1) {
		return nil
	}
	ctx = context.WithoutCancel(ctx) // short, and a pass stopped between transactions leaves a WAL like one done
	start := time.Now()
	var busy, log, done int
	if err := p.S.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
		return err
	}
	p.rested = time.Since(start)
	if busy == 0 && log > 0 {
		p.ckptEvery = max(1, min(64, p.sinceCkpt*pruneCheckpointPages/log))
	}
	p.sinceCkpt = 0
	start = time.Now()
	if err := p.S.wdb.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil {
		return err
	}
	p.Rep.wrote(time.Since(start))
	p.Rep.Checkpoints++
	return nil
}

// rest pauses between write transactions; a checkpoint just made counts.
func (p *Pruner) rest(ctx context.Context) {
	pause := p.o.Pause - p.rested
	p.rested = 0
	if pause <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(pause):
	}
}

// release hands free pages back to the filesystem until at most target
// are left, in incremental_vacuum steps, each a write transaction of its
// own, sized by the last ones' cost per page to take a millisecond or so.
func (p *Pruner) Release(ctx context.Context, target int64) error {
	for {
		var free int64
		if err := p.S.db.QueryRowContext(context.WithoutCancel(ctx), "PRAGMA freelist_count").Scan(&free); err != nil {
			return err
		}
		if free <= target {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int64(vacuumFirstPages)
		if p.perPage > 0 { // half the budget: the cost per page varies
			n = int64(pruneTxBudget / 2 / p.perPage)
		}
		n = max(1, min(n, vacuumMaxPages, free))
		var began time.Time
		err := p.S.WithTx(ctx, func(tx *sql.Tx) error {
			began = time.Now()
			_, err := tx.Exec(fmt.Sprintf("PRAGMA incremental_vacuum(%d)", n))
			return err
		})
		if err != nil {
			return err
		}
		took := time.Since(began)
		p.Rep.wrote(took)
		p.Rep.VacuumSteps++
		p.Rep.Pages += n
		if err := p.checkpoint(ctx, 1+int(n)/32); err != nil { // it wrote the moved pages and their parents
			return err
		}
		// The cost per page varies (with the free list's length, and what
		// the moved pages hold): up at once, down by halves.
		cost := took / time.Duration(n)
		p.perPage = max(cost, (p.perPage+cost)/2, time.Microsecond)
		p.rest(ctx)
	}
}

// pruneTx is a write transaction of retention's. Its statements are
// prepared once, on the write connection, between two transactions (not
// in one: that holds the connection): preparing them each time, with the
// triggers and foreign keys a run's deletion sets off, took a fifth of
// the time.
type pruneTx struct {
	*sql.Tx
	p *Pruner
}

func (t pruneTx) stmt(q string) *sql.Stmt {
	if st := t.p.stmts[q]; st != nil {
		return t.Tx.Stmt(st)
	}
	if !slices.Contains(t.p.fresh, q) {
		t.p.fresh = append(t.p.fresh, q)
	}
	return nil
}

func (t pruneTx) Exec(q string, args ...any) (sql.Result, error) {
	if st := t.stmt(q); st != nil {
		return st.Exec(args...)
	}
	return t.Tx.Exec(q, args...)
}

func (t pruneTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, q, args...)
}

func (t pruneTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := t.stmt(q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, q, args...)
}

func (t pruneTx) Query(q string, args ...any) (*sql.Rows, error) {
	return t.QueryContext(context.Background(), q, args...)
}

func (t pruneTx) QueryRow(q string, args ...any) *sql.Row {
	return t.QueryRowContext(context.Background(), q, args...)
}

// prepare prepares the statements the last transactions ran unprepared.
func (p *Pruner) prepare(ctx context.Context) {
	for _, q := range p.fresh {
		st, err := p.S.wdb.PrepareContext(ctx, q)
		if err != nil {
			continue // it runs unprepared
		}
		if p.stmts == nil {
			p.stmts = map[string]*sql.Stmt{}
		}
		p.stmts[q] = st
	}
	p.fresh = p.fresh[:0]
}

func (p *Pruner) closeStmts() {
	for _, st := range p.stmts {
		st.Close()
	}
	clear(p.stmts)
}

// logGroup removes the end of a step's log: its last chunks,
// pruneGroupBytes of them at most but one at least, so that what is left
// reads as the log's beginning, with log_size its size. When what is left
// fits in one group and marker is given, the whole log goes and marker
// takes its place. It returns the bytes left (0 once the step is done)
// and the bytes removed.
func (p *Pruner) logGroup(tx pruneTx, stepID int64, marker []byte) (left, removed int64, err error) {
	rows, err := tx.Query(`SELECT seq, octet_length(data), CASE WHEN octet_length(data) <= ? THEN data END FROM log_chunks
		WHERE step_id = ? ORDER BY seq DESC LIMIT ?`, prunedLogMax, stepID, pruneGroupRows+1)
	if err != nil {
		return 0, 0, err
	}
	type chunk struct {
		seq, size int64
		small     []byte
	}
	var last []chunk
	for rows.Next() {
		var c chunk
		if err := rows.Scan(&c.seq, &c.size, &c.small); err != nil {
			rows.Close()
			return 0, 0, err
		}
		last = append(last, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	if len(last) == 0 || len(last) == 1 && marker != nil && isPrunedLog(last[0].small) {
		return 0, 0, nil // done already (by another prune, or one interrupted)
	}
	n := 0
	for n < len(last) && n < pruneGroupRows && (n == 0 || removed+last[n].size <= PruneGroupBytes) {
		removed += last[n].size
		n++
	}
	if n == len(last) && marker != nil {
		if _, err := tx.Exec("DELETE FROM log_chunks WHERE step_id = ?", stepID); err != nil {
			return 0, 0, err
		}
		if _, err := tx.Exec("INSERT INTO log_chunks (step_id, seq, data) VALUES (?, 1, ?)", stepID, marker); err != nil {
			return 0, 0, err
		}
		if err := mustAffectOne(tx.Exec("UPDATE steps SET log_size = ?, log_truncated = 0 WHERE id = ?", len(marker), stepID)); err != nil {
			return 0, 0, err
		}
		return 0, removed, nil
	}
	if _, err := tx.Exec("DELETE FROM log_chunks WHERE step_id = ? AND seq >= ?", stepID, last[n-1].seq); err != nil {
		return 0, 0, err
	}
	err = tx.QueryRow("UPDATE steps SET log_size = max(log_size - ?, 0) WHERE id = ? RETURNING log_size", removed, stepID).Scan(&left)
	return left, removed, err
}

// logOfStep is a step's log still to go, and its size.
type logOfStep struct{ id, size int64 }

// runLogs lists a run's steps that have a log.
func runLogs(ctx context.Context, q querier, runID int64) ([]logOfStep, error) {
	rows, err := q.QueryContext(ctx, `SELECT s.id, s.log_size FROM jobs j JOIN steps s ON s.job_id = j.id
		WHERE j.run_id = ? AND s.log_size > 0 ORDER BY s.id`, runID)
	return ScanAll(rows, err, func(r interface{ Scan(...any) error }) (logOfStep, error) {
		var st logOfStep
		return st, r.Scan(&st.id, &st.size)
	})
}

// logs removes the logs of completed runs created before cutoff, oldest
// first. A step's log goes from its end, a group at a time, so that a
// reader meanwhile sees its beginning; the last group gives way to the
// removal line, and once every step of a run is done the run is marked.
// Runs still open are passed over.
func (p *Pruner) Logs(ctx context.Context, cutoff time.Time, keep time.Duration) error {
	if p.o.Dry {
		return p.dryLogs(ctx, cutoff)
	}
	marker := []byte(PrunedLogLine(keep))
	var after, run int64 // run: the run whose logs are going; runs up to after are done
	var steps []logOfStep
	// Each unit changes something, so that a prune stopped after every
	// transaction still gets on: what is passed over (open runs, steps
	// done before) is passed over within one.
	return p.drive(ctx, func(tx pruneTx) (bool, error) {
		for {
			if run == 0 {
				var id, created int64
				var status string
				err := tx.QueryRow("SELECT id, created_at, status FROM runs WHERE logs_pruned_at IS NULL AND id > ? ORDER BY id LIMIT 1",
					after).Scan(&id, &created, &status)
				if errors.Is(err, sql.ErrNoRows) || err == nil && created >= cutoff.UnixMilli() {
					return false, nil
				}
				if err != nil {
					return false, err
				}
				if status != protocol.StatusCompleted {
					after = id
					continue
				}
				if steps, err = runLogs(context.WithoutCancel(ctx), tx, id); err != nil {
					return false, err
				}
				run = id
			}
			if len(steps) == 0 {
				res, err := tx.Exec("UPDATE runs SET logs_pruned_at = ? WHERE id = ? AND logs_pruned_at IS NULL", p.now, run)
				if err != nil {
					return false, err
				}
				if n, _ := res.RowsAffected(); n == 1 {
					p.tx.LogRuns++
				}
				after, run = run, 0
				return true, nil
			}
			left, removed, err := p.logGroup(tx, steps[0].id, marker)
			if err != nil {
				return false, err
			}
			p.tx.LogBytes += removed
			if left == 0 {
				if removed > 0 {
					p.tx.LogSteps++
				}
				steps = steps[1:]
			}
			if removed > 0 && len(steps) > 0 {
				return true, nil
			}
		}
	}, nil)
}

// runs removes completed runs created before cutoff, oldest first, with
// their jobs, steps and logs (the foreign keys cascade); a run with more
// log than pruneRunLogBytes loses it first, a group at a time. Their
// re-runs keep going with a null parent_run_id; the feed's validators of
// each repository touched change. Runs still open are passed over.
func (p *Pruner) Runs(ctx context.Context, cutoff time.Time) error {
	if p.o.Dry {
		return p.dryRuns(ctx, cutoff)
	}
	type victim struct {
		id, repo, push int64
		logs           []logOfStep // while more than pruneRunLogBytes
	}
	var after int64 // runs up to here are gone or passed over
	var v *victim   // the run going
	repos := map[int64]bool{}
	return p.drive(ctx, func(tx pruneTx) (bool, error) {
		for v == nil { // open runs are passed over within a unit, as in logs
			var next victim
			var push sql.NullInt64
			var created int64
			var status string
			var logs bool
			err := tx.QueryRow(`SELECT id, repo_id, push_id, created_at, status, logs_pruned_at IS NULL FROM runs
				WHERE id > ? ORDER BY id LIMIT 1`, after).Scan(&next.id, &next.repo, &push, &created, &status, &logs)
			if errors.Is(err, sql.ErrNoRows) || err == nil && created >= cutoff.UnixMilli() {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			if status != protocol.StatusCompleted {
				after = next.id
				continue
			}
			next.push = push.Int64
			if logs {
				if next.logs, err = runLogs(context.WithoutCancel(ctx), tx, next.id); err != nil {
					return false, err
				}
			}
			v = &next
		}
		for {
			var total int64
			big := 0
			for i, st := range v.logs {
				total += st.size
				if st.size > v.logs[big].size {
					big = i
				}
			}
			if total <= pruneRunLogBytes {
				break
			}
			left, removed, err := p.logGroup(tx, v.logs[big].id, nil)
			if err != nil {
				return false, err
			}
			if v.logs[big].size = left; removed > 0 {
				return true, nil
			}
		}
		if _, err := tx.Exec("UPDATE runs SET parent_run_id = NULL WHERE parent_run_id = ?", v.id); err != nil {
			return false, err
		}
		res, err := tx.Exec("DELETE FROM runs WHERE id = ?", v.id)
		if err != nil {
			return false, err
		}
		if n, _ := res.RowsAffected(); n == 1 { // else another prune took it
			p.tx.Runs++
			repos[v.repo] = true
			if v.push != 0 {
				res, err := tx.Exec("DELETE FROM pushes WHERE id = ? AND NOT EXISTS (SELECT 1 FROM runs WHERE push_id = ?)", v.push, v.push)
				if err != nil {
					return false, err
				}
				n, _ := res.RowsAffected()
				p.tx.Pushes += int(n)
			}
		}
		after, v = v.id, nil
		return true, nil
	}, func(tx pruneTx) error {
		for id := range repos {
			if _, err := tx.Exec("UPDATE repos SET runs_version = runs_version + 1, runs_updated_at = ? WHERE id = ?", p.now, id); err != nil {
				return err
			}
		}
		clear(repos)
		return nil
	})
}

// dryLogs counts the logs logs would remove, reading pruneRunsPerRead runs
// at a time.
func (p *Pruner) dryLogs(ctx context.Context, cutoff time.Time) error {
	return p.dryRead(ctx, cutoff, "logs_pruned_at IS NULL AND", func(id int64) error {
		steps, err := runLogs(ctx, p.S.db, id)
		if err != nil {
			return err
		}
		p.Rep.LogRuns++
		p.Rep.LogSteps += len(steps)
		for _, st := range steps {
			p.Rep.LogBytes += st.size
		}
		return nil
	})
}

// dryRuns counts the runs runs would remove.
func (p *Pruner) dryRuns(ctx context.Context, cutoff time.Time) error {
	return p.dryRead(ctx, cutoff, "", func(int64) error {
		p.Rep.Runs++
		return nil
	})
}

// dryRead calls fn with each completed run created before cutoff that
// matches where (a condition followed by AND), oldest first.
func (p *Pruner) dryRead(ctx context.Context, cutoff time.Time, where string, fn func(id int64) error) error {
	for after := int64(0); ctx.Err() == nil; {
		start := time.Now()
		rows, err := p.S.db.QueryContext(ctx, "SELECT id, created_at, status FROM runs WHERE "+where+" id > ? ORDER BY id LIMIT ?",
			after, pruneRunsPerRead)
		if err != nil {
			return err
		}
		var ids []int64
		n, done := 0, false
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
			if status == protocol.StatusCompleted {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if err := fn(id); err != nil {
				return err
			}
		}
		p.Rep.Batches++
		p.Rep.Longest = max(p.Rep.Longest, time.Since(start))
		if done || n < pruneRunsPerRead {
			return nil
		}
	}
	return ctx.Err()
}

// Ping is /healthz's read probe: one read on a read connection.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM meta").Scan(&n)
}

// PageSize is the database's page size in bytes.
func (s *Store) PageSize(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&n)
	return n, err
}

// Vacuum rewrites the whole file (prune --vacuum), on the write
// connection; a full disk or a busy database is said as writeFailed says
// it.
func (s *Store) Vacuum(ctx context.Context) error {
	if _, err := s.wdb.ExecContext(ctx, "VACUUM"); err != nil {
		return s.writeFailed(err)
	}
	return nil
}

// checkpoint folds the WAL into the database file and truncates it. It
// runs on a read connection with a short busy timeout, so that a long
// reader makes it give up rather than hold writers back.
func (s *Store) Checkpoint(ctx context.Context) (busy bool, err error) {
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
func (s *Store) Analyze(ctx context.Context, pause time.Duration) (int, error) {
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
type Maintainer struct {
	Store    *Store
	Log      *slog.Logger
	Keep     Retention
	Every    time.Duration // between retention passes
	Idle     time.Duration // how long writes must pause before a checkpoint
	LocalRun int64         // the pool's runner row, touched as a sign of life
	pruning  atomic.Bool   // a retention pass is under way
}

func (m *Maintainer) Run(ctx context.Context) {
	tick := time.NewTicker(m.Idle)
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
		if m.LocalRun != 0 {
			if err := m.Store.TouchRunner(ctx, m.LocalRun); err != nil && ctx.Err() == nil {
				m.Log.Warn("marking the job pool alive", "err", err)
			}
		}
		if !time.Now().Before(nextPrune) {
			nextPrune = time.Now().Add(m.Every)
			// Its own goroutine: a first pass over years of history takes
			// minutes, and the pool's sign of life must go on meanwhile.
			if m.pruning.CompareAndSwap(false, true) {
				go func() {
					defer m.pruning.Store(false)
					m.pass(ctx)
				}()
			}
		}
		if !time.Now().Before(nextAnalyze) {
			nextAnalyze = time.Now().Add(24 * time.Hour)
			start := time.Now()
			if n, err := m.Store.Analyze(ctx, 50*time.Millisecond); err != nil {
				if ctx.Err() == nil {
					m.Log.Warn("refreshing the planner's statistics", "err", err)
				}
			} else {
				m.Log.Info("refreshed the planner's statistics", "indexes", n, "took", time.Since(start).Round(time.Millisecond))
			}
		}
		last := m.Store.lastWrite.Load()
		if last != checkpointed && time.Since(time.Unix(0, last)) >= m.Idle && !m.Store.noCheckpoints {
			if busy, err := m.Store.Checkpoint(ctx); err != nil {
				if ctx.Err() == nil {
					m.Log.Warn("checkpointing the WAL", "err", err)
				}
			} else if !busy {
				checkpointed = last
			}
		}
	}
}

// pass is one retention pass; the freed pages go back as it goes.
func (m *Maintainer) pass(ctx context.Context) {
	if m.Keep.Logs <= 0 && m.Keep.Runs <= 0 {
		return
	}
	start := time.Now()
	rep, err := m.Store.Prune(ctx, m.Keep, PruneOpts{Pause: pruneServePause})
	if err != nil && ctx.Err() == nil {
		m.Log.Error("retention", "err", err)
	}
	if !rep.Empty() || rep.Pages > 0 {
		m.Log.Info("retention", "logs_of_runs", rep.LogRuns, "log_bytes", rep.LogBytes, "runs", rep.Runs,
			"pushes", rep.Pushes, "pages_released", rep.Pages, "writes", rep.Batches, "p99", rep.Percentile(0.99).Round(10*time.Microsecond),
			"longest", rep.Longest.Round(10*time.Microsecond), "took", time.Since(start).Round(time.Millisecond))
	}
}
