// The Store: opening and migrating the database, withTx, scanners, and
// the reads and writes of users, repositories, permissions, tokens,
// runners, logs and browser sessions. The run/job state machine is in
// lifecycle.go.

package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/hostfile"
	"shithub-actions/internal/jobsvc"
	"shithub-actions/internal/metrics"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// migrations[i] moves the schema from version i+1 to i+2; schema.sql is
// version 1. Append only.
var Migrations = []string{
	// 2: workflows as GitHub's REST API has them (a stable id, a name, an
	// enabled state, a kept count of runs for total_count); each run's
	// workflow, display title and head commit; an index for each filter of
	// the runs list, all in the list's order (created_at DESC, id DESC).
	`CREATE TABLE workflows (
		id         INTEGER PRIMARY KEY,
		repo_id    INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
		path       TEXT NOT NULL,
		name       TEXT NOT NULL,
		state      TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled_manually')),
		run_count  INTEGER NOT NULL DEFAULT 0,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		UNIQUE (repo_id, path)
	);
	INSERT INTO workflows (repo_id, path, name, run_count, created_at, updated_at)
		SELECT repo_id, workflow_file,
			(SELECT n.workflow_name FROM runs n WHERE n.repo_id = r.repo_id AND n.workflow_file = r.workflow_file ORDER BY n.id DESC LIMIT 1),
			COUNT(*), MIN(created_at), MAX(created_at)
		FROM runs r GROUP BY repo_id, workflow_file;
	ALTER TABLE runs ADD COLUMN workflow_id INTEGER REFERENCES workflows(id);
	UPDATE runs SET workflow_id = (SELECT w.id FROM workflows w WHERE w.repo_id = runs.repo_id AND w.path = runs.workflow_file);
	ALTER TABLE runs ADD COLUMN title TEXT NOT NULL DEFAULT '';
	ALTER TABLE runs ADD COLUMN head_commit TEXT;
	CREATE INDEX runs_repo_workflow ON runs (repo_id, workflow_id, created_at DESC, id DESC);
	CREATE INDEX runs_repo_ref ON runs (repo_id, head_ref, created_at DESC, id DESC);
	CREATE INDEX runs_repo_actor ON runs (repo_id, actor_id, created_at DESC, id DESC);
	CREATE INDEX runs_repo_event ON runs (repo_id, event, created_at DESC, id DESC);
	CREATE INDEX runs_repo_status ON runs (repo_id, status, created_at DESC, id DESC);
	CREATE INDEX runs_repo_conclusion ON runs (repo_id, conclusion, created_at DESC, id DESC);
	CREATE INDEX runs_repo_sha ON runs (repo_id, head_sha, created_at DESC, id DESC);
	CREATE TRIGGER runs_count_insert AFTER INSERT ON runs BEGIN
		UPDATE workflows SET run_count = run_count + 1 WHERE id = NEW.workflow_id;
	END;
	CREATE TRIGGER runs_count_delete AFTER DELETE ON runs BEGIN
		UPDATE workflows SET run_count = run_count - 1 WHERE id = OLD.workflow_id;
	END;`,
	// 3: issue 9, the workflow language. Matrix legs are rows of their own:
	// base_key is the workflow's job id, job_key stays unique per run (a leg
	// is "key#n", and '#' cannot occur in a job id), so UNIQUE (run_id,
	// job_key) holds without rebuilding the table. activated: the job's needs
	// are done and its if, matrix and values were evaluated; waiting says why
	// an activated job is not claimable yet (max-parallel, concurrency).
	`ALTER TABLE repos ADD COLUMN default_branch TEXT NOT NULL DEFAULT 'main';
	ALTER TABLE runs ADD COLUMN event_payload TEXT NOT NULL DEFAULT '{}';
	ALTER TABLE runs ADD COLUMN concurrency_group TEXT NOT NULL DEFAULT '';
	ALTER TABLE runs ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE runs ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX runs_concurrency ON runs (repo_id, concurrency_group) WHERE concurrency_group != '' AND status != 'completed';
	ALTER TABLE jobs ADD COLUMN base_key TEXT NOT NULL DEFAULT '';
	UPDATE jobs SET base_key = job_key;
	ALTER TABLE jobs ADD COLUMN leg INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE jobs ADD COLUMN activated INTEGER NOT NULL DEFAULT 0;
	UPDATE jobs SET activated = (ready = 1 OR status != 'queued');
	ALTER TABLE jobs ADD COLUMN waiting TEXT NOT NULL DEFAULT '';
	ALTER TABLE jobs ADD COLUMN concurrency_group TEXT NOT NULL DEFAULT '';
	ALTER TABLE jobs ADD COLUMN continue_on_error INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE jobs ADD COLUMN fail_fast INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE jobs ADD COLUMN max_parallel INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE jobs ADD COLUMN outputs TEXT NOT NULL DEFAULT '{}';
	ALTER TABLE jobs ADD COLUMN contexts TEXT NOT NULL DEFAULT '{}';
	ALTER TABLE jobs ADD COLUMN container TEXT NOT NULL DEFAULT 'null';
	ALTER TABLE jobs ADD COLUMN services TEXT NOT NULL DEFAULT '{}';
	ALTER TABLE jobs ADD COLUMN environment TEXT NOT NULL DEFAULT 'null';
	CREATE INDEX jobs_concurrency ON jobs (concurrency_group) WHERE concurrency_group != '' AND status != 'completed';
	CREATE INDEX jobs_run_base ON jobs (run_id, base_key);
	ALTER TABLE steps ADD COLUMN summary TEXT NOT NULL DEFAULT '';
	CREATE TABLE annotations (
		id         INTEGER PRIMARY KEY,
		job_id     INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
		step_id    INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
		level      TEXT NOT NULL CHECK (level IN ('error', 'warning', 'notice')),
		message    TEXT NOT NULL,
		file       TEXT NOT NULL DEFAULT '',
		line       INTEGER NOT NULL DEFAULT 0,
		col        INTEGER NOT NULL DEFAULT 0,
		end_line   INTEGER NOT NULL DEFAULT 0,
		end_column INTEGER NOT NULL DEFAULT 0,
		title      TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX annotations_job ON annotations (job_id, id);
	-- The last minute (Unix ms) each schedule fired, so that restarts and
	-- several servers start at most one run per schedule per minute.
	CREATE TABLE schedule_fires (
		repo_id       INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
		workflow_file TEXT NOT NULL,
		cron          TEXT NOT NULL,
		last_minute   INTEGER NOT NULL,
		PRIMARY KEY (repo_id, workflow_file, cron)
	) WITHOUT ROWID;`,
	// 4: a runner can be revoked (runner revoke); a claimed job waits for
	// its runner's first report (claim_acked 0) and goes back to the queue
	// when none comes. Jobs running before this migration count as acked.
	`ALTER TABLE runners ADD COLUMN revoked_at INTEGER;
	ALTER TABLE jobs ADD COLUMN claim_acked INTEGER NOT NULL DEFAULT 1;`,
	// 5: artifacts of runs (artifacts.go), their bytes in parts.
	jobsvc.ArtifactSchema,
	// 6: secrets, variables, the secrets API's box keys, and what each
	// claimed job was given (its GITHUB_TOKEN and the secrets it received).
	migrationSecrets,
	// 7: history-independent reads and retention (issue 13). Kept tables
	// hold, per repository, the workflows and branches that have runs (the
	// Actions tab's choices, the badge's newest run) with their run counts,
	// maintained by triggers so every writer (and a migration's backfill)
	// keeps them right. logs_pruned_at marks runs whose logs retention
	// removed; partial indexes find the open jobs and runs without a scan.
	`ALTER TABLE runs ADD COLUMN logs_pruned_at INTEGER;
CREATE INDEX runs_logs_kept ON runs (id) WHERE logs_pruned_at IS NULL;
CREATE INDEX runs_open ON runs (id) WHERE status != 'completed';
CREATE INDEX jobs_open ON jobs (status, runs_on) WHERE status != 'completed';

CREATE TABLE run_workflows (
	repo_id       INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	workflow_file TEXT NOT NULL,
	workflow_name TEXT NOT NULL, -- as its newest run names it
	last_run_id   INTEGER NOT NULL,
	runs          INTEGER NOT NULL,
	PRIMARY KEY (repo_id, workflow_file)
) WITHOUT ROWID;
CREATE TABLE run_branches (
	repo_id     INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	head_ref    TEXT NOT NULL, -- refs/heads/...
	last_run_id INTEGER NOT NULL,
	runs        INTEGER NOT NULL,
	PRIMARY KEY (repo_id, head_ref)
) WITHOUT ROWID;
CREATE INDEX run_branches_recent ON run_branches (repo_id, last_run_id DESC);
CREATE TABLE run_heads (
	repo_id       INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	workflow_file TEXT NOT NULL,
	head_ref      TEXT NOT NULL,
	last_run_id   INTEGER NOT NULL,
	runs          INTEGER NOT NULL,
	PRIMARY KEY (repo_id, workflow_file, head_ref)
) WITHOUT ROWID;

INSERT INTO run_workflows SELECT repo_id, workflow_file, workflow_name, MAX(id), COUNT(*) FROM runs GROUP BY repo_id, workflow_file;
INSERT INTO run_branches SELECT repo_id, head_ref, MAX(id), COUNT(*) FROM runs
	WHERE substr(head_ref, 1, 11) = 'refs/heads/' GROUP BY repo_id, head_ref;
INSERT INTO run_heads SELECT repo_id, workflow_file, head_ref, MAX(id), COUNT(*) FROM runs GROUP BY repo_id, workflow_file, head_ref;

CREATE TRIGGER runs_kept_insert AFTER INSERT ON runs BEGIN
	INSERT INTO run_workflows VALUES (NEW.repo_id, NEW.workflow_file, NEW.workflow_name, NEW.id, 1)
		ON CONFLICT DO UPDATE SET runs = runs + 1,
			workflow_name = CASE WHEN excluded.last_run_id > last_run_id THEN excluded.workflow_name ELSE workflow_name END,
			last_run_id = max(last_run_id, excluded.last_run_id);
	INSERT INTO run_branches SELECT NEW.repo_id, NEW.head_ref, NEW.id, 1 WHERE substr(NEW.head_ref, 1, 11) = 'refs/heads/'
		ON CONFLICT DO UPDATE SET runs = runs + 1, last_run_id = max(last_run_id, excluded.last_run_id);
	INSERT INTO run_heads VALUES (NEW.repo_id, NEW.workflow_file, NEW.head_ref, NEW.id, 1)
		ON CONFLICT DO UPDATE SET runs = runs + 1, last_run_id = max(last_run_id, excluded.last_run_id);
END;

-- Retention deletes the oldest runs first, so the newest of a group goes
-- last, when its count reaches 0: the MAX() look-up below almost never runs.
CREATE TRIGGER runs_kept_delete AFTER DELETE ON runs BEGIN
	UPDATE run_workflows SET runs = runs - 1, last_run_id = CASE WHEN last_run_id = OLD.id AND runs > 1
			THEN COALESCE((SELECT MAX(id) FROM runs WHERE repo_id = OLD.repo_id AND workflow_file = OLD.workflow_file), 0)
			ELSE last_run_id END
		WHERE repo_id = OLD.repo_id AND workflow_file = OLD.workflow_file;
	DELETE FROM run_workflows WHERE repo_id = OLD.repo_id AND workflow_file = OLD.workflow_file AND runs <= 0;
	UPDATE run_branches SET runs = runs - 1, last_run_id = CASE WHEN last_run_id = OLD.id AND runs > 1
			THEN COALESCE((SELECT MAX(id) FROM runs WHERE repo_id = OLD.repo_id AND head_ref = OLD.head_ref), 0)
			ELSE last_run_id END
		WHERE repo_id = OLD.repo_id AND head_ref = OLD.head_ref;
	DELETE FROM run_branches WHERE repo_id = OLD.repo_id AND head_ref = OLD.head_ref AND runs <= 0;
	UPDATE run_heads SET runs = runs - 1, last_run_id = CASE WHEN last_run_id = OLD.id AND runs > 1
			THEN COALESCE((SELECT MAX(id) FROM runs WHERE repo_id = OLD.repo_id AND workflow_file = OLD.workflow_file
				AND head_ref = OLD.head_ref), 0)
			ELSE last_run_id END
		WHERE repo_id = OLD.repo_id AND workflow_file = OLD.workflow_file AND head_ref = OLD.head_ref;
	DELETE FROM run_heads WHERE repo_id = OLD.repo_id AND workflow_file = OLD.workflow_file AND head_ref = OLD.head_ref
		AND runs <= 0;
END;`,
	// 8: deep pages of the runs list served from an index (issue 13). The
	// unfiltered list and a workflow's list are in run_index order (which
	// is creation order: insertRun keeps created_at from going backwards),
	// and run_blocks keeps how many runs each block of 1,024 run numbers
	// still holds, per repository (workflow_id 0) and per workflow, so
	// page N finds its first run by summing a few kept counts and stepping
	// at most a block through an index, never by skipping N pages of runs.
	`CREATE INDEX runs_repo_workflow_index ON runs (repo_id, workflow_id, run_index);
CREATE TABLE run_blocks (
	repo_id     INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	workflow_id INTEGER NOT NULL, -- 0: all of the repository's runs
	block       INTEGER NOT NULL, -- run_index >> 10
	runs        INTEGER NOT NULL,
	PRIMARY KEY (repo_id, workflow_id, block)
) WITHOUT ROWID;
INSERT INTO run_blocks SELECT repo_id, 0, run_index >> 10, COUNT(*) FROM runs GROUP BY repo_id, run_index >> 10;
INSERT INTO run_blocks SELECT repo_id, workflow_id, run_index >> 10, COUNT(*) FROM runs WHERE workflow_id IS NOT NULL
	GROUP BY repo_id, workflow_id, run_index >> 10;
CREATE TRIGGER runs_blocks_insert AFTER INSERT ON runs BEGIN
	INSERT INTO run_blocks VALUES (NEW.repo_id, 0, NEW.run_index >> 10, 1) ON CONFLICT DO UPDATE SET runs = runs + 1;
	INSERT INTO run_blocks SELECT NEW.repo_id, NEW.workflow_id, NEW.run_index >> 10, 1 WHERE NEW.workflow_id IS NOT NULL
		ON CONFLICT DO UPDATE SET runs = runs + 1;
END;
CREATE TRIGGER runs_blocks_delete AFTER DELETE ON runs BEGIN
	UPDATE run_blocks SET runs = runs - 1
		WHERE repo_id = OLD.repo_id AND workflow_id IN (0, OLD.workflow_id) AND block = OLD.run_index >> 10;
	DELETE FROM run_blocks WHERE repo_id = OLD.repo_id AND workflow_id IN (0, OLD.workflow_id) AND block = OLD.run_index >> 10
		AND runs <= 0;
END;`,
	// 9: how many runs each actor, event, status and conclusion has, per
	// repository, kept by triggers: a runs list with several filters walks
	// the index of the one with the fewest runs (runFilter.driver), which
	// the planner cannot know without statistics that cost a scan.
	`CREATE TABLE run_facets (
	repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	facet   TEXT NOT NULL, -- actor (the user id as text), event, status, conclusion
	value   TEXT NOT NULL,
	runs    INTEGER NOT NULL,
	PRIMARY KEY (repo_id, facet, value)
) WITHOUT ROWID;
INSERT INTO run_facets SELECT repo_id, 'actor', CAST(actor_id AS TEXT), COUNT(*) FROM runs GROUP BY repo_id, actor_id;
INSERT INTO run_facets SELECT repo_id, 'event', event, COUNT(*) FROM runs GROUP BY repo_id, event;
INSERT INTO run_facets SELECT repo_id, 'status', status, COUNT(*) FROM runs GROUP BY repo_id, status;
INSERT INTO run_facets SELECT repo_id, 'conclusion', conclusion, COUNT(*) FROM runs GROUP BY repo_id, conclusion;
CREATE TRIGGER runs_facets_insert AFTER INSERT ON runs BEGIN
	INSERT INTO run_facets VALUES (NEW.repo_id, 'actor', CAST(NEW.actor_id AS TEXT), 1), (NEW.repo_id, 'event', NEW.event, 1),
		(NEW.repo_id, 'status', NEW.status, 1), (NEW.repo_id, 'conclusion', NEW.conclusion, 1)
		ON CONFLICT DO UPDATE SET runs = runs + 1;
END;
CREATE TRIGGER runs_facets_delete AFTER DELETE ON runs BEGIN
	UPDATE run_facets SET runs = runs - 1 WHERE repo_id = OLD.repo_id AND facet = 'actor' AND value = CAST(OLD.actor_id AS TEXT);
	UPDATE run_facets SET runs = runs - 1 WHERE repo_id = OLD.repo_id AND facet = 'event' AND value = OLD.event;
	UPDATE run_facets SET runs = runs - 1 WHERE repo_id = OLD.repo_id AND facet = 'status' AND value = OLD.status;
	UPDATE run_facets SET runs = runs - 1 WHERE repo_id = OLD.repo_id AND facet = 'conclusion' AND value = OLD.conclusion;
END;
CREATE TRIGGER runs_facets_update AFTER UPDATE OF status, conclusion ON runs
	WHEN OLD.status != NEW.status OR OLD.conclusion != NEW.conclusion BEGIN
	UPDATE run_facets SET runs = runs - 1 WHERE repo_id = OLD.repo_id AND facet = 'status' AND value = OLD.status;
	UPDATE run_facets SET runs = runs - 1 WHERE repo_id = OLD.repo_id AND facet = 'conclusion' AND value = OLD.conclusion;
	INSERT INTO run_facets VALUES (NEW.repo_id, 'status', NEW.status, 1), (NEW.repo_id, 'conclusion', NEW.conclusion, 1)
		ON CONFLICT DO UPDATE SET runs = runs + 1;
END;`,
	// 10: one kept row per workflow (issue 13): migration 7's run_workflows
	// kept the same key and count as workflows, so workflows gains the
	// newest run (last_run_id, the largest id; NULL while it has no runs)
	// and run_workflows goes. The tab names a workflow as its newest run
	// does, read through last_run_id. run_heads is keyed by workflow_id, as
	// runs are. One pair of triggers keeps all kept state; a workflow's row
	// stays when retention removes its runs, as on GitHub. last_run_id has
	// no REFERENCES: each run delete would then search workflows for it.
	`DROP TRIGGER runs_count_insert;
DROP TRIGGER runs_count_delete;
DROP TRIGGER runs_kept_insert;
DROP TRIGGER runs_kept_delete;

ALTER TABLE workflows ADD COLUMN last_run_id INTEGER;
UPDATE workflows SET last_run_id = (SELECT k.last_run_id FROM run_workflows k
	WHERE k.repo_id = workflows.repo_id AND k.workflow_file = workflows.path);
DROP TABLE run_workflows;

ALTER TABLE run_heads RENAME TO run_heads_old;
CREATE TABLE run_heads (
	workflow_id INTEGER NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
	head_ref    TEXT NOT NULL,
	last_run_id INTEGER NOT NULL,
	runs        INTEGER NOT NULL,
	PRIMARY KEY (workflow_id, head_ref)
) WITHOUT ROWID;
INSERT INTO run_heads SELECT w.id, h.head_ref, h.last_run_id, h.runs FROM run_heads_old h
	JOIN workflows w ON w.repo_id = h.repo_id AND w.path = h.workflow_file;
DROP TABLE run_heads_old;

CREATE TRIGGER runs_kept_insert AFTER INSERT ON runs BEGIN
	UPDATE workflows SET run_count = run_count + 1, last_run_id = max(COALESCE(last_run_id, 0), NEW.id)
		WHERE id = NEW.workflow_id;
	INSERT INTO run_branches SELECT NEW.repo_id, NEW.head_ref, NEW.id, 1 WHERE substr(NEW.head_ref, 1, 11) = 'refs/heads/'
		ON CONFLICT DO UPDATE SET runs = runs + 1, last_run_id = max(last_run_id, excluded.last_run_id);
	INSERT INTO run_heads SELECT NEW.workflow_id, NEW.head_ref, NEW.id, 1 WHERE NEW.workflow_id IS NOT NULL
		ON CONFLICT DO UPDATE SET runs = runs + 1, last_run_id = max(last_run_id, excluded.last_run_id);
END;

-- Retention deletes the oldest runs first, so the newest of a group goes
-- last, when its count reaches 0: the MAX() look-ups below almost never run.
CREATE TRIGGER runs_kept_delete AFTER DELETE ON runs BEGIN
	UPDATE workflows SET run_count = run_count - 1, last_run_id = CASE WHEN run_count <= 1 THEN NULL
			WHEN last_run_id = OLD.id THEN (SELECT MAX(id) FROM runs WHERE repo_id = OLD.repo_id AND workflow_id = OLD.workflow_id)
			ELSE last_run_id END
		WHERE id = OLD.workflow_id;
	UPDATE run_branches SET runs = runs - 1, last_run_id = CASE WHEN last_run_id = OLD.id AND runs > 1
			THEN COALESCE((SELECT MAX(id) FROM runs WHERE repo_id = OLD.repo_id AND head_ref = OLD.head_ref), 0)
			ELSE last_run_id END
		WHERE repo_id = OLD.repo_id AND head_ref = OLD.head_ref;
	DELETE FROM run_branches WHERE repo_id = OLD.repo_id AND head_ref = OLD.head_ref AND runs <= 0;
	UPDATE run_heads SET runs = runs - 1, last_run_id = CASE WHEN last_run_id = OLD.id AND runs > 1
			THEN COALESCE((SELECT MAX(id) FROM runs WHERE repo_id = OLD.repo_id AND workflow_id = OLD.workflow_id
				AND head_ref = OLD.head_ref), 0)
			ELSE last_run_id END
		WHERE workflow_id = OLD.workflow_id AND head_ref = OLD.head_ref;
	DELETE FROM run_heads WHERE workflow_id = OLD.workflow_id AND head_ref = OLD.head_ref AND runs <= 0;
END;`,
	// 11: removing a step (retention) cascades to its annotations, which
	// were indexed by job only: each step removed searched them all.
	`CREATE INDEX annotations_step ON annotations (step_id);`,
	// 12: a private repository's owner may open it to the Actions jobs of
	// their other repositories (reach.go), as GitHub's "accessible from
	// repositories owned by the user"; none until they do.
	`ALTER TABLE repos ADD COLUMN actions_access TEXT NOT NULL DEFAULT 'none'
		CHECK (actions_access IN ('none', 'user', 'organization'));`,
	// 13: the keys that sign log links and runtime tokens are derived from
	// the key file (Store.derivedKey), so a copy of the database alone
	// cannot forge either (issue 17): the stored ones go. Links and tokens
	// signed with them stop working.
	`DELETE FROM meta WHERE key IN ('log_signing_key', 'runtime_secret');`,
	// 14: workflow_run (workflowrun.go): each activity of a run (requested,
	// in_progress, completed) is recorded in the transaction that made it,
	// at most once per run and type, with the run's status then; the runs
	// it triggers are made afterwards in the transaction that marks it
	// done, so none is lost in a crash and none fires twice.
	`CREATE TABLE IF NOT EXISTS workflow_run_events (
		id         INTEGER PRIMARY KEY,
		run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		action     TEXT NOT NULL CHECK (action IN ('requested', 'in_progress', 'completed')),
		status     TEXT NOT NULL,
		conclusion TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		done       INTEGER NOT NULL DEFAULT 0,
		UNIQUE (run_id, action)
	);
	CREATE INDEX IF NOT EXISTS workflow_run_events_pending ON workflow_run_events (id) WHERE done = 0;`,
	// 15: reusable workflows (issue 19): the files a run's calling jobs
	// call, read when the run was made (run_calls); on a calling job, its
	// call once evaluated (jobs.call); on a job of a called workflow, the
	// calling job's row (jobs.call_id).
	`CREATE TABLE run_calls (
		run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
		key     TEXT NOT NULL, -- where the uses is written (OWNER/REPO@SHA) and the uses
		repo    TEXT NOT NULL, -- the called file's repository, OWNER/REPO
		sha     TEXT NOT NULL,
		path    TEXT NOT NULL,
		content BLOB,
		error   TEXT NOT NULL DEFAULT '', -- why the file cannot be called
		PRIMARY KEY (run_id, key)
	) WITHOUT ROWID;
	ALTER TABLE jobs ADD COLUMN call_id INTEGER;
	ALTER TABLE jobs ADD COLUMN call TEXT NOT NULL DEFAULT '';
	CREATE INDEX jobs_call ON jobs (call_id) WHERE call_id IS NOT NULL;
	CREATE INDEX run_calls_pending ON run_calls (run_id) WHERE error = '(pending fetch)';`,
	// 16: issue 21, history at a glance. A job that failed and then passed in
	// a re-run of its run (history.go) is a flaky event, kept counted per
	// workflow, UTC day and job name in the transaction that finishes the
	// job, so the tab reads a month of them without touching runs or jobs.
	// Retention removes the days the tab no longer shows (flaky_jobs_day).
	`CREATE TABLE IF NOT EXISTS flaky_jobs (
	workflow_id INTEGER NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
	day         INTEGER NOT NULL, -- days since 1970-01-01 UTC
	job_name    TEXT NOT NULL,
	events      INTEGER NOT NULL,
	PRIMARY KEY (workflow_id, day, job_name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS flaky_jobs_day ON flaky_jobs (day);`,
	// 17: a workflow's runs by status or conclusion (the tab's sidebar with
	// its status filter, the API's workflow_id with status=): an index per
	// pair, so the list reads only matching entries (pickDriver).
	`CREATE INDEX IF NOT EXISTS runs_repo_workflow_status ON runs (repo_id, workflow_id, status, created_at DESC, id DESC);
	CREATE INDEX IF NOT EXISTS runs_repo_workflow_conclusion ON runs (repo_id, workflow_id, conclusion, created_at DESC, id DESC);`,
}

// migrationSecrets adds secrets and variables, repository-wide or
// owner-wide, and the per-job credentials. Secret values and the private
// halves of the box keys are sealed with the server key (secretbox.go),
// which is not in the database; GITHUB_TOKENs are kept only as SHA-256.
const migrationSecrets = `
CREATE TABLE secrets (
	id         INTEGER PRIMARY KEY,
	-- Exactly one of repo_id (a repository secret) and owner_id (a secret
	-- for every repository of that user) is set.
	repo_id    INTEGER REFERENCES repos(id) ON DELETE CASCADE,
	owner_id   INTEGER REFERENCES users(id) ON DELETE CASCADE,
	name       TEXT NOT NULL, -- upper case (names are case-insensitive)
	value      BLOB NOT NULL, -- secretSeal(key, secretAAD(scope, name), value)
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	CHECK ((repo_id IS NULL) != (owner_id IS NULL))
);
CREATE UNIQUE INDEX secrets_repo ON secrets (repo_id, name) WHERE repo_id IS NOT NULL;
CREATE UNIQUE INDEX secrets_owner ON secrets (owner_id, name) WHERE owner_id IS NOT NULL;

CREATE TABLE variables (
	id         INTEGER PRIMARY KEY,
	repo_id    INTEGER REFERENCES repos(id) ON DELETE CASCADE,
	owner_id   INTEGER REFERENCES users(id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	value      TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	CHECK ((repo_id IS NULL) != (owner_id IS NULL))
);
CREATE UNIQUE INDEX variables_repo ON variables (repo_id, name) WHERE repo_id IS NOT NULL;
CREATE UNIQUE INDEX variables_owner ON variables (owner_id, name) WHERE owner_id IS NOT NULL;

-- The X25519 key pair GitHub clients seal secret values to
-- (GET .../actions/secrets/public-key).
CREATE TABLE repo_box_keys (
	repo_id     INTEGER PRIMARY KEY REFERENCES repos(id) ON DELETE CASCADE,
	public_key  BLOB NOT NULL,
	private_key BLOB NOT NULL, -- sealed with the server key
	created_at  INTEGER NOT NULL
);

-- What a job was given when it was claimed. The GITHUB_TOKEN is kept as a
-- SHA-256 for look-up and can be derived again from token_nonce with the
-- server key (to mask it in logs after a restart); it is valid while the
-- job runs. secret_names are the secrets the job received.
CREATE TABLE job_credentials (
	job_id       INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
	token_hash   BLOB NOT NULL UNIQUE,
	token_nonce  BLOB NOT NULL,
	contents     TEXT NOT NULL CHECK (contents IN ('none', 'read', 'write')),
	actions      TEXT NOT NULL CHECK (actions IN ('none', 'read', 'write')),
	secret_names TEXT NOT NULL DEFAULT '[]',
	created_at   INTEGER NOT NULL
);
`

// defaultLogCap is the most a step's log keeps before the truncation marker.
const defaultLogCap = 16 << 20

// Store is the database. Reads use a pool of connections; writes go through
// a single connection in IMMEDIATE transactions, so writers queue inside the
// process and wait on busy_timeout for other processes (the admin
// subcommands) instead of failing with "database is locked".
type Store struct {
	db      *sql.DB    // reads
	rd      *stmtCache // reads on hot paths, with prepared statements kept
	wdb     *sql.DB    // writes: one connection
	path    string
	now     func() time.Time
	logCap  int64
	metrics *metrics.Metrics // never nil

	// onCommit holds what to do once the running write transaction
	// commits (metrics of what it changed). Only the goroutine inside
	// withTx's fn touches it, which holding the one write connection makes
	// exclusive.
	onCommit []func()
	// lastWrite is when the last write transaction ended (Unix ns): the
	// maintenance loop checkpoints the WAL once writes have paused.
	lastWrite atomic.Int64

	// serverURL is github.server_url in the contexts of claims: the
	// server's --base-url, "" when it has none.
	serverURL     string
	fetchWorkflow func(ctx context.Context, owner, repo, ref, file string) ([]byte, string, string, error) // Options.FetchWorkflow

	// onLogPage, when set (by tests), hears of every page of log chunks
	// read: how many rows and bytes.
	onLogPage func(rows, bytes int)
	secretMu  sync.Mutex // guards secret
	secret    []byte     // runtimeSecret, once read

	// keyFile is the server key's file (--secret-key-file, default
	// <db>.key), read or created on first use by secretKey.
	keyFile string
	keyMu   sync.Mutex // guards key
	key     []byte

	masks jobMasks // the log maskers of running jobs (jobmask.go)

	// noCheckpoints leaves checkpointing the WAL to another process
	// (Litestream): Options.LeaveCheckpoints.
	noCheckpoints bool

	// workflowRunWake hears, once a transaction that recorded a
	// workflow_run activity commits, that FireWorkflowRuns has work
	// (buffered 1: a wake-up pending is enough).
	workflowRunWake chan struct{}
}

// Options is what a Store takes from outside, once, when it is opened;
// nothing is set on a Store afterwards. The zero value is a server's
// defaults.
type Options struct {
	// KeyFile is the server key's file (--secret-key-file); "" is the
	// database's path with ".key" appended.
	KeyFile string
	// LogCap is the most log bytes a step keeps; 0 is the default (16 MiB).
	LogCap int64
	// ServerURL is github.server_url in the contexts of claims (the
	// server's --base-url); "" when it has none.
	ServerURL string
	// Metrics receives the store's figures; nil is a fresh registry.
	Metrics *metrics.Metrics
	// Now is the clock; nil is time.Now. Tests pass a fake clock's method.
	Now func() time.Time
	// OnLogPage, for tests, hears of every page of log chunks read.
	OnLogPage func(rows, bytes int)
	// LeaveCheckpoints makes this process checkpoint the WAL never: no
	// automatic checkpoint on commit (wal_autocheckpoint = 0 on the write
	// connection, the only one that writes), none by retention, none when
	// writes pause. Litestream copies the WAL as it grows and must be the
	// one to checkpoint it: a checkpoint of ours that restarts the WAL
	// while Litestream has let go of its read lock costs a new generation,
	// a full snapshot of the file, and Litestream's documentation asks
	// applications to turn their checkpoints off.
	LeaveCheckpoints bool
	// FetchWorkflow reads a reusable workflow file OWNER/REPO/PATH@REF
	// that is not on this server (or not reachable from the run) from
	// --actions-url, as actions are fetched; it returns the file, the
	// commit REF resolved to and where it came from. nil: only this
	// server's repositories are called.
	FetchWorkflow func(ctx context.Context, owner, repo, ref, file string) (content []byte, sha, origin string, err error)
}

// sqliteDriver is the database/sql driver the Store opens; tests swap in a
// wrapper that records every query.
var SqliteDriver = "sqlite"

// Open opens the database at path, made from schema (version 1) and the
// migrations when new.
func Open(path, schema string, o Options) (*Store, error) {
	dsn := func(txlock string) string {
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)", "busy_timeout(10000)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", txlock)
		return "file:" + path + "?" + q.Encode()
	}
	// The file, its -wal and -shm are the server user's alone (SQLite gives
	// the -wal and -shm it makes the file's mode).
	if err := hostfile.PrivateDBFiles(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	wdb, err := sql.Open(SqliteDriver, dsn("immediate"))
	if err != nil {
		return nil, err
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	db, err := sql.Open(SqliteDriver, dsn("deferred"))
	if err != nil {
		wdb.Close()
		return nil, err
	}
	db.SetMaxOpenConns(8)
	s := &Store{db: db, rd: &stmtCache{DB: db}, wdb: wdb, path: path, now: o.Now, logCap: o.LogCap, keyFile: o.KeyFile,
		metrics: o.Metrics, serverURL: strings.TrimSuffix(o.ServerURL, "/"), onLogPage: o.OnLogPage, fetchWorkflow: o.FetchWorkflow,
		noCheckpoints: o.LeaveCheckpoints, workflowRunWake: make(chan struct{}, 1)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logCap <= 0 {
		s.logCap = defaultLogCap
	}
	if s.keyFile == "" {
		s.keyFile = path + ".key"
	}
	if s.metrics == nil {
		s.metrics = metrics.New()
	}
	if s.noCheckpoints {
		if _, err := wdb.Exec("PRAGMA wal_autocheckpoint = 0"); err != nil {
			s.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	if err := s.incrementalVacuum(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := s.migrate(context.Background(), schema); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

// NewArtifactService makes the artifact service (jobsvc) on this store's
// database, where migration 5 put its tables: cfg's DB and ReadDB become
// the store's write connection and read pool. It is the one way a handle
// leaves the store: the artifacts' SQL is jobsvc's own, but the file and
// its one writer are the store's.
func (s *Store) NewArtifactService(cfg jobsvc.ArtifactConfig) (*jobsvc.ArtifactService, error) {
	cfg.DB, cfg.ReadDB = s.wdb, s.db
	return jobsvc.NewArtifactService(cfg)
}

// DBForTest is the read pool, and WriteDBForTest the write connection,
// for tests that check the SQL itself (EXPLAIN QUERY PLAN) or damage a row
// on purpose. Handlers and commands go through methods, never these
// (TestStoreHandlesStayInside in the root keeps it so).
func (s *Store) DBForTest() *sql.DB { return s.db }

// WriteDBForTest: see DBForTest.
func (s *Store) WriteDBForTest() *sql.DB { return s.wdb }

// Now is the store's clock (Options.Now): the time its writes record.
func (s *Store) Now() time.Time { return s.now() }

// Path is the database file's path.
func (s *Store) Path() string { return s.path }

// Metrics is the registry the store reports to (Options.Metrics).
func (s *Store) Metrics() *metrics.Metrics { return s.metrics }

func (s *Store) Close() error {
	s.rd.close()
	return errors.Join(s.db.Close(), s.wdb.Close())
}

func (s *Store) migrate(ctx context.Context, schema string) error {
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
			return err
		}
		if v == 0 {
			if _, err := tx.Exec(schema); err != nil {
				return fmt.Errorf("schema: %w", err)
			}
			v = 1
		}
		if v > len(Migrations)+1 {
			return fmt.Errorf("database schema version %d is newer than this program (%d)", v, len(Migrations)+1)
		}
		for ; v <= len(Migrations); v++ {
			if _, err := tx.Exec(Migrations[v-1]); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		_, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", v))
		return err
	})
}

// incrementalVacuum puts the file in auto_vacuum=INCREMENTAL mode, so that
// pages retention frees can be handed back to the filesystem a few at a
// time (PRAGMA incremental_vacuum) instead of by a whole VACUUM. The mode
// changes only with a VACUUM, which cannot run inside a transaction, so
// this runs once per file, outside withTx, before the migrations. A VACUUM that finds the file busy (another
// process mid-write) is left for the next open.
func (s *Store) incrementalVacuum(ctx context.Context) error {
	var mode int
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return err
	}
	if mode == 2 {
		return nil
	}
	if _, err := s.wdb.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return err
	}
	// Even a new file needs the VACUUM once WAL mode wrote its header; on
	// an empty file it costs nothing.
	if _, err := s.wdb.ExecContext(ctx, "VACUUM"); err != nil {
		if isBusyErr(err) {
			return nil
		}
		return fmt.Errorf("converting to incremental auto-vacuum: %w", err)
	}
	return nil
}

// withTx runs fn in a write transaction. The request's context does not
// reach the database: a client that hangs up mid-write must neither roll
// back a half-reported state change nor leave a poisoned connection.
func (s *Store) WithTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	ctx = context.WithoutCancel(ctx)
	asked := time.Now()
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return s.writeFailed(err)
	}
	began := time.Now()
	defer func() {
		s.lastWrite.Store(time.Now().UnixNano())
		s.metrics.WriteTxDone(began.Sub(asked), time.Since(began))
	}()
	s.onCommit = s.onCommit[:0]
	if err := fn(tx); err != nil {
		tx.Rollback()
		return s.writeFailed(err)
	}
	// Taken before Commit: once it returns, another writer may begin.
	hooks := slices.Clone(s.onCommit)
	if err := tx.Commit(); err != nil {
		return s.writeFailed(err)
	}
	for _, h := range hooks {
		h()
	}
	return nil
}

// writeFailed says in the domain's words why a write failed when the
// cause is the disk or the lock: a full disk and a busy database are
// "unavailable" (503: try again later), not internal errors.
func (s *Store) writeFailed(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		s.metrics.DbFull.Add(1)
		return &apperr.Error{Code: apperr.Unavailable, Err: err,
			Msg: "the disk holding the database is full: changes are refused until space is freed (reads still work)"}
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		s.metrics.DbBusy.Add(1)
		return &apperr.Error{Code: apperr.Unavailable, Err: err, Msg: "the database is busy: try again"}
	}
	return err
}

func isBusyErr(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_BUSY || se.Code()&0xff == sqlite3.SQLITE_LOCKED)
}

func (s *Store) NowMS() int64 { return s.now().UnixMilli() }

// msTime turns a stored time into a time.Time; NULL and 0 are the zero time.
func msTime(v sql.NullInt64) time.Time {
	if !v.Valid || v.Int64 == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return apperr.ErrNotFound
	}
	return err
}

// isUniqueErr reports whether err is a UNIQUE constraint failing, by the
// driver's extended result code rather than its message.
func isUniqueErr(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// decodeColumn decodes a JSON column into v. The program wrote every such
// column itself, so a value that does not decode is a corrupt row: an error,
// never silently empty.
func decodeColumn(col, data string, v any) error {
	if err := json.Unmarshal([]byte(data), v); err != nil {
		return fmt.Errorf("column %s: %w", col, err)
	}
	return nil
}

// mustAffectOne checks that an UPDATE changed exactly one row.
func mustAffectOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return apperr.ErrNotFound
	}
	return nil
}

// ---- secrets ----

const Base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newSecret returns prefix + 32 random base62 characters.
func newSecret(prefix string) string {
	b := make([]byte, 32)
	out := make([]byte, 0, len(prefix)+32)
	out = append(out, prefix...)
	for len(out) < len(prefix)+32 {
		rand.Read(b)
		for _, c := range b {
			if c < 248 && len(out) < len(prefix)+32 { // 248 = 4*62: no modulo bias
				out = append(out, Base62[c%62])
			}
		}
	}
	return string(out)
}

func secretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ---- meta ----

// logSigningKey is the key the signed log download URLs are made with,
// derived from the key file: reading it writes nothing, so log reads work
// on a full disk too.
func (s *Store) LogSigningKey(ctx context.Context) ([]byte, error) {
	return s.derivedKey("log links")
}

// derivedKey is a 32-byte key for one purpose, HMAC-SHA256 of the purpose
// under the server key. The keys that sign what the server hands out (log
// links, runtime tokens and signed URLs) live in the key file this way,
// not in the database, so a copy of the database (a backup, a file left
// readable) cannot forge them; and one purpose's key cannot forge
// another's.
func (s *Store) derivedKey(purpose string) ([]byte, error) {
	key, err := s.SecretKey()
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, key)
	io.WriteString(m, "shithub-actions derived key\n"+purpose)
	return m.Sum(nil), nil
}

// runnerName is a runner's name; "" when there is no such runner.
func (s *Store) RunnerName(ctx context.Context, id int64) (string, error) {
	var name string
	err := s.db.QueryRowContext(ctx, "SELECT name FROM runners WHERE id = ?", id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return name, err
}

// instanceID names this database's server in container labels, so a
// restarted server finds the containers its previous process left.
func (s *Store) InstanceID(ctx context.Context) (string, error) {
	var id string
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRow("SELECT value FROM meta WHERE key = 'instance'").Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			id = uuid.NewString()[:8]
			_, err = tx.Exec("INSERT INTO meta (key, value) VALUES ('instance', ?)", id)
		}
		return err
	})
	return id, err
}

// ---- users ----

type User struct {
	ID   int64
	Name string

	// Job is set when the user acts through a job's GITHUB_TOKEN: the
	// user is the run's actor, and what the token may do is the job's
	// permissions on the job's repository alone (jobtoken.go).
	Job *JobPrincipal
}

func (s *Store) CreateUser(ctx context.Context, name string) (*User, error) {
	u := &User{Name: name}
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec("INSERT INTO users (name, created_at) VALUES (?, ?)", name, s.NowMS())
		if isUniqueErr(err) {
			return apperr.Conflictf("user %q already exists", name)
		}
		if err != nil {
			return err
		}
		u.ID, err = res.LastInsertId()
		return err
	})
	return u, err
}

func (s *Store) UserByName(ctx context.Context, name string) (*User, error) {
	u := &User{}
	err := s.db.QueryRowContext(ctx, "SELECT id, name FROM users WHERE name = ?", name).Scan(&u.ID, &u.Name)
	return u, notFound(err)
}

func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n)
	return n, err
}

// ---- repositories and permissions ----

type Repo struct {
	ID            int64
	OwnerID       int64
	Owner         string
	Name          string
	GitDir        string
	Private       bool
	RunsVersion   int64
	RunsUpdatedAt time.Time
	DefaultBranch string // the branch scheduled runs use
}

func (r *Repo) FullName() string { return r.Owner + "/" + r.Name }

const repoCols = `r.id, r.owner_id, u.name, r.name, r.git_dir, r.private, r.runs_version, r.runs_updated_at, r.default_branch
	FROM repos r JOIN users u ON u.id = r.owner_id`

func scanRepo(row interface{ Scan(...any) error }) (*Repo, error) {
	r := &Repo{}
	var upd sql.NullInt64
	err := row.Scan(&r.ID, &r.OwnerID, &r.Owner, &r.Name, &r.GitDir, &r.Private, &r.RunsVersion, &upd, &r.DefaultBranch)
	r.RunsUpdatedAt = msTime(upd)
	return r, notFound(err)
}

func (s *Store) CreateRepo(ctx context.Context, owner *User, name, gitDir string, private bool) (*Repo, error) {
	return s.CreateRepoOn(ctx, owner, name, gitDir, private, "main")
}

// createRepoOn is createRepo with the repository's default branch.
func (s *Store) CreateRepoOn(ctx context.Context, owner *User, name, gitDir string, private bool, defaultBranch string) (*Repo, error) {
	r := &Repo{OwnerID: owner.ID, Owner: owner.Name, Name: name, GitDir: gitDir, Private: private, DefaultBranch: defaultBranch}
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec("INSERT INTO repos (owner_id, name, git_dir, private, created_at, default_branch) VALUES (?, ?, ?, ?, ?, ?)",
			owner.ID, name, gitDir, private, s.NowMS(), defaultBranch)
		if isUniqueErr(err) {
			return apperr.Conflictf("repository %s/%s already exists", owner.Name, name)
		}
		if err != nil {
			return err
		}
		r.ID, err = res.LastInsertId()
		return err
	})
	return r, err
}

func (s *Store) RepoByName(ctx context.Context, owner, name string) (*Repo, error) {
	return scanRepo(s.rd.QueryRowContext(ctx, "SELECT "+repoCols+" WHERE u.name = ? AND r.name = ?", owner, name))
}

func (s *Store) RepoByID(ctx context.Context, id int64) (*Repo, error) {
	return scanRepo(s.rd.QueryRowContext(ctx, "SELECT "+repoCols+" WHERE r.id = ?", id))
}

// Permission levels; a higher level includes the lower ones.
type Perm int

const (
	PermNone Perm = iota
	PermRead
	PermWrite
	PermAdmin
)

func ParsePerm(s string) (Perm, bool) {
	switch s {
	case "read":
		return PermRead, true
	case "write":
		return PermWrite, true
	case "admin":
		return PermAdmin, true
	}
	return PermNone, false
}

func (p Perm) String() string {
	return [...]string{"none", "read", "write", "admin"}[p]
}

func (s *Store) Grant(ctx context.Context, repo *Repo, user *User, p Perm) error {
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO collaborators (repo_id, user_id, perm) VALUES (?, ?, ?)
			ON CONFLICT (repo_id, user_id) DO UPDATE SET perm = excluded.perm`, repo.ID, user.ID, p.String())
		return err
	})
}

// permission is what user (nil: anonymous) may do on repo. The owner has
// admin; collaborators what they were granted; anyone may read a public one.
func (s *Store) Permission(ctx context.Context, repo *Repo, user *User) (Perm, error) {
	p := PermNone
	if !repo.Private {
		p = PermRead
	}
	if user == nil {
		return p, nil
	}
	if user.Job != nil {
		return JobPermission(user.Job, repo, user.Job.Perms.Actions), nil
	}
	if user.ID == repo.OwnerID {
		return PermAdmin, nil
	}
	var granted string
	err := s.rd.QueryRowContext(ctx, "SELECT perm FROM collaborators WHERE repo_id = ? AND user_id = ?", repo.ID, user.ID).Scan(&granted)
	if errors.Is(err, sql.ErrNoRows) {
		return p, nil
	}
	if err != nil {
		return PermNone, err
	}
	g, _ := ParsePerm(granted)
	return max(p, g), nil
}

// ---- personal access tokens ----

type Token struct {
	ID         int64
	UserID     int64
	Name       string
	Scopes     []string
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	RevokedAt  time.Time // zero: not revoked
	LastUsedAt time.Time
}

const PatPrefix = "shithub_pat_"
const RunnerTokenPrefix = "shithub_runner_"

// createToken stores a new PAT and returns it with its secret, which is
// never stored and never shown again.
func (s *Store) CreateToken(ctx context.Context, user *User, name string, scopes []string, ttl time.Duration) (*Token, string, error) {
	secret := newSecret(PatPrefix)
	now := s.now()
	t := &Token{UserID: user.ID, Name: name, Scopes: scopes, CreatedAt: now}
	var exp sql.NullInt64
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl)
		exp = sql.NullInt64{Int64: t.ExpiresAt.UnixMilli(), Valid: true}
	}
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec("INSERT INTO tokens (user_id, name, hash, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
			user.ID, name, secretHash(secret), strings.Join(scopes, ","), now.UnixMilli(), exp)
		if err != nil {
			return err
		}
		t.ID, err = res.LastInsertId()
		return err
	})
	return t, secret, err
}

const tokenCols = "t.id, t.user_id, t.name, t.scopes, t.created_at, t.expires_at, t.revoked_at, t.last_used_at"

func scanToken(row interface{ Scan(...any) error }, extra ...any) (*Token, error) {
	t := &Token{}
	var scopes string
	var created, exp, rev, used sql.NullInt64
	err := row.Scan(append([]any{&t.ID, &t.UserID, &t.Name, &scopes, &created, &exp, &rev, &used}, extra...)...)
	if err != nil {
		return nil, notFound(err)
	}
	if scopes != "" {
		t.Scopes = strings.Split(scopes, ",")
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsedAt = msTime(created), msTime(exp), msTime(rev), msTime(used)
	return t, nil
}

func (s *Store) ListTokens(ctx context.Context, user *User) ([]*Token, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+tokenCols+" FROM tokens t WHERE t.user_id = ? ORDER BY t.id", user.ID)
	return ScanAll(rows, err, func(r interface{ Scan(...any) error }) (*Token, error) { return scanToken(r) })
}

func (s *Store) RevokeToken(ctx context.Context, id int64) error {
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		var revoked sql.NullInt64
		if err := tx.QueryRow("SELECT revoked_at FROM tokens WHERE id = ?", id).Scan(&revoked); err != nil {
			return notFound(err)
		}
		if revoked.Valid {
			return nil // revoking twice is not an error
		}
		return mustAffectOne(tx.Exec("UPDATE tokens SET revoked_at = ? WHERE id = ?", s.NowMS(), id))
	})
}

// tokenBySecret finds the PAT with this secret and its user. It does not
// judge expiry or revocation: the caller does, to say which.
func (s *Store) TokenBySecret(ctx context.Context, secret string) (*Token, *User, error) {
	u := &User{}
	t, err := scanToken(s.rd.QueryRowContext(ctx, "SELECT "+tokenCols+", u.id, u.name FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?",
		secretHash(secret)), &u.ID, &u.Name)
	if err != nil {
		return nil, nil, err
	}
	return t, u, nil
}

// touchToken records a use, at most once a minute, so that authenticating
// is not a write on every request.
func (s *Store) TouchToken(ctx context.Context, t *Token) error {
	now := s.now()
	if now.Sub(t.LastUsedAt) < time.Minute {
		return nil
	}
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec("UPDATE tokens SET last_used_at = ? WHERE id = ?", now.UnixMilli(), t.ID)
		return err
	})
}

// ---- runners ----

type Runner struct {
	ID      int64
	Name    string
	Labels  []string
	Revoked bool
}

// localRunnerName is the runner row of the server's own pool. Its jobs are
// the ones a restarted server completes as interrupted.
const LocalRunnerName = "(local)"

func (s *Store) CreateRunner(ctx context.Context, name string, labels []string) (*Runner, string, error) {
	secret := newSecret(RunnerTokenPrefix)
	r := &Runner{Name: name, Labels: labels}
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec("INSERT INTO runners (name, hash, labels, created_at) VALUES (?, ?, ?, ?)",
			name, secretHash(secret), jsonText(labels), s.NowMS())
		if isUniqueErr(err) {
			return apperr.Conflictf("runner %q already exists (runner list shows it); register the new one under another name", name)
		}
		if err != nil {
			return err
		}
		r.ID, err = res.LastInsertId()
		return err
	})
	return r, secret, err
}

// localRunner returns the server's own runner row, creating it once.
func (s *Store) LocalRunner(ctx context.Context, labels []string) (*Runner, error) {
	r := &Runner{Name: LocalRunnerName, Labels: labels}
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRow(`INSERT INTO runners (name, labels, created_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET labels = excluded.labels RETURNING id`,
			LocalRunnerName, jsonText(labels), s.NowMS()).Scan(&r.ID)
		return err
	})
	return r, err
}

// runnerBySecret finds the runner with this token, revoked or not: the
// caller says which.
func (s *Store) RunnerBySecret(ctx context.Context, secret string) (*Runner, error) {
	r := &Runner{}
	var labels string
	err := s.db.QueryRowContext(ctx, "SELECT id, name, labels, revoked_at IS NOT NULL FROM runners WHERE hash = ?",
		secretHash(secret)).Scan(&r.ID, &r.Name, &labels, &r.Revoked)
	if err != nil {
		return nil, notFound(err)
	}
	return r, decodeColumn("runners.labels", labels, &r.Labels)
}

// runnerInfo is a row of runner list.
type runnerInfo struct {
	Runner
	LastSeen    time.Time // zero: never
	RevokedAt   time.Time // zero: not revoked
	RunningJobs int
}

// listRunners lists every runner, the server's own pool among them, by
// name, with how many jobs each is running.
func (s *Store) ListRunners(ctx context.Context) ([]runnerInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT r.id, r.name, r.labels, r.last_seen_at, r.revoked_at,
		(SELECT COUNT(*) FROM jobs j WHERE j.runner_id = r.id AND j.status = 'running')
		FROM runners r ORDER BY r.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []runnerInfo
	for rows.Next() {
		var ri runnerInfo
		var labels string
		var seen, revoked sql.NullInt64
		if err := rows.Scan(&ri.ID, &ri.Name, &labels, &seen, &revoked, &ri.RunningJobs); err != nil {
			return nil, err
		}
		if err := decodeColumn("runners.labels", labels, &ri.Labels); err != nil {
			return nil, err
		}
		ri.LastSeen, ri.RevokedAt, ri.Revoked = msTime(seen), msTime(revoked), revoked.Valid
		out = append(out, ri)
	}
	return out, rows.Err()
}

// revokeRunner revokes a runner's token and fails the jobs it is running
// with "runner revoked", in one transaction: from the next request on, its
// token gets 401 and its reports are refused. It returns the failed jobs.
// Revoking twice is not an error.
func (s *Store) RevokeRunner(ctx context.Context, name string) ([]int64, error) {
	var ids []int64
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		var id int64
		var revoked sql.NullInt64
		err := tx.QueryRow("SELECT id, revoked_at FROM runners WHERE name = ? AND hash IS NOT NULL", name).Scan(&id, &revoked)
		if err != nil {
			return notFound(err)
		}
		now := s.NowMS()
		if !revoked.Valid {
			if err := mustAffectOne(tx.Exec("UPDATE runners SET revoked_at = ? WHERE id = ?", now, id)); err != nil {
				return err
			}
		}
		ids, err = s.failRunnerJobsTx(tx, id, "runner revoked", now)
		return err
	})
	return ids, err
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain slices and maps get here
	}
	return string(b)
}

// ---- runs, jobs, steps ----

type Run struct {
	ID              int64
	UUID            string
	RepoID          int64
	RunIndex        int64
	RunAttempt      int64
	ParentRunID     int64 // 0: none
	WorkflowFile    string
	WorkflowName    string
	WorkflowContent []byte
	HeadSHA         string
	HeadRef         string
	Event           string
	Inputs          map[string]string
	EventPayload    map[string]any // github.event
	Pending         bool           // waiting for its concurrency group
	Cancelled       bool           // a cancel of the whole run was requested
	ActorID         int64
	Actor           string
	WorkflowID      int64
	Title           string      // display_title: run-name, else the commit's subject for a push, else the workflow's name; "" for runs made before it was kept
	HeadCommit      *git.Commit // nil: unknown
	Status          string
	Conclusion      string
	CreatedAt       time.Time
	StartedAt       time.Time
	CompletedAt     time.Time
	UpdatedAt       time.Time
}

type Job struct {
	ID               int64
	RunID            int64
	JobKey           string // unique in the run: BaseKey, or BaseKey#n for matrix leg n
	BaseKey          string // the job's id in the workflow
	Leg              int    // matrix leg, from 1; 0 for a job without a matrix
	Activated        bool   // needs done; if, matrix and values evaluated
	Waiting          string // why an activated queued job is not claimable: max-parallel, concurrency
	ConcurrencyGroup string
	ContinueOnError  bool
	FailFast         bool
	MaxParallel      int
	Outputs          map[string]string
	Contexts         map[string]any          // the contexts when the job became ready
	Container        *workflow.ContainerSpec // evaluated; nil without one
	Services         map[string]*workflow.ContainerSpec
	Environment      *workflow.Environment
	Name             string
	RunsOn           []string
	Image            string
	Needs            []string
	Env              map[string]string
	TimeoutMinutes   int
	Status           string
	Conclusion       string
	CancelRequested  bool
	RunnerID         int64
	CreatedAt        time.Time
	StartedAt        time.Time
	CompletedAt      time.Time
	Steps            []*Step
	CallID           int64  // a job of a called workflow: the calling job's row; 0 otherwise
	Call             string // a calling job: its call (callSpec, JSON) once evaluated; "" otherwise
}

type Step struct {
	ID               int64
	JobID            int64
	Number           int
	Kind             string
	Name             string
	Run              string
	Uses             string
	Env              map[string]string
	WorkingDirectory string
	Status           string
	Conclusion       string
	StartedAt        time.Time
	CompletedAt      time.Time
	LogSize          int64
	LogTruncated     bool
	Summary          string // the step's $GITHUB_STEP_SUMMARY, Markdown
}

const RunCols = `r.id, r.uuid, r.repo_id, r.run_index, r.run_attempt, r.parent_run_id, r.workflow_file, r.workflow_name,
	r.head_sha, r.head_ref, r.event, r.inputs, r.actor_id, u.name, r.status, r.conclusion,
	r.created_at, r.started_at, r.completed_at, r.updated_at, COALESCE(r.workflow_id, 0), r.title, r.head_commit,
	r.event_payload, r.pending, r.cancelled

	FROM runs r JOIN users u ON u.id = r.actor_id`

func scanRun(row interface{ Scan(...any) error }) (*Run, error) {
	r := &Run{}
	var parent sql.NullInt64
	var inputs, payload string
	var created, started, completed, updated sql.NullInt64
	var commit sql.NullString
	err := row.Scan(&r.ID, &r.UUID, &r.RepoID, &r.RunIndex, &r.RunAttempt, &parent, &r.WorkflowFile, &r.WorkflowName,
		&r.HeadSHA, &r.HeadRef, &r.Event, &inputs, &r.ActorID, &r.Actor, &r.Status, &r.Conclusion,
		&created, &started, &completed, &updated, &r.WorkflowID, &r.Title, &commit, &payload, &r.Pending, &r.Cancelled)

	if err != nil {
		return nil, notFound(err)
	}
	r.ParentRunID = parent.Int64
	if err := errors.Join(decodeColumn("runs.inputs", inputs, &r.Inputs), decodeColumn("runs.event_payload", payload, &r.EventPayload)); err != nil {
		return nil, err
	}
	if commit.Valid {
		r.HeadCommit = &git.Commit{}
		if err := decodeColumn("runs.head_commit", commit.String, r.HeadCommit); err != nil {
			return nil, err
		}
	}
	r.CreatedAt, r.StartedAt, r.CompletedAt, r.UpdatedAt = msTime(created), msTime(started), msTime(completed), msTime(updated)
	return r, nil
}

func scanRuns(rows *sql.Rows, err error) ([]*Run, error) { return ScanAll(rows, err, scanRun) }

// scanAll collects every row of a query with scan, and closes rows.
func ScanAll[T any](rows *sql.Rows, err error, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *Store) RunByID(ctx context.Context, id int64) (*Run, error) {
	return scanRun(s.rd.QueryRowContext(ctx, "SELECT "+RunCols+" WHERE r.id = ?", id))
}

func (s *Store) RunByIndex(ctx context.Context, repoID, index int64) (*Run, error) {
	return scanRun(s.rd.QueryRowContext(ctx, "SELECT "+RunCols+" WHERE r.repo_id = ? AND r.run_index = ?", repoID, index))
}

// runContent returns the workflow file bytes a run was made from.
func (s *Store) RunContent(ctx context.Context, id int64) ([]byte, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, "SELECT workflow_content FROM runs WHERE id = ?", id).Scan(&b)
	return b, notFound(err)
}

// childRuns lists the re-runs made from a run.
func (s *Store) ChildRuns(ctx context.Context, id int64) ([]*Run, error) {
	return scanRuns(s.rd.QueryContext(ctx, "SELECT "+RunCols+" WHERE r.parent_run_id = ? ORDER BY r.id", id))
}

// runFilter narrows listRuns; empty fields match everything. Every field
// is served by an index of runs that starts (repo_id, field) and ends in the
// list's order, so no filter scans the table (TestListRunsPlans).
type RunFilter struct {
	WorkflowFile string // a file name (ci.yml) or path (.shithub/workflows/ci.yml, .github/workflows/ci.yml)
	WorkflowID   int64
	Branch       string // without refs/heads/
	Actor        string // a user name
	Event        string
	Status       string // as stored: queued, running, completed
	Conclusion   string
	HeadSHA      string
	// CreatedFrom and CreatedTo bound created_at, as Unix milliseconds:
	// from inclusive, to exclusive; 0 leaves that side open.
	CreatedFrom, CreatedTo int64
	// Cap, when above 0, is how many matching runs a list may reach, and so
	// the most total_count says: GitHub's own limit for searches with
	// filters (1,000), which keeps counting and deep pages bounded.
	Cap int

	// driver, when set, names the one filter whose index the query walks
	// (workflow, branch, actor, event, status, conclusion, sha, or the
	// pairs workflow+status and workflow+conclusion, which have an index of
	// their own): the others are written so that no index serves them (a
	// unary +). listRuns sets it to the filter with the fewest runs
	// (pickDriver).
	Driver string
}

// workflowPaths are the workflows table paths a RunFilter's WorkflowFile
// may mean: itself (a path), or a file name in either workflow directory.
// Where both directories have one, the lists take .shithub's (ORDER BY
// path DESC), the directory a commit's runs come from when it has files.
func workflowPaths(file string) []any {
	return []any{file, git.WorkflowDir + file, git.GitHubWorkflowDir + file}
}

// counted reports whether total_count can come from the kept counts of
// workflows (workflows.run_count) rather than from counting rows.
func (f RunFilter) Counted() bool {
	return f.Branch == "" && f.Actor == "" && f.Event == "" && f.Status == "" && f.Conclusion == "" &&
		f.HeadSHA == "" && f.CreatedFrom == 0 && f.CreatedTo == 0
}

// where renders f as SQL conditions on runs r of repository repoID.
func (f RunFilter) Where(repoID int64) (string, []any) {
	where := []string{"r.repo_id = ?"}
	args := []any{repoID}
	add := func(name, cond string, v ...any) {
		if f.Driver != "" && !slices.Contains(strings.Split(f.Driver, "+"), name) {
			cond = "+" + cond
		}
		where = append(where, cond)
		args = append(args, v...)
	}
	if f.WorkflowFile != "" {
		add("workflow", `r.workflow_id = (SELECT w.id FROM workflows w WHERE w.repo_id = ? AND w.path IN (?, ?, ?) ORDER BY w.path DESC LIMIT 1)`,
			append([]any{repoID}, workflowPaths(f.WorkflowFile)...)...)
	}
	if f.WorkflowID != 0 {
		add("workflow", "r.workflow_id = ?", f.WorkflowID)
	}
	if f.Branch != "" {
		add("branch", "r.head_ref = ?", "refs/heads/"+f.Branch)
	}
	if f.Actor != "" {
		add("actor", "r.actor_id = (SELECT id FROM users WHERE name = ?)", f.Actor)
	}
	if f.Event != "" {
		add("event", "r.event = ?", f.Event)
	}
	if f.Status != "" {
		add("status", "r.status = ?", f.Status)
	}
	if f.Conclusion != "" {
		add("conclusion", "r.conclusion = ?", f.Conclusion)
	}
	if f.HeadSHA != "" {
		add("sha", "r.head_sha = ?", f.HeadSHA)
	}
	// A created range is never given a +: it narrows whichever index the
	// list walks, as all of them go on with created_at.
	if f.CreatedFrom != 0 {
		where = append(where, "r.created_at >= ?")
		args = append(args, f.CreatedFrom)
	}
	if f.CreatedTo != 0 {
		where = append(where, "r.created_at < ?")
		args = append(args, f.CreatedTo)
	}
	return strings.Join(where, " AND "), args
}

// pickDriver returns the filter of f with the fewest runs by the kept
// counts (workflows, run_branches, run_facets), "" when f has fewer than
// two. A commit is always the narrowest. The list then walks that filter's
// index and tests the others on the way: it reads at most as many index
// entries as that filter has runs, where the planner, without statistics,
// might walk an actor's whole history to find a branch's few runs.
func (s *Store) PickDriver(ctx context.Context, repoID int64, f RunFilter) (string, error) {
	if f.HeadSHA != "" {
		return "sha", nil
	}
	type count struct {
		name string
		q    string
		args []any
	}
	var counts []count
	facet := func(name, value string) {
		counts = append(counts, count{name, "SELECT runs FROM run_facets WHERE repo_id = ? AND facet = ? AND value = ?", []any{repoID, name, value}})
	}
	if f.WorkflowFile != "" {
		counts = append(counts, count{"workflow", "SELECT run_count FROM workflows WHERE repo_id = ? AND path IN (?, ?, ?) ORDER BY path DESC LIMIT 1",
			append([]any{repoID}, workflowPaths(f.WorkflowFile)...)})
	}
	if f.WorkflowID != 0 {
		counts = append(counts, count{"workflow", "SELECT run_count FROM workflows WHERE repo_id = ? AND id = ?", []any{repoID, f.WorkflowID}})
	}
	if f.Branch != "" {
		counts = append(counts, count{"branch", "SELECT runs FROM run_branches WHERE repo_id = ? AND head_ref = ?", []any{repoID, "refs/heads/" + f.Branch}})
	}
	if f.Actor != "" {
		counts = append(counts, count{"actor", "SELECT f.runs FROM run_facets f JOIN users u ON f.value = CAST(u.id AS TEXT) WHERE f.repo_id = ? AND f.facet = 'actor' AND u.name = ?",
			[]any{repoID, f.Actor}})
	}
	if f.Event != "" {
		facet("event", f.Event)
	}
	if f.Status != "" {
		facet("status", f.Status)
	}
	if f.Conclusion != "" {
		facet("conclusion", f.Conclusion)
	}
	if len(counts) < 2 {
		return "", nil
	}
	best, fewest := "", int64(math.MaxInt64)
	for _, c := range counts {
		var n int64
		err := s.rd.QueryRowContext(ctx, c.q, c.args...).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			n = 0 // no run has it: the list is empty, found at once
		} else if err != nil {
			return "", err
		}
		if n < fewest {
			best, fewest = c.name, n
		}
	}
	// A workflow with a status or conclusion (the tab's sidebar and status
	// filter together) walks the pair's own index: every entry it reads
	// matches, where either index alone reads the other's misses too. It is
	// never wider than either, so it wins unless a third filter is narrower.
	hasWorkflow := f.WorkflowFile != "" || f.WorkflowID != 0
	if hasWorkflow && (best == "workflow" || best == "status" || best == "conclusion") {
		switch {
		case f.Conclusion != "":
			return "workflow+conclusion", nil
		case f.Status != "":
			return "workflow+status", nil
		}
	}
	return best, nil
}

// runBlockShift: a row of run_blocks counts the runs of 1 << runBlockShift
// run numbers (migration 8).
const runBlockShift = 10

// listRuns returns one page of a repository's runs, newest first, and how
// many match. Every page costs the same however deep it is and however long
// the history:
//
//   - With no filter, or a workflow alone, the list is in run number order
//     (creation order; see insertRun) and its total is the workflows' kept
//     count. Page N's first run is found through run_blocks' kept counts
//     and at most one block of the run-number index (pageStart), and the
//     page is read from there: keyset pagination behind GitHub's page=.
//   - Other filters go through their own index (all end in created_at
//     DESC, id DESC), counted and paged up to f.Cap when that is set, as
//     GitHub does for its search filters.
func (s *Store) ListRuns(ctx context.Context, repoID int64, f RunFilter, page, perPage int) ([]*Run, int, error) {
	offset := (page - 1) * perPage
	if f.Counted() {
		return s.listRunsKeyed(ctx, repoID, f, offset, perPage)
	}
	var err error
	if f.Driver, err = s.PickDriver(ctx, repoID, f); err != nil {
		return nil, 0, err
	}
	cond, args := f.Where(repoID)
	var total int
	if f.Cap > 0 {
		err = s.rd.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM runs r WHERE "+cond+" LIMIT ?)",
			append(slices.Clone(args), f.Cap)...).Scan(&total)
		total = min(total, f.Cap)
	} else {
		err = s.rd.QueryRowContext(ctx, "SELECT COUNT(*) FROM runs r WHERE "+cond, args...).Scan(&total)
	}
	if err != nil {
		return nil, 0, err
	}
	limit := perPage
	if f.Cap > 0 {
		limit = max(0, min(perPage, f.Cap-offset))
	}
	if limit == 0 || offset >= total {
		return []*Run{}, total, nil
	}
	// The page's first run is found through the filter's index alone (its
	// entries hold created_at and id), then the page is read from there:
	// skipped runs are index steps, not rows read and joined.
	var created, id int64
	err = s.rd.QueryRowContext(ctx, "SELECT r.created_at, r.id FROM runs r WHERE "+cond+" ORDER BY r.created_at DESC, r.id DESC LIMIT 1 OFFSET ?",
		append(slices.Clone(args), offset)...).Scan(&created, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return []*Run{}, total, nil
	}
	if err != nil {
		return nil, 0, err
	}
	runs, err := scanRuns(s.rd.QueryContext(ctx, "SELECT "+RunCols+" WHERE "+cond+
		" AND (r.created_at, r.id) <= (?, ?) ORDER BY r.created_at DESC, r.id DESC LIMIT ?", append(args, created, id, limit)...))
	if runs == nil && err == nil {
		runs = []*Run{}
	}
	return runs, total, err
}

// listRunsKeyed is listRuns with no filter or a workflow alone.
func (s *Store) listRunsKeyed(ctx context.Context, repoID int64, f RunFilter, offset, perPage int) ([]*Run, int, error) {
	wfID := f.WorkflowID
	if f.WorkflowFile != "" {
		err := s.rd.QueryRowContext(ctx, "SELECT id FROM workflows WHERE repo_id = ? AND path IN (?, ?, ?) AND (? = 0 OR id = ?) ORDER BY path DESC LIMIT 1",
			append(append([]any{repoID}, workflowPaths(f.WorkflowFile)...), wfID, wfID)...).Scan(&wfID)
		if errors.Is(err, sql.ErrNoRows) {
			return []*Run{}, 0, nil
		}
		if err != nil {
			return nil, 0, err
		}
	}
	var total int
	var err error
	if wfID != 0 {
		err = s.rd.QueryRowContext(ctx, "SELECT COALESCE(SUM(run_count), 0) FROM workflows WHERE repo_id = ? AND id = ?", repoID, wfID).Scan(&total)
	} else {
		err = s.rd.QueryRowContext(ctx, "SELECT COALESCE(SUM(run_count), 0) FROM workflows WHERE repo_id = ?", repoID).Scan(&total)
	}
	if err != nil {
		return nil, 0, err
	}
	if offset >= total {
		return []*Run{}, total, nil
	}
	first, err := s.pageStart(ctx, repoID, wfID, int64(offset))
	if err != nil || first == 0 {
		return []*Run{}, total, err
	}
	var runs []*Run
	if wfID != 0 {
		runs, err = scanRuns(s.rd.QueryContext(ctx, "SELECT "+RunCols+
			" WHERE r.repo_id = ? AND r.workflow_id = ? AND r.run_index <= ? ORDER BY r.run_index DESC LIMIT ?", repoID, wfID, first, perPage))
	} else {
		runs, err = scanRuns(s.rd.QueryContext(ctx, "SELECT "+RunCols+
			" WHERE r.repo_id = ? AND r.run_index <= ? ORDER BY r.run_index DESC LIMIT ?", repoID, first, perPage))
	}
	if runs == nil && err == nil {
		runs = []*Run{}
	}
	return runs, total, err
}

// pageStart returns the run number of the run at position offset (0 is
// the newest) of a repository's runs, or of one workflow's when wfID is
// not 0; 0 when there is none. run_blocks says which block of run numbers
// holds that position, and the run-number index steps through that block
// alone (fewer than 1,024 entries, not the runs themselves).
func (s *Store) pageStart(ctx context.Context, repoID, wfID, offset int64) (int64, error) {
	below := int64(math.MaxInt64) // run numbers below this
	if offset > 0 {
		var block, above int64
		err := s.rd.QueryRowContext(ctx, `SELECT block, above FROM (SELECT block, runs,
			SUM(runs) OVER (ORDER BY block DESC ROWS UNBOUNDED PRECEDING) - runs AS above
			FROM run_blocks WHERE repo_id = ? AND workflow_id = ?) WHERE above + runs > ? LIMIT 1`, repoID, wfID, offset).Scan(&block, &above)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		below, offset = (block+1)<<runBlockShift, offset-above
	}
	q, args := "SELECT run_index FROM runs WHERE repo_id = ? AND run_index < ? ORDER BY run_index DESC LIMIT 1 OFFSET ?", []any{repoID, below, offset}
	if wfID != 0 {
		q = "SELECT run_index FROM runs WHERE repo_id = ? AND workflow_id = ? AND run_index < ? ORDER BY run_index DESC LIMIT 1 OFFSET ?"
		args = []any{repoID, wfID, below, offset}
	}
	var first int64
	err := s.rd.QueryRowContext(ctx, q, args...).Scan(&first)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return first, err
}

// latestRuns is the feed's query: the n newest runs of a repository, with
// only the columns the feed shows (ID, UUID, RunIndex, WorkflowName,
// HeadSHA, HeadRef, Event, Actor, Status, Conclusion, CreatedAt,
// UpdatedAt); the rest are left zero. An uncached feed costs this query.
func (s *Store) LatestRuns(ctx context.Context, repoID int64, n int) ([]*Run, error) {
	rows, err := s.rd.QueryContext(ctx, `SELECT r.id, r.uuid, r.run_index, r.workflow_name, r.head_sha, r.head_ref, r.event, u.name,
		r.status, r.conclusion, r.created_at, r.updated_at FROM runs r JOIN users u ON u.id = r.actor_id
		WHERE r.repo_id = ? ORDER BY r.created_at DESC, r.id DESC LIMIT ?`, repoID, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]*Run, 0, n)
	for rows.Next() {
		r := &Run{RepoID: repoID}
		var created, updated int64
		if err := rows.Scan(&r.ID, &r.UUID, &r.RunIndex, &r.WorkflowName, &r.HeadSHA, &r.HeadRef, &r.Event, &r.Actor,
			&r.Status, &r.Conclusion, &created, &updated); err != nil {
			return nil, err
		}
		r.CreatedAt, r.UpdatedAt = msTime(sql.NullInt64{Int64: created, Valid: true}), msTime(sql.NullInt64{Int64: updated, Valid: true})
		out = append(out, r)
	}
	return out, rows.Err()
}

// latestRunOf returns the newest run of a workflow file, on a branch when
// branch is not empty: the kept last run of the workflow or of its
// run_heads row, a few look-ups however long the history.
func (s *Store) LatestRunOf(ctx context.Context, repoID int64, file, branch string) (*Run, error) {
	if branch == "" {
		return scanRun(s.rd.QueryRowContext(ctx, "SELECT "+RunCols+
			" WHERE r.id = (SELECT last_run_id FROM workflows WHERE repo_id = ? AND path = ?)", repoID, file))
	}
	return scanRun(s.rd.QueryRowContext(ctx, "SELECT "+RunCols+
		" WHERE r.id = (SELECT h.last_run_id FROM workflows w JOIN run_heads h ON h.workflow_id = w.id"+
		" WHERE w.repo_id = ? AND w.path = ? AND h.head_ref = ?)",
		repoID, file, "refs/heads/"+branch))
}

const jobCols = `id, run_id, job_key, name, runs_on, image, needs, env, timeout_minutes, status, conclusion,
	cancel_requested, runner_id, started_at, completed_at, created_at, base_key, leg, activated, waiting, concurrency_group,
	continue_on_error, fail_fast, max_parallel, outputs, contexts, container, services, environment, call_id, call FROM jobs`

func scanJob(row interface{ Scan(...any) error }) (*Job, error) {
	j := &Job{}
	var runsOn, needs, env, outputs, contexts, container, services, environment string
	var runner, started, completed, created, callID sql.NullInt64
	err := row.Scan(&j.ID, &j.RunID, &j.JobKey, &j.Name, &runsOn, &j.Image, &needs, &env, &j.TimeoutMinutes,
		&j.Status, &j.Conclusion, &j.CancelRequested, &runner, &started, &completed, &created, &j.BaseKey, &j.Leg, &j.Activated,
		&j.Waiting, &j.ConcurrencyGroup, &j.ContinueOnError, &j.FailFast, &j.MaxParallel, &outputs, &contexts,
		&container, &services, &environment, &callID, &j.Call)
	if err != nil {
		return nil, notFound(err)
	}
	if err := errors.Join(decodeColumn("jobs.runs_on", runsOn, &j.RunsOn), decodeColumn("jobs.needs", needs, &j.Needs),
		decodeColumn("jobs.env", env, &j.Env), decodeColumn("jobs.outputs", outputs, &j.Outputs),
		decodeColumn("jobs.contexts", contexts, &j.Contexts), decodeColumn("jobs.container", container, &j.Container),
		decodeColumn("jobs.services", services, &j.Services), decodeColumn("jobs.environment", environment, &j.Environment)); err != nil {
		return nil, err
	}
	j.RunnerID, j.CallID = runner.Int64, callID.Int64
	j.StartedAt, j.CompletedAt, j.CreatedAt = msTime(started), msTime(completed), msTime(created)
	return j, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func jobByID(ctx context.Context, q querier, id int64) (*Job, error) {
	return scanJob(q.QueryRowContext(ctx, "SELECT "+jobCols+" WHERE id = ?", id))
}

func (s *Store) JobByID(ctx context.Context, id int64) (*Job, error) { return jobByID(ctx, s.rd, id) }

// jobOf loads job id if it belongs to repository repoID and, when runID is
// not 0, to that run. Any other job is apperr.ErrNotFound: ids are global and must
// not be enumerable through another repository's paths.
func (s *Store) JobOf(ctx context.Context, repoID, runID, id int64) (*Job, error) {
	j, err := s.JobByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if runID != 0 && j.RunID != runID {
		return nil, apperr.ErrNotFound
	}
	var owner int64
	if err := s.db.QueryRowContext(ctx, "SELECT repo_id FROM runs WHERE id = ?", j.RunID).Scan(&owner); err != nil {
		return nil, notFound(err)
	}
	if owner != repoID {
		return nil, apperr.ErrNotFound
	}
	return j, nil
}

func runJobs(ctx context.Context, q querier, runID int64) ([]*Job, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+jobCols+" WHERE run_id = ? ORDER BY id", runID)
	return ScanAll(rows, err, scanJob)
}

// runJobs lists a run's jobs with their steps, in workflow order.
func (s *Store) RunJobs(ctx context.Context, runID int64) ([]*Job, error) {
	jobs, err := runJobs(ctx, s.rd, runID)
	if err != nil {
		return nil, err
	}
	jobs = hideCalls(jobs)
	for _, j := range jobs {
		if j.Steps, err = jobSteps(ctx, s.rd, j.ID); err != nil {
			return nil, err
		}
	}
	return jobs, nil
}

// JobSteps lists a job's steps in order.
func (s *Store) JobSteps(ctx context.Context, jobID int64) ([]*Step, error) {
	return jobSteps(ctx, s.db, jobID)
}

const stepCols = `id, job_id, number, kind, name, run, uses, env, working_directory, status, conclusion,
	started_at, completed_at, log_size, log_truncated, summary FROM steps`

func jobSteps(ctx context.Context, q querier, jobID int64) ([]*Step, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+stepCols+" WHERE job_id = ? ORDER BY number", jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Step
	for rows.Next() {
		st := &Step{}
		var env string
		var started, completed sql.NullInt64
		if err := rows.Scan(&st.ID, &st.JobID, &st.Number, &st.Kind, &st.Name, &st.Run, &st.Uses, &env, &st.WorkingDirectory,
			&st.Status, &st.Conclusion, &started, &completed, &st.LogSize, &st.LogTruncated, &st.Summary); err != nil {
			return nil, err
		}
		if err := decodeColumn("steps.env", env, &st.Env); err != nil {
			return nil, err
		}
		st.StartedAt, st.CompletedAt = msTime(started), msTime(completed)
		out = append(out, st)
	}
	return out, rows.Err()
}

func NonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func NonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// ---- logs ----

// logChunk is a piece of a step's log.
type LogChunk struct {
	StepID int64
	Seq    int64
	Data   []byte
}

// logPageRows is how many log chunks one query reads. A chunk is at most
// 1 MiB (and 64 KiB from this program's runners), so reading a log holds a
// few MiB at most, however long the log, and no read transaction stays
// open while a slow client takes its time.
const LogPageRows = 4

// eachLogChunk calls fn with each chunk of a step's log after seq after, in
// order, reading logPageRows chunks at a time.
func (s *Store) EachLogChunk(ctx context.Context, stepID, after int64, fn func(LogChunk) error) error {
	for {
		page, err := s.logPage(ctx, "SELECT seq, data FROM log_chunks WHERE step_id = ? AND seq > ? ORDER BY seq LIMIT ?", stepID, after)
		if err != nil {
			return err
		}
		for _, c := range page {
			if err := fn(c); err != nil {
				return err
			}
			after = c.Seq
		}
		if len(page) < LogPageRows {
			return nil
		}
	}
}

// logTail returns the end of a step's log: the most recent chunks that
// together hold at most limit bytes, or the last chunk alone when it holds
// more, in order. It reads back from the end, so a page showing the tail of
// a huge log reads only that tail.
func (s *Store) LogTail(ctx context.Context, stepID int64, limit int64) ([]LogChunk, int64, error) {
	var tail []LogChunk
	var size int64
	before := int64(math.MaxInt64)
	for {
		page, err := s.logPage(ctx, "SELECT seq, data FROM log_chunks WHERE step_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?", stepID, before)
		if err != nil {
			return nil, 0, err
		}
		for _, c := range page {
			if len(tail) > 0 && size+int64(len(c.Data)) > limit {
				slices.Reverse(tail)
				return tail, size, nil
			}
			tail = append(tail, c)
			size += int64(len(c.Data))
			before = c.Seq
		}
		if len(page) < LogPageRows {
			slices.Reverse(tail)
			return tail, size, nil
		}
	}
}

// logPage runs one query of a step's log chunks (step id, a seq bound and
// the page size are its arguments) and returns its rows.
func (s *Store) logPage(ctx context.Context, query string, stepID, seq int64) ([]LogChunk, error) {
	rows, err := s.rd.QueryContext(ctx, query, stepID, seq, LogPageRows)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var page []LogChunk
	bytes := 0
	for rows.Next() {
		c := LogChunk{StepID: stepID}
		if err := rows.Scan(&c.Seq, &c.Data); err != nil {
			return nil, err
		}
		page = append(page, c)
		bytes += len(c.Data)
	}
	if s.onLogPage != nil {
		s.onLogPage(len(page), bytes)
	}
	return page, rows.Err()
}

// ---- web ----

// webCreateSession starts a browser session for a user and returns its id
// (the cookie's value) and CSRF token. Only a SHA-256 of the id is kept.
// Expired sessions are swept on the way.
func (s *Store) WebCreateSession(ctx context.Context, userID, tokenID int64, ttl time.Duration) (id, csrf string, err error) {
	id, csrf = newSecret(""), newSecret("")
	now := s.NowMS()
	err = s.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec("DELETE FROM sessions WHERE expires_at <= ?", now); err != nil {
			return err
		}
		_, err := tx.Exec("INSERT INTO sessions (hash, user_id, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
			secretHash(id), userID, tokenID, csrf, now, now+ttl.Milliseconds())
		return err
	})
	if err != nil {
		return "", "", err
	}
	return id, csrf, nil
}

// webSession finds the user, CSRF token and scopes of an unexpired session
// whose token is neither revoked nor expired; apperr.ErrNotFound when there is
// none. A session has the scopes of the token it was signed in with.
func (s *Store) WebSession(ctx context.Context, id string) (*User, string, []string, error) {
	u := &User{}
	var csrf, scopes string
	now := s.NowMS()
	err := s.rd.QueryRowContext(ctx, `SELECT u.id, u.name, s.csrf, t.scopes FROM sessions s
		JOIN users u ON u.id = s.user_id JOIN tokens t ON t.id = s.token_id
		WHERE s.hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)`,
		secretHash(id), now, now).Scan(&u.ID, &u.Name, &csrf, &scopes)
	if err != nil {
		return nil, "", nil, notFound(err)
	}
	var list []string
	if scopes != "" {
		list = strings.Split(scopes, ",")
	}
	return u, csrf, list, nil
}

// webDeleteSession ends a session; ending one that is gone is not an error.
func (s *Store) WebDeleteSession(ctx context.Context, id string) error {
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec("DELETE FROM sessions WHERE hash = ?", secretHash(id))
		return err
	})
}

// webWorkflow is a workflow file that has runs, named as its newest run is,
// with that run's state and whether the workflow is disabled.
type WebWorkflow struct {
	ID         int64
	File       string // .shithub/workflows/x.yml
	Name       string
	Disabled   bool
	Status     string // the newest run's
	Conclusion string
}

// webWorkflows lists the workflow files a repository has runs of: the
// workflows with a newest run (last_run_id is NULL once none is left).
func (s *Store) WebWorkflows(ctx context.Context, repoID int64) ([]WebWorkflow, error) {
	rows, err := s.rd.QueryContext(ctx, `SELECT w.id, w.path, r.workflow_name, w.state != 'active', r.status, r.conclusion
		FROM workflows w JOIN runs r ON r.id = w.last_run_id
		WHERE w.repo_id = ? ORDER BY r.workflow_name, w.path`, repoID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []WebWorkflow
	for rows.Next() {
		var w WebWorkflow
		if err := rows.Scan(&w.ID, &w.File, &w.Name, &w.Disabled, &w.Status, &w.Conclusion); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// webBranches lists the branches a repository has runs on, most recently
// run first, at most n.
func (s *Store) WebBranches(ctx context.Context, repoID int64, n int) ([]string, error) {
	rows, err := s.rd.QueryContext(ctx, `SELECT substr(head_ref, 12) FROM run_branches
		WHERE repo_id = ? ORDER BY last_run_id DESC LIMIT ?`, repoID, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// webLogChunksAfter returns the log chunks of a run's steps that follow
// after[stepID] (a step missing from after: from its start), in job, step
// and seq order. It stops once budget bytes are collected, with more true;
// at least one chunk is returned when any is new.
func (s *Store) WebLogChunksAfter(ctx context.Context, runID int64, after map[int64]int64, budget int) ([]LogChunk, bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT s.id FROM steps s JOIN jobs j ON j.id = s.job_id
		WHERE j.run_id = ? ORDER BY j.id, s.number`, runID)
	if err != nil {
		return nil, false, err
	}
	var steps []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, false, err
		}
		steps = append(steps, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	var out []LogChunk
	size := 0
	for _, id := range steps {
		more, err := func() (bool, error) {
			rows, err := s.db.QueryContext(ctx, "SELECT seq, data FROM log_chunks WHERE step_id = ? AND seq > ? ORDER BY seq", id, after[id])
			if err != nil {
				return false, err
			}
			defer rows.Close()
			for rows.Next() {
				if size >= budget && len(out) > 0 {
					return true, nil
				}
				c := LogChunk{StepID: id}
				if err := rows.Scan(&c.Seq, &c.Data); err != nil {
					return false, err
				}
				out = append(out, c)
				size += len(c.Data)
			}
			return false, rows.Err()
		}()
		if err != nil || more {
			return out, more, err
		}
	}
	return out, false, nil
}

// webVisibleRepos lists the repositories user (nil: anonymous) may read.
func (s *Store) WebVisibleRepos(ctx context.Context, user *User) ([]*Repo, error) {
	var uid int64
	if user != nil {
		uid = user.ID
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+repoCols+` WHERE r.private = 0 OR r.owner_id = ?
		OR EXISTS (SELECT 1 FROM collaborators c WHERE c.repo_id = r.id AND c.user_id = ?)
		ORDER BY u.name, r.name LIMIT 500`, uid, uid)
	return ScanAll(rows, err, scanRepo)
}

// stmtCache is a querier that prepares each query text once and reuses the
// statement (database/sql keeps one per pooled connection), which spares
// the hot read paths SQLite's parse and plan on every request. Only query
// texts from a bounded set go through it (fixed texts, and listRuns' one
// per combination of filters), so it stays small.
type stmtCache struct {
	DB    *sql.DB
	stmts sync.Map // query text → *sql.Stmt
}

func (c *stmtCache) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := c.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := c.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := c.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

func (c *stmtCache) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return c.DB.QueryRowContext(ctx, q, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (c *stmtCache) close() {
	c.stmts.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
}

// runtimeSecret is the secret runtime tokens and signed URLs are keyed
// with (runtimeKeys), derived from the key file (Store.derivedKey): a copy
// of the database cannot forge them, and they outlive a restart.
func (s *Store) RuntimeSecret(ctx context.Context) ([]byte, error) {
	s.secretMu.Lock()
	defer s.secretMu.Unlock()
	if s.secret != nil {
		return s.secret, nil
	}
	b, err := s.derivedKey("runtime")
	if err != nil {
		return nil, err
	}
	s.secret = b
	return b, nil
}

// jobRuntimeToken is ACTIONS_RUNTIME_TOKEN for a claimed job: it names the
// job's run, repository and job, and lasts the job's timeout and an hour.
func (s *Store) jobRuntimeToken(ctx context.Context, cj *protocol.Job) (string, error) {
	secret, err := s.RuntimeSecret(ctx)
	if err != nil {
		return "", err
	}
	tokenKey, _ := RuntimeKeys(secret)
	ttl := protocol.DefaultJobTimeout(cj) + runtimeTokenTTL
	return jobsvc.ArtifactRuntimeToken(tokenKey, jobsvc.ArtifactJob{RunID: cj.RunID, RepoID: cj.RepoID, JobID: cj.JobID}, s.now(), ttl), nil
}

// hasScope reports whether a token grants scope; repo:write implies
// repo:read.
func (t *Token) HasScope(scope string) bool {
	return slices.Contains(t.Scopes, scope) || (scope == ScopeRead && slices.Contains(t.Scopes, ScopeWrite))
}

// patUser checks a PAT: well-formed, known, neither revoked nor expired.
// It returns the token with its user, or errBadToken, errTokenRevoked or
// errTokenExpired. The API and checkout's token input (reach.go) both
// check PATs here.
func (s *Store) PatUser(ctx context.Context, secret string) (*User, *Token, error) {
	if !strings.HasPrefix(secret, PatPrefix) || len(secret) != len(PatPrefix)+32 {
		return nil, nil, ErrBadToken
	}
	t, u, err := s.TokenBySecret(ctx, secret)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, nil, ErrBadToken
	}
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	switch {
	case !t.RevokedAt.IsZero():
		return nil, nil, errTokenRevoked
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return nil, nil, errTokenExpired
	}
	return u, t, nil
}

// runtimeTokenTTL bounds a runtime token beyond its job's timeout; the
// token is refused anyway once its job has completed.
const runtimeTokenTTL = time.Hour

// runtimeKeys derives the keys of runtime tokens and of signed URLs from
// the runtime secret, so neither key can forge the other.
func RuntimeKeys(secret []byte) (token, urls []byte) {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return derive("runtime-token"), derive("signed-url")
}

var ErrBadToken = &apperr.Error{Code: apperr.Unauthenticated, Msg: "bad credentials"}

var errTokenExpired = &apperr.Error{Code: apperr.Unauthenticated, Msg: "token expired"}

var errTokenRevoked = &apperr.Error{Code: apperr.Unauthenticated, Msg: "token revoked"}

// errLacksScope refuses a valid token that does not grant scope.
func ErrLacksScope(scope string) error { return apperr.Forbiddenf("token lacks the %s scope", scope) }
