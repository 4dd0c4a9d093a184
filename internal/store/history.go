package store

// History at a glance (issue 21): a workflow's last runs for the tab's
// duration chart, and flaky jobs, kept counted.
//
// A flaky event is a job that passed in a re-run of its run (a later
// attempt, parent_run_id) where the same job (job_key) had failed or timed
// out in the attempt re-run. Attempts rather than "any later run of the
// workflow at the same head_sha": an attempt runs the same workflow bytes
// for the same event, inputs and ref, so only the job's luck differs, where
// another run at the same commit may be another event (a pull request and
// a push), other inputs, or a workflow file changed on another branch. And
// the attempt's job is one look-up on jobs' (run_id, job_key) key, not a
// search of the commit's runs.
//
// Runs of a fork's pull request never count: their author is untrusted
// and controls whether their jobs fail, so they could paint any job of the
// repository's workflow flaky.

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"shithub-actions/internal/protocol"
)

// FlakyWindowDays is how many days of flaky events the tab counts, and
// retention keeps.
const FlakyWindowDays = 30

// flakyDay is the UTC day number of a time in Unix milliseconds.
func flakyDay(ms int64) int64 { return ms / (24 * 60 * 60 * 1000) }

// noteFlaky is finishJob's hook for a job that succeeded: when the attempt
// its run re-ran had the same job failed or timed out, and the run is
// trusted, one flaky event is counted on the run's workflow, today.
func (s *Store) noteFlaky(tx *sql.Tx, j *Job, now int64) error {
	var wfID sql.NullInt64
	var event, payload, repoName, before string
	err := tx.QueryRow(`SELECT r.workflow_id, r.event, r.event_payload, u.name || '/' || rp.name, p.conclusion
		FROM runs r JOIN jobs p ON p.run_id = r.parent_run_id AND p.job_key = ?
		JOIN repos rp ON rp.id = r.repo_id JOIN users u ON u.id = rp.owner_id
		WHERE r.id = ?`, j.JobKey, j.RunID).Scan(&wfID, &event, &payload, &repoName, &before)
	if errors.Is(err, sql.ErrNoRows) { // a first attempt, or a job the earlier attempt did not have
		return nil
	}
	if err != nil {
		return err
	}
	if !wfID.Valid || before != protocol.ConclusionFailure && before != protocol.ConclusionTimedOut {
		return nil
	}
	var p map[string]any
	if err := decodeColumn("runs.event_payload", payload, &p); err != nil {
		return err
	}
	if isForkPullRequest(event, p, repoName) {
		return nil
	}
	return RecordFlaky(tx, wfID.Int64, j.Name, now)
}

// RecordFlaky counts one flaky event of job name on workflow wfID at now
// (Unix milliseconds). `dev fill` calls it for the re-runs it makes.
func RecordFlaky(tx *sql.Tx, wfID int64, name string, now int64) error {
	_, err := tx.Exec(`INSERT INTO flaky_jobs (workflow_id, day, job_name, events) VALUES (?, ?, ?, 1)
		ON CONFLICT DO UPDATE SET events = events + 1`, wfID, flakyDay(now), name)
	return err
}

// FlakyJob is a job of a workflow with flaky events in the window.
type FlakyJob struct {
	Name   string
	Events int64
}

// sqlFlakyJobs is a hot query (TestReadPathPlans): one workflow's kept
// days from the window's first, at most FlakyWindowDays rows per job.
const sqlFlakyJobs = `SELECT job_name, SUM(events) FROM flaky_jobs WHERE workflow_id = ? AND day >= ?
	GROUP BY job_name ORDER BY SUM(events) DESC, job_name LIMIT ?`

// FlakyJobs lists the jobs of workflow wfID of repository repoID with
// flaky events in the last FlakyWindowDays days (today included), most
// first, at most n. A workflow of another repository has none.
func (s *Store) FlakyJobs(ctx context.Context, repoID, wfID int64, n int) ([]FlakyJob, error) {
	var ok int
	err := s.rd.QueryRowContext(ctx, "SELECT 1 FROM workflows WHERE id = ? AND repo_id = ?", wfID, repoID).Scan(&ok)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	from := flakyDay(s.NowMS()) - FlakyWindowDays + 1
	rows, err := s.rd.QueryContext(ctx, sqlFlakyJobs, wfID, from, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FlakyJob
	for rows.Next() {
		var f FlakyJob
		if err := rows.Scan(&f.Name, &f.Events); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// RunPoint is one run of a workflow's duration chart.
type RunPoint struct {
	Index              int64
	Attempt            int64
	Status, Conclusion string
	StartedAt, EndedAt time.Time // zero when not started, not ended
	Branch             string    // head_ref
	CreatedAt          time.Time
}

// sqlWorkflowHistory walks the (repo_id, workflow_id, run_index) index from
// the newest run: n index steps and n rows, at any history.
const sqlWorkflowHistory = `SELECT r.run_index, r.run_attempt, r.status, r.conclusion, r.created_at, r.started_at, r.completed_at, r.head_ref
	FROM runs r INDEXED BY runs_repo_workflow_index WHERE r.repo_id = ? AND r.workflow_id = ? ORDER BY r.run_index DESC LIMIT ?`

// WorkflowHistory returns the newest n runs of workflow wfID of repository
// repoID, oldest first, as the chart draws them.
func (s *Store) WorkflowHistory(ctx context.Context, repoID, wfID int64, n int) ([]RunPoint, error) {
	rows, err := s.rd.QueryContext(ctx, sqlWorkflowHistory, repoID, wfID, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RunPoint
	for rows.Next() {
		var p RunPoint
		var created int64
		var started, completed sql.NullInt64
		if err := rows.Scan(&p.Index, &p.Attempt, &p.Status, &p.Conclusion, &created, &started, &completed, &p.Branch); err != nil {
			return nil, err
		}
		p.CreatedAt = time.UnixMilli(created).UTC()
		if started.Valid {
			p.StartedAt = time.UnixMilli(started.Int64).UTC()
		}
		if completed.Valid {
			p.EndedAt = time.UnixMilli(completed.Int64).UTC()
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// pruneFlaky removes the flaky days before the window, or before keepRuns
// when that is shorter: counts of re-runs that retention removed go too.
func (s *Store) pruneFlaky(ctx context.Context, keepRuns time.Duration) error {
	keep := FlakyWindowDays * 24 * time.Hour
	if keepRuns > 0 && keepRuns < keep {
		keep = keepRuns
	}
	before := flakyDay(s.now().Add(-keep).UnixMilli())
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec("DELETE FROM flaky_jobs WHERE day < ?", before)
		return err
	})
}
