// Reusable workflows: a calling job (`jobs.<id>.uses`) becomes the jobs
// of the workflow it calls.
//
// The called files are read when the run is made (ResolveCalls: git,
// outside any transaction, by the reach rules of reach.go) and kept with
// the run (run_calls), so that a re-run calls the same bytes. The call
// itself is made when the calling job becomes ready, as on GitHub: its
// `with` and `secrets` may read needs and matrix. Its row then stays as
// the call's record (jobs.call), never claimable, and the called jobs are
// inserted as rows of the run named "caller / job", keyed "caller/job",
// pointing at it (call_id). The call completes when its jobs have: its
// conclusion folds theirs and its outputs, evaluated from their outputs,
// reach the jobs that need it.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/expr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// MaxRunJobs bounds the rows calls may add to one run: a matrix of calls
// to workflows with matrices multiplies, and every row is work.
const MaxRunJobs = 2048

// CallFile is a called workflow file as read when its run was made.
type CallFile struct {
	Repo, SHA, Path string // where it is: the repository (OWNER/REPO), commit and path
	Content         []byte
	Err             string // why it cannot be called; the calling job fails with it
}

// callKey names a `uses` in run_calls: the repository and commit of the
// file it is written in (where ./ resolves), and the uses.
func callKey(container, uses string) string { return container + " " + uses }

// ResolveCalls reads, for a run about to be made, every workflow its
// calling jobs call, and the ones those call, into sp.Calls: from the
// same commit for ./ references, else from a repository of this server the
// run may reach (ReachRepo: an untrusted run reaches no private one). A
// file that cannot be read, does not parse, cannot be called, is called
// in a cycle or too deep is recorded with why: the calling job fails with
// that message when it becomes ready. Nothing here fails the run.
func (s *Store) ResolveCalls(ctx context.Context, sp *RunSpec) error {
	return s.resolveCalls(ctx, sp, s.fetchWorkflow != nil)
}

// resolveCalls is ResolveCalls; without fetch, files of --actions-url are
// left for serve (callPending): inside a transaction nothing goes to the
// network.
func (s *Store) resolveCalls(ctx context.Context, sp *RunSpec, fetch bool) error {
	if sp.Workflow == nil || sp.Calls != nil || sp.CallsFrom != 0 {
		return nil
	}
	sp.Calls = map[string]*CallFile{}
	if !hasCalls(sp.Workflow) {
		return nil
	}
	repo, err := s.RepoByID(ctx, sp.RepoID)
	if err != nil {
		return err
	}
	reach := RepoReach{From: repo, Untrusted: isForkPullRequest(sp.Event, sp.Payload, repo.FullName())}
	files := map[string]bool{} // distinct called files: GitHub counts at most MaxCalls
	var walk func(wf *workflow.Workflow, at callSource) error
	walk = func(wf *workflow.Workflow, at callSource) error {
		for _, j := range wf.Jobs {
			if j.Uses == "" {
				continue
			}
			key := callKey(at.full+"@"+at.sha, j.Uses)
			if _, done := sp.Calls[key]; done {
				continue
			}
			cf, target, wf2, err := s.readCall(ctx, reach, at, j.Uses, fetch)
			if err != nil {
				return err
			}
			sp.Calls[key] = cf
			if cf.Err != "" {
				continue
			}
			// Cycles and depth are checked when the call is made, on its
			// own path (makeCall); a file is read once, so this ends.
			id := fileID(cf.Repo, cf.SHA, cf.Path)
			if files[id] = true; len(files) > workflow.MaxCalls {
				cf.Err = fmt.Sprintf("%s is one called workflow too many: a run may call at most %d workflow files", j.Uses, workflow.MaxCalls)
				cf.Content = nil
				continue
			}
			if err := walk(wf2, target); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(sp.Workflow, callSource{repo: repo, full: repo.FullName(), sha: sp.HeadSHA})
}

// callSource is where a workflow file was read: a repository of this
// server, or (repo nil) OWNER/REPO fetched from --actions-url; its ./
// calls are read from the same place and commit.
type callSource struct {
	repo *Repo
	full string // OWNER/REPO
	sha  string
}

// fileID names a workflow file at a commit, to find a call of a file
// already on the path to it.
func fileID(repo, sha, file string) string { return repo + "@" + sha + ":" + file }

func hasCalls(wf *workflow.Workflow) bool {
	return slices.ContainsFunc(wf.Jobs, func(j *workflow.Job) bool { return j.Uses != "" })
}

func chainNames(stack []string) []string {
	out := make([]string, len(stack))
	for i, id := range stack {
		_, p, _ := strings.Cut(id, ":")
		out[i] = path.Base(p)
	}
	return out
}

// readCall reads the file a uses names, written in a file read from at.
// Problems of the file are in the CallFile; the error is the server's.
func (s *Store) readCall(ctx context.Context, reach RepoReach, at callSource, uses string, fetch bool) (*CallFile, callSource, *workflow.Workflow, error) {
	ref, err := workflow.ParseCallRef(uses)
	if err != nil {
		return &CallFile{Err: err.Error()}, callSource{}, nil, nil
	}
	target, sha := at, at.sha
	if !ref.Local {
		repo, err := s.ReachRepo(ctx, reach, ref.Owner, ref.Repo)
		switch {
		case errors.Is(err, apperr.ErrNotFound) && fetch:
			// Not here, or not for this run: --actions-url, as for actions.
			target = callSource{full: ref.Owner + "/" + ref.Repo}
			sha = ref.Ref
		case errors.Is(err, apperr.ErrNotFound):
			// This process has no --actions-url (a post-receive hook):
			// serve fetches it before the call is made.
			return &CallFile{Repo: ref.Owner + "/" + ref.Repo, SHA: ref.Ref, Path: ref.Path, Err: callPending}, callSource{}, nil, nil
		case err != nil:
			return nil, callSource{}, nil, err
		default:
			target = callSource{repo: repo, full: repo.FullName()}
			if sha, err = (git.Repo{Dir: repo.GitDir}).Resolve(ctx, ref.Ref); errors.Is(err, apperr.ErrNotFound) {
				return &CallFile{Err: fmt.Sprintf("reusable workflow %s: no ref %s in %s", uses, ref.Ref, repo.FullName())}, callSource{}, nil, nil
			} else if err != nil {
				return nil, callSource{}, nil, err
			}
		}
	}
	cf := &CallFile{Repo: target.full, SHA: sha, Path: ref.Path}
	var content []byte
	if target.repo == nil {
		owner, name, _ := strings.Cut(target.full, "/")
		content, cf.SHA, _, err = s.fetchWorkflow(ctx, owner, name, sha, ref.Path)
		if err != nil {
			cf.Err = fmt.Sprintf("reusable workflow %s: %v", uses, err)
			return cf, callSource{}, nil, nil
		}
	} else {
		content, err = git.Repo{Dir: target.repo.GitDir}.ReadFile(ctx, sha, ref.Path)
		if errors.Is(err, apperr.ErrNotFound) {
			cf.Err = fmt.Sprintf("reusable workflow %s: no file %s in %s at %.12s", uses, ref.Path, target.full, sha)
			return cf, callSource{}, nil, nil
		}
		if err != nil {
			return nil, callSource{}, nil, err
		}
	}
	target.sha = cf.SHA
	wf, errs := workflow.Check(path.Base(ref.Path), content)
	switch {
	case len(errs) > 0:
		cf.Err = fmt.Sprintf("reusable workflow %s is not valid:\n%v", uses, errs)
	case wf.Call == nil:
		cf.Err = fmt.Sprintf("reusable workflow %s has no on.workflow_call: it cannot be called", uses)
	default:
		cf.Content = content
	}
	return cf, target, wf, nil
}

// insertCalls stores a new run's called files: sp.Calls, or a copy of the
// run sp.CallsFrom's (a re-run calls what its first attempt called).
func insertCalls(tx *sql.Tx, runID int64, sp *RunSpec) error {
	if sp.CallsFrom != 0 {
		_, err := tx.Exec(`INSERT INTO run_calls (run_id, key, repo, sha, path, content, error)
			SELECT ?, key, repo, sha, path, content, error FROM run_calls WHERE run_id = ?`, runID, sp.CallsFrom)
		return err
	}
	for _, key := range workflow.SortedNames(sp.Calls) {
		cf := sp.Calls[key]
		if _, err := tx.Exec(`INSERT INTO run_calls (run_id, key, repo, sha, path, content, error) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			runID, key, cf.Repo, cf.SHA, cf.Path, cf.Content, cf.Err); err != nil {
			return err
		}
	}
	return nil
}

// callSpec is a call as made (jobs.call of the calling row).
type callSpec struct {
	Key     string            `json:"key"`     // run_calls key
	Uses    string            `json:"uses"`    // as written
	Name    string            `json:"name"`    // the calling job's name as shown; called jobs are "NAME / job"
	Prefix  string            `json:"prefix"`  // the calling row's key; called jobs are keyed "PREFIX/job"
	Depth   int               `json:"depth"`   // 1: called by the top-level workflow
	Inputs  map[string]any    `json:"inputs"`  // the called workflow's inputs context
	Inherit bool              `json:"inherit"` // secrets: inherit
	Secrets map[string]string `json:"secrets"` // name in the called workflow → raw expression over the caller's secrets
	Repo    string            `json:"repo"`    // the called file: repository, commit, path
	SHA     string            `json:"sha"`
	Path    string            `json:"path"`
	Chain   []string          `json:"chain"` // fileID of every file from the run's to this one: a call of one of them is a cycle
}

func decodeCall(j *Job) (*callSpec, error) {
	spec := &callSpec{}
	return spec, decodeColumn("jobs.call", j.Call, spec)
}

// The queries of every end of a called job and every claim of one
// (TestReusableQueryPlans).
const (
	sqlCallJobs     = "SELECT " + jobCols + " WHERE call_id = ? ORDER BY id"
	sqlCallOpenJobs = "SELECT " + jobCols + " WHERE call_id = ? AND status != 'completed' ORDER BY id"
	sqlCallFile     = "SELECT repo, sha, path, content, error FROM run_calls WHERE run_id = ? AND key = ?"
)

// callFile loads a run's called file by key.
func callFile(tx querier, runID int64, key string) (*CallFile, error) {
	cf := &CallFile{}
	err := tx.QueryRowContext(context.Background(), sqlCallFile, runID, key).
		Scan(&cf.Repo, &cf.SHA, &cf.Path, &cf.Content, &cf.Err)
	if errors.Is(err, sql.ErrNoRows) {
		return &CallFile{Err: "the called workflow was not read when the run was made"}, nil
	}
	return cf, err
}

// localKey is a job's id in its own workflow: the last part of its key.
func localKey(baseKey string) string {
	if i := strings.LastIndexByte(baseKey, '/'); i >= 0 {
		return baseKey[i+1:]
	}
	return baseKey
}

// planFor is the plan a job of the run is activated with: the run's, or
// for a job of a called workflow, that workflow's with the call's inputs.
func (s *Store) planFor(tx *sql.Tx, top *runPlan, j *Job) (*runPlan, error) {
	if j.CallID == 0 {
		return top, nil
	}
	if p := top.subs[j.CallID]; p != nil {
		return p, nil
	}
	caller, err := jobByID(context.Background(), tx, j.CallID)
	if err != nil {
		return nil, err
	}
	spec, err := decodeCall(caller)
	if err != nil {
		return nil, err
	}
	cf, err := callFile(tx, j.RunID, spec.Key)
	if err != nil {
		return nil, err
	}
	sub := &runPlan{run: top.run, repo: top.repo, file: path.Base(spec.Path), inputs: spec.Inputs, call: spec,
		container: spec.Repo + "@" + spec.SHA, subs: top.subs, chain: spec.Chain}
	if cf.Err != "" {
		sub.perr = errors.New(cf.Err)
	} else {
		sub.wf, sub.perr = workflow.Parse(sub.file, cf.Content)
	}
	top.subs[j.CallID] = sub
	return sub, nil
}

// startCalls makes the calls of a calling job's rows (one per matrix leg):
// each evaluates its with and secrets, checks them against the called
// workflow, and, once its concurrency group admits it, becomes the called
// jobs. A call that cannot be made fails its row with why. It returns how
// many jobs it completed.
func (s *Store) startCalls(tx *sql.Tx, plan *runPlan, wj *workflow.Job, plans []*legPlan, ids []int64, maxParallel int, now int64) (int, error) {
	changed, made := 0, 0
	for i, lp := range plans {
		row, err := jobByID(context.Background(), tx, ids[i])
		if err != nil {
			return changed, err
		}
		// Beyond max-parallel a leg's call is made but holds its jobs
		// until a leg ends (releaseCalls).
		hold := maxParallel > 0 && made >= maxParallel
		n, err := s.startCall(tx, plan, wj, lp, row, hold, now)
		changed += n
		if err != nil {
			return changed, err
		}
		var call string
		if err := tx.QueryRow("SELECT call FROM jobs WHERE id = ?", row.ID).Scan(&call); err != nil {
			return changed, err
		}
		if call != "" {
			made++
		}
	}
	return changed, nil
}

// releaseCalls starts the calls of a matrix of calls that max-parallel
// held, as its legs end.
func (s *Store) releaseCalls(tx *sql.Tx, j *Job, now int64) error {
	var busy int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM jobs WHERE run_id = ? AND base_key = ? AND status = 'queued' AND call != ''
		AND waiting != 'max-parallel'`, j.RunID, j.BaseKey).Scan(&busy); err != nil {
		return err
	}
	free := j.MaxParallel - busy
	if free <= 0 {
		return nil
	}
	rows, err := tx.Query("SELECT "+jobCols+" WHERE run_id = ? AND base_key = ? AND status = 'queued' AND waiting = 'max-parallel' ORDER BY id LIMIT ?",
		j.RunID, j.BaseKey, free)
	held, err := ScanAll(rows, err, scanJob)
	if err != nil {
		return err
	}
	var repoID int64
	if err := tx.QueryRow("SELECT repo_id FROM runs WHERE id = ?", j.RunID).Scan(&repoID); err != nil {
		return err
	}
	for _, h := range held {
		if _, err := tx.Exec("UPDATE jobs SET waiting = '' WHERE id = ?", h.ID); err != nil {
			return err
		}
		if h.ConcurrencyGroup != "" {
			admitted, err := s.enterGroup(tx, repoID, h.RunID, h.ID, h.ConcurrencyGroup, false, now)
			if err != nil {
				return err
			}
			if !admitted {
				if _, err := tx.Exec("UPDATE jobs SET waiting = 'concurrency' WHERE id = ?", h.ID); err != nil {
					return err
				}
				continue
			}
		}
		if err := s.admitCall(tx, h.ID, now); err != nil {
			return err
		}
	}
	return nil
}

// startCall makes one calling row's call (startCalls); with hold, its
// jobs wait for max-parallel.
func (s *Store) startCall(tx *sql.Tx, plan *runPlan, wj *workflow.Job, lp *legPlan, row *Job, hold bool, now int64) (int, error) {
	why := lp.failure
	var spec *callSpec
	var wf2 *workflow.Workflow
	var err error
	if why == "" {
		spec, wf2, why, err = s.makeCall(tx, plan, wj, lp, row)
		if err != nil {
			return 0, err
		}
	}
	if why == callPending { // a file for serve to fetch first (FetchPendingCalls)
		_, err := tx.Exec("UPDATE jobs SET waiting = 'fetch', ready = 0 WHERE id = ?", row.ID)
		return 0, err
	}
	if why != "" {
		return s.failQueued(tx, row, why, now)
	}
	if _, err := tx.Exec("UPDATE jobs SET call = ?, ready = 0 WHERE id = ?", jsonText(spec), row.ID); err != nil {
		return 0, err
	}
	if hold {
		_, err := tx.Exec("UPDATE jobs SET waiting = 'max-parallel' WHERE id = ?", row.ID)
		return 0, err
	}
	if lp.group != "" {
		admitted, err := s.enterGroup(tx, plan.repo.ID, row.RunID, row.ID, lp.group, lp.cancelInProgress, now)
		if err != nil {
			return 0, err
		}
		if !admitted {
			_, err := tx.Exec("UPDATE jobs SET waiting = 'concurrency' WHERE id = ?", row.ID)
			return 0, err
		}
	}
	return s.expandCall(tx, row, spec, wf2, now)
}

// callPending marks, in run_calls.error, a file of --actions-url that the
// process which made the run could not fetch (a post-receive hook knows no
// --actions-url): serve fetches it (FetchPendingCalls) and makes the call.
const callPending = "(pending fetch)"

// FetchPendingCalls fetches, for serve, the called files of runs made by
// a process without --actions-url, and makes the calls that waited for
// them. It returns how many it fetched.
func (s *Store) FetchPendingCalls(ctx context.Context) (int, error) {
	if s.fetchWorkflow == nil {
		return 0, nil
	}
	rows, err := s.db.QueryContext(ctx, sqlPendingCalls)
	type pending struct {
		runID           int64
		key             string
		repo, ref, path string
	}
	var list []pending
	if err == nil {
		for rows.Next() {
			var p pending
			if err = rows.Scan(&p.runID, &p.key, &p.repo, &p.ref, &p.path); err != nil {
				break
			}
			list = append(list, p)
		}
		rows.Close()
	}
	if err != nil {
		return 0, err
	}
	for _, p := range list {
		run, err := s.RunByID(ctx, p.runID)
		if err != nil {
			return 0, err
		}
		repo, err := s.RepoByID(ctx, run.RepoID)
		if err != nil {
			return 0, err
		}
		// The file and what it calls, outside any transaction, as
		// ResolveCalls does for a run it makes.
		sp := &RunSpec{RepoID: run.RepoID, HeadSHA: run.HeadSHA, Event: run.Event, Payload: run.EventPayload, File: run.WorkflowFile,
			Workflow: &workflow.Workflow{Jobs: []*workflow.Job{{Key: "fetch", Uses: p.repo + "/" + p.path + "@" + p.ref}}}}
		if err := s.ResolveCalls(ctx, sp); err != nil {
			return 0, err
		}
		err = s.WithTx(ctx, func(tx *sql.Tx) error {
			now := s.NowMS()
			for k, cf := range sp.Calls {
				if k == callKey(repo.FullName()+"@"+run.HeadSHA, p.repo+"/"+p.path+"@"+p.ref) {
					k = p.key // the same uses, written elsewhere
				}
				if _, err := tx.Exec(`INSERT INTO run_calls (run_id, key, repo, sha, path, content, error) VALUES (?, ?, ?, ?, ?, ?, ?)
					ON CONFLICT (run_id, key) DO UPDATE SET repo = excluded.repo, sha = excluded.sha, path = excluded.path,
					content = excluded.content, error = excluded.error WHERE run_calls.error = ?`,
					p.runID, k, cf.Repo, cf.SHA, cf.Path, cf.Content, cf.Err, callPending); err != nil {
					return err
				}
			}
			return s.resumeCalls(tx, p.runID, now)
		})
		if err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// sqlPendingCalls lists the files serve has to fetch (FetchPendingCalls).
const sqlPendingCalls = "SELECT run_id, key, repo, sha, path FROM run_calls WHERE error = '" + callPending + "' ORDER BY run_id LIMIT 20"

// resumeCalls makes the calls of a run that waited for a fetch.
func (s *Store) resumeCalls(tx *sql.Tx, runID int64, now int64) error {
	rows, err := tx.Query("SELECT "+jobCols+" WHERE run_id = ? AND status = 'queued' AND waiting = 'fetch' ORDER BY id", runID)
	waiting, err := ScanAll(rows, err, scanJob)
	if err != nil || len(waiting) == 0 {
		return err
	}
	top, err := s.loadPlan(tx, runID)
	if err != nil {
		return err
	}
	for _, row := range waiting {
		plan, err := s.planFor(tx, top, row)
		if err != nil {
			return err
		}
		wj := plan.job(localKey(row.BaseKey))
		if wj == nil {
			if _, err := s.failQueued(tx, row, "the workflow no longer has job "+localKey(row.BaseKey), now); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.Exec("UPDATE jobs SET waiting = '' WHERE id = ?", row.ID); err != nil {
			return err
		}
		lp := &legPlan{name: row.Name, contexts: row.Contexts, group: row.ConcurrencyGroup}
		if _, err := s.startCall(tx, plan, wj, lp, row, false, now); err != nil {
			return err
		}
	}
	if _, err := s.advance(tx, runID, now); err != nil {
		return err
	}
	_, _, err = s.rollup(tx, runID, now)
	return err
}

// makeCall evaluates a calling row's call. why is the caller's problem
// (`file:line:col: ...`), err the server's.
func (s *Store) makeCall(tx *sql.Tx, plan *runPlan, wj *workflow.Job, lp *legPlan, row *Job) (spec *callSpec, wf2 *workflow.Workflow, why string, err error) {
	key := callKey(plan.container, wj.Uses)
	cf, err := callFile(tx, plan.run.ID, key)
	if err != nil {
		return nil, nil, "", err
	}
	depth := 1
	if plan.call != nil {
		depth = plan.call.Depth + 1
	}
	if cf.Err == "" && depth > workflow.MaxCallDepth {
		cf.Err = fmt.Sprintf("%s is nested too deep: a run may have the top-level workflow and %d levels of called workflows", wj.Uses, workflow.MaxCallDepth)
	}
	id := fileID(cf.Repo, cf.SHA, cf.Path)
	if cf.Err == "" && slices.Contains(plan.chain, id) {
		cf.Err = fmt.Sprintf("%s calls itself: %s -> %s", wj.Uses, strings.Join(chainNames(plan.chain), " -> "), path.Base(cf.Path))
	}
	if cf.Err == callPending {
		return nil, nil, callPending, nil
	}
	if cf.Err != "" {
		return nil, nil, plan.where(wj, "uses") + ": " + cf.Err, nil
	}
	if wf2, err = workflow.Parse(path.Base(cf.Path), cf.Content); err != nil {
		return nil, nil, plan.where(wj, "uses") + ": " + err.Error(), nil
	}
	var count int
	if err := tx.QueryRow("SELECT COUNT(*) FROM jobs WHERE run_id = ?", row.RunID).Scan(&count); err != nil {
		return nil, nil, "", err
	}
	if count+len(wf2.Jobs) > MaxRunJobs {
		return nil, nil, fmt.Sprintf("%s: the call would make the run %d jobs; a run may have at most %d", plan.where(wj, "uses"), count+len(wf2.Jobs), MaxRunJobs), nil
	}
	ev := &expr.Env{Contexts: lp.contexts}
	with := map[string]any{}
	for _, name := range workflow.SortedNames(wj.With) {
		raw := wj.With[name]
		if !strings.Contains(raw, "${{") {
			with[name] = workflow.TaggedValue(raw, wj.WithTags[name])
			continue
		}
		v, err := expr.EvalValue(raw, ev)
		if err != nil {
			return nil, nil, fmt.Sprintf("%s: %v", plan.where(wj, "with."+name), err), nil
		}
		with[name] = expr.Normalize(v)
	}
	inputs, err := wf2.Call.CallInputs(with, func(raw string) (any, error) {
		v, err := expr.EvalValue(raw, &expr.Env{Contexts: map[string]any{"github": lp.contexts["github"], "inputs": map[string]any{}, "vars": map[string]any{}}})
		return expr.Normalize(v), err
	})
	if err == nil && !wj.SecretsInherit {
		err = wf2.Call.CheckSecrets(workflow.SortedNames(wj.Secrets))
	}
	var ce *workflow.CallError
	if errors.As(err, &ce) {
		key := ce.Key
		if wj.Pos[key] == "" {
			key = "uses" // secrets missing altogether
		}
		return nil, nil, fmt.Sprintf("%s: %s (%s)", plan.where(wj, key), ce.Msg, wj.Uses), nil
	}
	if err != nil {
		return nil, nil, "", err
	}
	secrets := map[string]string{}
	for k, v := range wj.Secrets {
		secrets[strings.ToUpper(k)] = v
	}
	return &callSpec{Key: key, Uses: wj.Uses, Name: lp.name, Prefix: row.JobKey, Depth: depth, Inputs: inputs,
		Inherit: wj.SecretsInherit, Secrets: secrets, Repo: cf.Repo, SHA: cf.SHA, Path: cf.Path,
		Chain: append(slices.Clone(plan.chain), id)}, wf2, "", nil
}

// expandCall inserts the called workflow's jobs as queued rows of the
// run, and activates the ones that need nothing.
func (s *Store) expandCall(tx *sql.Tx, row *Job, spec *callSpec, wf2 *workflow.Workflow, now int64) (int, error) {
	for _, wj := range wf2.Jobs {
		needs := make([]string, len(wj.Needs))
		for i, n := range wj.Needs {
			needs[i] = spec.Prefix + "/" + n
		}
		if err := insertJobRow(tx, row.RunID, spec.Prefix+"/"+wj.Key, spec.Name+" / "+wj.Name, wj, needs, row.ID, now); err != nil {
			return 0, err
		}
	}
	_, err := tx.Exec("UPDATE jobs SET waiting = '' WHERE id = ?", row.ID)
	return 0, err
}

// insertJobRow inserts a workflow job's queued row with its steps.
func insertJobRow(tx *sql.Tx, runID int64, key, name string, wj *workflow.Job, needs []string, callID, now int64) error {
	res, err := tx.Exec(`INSERT INTO jobs (run_id, job_key, base_key, name, runs_on, image, needs, env, timeout_minutes, status, ready, created_at, call_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, '{}', ?, 'queued', 0, ?, ?)`,
		runID, key, key, name, jsonText(NonNil(wj.RunsOn)), wj.Image(), jsonText(NonNil(needs)), workflow.DefaultTimeoutMinutes, now,
		sql.NullInt64{Int64: callID, Valid: callID != 0})
	if err != nil {
		return err
	}
	jobID, err := res.LastInsertId()
	if err != nil {
		return err
	}
	if _, err := tx.Exec("INSERT INTO steps (job_id, number, kind, name, status) VALUES (?, 1, 'setup', 'Set up job', 'queued')", jobID); err != nil {
		return err
	}
	for i, st := range wj.Steps {
		if _, err := tx.Exec(`INSERT INTO steps (job_id, number, kind, name, run, uses, env, working_directory, status)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued')`,
			jobID, i+2, st.Kind(), st.Name, st.Run, st.Uses, jsonText(NonNilMap(st.Env)), st.WorkingDirectory); err != nil {
			return err
		}
	}
	return nil
}

// admitCall starts a call its concurrency group let in.
func (s *Store) admitCall(tx *sql.Tx, jobID int64, now int64) error {
	row, err := jobByID(context.Background(), tx, jobID)
	if err != nil || row.Status != protocol.StatusQueued {
		return err
	}
	spec, err := decodeCall(row)
	if err != nil {
		return err
	}
	cf, err := callFile(tx, row.RunID, spec.Key)
	if err != nil {
		return err
	}
	wf2, err := workflow.Parse(path.Base(cf.Path), cf.Content)
	if err != nil {
		_, err := s.failQueued(tx, row, err.Error(), now)
		return err
	}
	if _, err := s.expandCall(tx, row, spec, wf2, now); err != nil {
		return err
	}
	if _, err := s.advance(tx, row.RunID, now); err != nil {
		return err
	}
	_, _, err = s.rollup(tx, row.RunID, now)
	return err
}

// endCall completes a calling row once every job of its call has: its
// conclusion folds theirs (as needs folds a matrix), its outputs are the
// called workflow's, evaluated from the jobs' outputs.
func (s *Store) endCall(tx *sql.Tx, callID int64, now int64) error {
	rows, err := tx.Query(sqlCallJobs, callID)
	kids, err := ScanAll(rows, err, scanJob)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(kids, func(k *Job) bool { return k.Status != protocol.StatusCompleted }) {
		return nil
	}
	caller, err := jobByID(context.Background(), tx, callID)
	if err != nil || caller.Status == protocol.StatusCompleted {
		return err
	}
	spec, err := decodeCall(caller)
	if err != nil {
		return err
	}
	byKey := map[string][]*Job{}
	for _, k := range kids {
		byKey[localKey(k.BaseKey)] = append(byKey[localKey(k.BaseKey)], k)
	}
	fake := &Job{Needs: workflow.SortedNames(byKey)}
	jobsCtx, status := needsContext(fake, byKey, false)
	conclusion := status
	outputs := map[string]string{}
	if cf, err := callFile(tx, caller.RunID, spec.Key); err == nil && cf.Err == "" {
		if wf2, err := workflow.Parse(path.Base(cf.Path), cf.Content); err == nil {
			ev := &expr.Env{Contexts: map[string]any{"jobs": jobsCtx, "inputs": spec.Inputs, "github": caller.Contexts["github"],
				"vars": map[string]any{}}}
			for _, o := range wf2.Call.Outputs {
				v, err := expr.Interpolate(o.Value, ev)
				if err != nil {
					if err := serverLog(tx, caller.ID, fmt.Sprintf("##[warning]output %s of %s: %v\n", o.Name, spec.Uses, err)); err != nil {
						return err
					}
					continue
				}
				outputs[o.Name] = v
			}
		}
	}
	if len(kids) == 0 {
		conclusion = protocol.ConclusionSuccess
	}
	if _, err := tx.Exec("UPDATE jobs SET outputs = ?, started_at = COALESCE(started_at, ?) WHERE id = ?", jsonText(outputs),
		msOrNull(earliestStart(kids)), callID); err != nil {
		return err
	}
	_, err = s.finishJob(tx, caller, conclusion, now)
	return err
}

func earliestStart(jobs []*Job) (t0 time.Time) {
	for _, j := range jobs {
		if !j.StartedAt.IsZero() && (t0.IsZero() || j.StartedAt.Before(t0)) {
			t0 = j.StartedAt
		}
	}
	return t0
}

// cancelCall cancels what is left of a call whose row ended early
// (cancelled, or a sibling leg failed fast): its queued jobs end, its
// running ones are asked to stop.
func (s *Store) cancelCall(tx *sql.Tx, callID int64, now int64) error {
	rows, err := tx.Query(sqlCallOpenJobs, callID)
	kids, err := ScanAll(rows, err, scanJob)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if k.Status == protocol.StatusRunning {
			if _, err := tx.Exec("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", k.ID); err != nil {
				return err
			}
			continue
		}
		if _, err := s.finishJob(tx, k, protocol.ConclusionCancelled, now); err != nil {
			return err
		}
	}
	return nil
}

// jobWorkflow is the workflow file a job is written in: the run's, or for
// a job of a called workflow, the called file; with the job's id there.
func (s *Store) jobWorkflow(ctx context.Context, q querier, j *Job, runFile string, runContent []byte) (file string, content []byte, key string, err error) {
	if j.CallID == 0 {
		return runFile, runContent, j.BaseKey, nil
	}
	caller, err := jobByID(ctx, q, j.CallID)
	if err != nil {
		return "", nil, "", err
	}
	spec, err := decodeCall(caller)
	if err != nil {
		return "", nil, "", err
	}
	cf, err := callFile(q, j.RunID, spec.Key)
	if err != nil {
		return "", nil, "", err
	}
	return cf.Path, cf.Content, localKey(j.BaseKey), nil
}

// callPerms narrows a called job's token to what every calling job above
// it may have: `permissions` on a calling job can only narrow.
func (s *Store) callPerms(ctx context.Context, q querier, j *Job, perms TokenPerms, runFile string, runContent []byte) (TokenPerms, error) {
	for id := j.CallID; id != 0; {
		caller, err := jobByID(ctx, q, id)
		if err != nil {
			return perms, err
		}
		file, content, key, err := s.jobWorkflow(ctx, q, caller, runFile, runContent)
		if err != nil {
			return perms, err
		}
		perms = perms.narrow(workflowJobPerms(file, content, key))
		id = caller.CallID
	}
	return perms, nil
}

// narrow is the lower of two tokens' levels, scope by scope.
func (p TokenPerms) narrow(o TokenPerms) TokenPerms {
	low := func(a, b string) string {
		rank := map[string]int{"none": 0, "read": 1, "write": 2}
		if rank[a] <= rank[b] {
			return a
		}
		return b
	}
	return TokenPerms{low(p.Contents, o.Contents), low(p.Actions, o.Actions)}
}

// callSecrets is the secrets a job of the call callID may see: all the
// caller's with `secrets: inherit`, else only the ones the call names,
// valued by their expressions over the caller's. A secret the caller did
// not pass does not exist in the called workflow.
func (s *Store) callSecrets(ctx context.Context, q querier, repo *Repo, callID int64) (map[string]string, error) {
	caller, err := jobByID(ctx, q, callID)
	if err != nil {
		return nil, err
	}
	var parent map[string]string
	if caller.CallID == 0 {
		parent, err = s.OpenSecrets(ctx, q, repo, nil)
		if parent != nil {
			parent["GITHUB_TOKEN"] = callTokenRef
		}
	} else {
		parent, err = s.callSecrets(ctx, q, repo, caller.CallID)
	}
	if err != nil {
		return nil, err
	}
	spec, err := decodeCall(caller)
	if err != nil {
		return nil, err
	}
	if spec.Inherit {
		return parent, nil
	}
	ctxs := maps.Clone(caller.Contexts)
	if ctxs == nil {
		ctxs = map[string]any{}
	}
	ctxs["secrets"] = stringMapAny(parent)
	out := map[string]string{}
	for name, raw := range spec.Secrets {
		v, err := expr.Interpolate(raw, &expr.Env{Contexts: ctxs})
		if err != nil || v == "" {
			continue // an expression that fails passes nothing, never the raw text
		}
		out[name] = v
	}
	return out, nil
}

// callTokenRef stands for the caller's GITHUB_TOKEN in what a call
// passes (`token: ${{ secrets.GITHUB_TOKEN }}`, a common form): the calling
// job never runs and has no token of its own, so the called job's own
// token takes its place when the secrets are delivered.
const callTokenRef = "\x00GITHUB_TOKEN\x00"

// pickSecrets is the secrets a job references among the ones it may see.
func pickSecrets(view map[string]string, refs jobRefs) map[string]string {
	if refs.AllSecrets {
		return view
	}
	out := map[string]string{}
	for _, n := range refs.Secrets {
		if v, ok := view[strings.ToUpper(n)]; ok {
			out[strings.ToUpper(n)] = v
		}
	}
	return out
}

// hideCalls drops from a run's jobs the calling rows that became their
// called jobs: GitHub lists the called jobs ("caller / job"), not the
// call. A call that failed before it made jobs stays, with why in its log.
func hideCalls(jobs []*Job) []*Job {
	calls := map[int64]bool{}
	for _, j := range jobs {
		if j.CallID != 0 {
			calls[j.CallID] = true
		}
	}
	return slices.DeleteFunc(jobs, func(j *Job) bool { return calls[j.ID] })
}
