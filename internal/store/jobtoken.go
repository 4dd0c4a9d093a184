// GITHUB_TOKEN: the token each job gets for its own repository, valid while
// the job runs, with the permissions of the workflow's or job's
// `permissions:`; and what a job is handed when it is claimed (its
// secrets, variables and token).

package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"maps"
	"path"
	"slices"
	"strings"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/expr"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// jobTokenPrefix starts every GITHUB_TOKEN, so auth tells it from a PAT.
const JobTokenPrefix = "shithub_job_"

// tokenPerms are a GITHUB_TOKEN's permissions: "none", "read" or "write"
// for each scope this server has.
type TokenPerms struct {
	Contents string `json:"contents"` // git fetch and push
	Actions  string `json:"actions"`  // the Actions API: runs, jobs, logs, cancel, re-run, dispatch
}

// defaultTokenPerms is the token of a workflow without `permissions:`.
var DefaultTokenPerms = TokenPerms{Contents: "read", Actions: "read"}

// tokenPermsOf is the token of a job whose `permissions:` (the job's, else
// the workflow's) the parser read as scope → level, "*" → read-all or
// write-all; nil when neither says any. A scope left out of a mapping is
// none; scopes this server has no use for (packages, issues, ...) have no
// effect.
func tokenPermsOf(m map[string]string) TokenPerms {
	if m == nil {
		return DefaultTokenPerms
	}
	switch m["*"] {
	case "read-all":
		return TokenPerms{"read", "read"}
	case "write-all":
		return TokenPerms{"write", "write"}
	}
	level := func(l string) string {
		if l == "read" || l == "write" {
			return l
		}
		return "none"
	}
	return TokenPerms{level(m["contents"]), level(m["actions"])}
}

// workflowJobPerms is the GITHUB_TOKEN permissions of job jobKey (its id
// in the workflow) of a workflow file: the defaults when it does not parse.
func workflowJobPerms(file string, content []byte, jobKey string) TokenPerms {
	wf, err := workflow.Parse(path.Base(file), content)
	if err != nil || wf == nil {
		return DefaultTokenPerms
	}
	for _, j := range wf.Jobs {
		if j.Key == jobKey && j.Permissions != nil {
			return tokenPermsOf(j.Permissions)
		}
	}
	return tokenPermsOf(wf.Permissions)
}

// readOnly caps p at read: a fork's pull request gets no more.
func (p TokenPerms) readOnly() TokenPerms {
	cap := func(l string) string {
		if l == "write" {
			return "read"
		}
		return l
	}
	return TokenPerms{cap(p.Contents), cap(p.Actions)}
}

// permOf maps a permission level to the repository permission it grants.
func permOf(level string) Perm {
	switch level {
	case "write":
		return PermWrite
	case "read":
		return PermRead
	}
	return PermNone
}

// deriveJobToken makes a job's GITHUB_TOKEN from the server key and the
// job's nonce. Only its hash and the nonce are stored, so the database
// alone gives the token to no one, while the server can derive it again to
// mask it in the log after a restart.
func deriveJobToken(key, nonce []byte, jobID int64) string {
	out := make([]byte, 0, len(JobTokenPrefix)+32)
	out = append(out, JobTokenPrefix...)
	var ctr uint32
	for len(out) < len(JobTokenPrefix)+32 {
		m := hmac.New(sha256.New, key)
		m.Write([]byte("shithub-actions GITHUB_TOKEN\x00"))
		binary.Write(m, binary.BigEndian, jobID)
		binary.Write(m, binary.BigEndian, ctr)
		m.Write(nonce)
		for _, c := range m.Sum(nil) {
			if c < 248 && len(out) < len(JobTokenPrefix)+32 { // 248 = 4*62: no modulo bias
				out = append(out, Base62[c%62])
			}
		}
		ctr++
	}
	return string(out)
}

// jobCredentials is what was given to a claimed job, as stored.
type jobCredentials struct {
	JobID       int64
	RepoID      int64
	Nonce       []byte
	Perms       TokenPerms
	SecretNames []string
}

// issueJobCredentials records, in the claim's transaction, what job jobID
// is given: a new GITHUB_TOKEN with the job's permissions and the names of
// the secrets it references (none for a fork's pull request). It opens
// those secrets once, so a secret that cannot be decrypted fails the claim
// here, with its name, rather than the job later.
func (s *Store) IssueJobCredentials(ctx context.Context, tx *sql.Tx, jobID int64, now int64) error {
	j, err := jobByID(ctx, tx, jobID)
	if err != nil {
		return err
	}
	run, err := scanRun(tx.QueryRowContext(ctx, "SELECT "+RunCols+" WHERE r.id = ?", j.RunID))
	if err != nil {
		return err
	}
	var content []byte
	if err := tx.QueryRow("SELECT workflow_content FROM runs WHERE id = ?", j.RunID).Scan(&content); err != nil {
		return err
	}
	repo, err := scanRepo(tx.QueryRowContext(ctx, "SELECT "+repoCols+" WHERE r.id = ?", run.RepoID))
	if err != nil {
		return err
	}
	// A job of a called workflow: its file, its token narrowed by every
	// calling job above it, and only the secrets its call passed.
	file, wfContent, localJob, err := s.jobWorkflow(ctx, tx, j, run.WorkflowFile, content)
	if err != nil {
		return err
	}
	refs := WorkflowJobRefs(wfContent, localJob)
	fork := isForkPullRequest(run.Event, run.EventPayload, repo.FullName())
	perms, names := workflowJobPerms(file, wfContent, localJob), refs.Secrets
	if perms, err = s.callPerms(ctx, tx, j, perms, run.WorkflowFile, content); err != nil {
		return err
	}
	if fork {
		perms, names = perms.readOnly(), []string{}
	}
	if !fork && refs.AllSecrets {
		names = nil // every secret: listed below
	}
	var values map[string]string
	switch {
	case j.CallID != 0 && !fork:
		view, err := s.callSecrets(ctx, tx, repo, j.CallID)
		if err != nil {
			return err
		}
		values = pickSecrets(view, refs)
		names = slices.Sorted(maps.Keys(values))
	default:
		if values, err = s.OpenSecrets(ctx, tx, repo, names); err != nil {
			return err
		}
	}
	if names == nil {
		names = slices.Sorted(maps.Keys(values))
	} else {
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { _, ok := values[n]; return !ok })
	}
	key, err := s.SecretKey()
	if err != nil {
		return err
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	token := deriveJobToken(key, nonce, jobID)
	// A job claimed again (its first claim was never acknowledged) gets a
	// new token; the old one stops working.
	_, err = tx.Exec(`INSERT INTO job_credentials (job_id, token_hash, token_nonce, contents, actions, secret_names, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET token_hash = excluded.token_hash,
		token_nonce = excluded.token_nonce, contents = excluded.contents, actions = excluded.actions,
		secret_names = excluded.secret_names, created_at = excluded.created_at`,
		jobID, secretHash(token), nonce, perms.Contents, perms.Actions, jsonText(names), now)
	if err == nil {
		s.dropMasker(jobID) // the next chunk builds it with the new token
	}
	return err
}

// loadJobCredentials reads what a claimed job was given; apperr.ErrNotFound for a
// job never claimed.
func (s *Store) loadJobCredentials(ctx context.Context, q querier, jobID int64) (*jobCredentials, error) {
	c := &jobCredentials{JobID: jobID}
	var names string
	err := q.QueryRowContext(ctx, sqlJobCredentials, jobID).
		Scan(&c.RepoID, &c.Nonce, &c.Perms.Contents, &c.Perms.Actions, &names)
	if err != nil {
		return nil, notFound(err)
	}
	return c, decodeColumn("job_credentials.secret_names", names, &c.SecretNames)
}

// jobDelivery is what a job receives: the values of the secrets it
// references plus GITHUB_TOKEN, the variables, and the token alone (for
// github.token). It goes to the runner in the claim and nowhere else.
type jobDelivery struct {
	Token   string
	Perms   TokenPerms
	Secrets map[string]string // includes GITHUB_TOKEN
	Vars    map[string]string
}

// jobDelivery assembles a claimed job's delivery from the database and the
// server key.
func (s *Store) JobDelivery(ctx context.Context, jobID int64) (*jobDelivery, error) {
	c, err := s.loadJobCredentials(ctx, s.db, jobID)
	if err != nil {
		return nil, err
	}
	repo, err := s.RepoByID(ctx, c.RepoID)
	if err != nil {
		return nil, err
	}
	key, err := s.SecretKey()
	if err != nil {
		return nil, err
	}
	d := &jobDelivery{Token: deriveJobToken(key, c.Nonce, jobID), Perms: c.Perms, Secrets: map[string]string{}}
	if len(c.SecretNames) > 0 {
		j, err := jobByID(ctx, s.db, jobID)
		if err != nil {
			return nil, err
		}
		if j.CallID != 0 { // the names are the called workflow's: valued through the calls
			view, err := s.callSecrets(ctx, s.db, repo, j.CallID)
			if err != nil {
				return nil, err
			}
			d.Secrets = pickSecrets(view, jobRefs{Secrets: c.SecretNames})
			for k, v := range d.Secrets {
				d.Secrets[k] = strings.ReplaceAll(v, callTokenRef, d.Token)
			}
		} else if d.Secrets, err = s.OpenSecrets(ctx, s.db, repo, c.SecretNames); err != nil {
			return nil, err
		}
	}
	d.Secrets["GITHUB_TOKEN"] = d.Token
	if d.Vars, err = s.repoVars(ctx, s.db, repo); err != nil {
		return nil, err
	}
	return d, nil
}

// maskValues are the values a job's log must never show: its secrets and
// its token.
func (d *jobDelivery) maskValues() []string {
	return slices.Sorted(maps.Values(d.Secrets))
}

// ---- authenticating a GITHUB_TOKEN ----

// jobPrincipal is who acts with a GITHUB_TOKEN: the job's token, on its
// repository alone.
type JobPrincipal struct {
	JobID  int64
	RepoID int64
	Perms  TokenPerms
}

var ErrJobTokenEnded = &apperr.Error{Code: apperr.Unauthenticated, Msg: "token expired: its job has ended"}

// jobPermission is a job principal's permission on repo: for its own
// repository, what `level` grants; elsewhere what anyone has.
func JobPermission(p *JobPrincipal, repo *Repo, level string) Perm {
	if repo.ID == p.RepoID {
		return permOf(level)
	}
	if !repo.Private {
		return PermRead
	}
	return PermNone
}

// isJobToken reports whether secret looks like a GITHUB_TOKEN.
func IsJobToken(secret string) bool { return strings.HasPrefix(secret, JobTokenPrefix) }

// sqlJobToken is a hot query (EXPLAIN QUERY PLAN checked in the tests).
const sqlJobToken = `SELECT c.job_id, r.repo_id, c.contents, c.actions, j.status, u.id, u.name
		FROM job_credentials c JOIN jobs j ON j.id = c.job_id JOIN runs r ON r.id = j.run_id JOIN users u ON u.id = r.actor_id
		WHERE c.token_hash = ?`

// JobTokenUser looks up a GITHUB_TOKEN: the run's actor carrying the
// job's principal (its repository and permissions). A token nobody was
// given is ErrBadToken; one whose job is no longer running is
// ErrJobTokenEnded.
func (s *Store) JobTokenUser(ctx context.Context, secret string) (*User, error) {
	var p JobPrincipal
	var status string
	u := &User{}
	err := s.db.QueryRowContext(ctx, sqlJobToken, secretHash(secret)).Scan(&p.JobID, &p.RepoID, &p.Perms.Contents, &p.Perms.Actions, &status, &u.ID, &u.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrBadToken
	}
	if err != nil {
		return nil, err
	}
	if status != protocol.StatusRunning {
		return nil, ErrJobTokenEnded
	}
	u.Job = &p
	return u, nil
}

// sqlJobCredentials is a hot query (EXPLAIN QUERY PLAN checked in the tests).
const sqlJobCredentials = `SELECT r.repo_id, c.token_nonce, c.contents, c.actions, c.secret_names
		FROM job_credentials c JOIN jobs j ON j.id = c.job_id JOIN runs r ON r.id = j.run_id WHERE c.job_id = ?`

// evalWithDelivery evaluates again, in the claim and nowhere else, what the
// workflow core evaluated when the job became ready, before the job had
// secrets or variables: the workflow's and the job's env, and the env of
// its container and services, where they read `secrets` or `vars`. Their
// values never reach the database this way. ctxs are the claim's contexts,
// with secrets and vars delivered.
func evalWithDelivery(cj *protocol.Job, wf *workflow.Workflow, wj *workflow.Job) {
	reads := func(m map[string]string) bool {
		for _, raw := range m {
			if strings.Contains(raw, "secrets") || strings.Contains(raw, "vars") {
				return true
			}
		}
		return false
	}
	ctxs := cj.Contexts
	ev := &expr.Env{Contexts: ctxs}
	if reads(wf.Env) || reads(wj.Env) {
		env := map[string]string{}
		wfEnv := &expr.Env{Contexts: map[string]any{"github": ctxs["github"], "secrets": ctxs["secrets"], "inputs": ctxs["inputs"], "vars": ctxs["vars"]}}
		if evalEnvInto(env, wf.Env, wfEnv) == nil && evalEnvInto(env, wj.Env, ev) == nil {
			envCtx := map[string]any{}
			if old, ok := ctxs["env"].(map[string]any); ok {
				maps.Copy(envCtx, old)
			}
			for k, v := range env {
				envCtx[k] = v
				// The runner's own variables win, as when the job was planned;
				// GITHUB_TOKEN is none of them (env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}
				// is how gh and many scripts get the token).
				if k == "GITHUB_TOKEN" || k != "CI" && !strings.HasPrefix(k, "GITHUB_") && !strings.HasPrefix(k, "INPUT_") && k != "SHITHUB_ACTIONS" {
					cj.Env[k] = v
				}
			}
			ctxs["env"] = envCtx
		}
	}
	evalSpecEnv := func(dst *workflow.ContainerSpec, raw *workflow.ContainerSpec) {
		if dst == nil || raw == nil || !reads(raw.Env) {
			return
		}
		env := map[string]string{}
		if evalEnvInto(env, raw.Env, ev) == nil {
			if dst.Env == nil {
				dst.Env = map[string]string{}
			}
			maps.Copy(dst.Env, env)
		}
	}
	evalSpecEnv(cj.Container, wj.Container)
	for _, sv := range wj.Services {
		evalSpecEnv(cj.Services[sv.ID], &sv.ContainerSpec)
	}
}

const (
	ScopeRead  = "repo:read"
	ScopeWrite = "repo:write"
)
