// `shithub-actions dev fill`: a hidden command that fills a test database
// with a long history of runs of a realistic shape, for the load tool
// (bench/) and for measuring. The load tool calls it rather than writing
// rows itself, so it need not know the schema.

package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"

	"github.com/google/uuid"
)

// fillWorkflow is one workflow of a filled repository: its share of the
// runs and its jobs, each with its step count.
type fillWorkflow struct {
	file, name, content string
	share               float64
	jobs                []fillJob
}

type fillJob struct {
	key, needs string
	steps      int
}

var fillWorkflows = []fillWorkflow{
	{"ci.yml", "CI", "name: CI\non: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: make\n      - run: make vet\n  test:\n    needs: build\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: make test\n",
		0.7, []fillJob{{"build", "", 4}, {"test", "build", 3}}},
	{"nightly.yml", "Nightly", "name: Nightly\non: workflow_dispatch\njobs:\n  long:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: make long-test\n",
		0.2, []fillJob{{"long", "", 3}}},
	{"release.yml", "Release", "name: Release\non:\n  push:\n    tags: ['v*']\njobs:\n  release:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: make dist\n",
		0.1, []fillJob{{"release", "", 3}}},
}

// devFill is `shithub-actions dev fill --repo OWNER/NAME --runs N`: N
// completed runs, one every --every up to now, on main and feature
// branches, by the given actors, re-runs among them (2% of runs, 30% of
// failed ones; a failed job passing on its re-run counts as flaky); the
// newest --logs-for runs carry logs, older ones have had theirs removed by
// retention.
func (c *cli) devFill(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev fill", flag.ContinueOnError)
	repoName := fs.String("repo", "", "OWNER/NAME")
	n := fs.Int("runs", 10_000, "runs to add")
	every := fs.Duration("every", 26*time.Minute, "time between runs (26m: 20,000 a year)")
	logsFor := fs.Int("logs-for", 2000, "the newest this many runs keep logs")
	logBytes := fs.Int("log-bytes", 2048, "log bytes per step")
	actors := fs.String("actors", "", "comma-separated users the runs are by (default: the owner)")
	seed := fs.Uint64("seed", 1, "random seed")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	if *n < 0 || *every <= 0 || *logsFor < 0 || *logBytes < 0 {
		return apperr.Usagef("dev fill: --runs, --logs-for and --log-bytes must not be negative, --every must be positive")
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	repo, err := findRepo(ctx, st, *repoName)
	if err != nil {
		return err
	}
	actorIDs := []int64{repo.OwnerID}
	if *actors != "" {
		actorIDs = nil
		for _, a := range strings.Split(*actors, ",") {
			u, err := findUser(ctx, st, strings.TrimSpace(a))
			if err != nil {
				return err
			}
			actorIDs = append(actorIDs, u.ID)
		}
	}
	start := time.Now()
	rng := rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))
	logLine := strings.Repeat("compiling package ... ok\n", *logBytes/25+1)[:*logBytes]
	now := st.Now()
	t0 := now.Add(-time.Duration(*n) * *every)
	const perTx = 2000
	for done := 0; done < *n; {
		batch := min(perTx, *n-done)
		err := st.WithTx(ctx, func(tx *sql.Tx) error {
			var idx int64
			if err := tx.QueryRow("SELECT COALESCE(MAX(run_index), 0) FROM runs WHERE repo_id = ?", repo.ID).Scan(&idx); err != nil {
				return err
			}
			insRun, err := tx.Prepare(`INSERT INTO runs (uuid, repo_id, run_index, run_attempt, parent_run_id, workflow_file, workflow_name,
				workflow_content, head_sha, head_ref, event, actor_id, status, conclusion, created_at, started_at, completed_at, updated_at,
				logs_pruned_at, workflow_id, title) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'completed', ?, ?, ?, ?, ?, ?, ?, ?)`)
			if err != nil {
				return err
			}
			defer insRun.Close()
			insJob, err := tx.Prepare(`INSERT INTO jobs (run_id, job_key, base_key, name, runs_on, needs, status, conclusion, ready, activated,
				created_at, started_at, completed_at) VALUES (?, ?, ?, ?, '["ubuntu-latest"]', ?, 'completed', ?, 1, 1, ?, ?, ?)`)
			if err != nil {
				return err
			}
			defer insJob.Close()
			insStep, err := tx.Prepare(`INSERT INTO steps (job_id, number, kind, name, run, status, conclusion, started_at, completed_at, log_size)
				VALUES (?, ?, 'run', ?, 'make', 'completed', ?, ?, ?, ?)`)
			if err != nil {
				return err
			}
			defer insStep.Close()
			insChunk, err := tx.Prepare("INSERT INTO log_chunks (step_id, seq, data) VALUES (?, 1, ?)")
			if err != nil {
				return err
			}
			defer insChunk.Close()
			wfIDs := map[string]int64{}
			for _, wf := range fillWorkflows {
				row, err := st.UpsertWorkflow(tx, repo.ID, git.WorkflowDir+wf.file, wf.name, true, st.NowMS())
				if err != nil {
					return err
				}
				wfIDs[wf.file] = row.ID
			}
			// The previous run, which a re-run repeats: the same workflow,
			// commit, ref and event, the next attempt.
			var prevID int64
			var prev struct {
				wf                     fillWorkflow
				sha, ref, event, concl string
				attempt                int
			}
			for i := 0; i < batch; i++ {
				k := done + i
				created := t0.Add(time.Duration(k) * *every).Add(time.Duration(rng.Int64N(int64(min(time.Minute, *every))))).UnixMilli() // in run number order, as insertRun keeps it
				wf := fillWorkflows[0]
				if x := rng.Float64(); x >= 0.7 && x < 0.9 {
					wf = fillWorkflows[1]
				} else if x >= 0.9 {
					wf = fillWorkflows[2]
				}
				ref, event := "refs/heads/main", "push"
				switch {
				case wf.file == "release.yml":
					ref = fmt.Sprintf("refs/tags/v1.%d.%d", k/1000, k%1000)
				case wf.file == "nightly.yml":
					event = "workflow_dispatch"
				case rng.IntN(10) < 4:
					ref = fmt.Sprintf("refs/heads/feature-%d", (k/50)%400)
				}
				conclusion := protocol.ConclusionSuccess
				switch x := rng.IntN(100); {
				case x < 10:
					conclusion = protocol.ConclusionFailure
				case x < 15:
					conclusion = protocol.ConclusionCancelled
				}
				sha := fmt.Sprintf("%016x%024x", rng.Uint64(), 0) // random where the short SHA shows
				var parent sql.NullInt64
				attempt := 1
				// 2% of runs are re-runs, and 30% of failed runs are re-run;
				// a failed job passing on its re-run is a flaky event.
				flaky := false
				if prevID != 0 && (rng.IntN(50) == 0 || prev.concl == protocol.ConclusionFailure && rng.IntN(10) < 3) {
					parent, attempt = sql.NullInt64{Int64: prevID, Valid: true}, prev.attempt+1
					wf, sha, ref, event = prev.wf, prev.sha, prev.ref, prev.event
					if prev.concl == protocol.ConclusionFailure && rng.IntN(10) < 7 {
						conclusion, flaky = protocol.ConclusionSuccess, true
					}
				}
				prev.wf, prev.sha, prev.ref, prev.event, prev.concl, prev.attempt = wf, sha, ref, event, conclusion, attempt
				var pruned sql.NullInt64
				withLogs := k >= *n-*logsFor
				if !withLogs {
					pruned = sql.NullInt64{Int64: now.UnixMilli(), Valid: true}
				}
				idx++
				dur := int64(30_000 + rng.IntN(600_000))
				res, err := insRun.Exec(uuid.NewString(), repo.ID, idx, attempt, parent, git.WorkflowDir+wf.file, wf.name, []byte(wf.content),
					sha, ref, event, actorIDs[rng.IntN(len(actorIDs))], conclusion,
					created, created+2000, created+dur, created+dur, pruned, wfIDs[wf.file], wf.name)
				if err != nil {
					return err
				}
				runID, err := res.LastInsertId()
				if err != nil {
					return err
				}
				prevID = runID
				if flaky {
					if err := store.RecordFlaky(tx, wfIDs[wf.file], wf.jobs[0].key, created+dur); err != nil {
						return err
					}
				}
				for ji, j := range wf.jobs {
					jc := conclusion
					if ji > 0 && conclusion != protocol.ConclusionSuccess {
						jc = protocol.ConclusionSkipped
					}
					needs := "[]"
					if j.needs != "" {
						needs = `["` + j.needs + `"]`
					}
					res, err := insJob.Exec(runID, j.key, j.key, j.key, needs, jc, created, created+2000, created+dur)
					if err != nil {
						return err
					}
					jobID, err := res.LastInsertId()
					if err != nil {
						return err
					}
					for sn := 1; sn <= j.steps; sn++ {
						size := 0
						if withLogs && jc != protocol.ConclusionSkipped {
							size = len(logLine)
						}
						res, err := insStep.Exec(jobID, sn, fmt.Sprintf("Step %d", sn), jc, created+2000, created+dur, size)
						if err != nil {
							return err
						}
						if size > 0 {
							stepID, err := res.LastInsertId()
							if err != nil {
								return err
							}
							if _, err := insChunk.Exec(stepID, []byte(logLine)); err != nil {
								return err
							}
						}
					}
				}
			}
			_, err = tx.Exec("UPDATE repos SET runs_version = runs_version + 1, runs_updated_at = ? WHERE id = ?", st.NowMS(), repo.ID)
			return err
		})
		if err != nil {
			return err
		}
		done += batch
	}
	fmt.Fprintf(c.stdout, "filled %s with %d runs in %s\n", repo.FullName(), *n, time.Since(start).Round(time.Millisecond))
	return nil
}
