-- shithub-actions schema, version 1. Later changes are ordered migrations in
-- db.go, tracked with PRAGMA user_version. Times are Unix milliseconds (UTC).

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

CREATE TABLE users (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL
);

CREATE TABLE repos (
	id       INTEGER PRIMARY KEY,
	owner_id INTEGER NOT NULL REFERENCES users(id),
	name     TEXT NOT NULL,
	git_dir  TEXT NOT NULL,
	private  INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	-- runs_version changes with every change to any of the repository's
	-- runs, so the feed's ETag and Last-Modified cost one row read.
	runs_version    INTEGER NOT NULL DEFAULT 0,
	runs_updated_at INTEGER NOT NULL DEFAULT 0,
	UNIQUE (owner_id, name)
);

CREATE TABLE collaborators (
	repo_id INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	perm    TEXT NOT NULL CHECK (perm IN ('read', 'write', 'admin')),
	PRIMARY KEY (repo_id, user_id)
);

-- Only a SHA-256 of each secret is kept.
CREATE TABLE tokens (
	id           INTEGER PRIMARY KEY,
	user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	hash         BLOB NOT NULL UNIQUE,
	scopes       TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER,
	revoked_at   INTEGER,
	last_used_at INTEGER
);

CREATE TABLE runners (
	id           INTEGER PRIMARY KEY,
	name         TEXT NOT NULL UNIQUE,
	hash         BLOB UNIQUE, -- NULL for the server's own in-process pool
	labels       TEXT NOT NULL DEFAULT '[]',
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER
);

-- A push is recorded once per (repository, ref, after): a redelivered push
-- finds its runs instead of creating them again.
CREATE TABLE pushes (
	id         INTEGER PRIMARY KEY,
	repo_id    INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	ref        TEXT NOT NULL,
	after_sha  TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (repo_id, ref, after_sha)
);

CREATE TABLE runs (
	id               INTEGER PRIMARY KEY,
	uuid             TEXT NOT NULL UNIQUE,
	repo_id          INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
	run_index        INTEGER NOT NULL,
	run_attempt      INTEGER NOT NULL DEFAULT 1,
	parent_run_id    INTEGER REFERENCES runs(id),
	push_id          INTEGER REFERENCES pushes(id),
	workflow_file    TEXT NOT NULL,
	workflow_name    TEXT NOT NULL,
	workflow_content BLOB NOT NULL,
	head_sha         TEXT NOT NULL,
	head_ref         TEXT NOT NULL,
	event            TEXT NOT NULL,
	inputs           TEXT NOT NULL DEFAULT '{}',
	actor_id         INTEGER NOT NULL REFERENCES users(id),
	status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed')),
	conclusion       TEXT NOT NULL DEFAULT '',
	created_at       INTEGER NOT NULL,
	started_at       INTEGER,
	completed_at     INTEGER,
	updated_at       INTEGER NOT NULL,
	UNIQUE (repo_id, run_index)
);
CREATE INDEX runs_repo_created ON runs (repo_id, created_at DESC, id DESC);
CREATE INDEX runs_parent ON runs (parent_run_id);
CREATE INDEX runs_push ON runs (push_id);

CREATE TABLE jobs (
	id               INTEGER PRIMARY KEY,
	run_id           INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	job_key          TEXT NOT NULL,
	name             TEXT NOT NULL,
	runs_on          TEXT NOT NULL DEFAULT '[]',
	image            TEXT NOT NULL DEFAULT '',
	needs            TEXT NOT NULL DEFAULT '[]',
	env              TEXT NOT NULL DEFAULT '{}',
	timeout_minutes  INTEGER NOT NULL DEFAULT 360,
	status           TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed')),
	conclusion       TEXT NOT NULL DEFAULT '',
	cancel_requested INTEGER NOT NULL DEFAULT 0,
	-- ready: every job this one needs has succeeded, so a claim reads only
	-- claimable jobs instead of walking the blocked ones.
	ready            INTEGER NOT NULL DEFAULT 0,
	runner_id        INTEGER REFERENCES runners(id),
	created_at       INTEGER NOT NULL,
	started_at       INTEGER,
	completed_at     INTEGER,
	UNIQUE (run_id, job_key)
);
CREATE INDEX jobs_ready ON jobs (id) WHERE status = 'queued' AND ready = 1;
CREATE INDEX jobs_running ON jobs (runner_id) WHERE status = 'running';

CREATE TABLE steps (
	id                INTEGER PRIMARY KEY,
	job_id            INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	number            INTEGER NOT NULL,
	kind              TEXT NOT NULL,
	name              TEXT NOT NULL,
	run               TEXT NOT NULL DEFAULT '',
	uses              TEXT NOT NULL DEFAULT '',
	env               TEXT NOT NULL DEFAULT '{}',
	working_directory TEXT NOT NULL DEFAULT '',
	status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed')),
	conclusion        TEXT NOT NULL DEFAULT '',
	started_at        INTEGER,
	completed_at      INTEGER,
	log_size          INTEGER NOT NULL DEFAULT 0,
	log_truncated     INTEGER NOT NULL DEFAULT 0,
	UNIQUE (job_id, number)
);

CREATE TABLE log_chunks (
	step_id INTEGER NOT NULL REFERENCES steps(id) ON DELETE CASCADE,
	seq     INTEGER NOT NULL,
	data    BLOB NOT NULL,
	PRIMARY KEY (step_id, seq)
) WITHOUT ROWID;

-- Browser sessions (the web pages); only a SHA-256 of the session id is kept.
-- A session lives no longer than the token it was signed in with: revoking
-- the token ends it.
CREATE TABLE sessions (
	hash       BLOB PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	token_id   INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
	csrf       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);
