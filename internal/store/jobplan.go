// Job activation: when a job's needs are all done the server evaluates it
// (its `if`, its matrix, its values) and makes its rows claimable; plus the
// rules that act across rows: fail-fast, max-parallel and concurrency
// groups, and the contexts a claim carries.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"shithub-actions/internal/expr"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// runPlan is what activating a run's jobs needs, loaded once per call.
type runPlan struct {
	run  *Run
	repo *Repo
	wf   *workflow.Workflow
	perr error // why the stored workflow no longer parses

	// A called workflow's plan differs in these (planFor).
	file      string             // the workflow file's base name, for errors
	inputs    map[string]any     // the inputs context: the run's, or the call's
	call      *callSpec          // nil: the run's own workflow
	container string             // OWNER/REPO@SHA of the file: where its ./ calls resolve
	subs      map[int64]*runPlan // called workflows' plans by calling row, shared
	chain     []string           // fileID of the files from the run's to this one
}

func (s *Store) loadPlan(tx *sql.Tx, runID int64) (*runPlan, error) {
	ctx := context.Background()
	run, err := scanRun(tx.QueryRowContext(ctx, "SELECT "+RunCols+" WHERE r.id = ?", runID))
	if err != nil {
		return nil, err
	}
	repo, err := scanRepo(tx.QueryRowContext(ctx, "SELECT "+repoCols+" WHERE r.id = ?", run.RepoID))
	if err != nil {
		return nil, err
	}
	var content []byte
	if err := tx.QueryRow("SELECT workflow_content FROM runs WHERE id = ?", runID).Scan(&content); err != nil {
		return nil, err
	}
	p := &runPlan{run: run, repo: repo, file: path.Base(run.WorkflowFile), inputs: stringMapAny(run.Inputs),
		container: repo.FullName() + "@" + run.HeadSHA, subs: map[int64]*runPlan{},
		chain: []string{fileID(repo.FullName(), run.HeadSHA, run.WorkflowFile)}}
	p.wf, p.perr = workflow.Parse(p.file, content)
	return p, nil
}

func (p *runPlan) job(key string) *workflow.Job {
	if p.wf == nil {
		return nil
	}
	for _, j := range p.wf.Jobs {
		if j.Key == key {
			return j
		}
	}
	return nil
}

// where locates a job key's value for an error: "file:line:col: jobs.x.key".
func (p *runPlan) where(wj *workflow.Job, key string) string {
	loc := p.file
	if pos := wj.Pos[key]; pos != "" {
		loc += ":" + pos
	}
	return fmt.Sprintf("%s: jobs.%s.%s", loc, wj.Key, key)
}

// githubContext is the `github` context of a run's job ("Contexts
// reference", github context).
func (s *Store) githubContext(run *Run, repo *Repo, jobKey string) map[string]any {
	refType := ""
	switch {
	case strings.HasPrefix(run.HeadRef, "refs/heads/"):
		refType = "branch"
	case strings.HasPrefix(run.HeadRef, "refs/tags/"):
		refType = "tag"
	}
	event := run.EventPayload
	if event == nil {
		event = map[string]any{}
	}
	var baseRef, headRef string
	if pr, ok := event["pull_request"].(map[string]any); ok {
		if b, ok := pr["base"].(map[string]any); ok {
			baseRef, _ = b["ref"].(string)
		}
		if h, ok := pr["head"].(map[string]any); ok {
			headRef, _ = h["ref"].(string)
		}
	}
	server := s.serverURL
	api := ""
	if server != "" {
		api = server + "/api/v1"
	}
	return map[string]any{
		"event_name": run.Event, "event": event, "sha": run.HeadSHA, "ref": run.HeadRef,
		"ref_name": workflow.RefName(run.HeadRef), "ref_type": refType, "ref_protected": false,
		"base_ref": baseRef, "head_ref": headRef,
		"repository": repo.FullName(), "repository_owner": repo.Owner,
		"repositoryUrl": server + "/" + repo.FullName() + ".git",
		"actor":         run.Actor, "triggering_actor": run.Actor,
		"run_id": strconv.FormatInt(run.ID, 10), "run_number": strconv.FormatInt(run.RunIndex, 10),
		"run_attempt": strconv.FormatInt(run.RunAttempt, 10), "workflow": run.WorkflowName,
		"workflow_ref": repo.FullName() + "/" + run.WorkflowFile + "@" + run.HeadRef,
		"job":          jobKey, "server_url": server, "api_url": api, "workspace": protocol.Workspace,
		"action": "", "token": "", "retention_days": "90", "secret_source": "None",
	}
}

// jobResult is a finished row's result as `needs` reports it: a failure
// with continue-on-error is a success, as on GitHub; timed_out is failure.
func jobResult(j *Job) string {
	switch j.Conclusion {
	case protocol.ConclusionFailure, protocol.ConclusionTimedOut:
		if j.ContinueOnError {
			return protocol.ConclusionSuccess
		}
		return protocol.ConclusionFailure
	}
	return j.Conclusion
}

// needsDone reports whether every row of every job j needs is completed.
func needsDone(j *Job, byBase map[string][]*Job) bool {
	for _, n := range j.Needs {
		rows := byBase[n]
		if len(rows) == 0 {
			return false
		}
		for _, o := range rows {
			if o.Status != protocol.StatusCompleted {
				return false
			}
		}
	}
	return true
}

// needsContext builds `needs` for j and the status its `if` sees: failure
// when a need failed, cancelled when one was (or the run is), skipped when
// one was skipped, else success. A matrix job's result folds its legs; its
// outputs are the legs' merged, the last leg to finish winning.
func needsContext(j *Job, byBase map[string][]*Job, runCancelled bool) (map[string]any, string) {
	out := map[string]any{}
	var results []string
	for _, n := range j.Needs {
		rows := slices.Clone(byBase[n])
		slices.SortStableFunc(rows, func(a, b *Job) int {
			return a.CompletedAt.Compare(b.CompletedAt)
		})
		outputs := map[string]any{}
		var rs []string
		for _, o := range rows {
			rs = append(rs, jobResult(o))
			for k, v := range o.Outputs {
				outputs[k] = v
			}
		}
		res := protocol.ConclusionSuccess
		switch {
		case slices.Contains(rs, protocol.ConclusionFailure):
			res = protocol.ConclusionFailure
		case slices.Contains(rs, protocol.ConclusionCancelled):
			res = protocol.ConclusionCancelled
		case len(rs) > 0 && !slices.ContainsFunc(rs, func(r string) bool { return r != protocol.ConclusionSkipped }):
			res = protocol.ConclusionSkipped
		}
		results = append(results, res)
		out[localKey(n)] = map[string]any{"result": res, "outputs": outputs}
	}
	status := protocol.ConclusionSuccess
	switch {
	case runCancelled || slices.Contains(results, protocol.ConclusionCancelled):
		status = protocol.ConclusionCancelled
	case slices.Contains(results, protocol.ConclusionFailure):
		status = protocol.ConclusionFailure
	case slices.Contains(results, protocol.ConclusionSkipped):
		status = protocol.ConclusionSkipped
	}
	return out, status
}

// advance activates every queued job of a run whose needs are done, until
// none is left; a job skipped or failed on activation may free others. It
// returns how many jobs it completed. A run waiting for its concurrency
// group activates nothing.
func (s *Store) advance(tx *sql.Tx, runID int64, now int64) (int, error) {
	var plan *runPlan
	changed := 0
	for {
		var pending bool
		if err := tx.QueryRow("SELECT pending FROM runs WHERE id = ?", runID).Scan(&pending); err != nil {
			return changed, err
		}
		if pending {
			return changed, nil
		}
		jobs, err := runJobs(context.Background(), tx, runID)
		if err != nil {
			return changed, err
		}
		byBase := map[string][]*Job{}
		for _, j := range jobs {
			byBase[j.BaseKey] = append(byBase[j.BaseKey], j)
		}
		i := slices.IndexFunc(jobs, func(j *Job) bool {
			return j.Status == protocol.StatusQueued && !j.Activated && needsDone(j, byBase)
		})
		if i < 0 {
			return changed, nil
		}
		if plan == nil {
			if plan, err = s.loadPlan(tx, runID); err != nil {
				return changed, err
			}
		}
		jp, err := s.planFor(tx, plan, jobs[i])
		if err != nil {
			return changed, err
		}
		n, err := s.activate(tx, jp, byBase, jobs[i], now)
		if err != nil {
			return changed, err
		}
		changed += n
	}
}

// leg is one row a job becomes on activation.
type legPlan struct {
	key, name        string
	runsOn           []string
	env              map[string]string
	contexts         map[string]any
	container        *workflow.ContainerSpec
	services         map[string]*workflow.ContainerSpec
	environment      *workflow.Environment
	timeout          int
	continueOnError  bool
	group            string
	cancelInProgress bool
	failure          string // why evaluating the leg failed
}

// activate evaluates job j, whose needs are done: a false `if` skips it; a
// matrix turns it into legs (the row becomes leg 1); every leg's values are
// evaluated and the legs made claimable as max-parallel and concurrency
// allow. It returns how many jobs it completed.
func (s *Store) activate(tx *sql.Tx, plan *runPlan, byBase map[string][]*Job, j *Job, now int64) (int, error) {
	wj := plan.job(localKey(j.BaseKey))
	if wj == nil {
		why := fmt.Sprintf("the workflow no longer has job %q", j.BaseKey)
		if plan.perr != nil {
			why = fmt.Sprintf("invalid workflow file: %v", plan.perr)
		}
		return s.failQueued(tx, j, why, now)
	}
	needs, status := needsContext(j, byBase, plan.run.Cancelled)
	base := map[string]any{
		"github":  s.githubContext(plan.run, plan.repo, wj.Key),
		"inputs":  plan.inputs,
		"vars":    map[string]any{},
		"secrets": map[string]any{},
		"needs":   needs,
	}
	ok, err := expr.Condition(wj.If, &expr.Env{Contexts: base, JobStatus: status})
	if err != nil {
		return s.failQueued(tx, j, fmt.Sprintf("%s: %v", plan.where(wj, "if"), err), now)
	}
	if !ok {
		return s.skipQueued(tx, j, now)
	}

	// The matrix and the strategy.
	env := &expr.Env{Contexts: base}
	legs := []workflow.MatrixLeg{{}}
	failFast, maxParallel := true, 0
	if st := wj.Strategy; st != nil {
		if st.Matrix != nil {
			if legs, err = workflow.EvalMatrix(st.Matrix, env); err != nil {
				return s.failQueued(tx, j, fmt.Sprintf("%s: %v", plan.where(wj, "strategy"), err), now)
			}
		}
		if st.FailFast != "" {
			v, err := expr.EvalValue(st.FailFast, env)
			if err != nil {
				return s.failQueued(tx, j, fmt.Sprintf("%s: fail-fast: %v", plan.where(wj, "strategy"), err), now)
			}
			failFast = expr.Truthy(exprBoolish(v))
		}
		if st.MaxParallel != "" {
			n, err := evalNumber(st.MaxParallel, env)
			if err != nil || n < 1 {
				if err == nil {
					err = fmt.Errorf("must be a positive number")
				}
				return s.failQueued(tx, j, fmt.Sprintf("%s: max-parallel: %v", plan.where(wj, "strategy"), err), now)
			}
			maxParallel = int(n)
		}
	}
	isMatrix := wj.Strategy != nil && wj.Strategy.Matrix != nil

	plans := make([]*legPlan, len(legs))
	for i, leg := range legs {
		lp := &legPlan{key: j.BaseKey, name: wj.Name}
		if isMatrix {
			lp.key = fmt.Sprintf("%s#%d", j.BaseKey, i+1)
		}
		mp := maxParallel
		if mp == 0 {
			mp = len(legs)
		}
		ctxs := map[string]any{}
		for k, v := range base {
			ctxs[k] = v
		}
		ctxs["matrix"] = workflow.MatrixContext(leg)
		ctxs["strategy"] = map[string]any{"fail-fast": failFast, "job-index": float64(i), "job-total": float64(len(legs)), "max-parallel": float64(mp)}
		s.evalLeg(plan, wj, lp, ctxs, isMatrix, leg)
		if plan.call != nil {
			lp.name = plan.call.Name + " / " + lp.name
		}
		plans[i] = lp
	}

	// Rows: the job's own row becomes the first leg; the others are copies
	// with their own steps.
	ids := make([]int64, len(plans))
	for i, lp := range plans {
		cols := []any{lp.key, lp.name, jsonText(NonNil(lp.runsOn)), lp.containerImage(), jsonText(NonNilMap(lp.env)),
			lp.timeout, legIndex(isMatrix, i), lp.group, lp.continueOnError, failFast && isMatrix, maxParallel,
			jsonText(lp.contexts), jsonText(lp.container), jsonText(nonNilServices(lp.services)), jsonText(lp.environment)}
		if i == 0 {
			if err := mustAffectOne(tx.Exec(`UPDATE jobs SET job_key = ?, name = ?, runs_on = ?, image = ?, env = ?,
				timeout_minutes = ?, leg = ?, concurrency_group = ?, continue_on_error = ?, fail_fast = ?, max_parallel = ?,
				contexts = ?, container = ?, services = ?, environment = ?, activated = 1 WHERE id = ? AND status = 'queued'`,
				append(cols, j.ID)...)); err != nil {
				return 0, err
			}
			ids[0] = j.ID
			continue
		}
		res, err := tx.Exec(`INSERT INTO jobs (job_key, name, runs_on, image, env, timeout_minutes, leg, concurrency_group,
			continue_on_error, fail_fast, max_parallel, contexts, container, services, environment, activated,
			run_id, base_key, needs, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, 'queued', ?)`,
			append(cols, j.RunID, j.BaseKey, jsonText(NonNil(j.Needs)), now)...)
		if err != nil {
			return 0, err
		}
		if ids[i], err = res.LastInsertId(); err != nil {
			return 0, err
		}
		if j.CallID != 0 {
			if _, err := tx.Exec("UPDATE jobs SET call_id = ? WHERE id = ?", j.CallID, ids[i]); err != nil {
				return 0, err
			}
		}
		if _, err := tx.Exec(`INSERT INTO steps (job_id, number, kind, name, run, uses, env, working_directory, status)
			SELECT ?, number, kind, name, run, uses, env, working_directory, 'queued' FROM steps WHERE job_id = ? ORDER BY number`,
			ids[i], j.ID); err != nil {
			return 0, err
		}
	}

	if wj.Uses != "" {
		return s.startCalls(tx, plan, wj, plans, ids, maxParallel, now)
	}

	// Step names that are expressions, shown evaluated as on GitHub.
	for i, lp := range plans {
		if lp.failure != "" {
			continue
		}
		ev := &expr.Env{Contexts: lp.contexts}
		for n := range wj.Steps {
			st := &wj.Steps[n]
			name := evalStepName(st, ev)
			if name == st.Name {
				continue
			}
			if _, err := tx.Exec("UPDATE steps SET name = ? WHERE job_id = ? AND number = ?", name, ids[i], n+2); err != nil {
				return 0, err
			}
		}
	}

	changed := 0
	claimable := 0
	for i, lp := range plans {
		row, err := jobByID(context.Background(), tx, ids[i])
		if err != nil {
			return changed, err
		}
		if lp.failure != "" {
			n, err := s.failQueued(tx, row, lp.failure, now)
			if err != nil {
				return changed, err
			}
			changed += n
			continue
		}
		waiting := ""
		if maxParallel > 0 && claimable >= maxParallel {
			waiting = "max-parallel"
		}
		if lp.group != "" {
			admitted, err := s.enterGroup(tx, plan.repo.ID, j.RunID, row.ID, lp.group, lp.cancelInProgress, now)
			if err != nil {
				return changed, err
			}
			if !admitted {
				waiting = "concurrency"
			}
		}
		if waiting == "" {
			claimable++
		}
		if _, err := tx.Exec("UPDATE jobs SET waiting = ?, ready = ? WHERE id = ?", waiting, waiting == "", row.ID); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

func legIndex(isMatrix bool, i int) int {
	if isMatrix {
		return i + 1
	}
	return 0
}

func (lp *legPlan) containerImage() string {
	if lp.container == nil {
		return ""
	}
	return lp.container.Image
}

func nonNilServices(m map[string]*workflow.ContainerSpec) map[string]*workflow.ContainerSpec {
	if m == nil {
		return map[string]*workflow.ContainerSpec{}
	}
	return m
}

// evalLeg evaluates a leg's values; the first failure is kept in lp.failure
// and fails the leg, never the server.
func (s *Store) evalLeg(plan *runPlan, wj *workflow.Job, lp *legPlan, ctxs map[string]any, isMatrix bool, leg workflow.MatrixLeg) {
	fail := func(key string, err error) {
		if lp.failure == "" {
			lp.failure = fmt.Sprintf("%s: %v", plan.where(wj, key), err)
		}
	}
	// env: the workflow's (github, secrets, inputs, vars), then the job's.
	env := map[string]string{}
	wfEnv := &expr.Env{Contexts: map[string]any{"github": ctxs["github"], "secrets": ctxs["secrets"], "inputs": ctxs["inputs"], "vars": ctxs["vars"]}}
	if err := evalEnvInto(env, plan.wf.Env, wfEnv); err != nil {
		lp.failure = fmt.Sprintf("%s: env: %v", plan.file, err)
	}
	ev := &expr.Env{Contexts: ctxs}
	if err := evalEnvInto(env, wj.Env, ev); err != nil {
		fail("env", err)
	}
	lp.env = env
	ctxs["env"] = stringMapAny(env)
	lp.contexts = ctxs

	str := func(key, raw string) string {
		v, err := expr.Interpolate(raw, ev)
		if err != nil {
			fail(key, err)
		}
		return v
	}
	lp.name = str("name", wj.Name)
	if isMatrix && !strings.Contains(wj.Name, "${{") {
		lp.name = leg.Name(lp.name)
	}
	for _, l := range wj.RunsOn {
		v, err := expr.EvalValue(l, ev)
		if err != nil {
			fail("runs-on", err)
			continue
		}
		if arr, ok := expr.Array(v); ok {
			for _, a := range arr {
				if s := expr.String(a); s != "" {
					lp.runsOn = append(lp.runsOn, s)
				}
			}
		} else if s := expr.String(v); s != "" {
			lp.runsOn = append(lp.runsOn, s)
		}
	}
	lp.timeout = workflow.DefaultTimeoutMinutes
	if wj.TimeoutMinutes != "" {
		n, err := evalNumber(wj.TimeoutMinutes, ev)
		if err == nil && (n < 1 || n > workflow.MaxTimeoutMinutes) {
			err = fmt.Errorf("must be a number from 1 to %d, not %v", workflow.MaxTimeoutMinutes, n)
		}
		if err != nil {
			fail("timeout-minutes", err)
		} else {
			lp.timeout = int(math.Ceil(n))
		}
	}
	if wj.ContinueOnError != "" {
		v, err := expr.EvalValue(wj.ContinueOnError, ev)
		if err != nil {
			fail("continue-on-error", err)
		}
		lp.continueOnError = expr.Truthy(exprBoolish(v))
	}
	if wj.Container != nil {
		c, err := evalContainer(wj.Container, ev)
		if err != nil {
			fail("container", err)
		}
		lp.container = c
	}
	for _, svc := range wj.Services {
		c, err := evalContainer(&svc.ContainerSpec, ev)
		if err != nil {
			fail("services", err)
			continue
		}
		if c != nil { // a service whose image is empty is not started, as on GitHub
			if lp.services == nil {
				lp.services = map[string]*workflow.ContainerSpec{}
			}
			lp.services[svc.ID] = c
		}
	}
	if wj.Environment != nil {
		lp.environment = &workflow.Environment{Name: str("environment", wj.Environment.Name), URL: wj.Environment.URL}
		// The url may read steps: it is evaluated once the job ran; a url
		// that needs nothing but what is known now is shown at once.
		if u, err := expr.Interpolate(wj.Environment.URL, ev); err == nil && !strings.Contains(wj.Environment.URL, "steps.") {
			lp.environment.URL = u
		}
	}
	if c := wj.Concurrency; c != nil {
		lp.group = str("concurrency", c.Group)
		if c.CancelInProgress != "" {
			v, err := expr.EvalValue(c.CancelInProgress, ev)
			if err != nil {
				fail("concurrency", err)
			}
			lp.cancelInProgress = expr.Truthy(exprBoolish(v))
		}
	}
}

// stepRuntimeContext finds, in a step's name, a context known only when
// the step runs (or delivered with the claim): such a name stays as written.
var stepRuntimeContext = regexp.MustCompile(`\b(steps|job|runner|secrets|vars)\s*[.\[]`)

// evalStepName is a step's name as the run page shows it: a name the
// workflow gave, with its expressions evaluated in the job's contexts
// (github, inputs, matrix, strategy, needs, env). A default name (Run
// SCRIPT), a name reading a context the server does not know yet, or one
// whose evaluation fails, is shown as written.
func evalStepName(st *workflow.Step, ev *expr.Env) string {
	if !strings.Contains(st.Name, "${{") || stepRuntimeContext.MatchString(st.Name) {
		return st.Name
	}
	def := "Run " + st.Uses
	if st.Uses == "" {
		first, _, _ := strings.Cut(strings.TrimSpace(st.Run), "\n")
		def = "Run " + strings.TrimSpace(first)
	}
	if st.Name == def {
		return st.Name
	}
	v, err := expr.Interpolate(st.Name, ev)
	if err != nil || strings.TrimSpace(v) == "" {
		return st.Name
	}
	return v
}

// exprBoolish reads the text "false" as false, since `continue-on-error:
// false` reaches the evaluator as text when written plainly.
func exprBoolish(v any) any {
	if s, ok := v.(string); ok && strings.EqualFold(s, "false") {
		return false
	}
	return v
}

// evalNumber evaluates a raw number or expression to a number.
func evalNumber(raw string, env *expr.Env) (float64, error) {
	v, err := expr.EvalValue(raw, env)
	if err != nil {
		return 0, err
	}
	f := expr.ToNumber(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number", expr.String(v))
	}
	return f, nil
}

// evalEnvInto evaluates an env mapping into dst. The key "" holds an env
// written as one expression, which must give an object.
func evalEnvInto(dst map[string]string, src map[string]string, env *expr.Env) error {
	if raw, ok := src[""]; ok {
		v, err := expr.EvalValue(raw, env)
		if err != nil {
			return err
		}
		m, ok := expr.Normalize(v).(map[string]any)
		if !ok {
			return fmt.Errorf("env must evaluate to an object")
		}
		for k, x := range m {
			dst[k] = expr.String(x)
		}
	}
	for _, k := range SortedKeys(src) {
		if k == "" {
			continue
		}
		v, err := expr.Interpolate(src[k], env)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		dst[k] = v
	}
	return nil
}

func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// evalContainer evaluates a container or service; an empty image means
// none (nil), as on GitHub.
func evalContainer(c *workflow.ContainerSpec, env *expr.Env) (*workflow.ContainerSpec, error) {
	var errs []error
	str := func(raw string) string {
		v, err := expr.Interpolate(raw, env)
		errs = append(errs, err)
		return v
	}
	out := &workflow.ContainerSpec{Image: str(c.Image), Options: str(c.Options), Env: map[string]string{}, Ports: []string{}, Volumes: []string{}}
	errs = append(errs, evalEnvInto(out.Env, c.Env, env))
	for _, p := range c.Ports {
		out.Ports = append(out.Ports, str(p))
	}
	for _, v := range c.Volumes {
		out.Volumes = append(out.Volumes, str(v))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if out.Image == "" {
		return nil, nil
	}
	return out, nil
}

func stringMapAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---- ending queued jobs on the server's authority ----

// serverLog appends a line the server writes to a job's log: to the step
// that was running, or else the first one.
func serverLog(tx *sql.Tx, jobID int64, msg string) error {
	var stepID, seq int64
	err := tx.QueryRow(`SELECT s.id, COALESCE((SELECT MAX(seq) FROM log_chunks WHERE step_id = s.id), 0) + 1 FROM steps s
		WHERE s.job_id = ? ORDER BY s.status = 'running' DESC, s.number LIMIT 1`, jobID).Scan(&stepID, &seq)
	if err != nil {
		return err
	}
	if _, err := tx.Exec("INSERT INTO log_chunks (step_id, seq, data) VALUES (?, ?, ?)", stepID, seq, []byte(msg)); err != nil {
		return err
	}
	_, err = tx.Exec("UPDATE steps SET log_size = log_size + ? WHERE id = ?", len(msg), stepID)
	return err
}

// failQueued fails a queued job with the reason in its log: an expression
// that does not evaluate, a matrix that does not expand.
func (s *Store) failQueued(tx *sql.Tx, j *Job, why string, now int64) (int, error) {
	if err := serverLog(tx, j.ID, "##[error]"+why+"\n"); err != nil {
		return 0, err
	}
	if _, err := tx.Exec("UPDATE jobs SET activated = 1 WHERE id = ?", j.ID); err != nil {
		return 0, err
	}
	return s.finishJob(tx, j, protocol.ConclusionFailure, now)
}

// skipQueued concludes a queued job skipped (a false `if`).
func (s *Store) skipQueued(tx *sql.Tx, j *Job, now int64) (int, error) {
	if _, err := tx.Exec("UPDATE jobs SET activated = 1 WHERE id = ?", j.ID); err != nil {
		return 0, err
	}
	return s.finishJob(tx, j, protocol.ConclusionSkipped, now)
}

// ---- the rules across rows ----

// afterFinish applies what a finished job sets off among other rows:
// fail-fast cancels its sibling legs, max-parallel lets the next leg go,
// and its concurrency group admits the job or run waiting for it.
func (s *Store) afterFinish(tx *sql.Tx, j *Job, conclusion string, now int64) error {
	if j.Leg > 0 && j.FailFast && (conclusion == protocol.ConclusionFailure || conclusion == protocol.ConclusionTimedOut) && !j.ContinueOnError {
		rows, err := tx.Query("SELECT id, status FROM jobs WHERE run_id = ? AND base_key = ? AND id != ? AND status != 'completed'", j.RunID, j.BaseKey, j.ID)
		if err != nil {
			return err
		}
		type sib struct {
			id     int64
			status string
		}
		var sibs []sib
		for rows.Next() {
			var x sib
			if err := rows.Scan(&x.id, &x.status); err != nil {
				rows.Close()
				return err
			}
			sibs = append(sibs, x)
		}
		rows.Close()
		for _, x := range sibs {
			if x.status == protocol.StatusRunning {
				if _, err := tx.Exec("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", x.id); err != nil {
					return err
				}
				continue
			}
			o, err := jobByID(context.Background(), tx, x.id)
			if err != nil {
				return err
			}
			if _, err := s.finishJob(tx, o, protocol.ConclusionCancelled, now); err != nil {
				return err
			}
		}
	}
	if j.Leg > 0 && j.MaxParallel > 0 && j.Call != "" {
		if err := s.releaseCalls(tx, j, now); err != nil {
			return err
		}
	} else if j.Leg > 0 && j.MaxParallel > 0 {
		var busy int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM jobs WHERE run_id = ? AND base_key = ?
			AND (status = 'running' OR status = 'queued' AND ready = 1)`, j.RunID, j.BaseKey).Scan(&busy); err != nil {
			return err
		}
		if free := j.MaxParallel - busy; free > 0 {
			if _, err := tx.Exec(`UPDATE jobs SET ready = 1, waiting = '' WHERE id IN (SELECT id FROM jobs
				WHERE run_id = ? AND base_key = ? AND status = 'queued' AND waiting = 'max-parallel' ORDER BY id LIMIT ?)`,
				j.RunID, j.BaseKey, free); err != nil {
				return err
			}
		}
	}
	if j.ConcurrencyGroup != "" {
		var repoID int64
		if err := tx.QueryRow("SELECT repo_id FROM runs WHERE id = ?", j.RunID).Scan(&repoID); err != nil {
			return err
		}
		return s.admitNext(tx, repoID, j.ConcurrencyGroup, now)
	}
	return nil
}

// groupHolder is a run or job in a concurrency group, not completed.
type groupHolder struct {
	runID, jobID int64 // jobID 0: a whole run
	pending      bool
	running      bool
}

// groupHolders lists the holders of a repository's concurrency group,
// oldest first. Runs and jobs share the group names, as on GitHub.
func groupHolders(tx *sql.Tx, repoID int64, group string) ([]groupHolder, error) {
	var out []groupHolder
	rows, err := tx.Query(`SELECT id, pending FROM runs WHERE repo_id = ? AND concurrency_group = ? AND status != 'completed' ORDER BY id`, repoID, group)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		h := groupHolder{}
		if err := rows.Scan(&h.runID, &h.pending); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, h)
	}
	rows.Close()
	rows, err = tx.Query(`SELECT j.run_id, j.id, j.waiting = 'concurrency', j.status = 'running' FROM jobs j JOIN runs r ON r.id = j.run_id
		WHERE j.concurrency_group = ? AND j.status != 'completed' AND r.repo_id = ? ORDER BY j.id`, group, repoID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		h := groupHolder{}
		if err := rows.Scan(&h.runID, &h.jobID, &h.pending, &h.running); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// enterGroup applies GitHub's concurrency rule to a newcomer (a run when
// jobID is 0, else a job of runID): at most one running and one pending per
// group. An older pending holder is replaced (cancelled); with
// cancelInProgress the running ones are cancelled too. It reports whether
// the newcomer may start now.
func (s *Store) enterGroup(tx *sql.Tx, repoID, runID, jobID int64, group string, cancelInProgress bool, now int64) (bool, error) {
	holders, err := groupHolders(tx, repoID, group)
	if err != nil {
		return false, err
	}
	active := false
	for _, h := range holders {
		if h.jobID == jobID && h.runID == runID || jobID == 0 && h.runID == runID || jobID != 0 && h.jobID == 0 && h.runID == runID {
			continue // the newcomer itself, or its own run's group
		}
		if h.pending || cancelInProgress {
			if err := s.cancelHolder(tx, h, now); err != nil {
				return false, err
			}
			if h.pending {
				continue
			}
		}
		active = true
	}
	return !active, nil
}

// cancelHolder cancels a run or job that holds or waits for a group.
func (s *Store) cancelHolder(tx *sql.Tx, h groupHolder, now int64) error {
	if h.jobID == 0 {
		if _, err := tx.Exec("UPDATE runs SET cancelled = 1, pending = 0 WHERE id = ?", h.runID); err != nil {
			return err
		}
		if _, _, err := s.cancelInTx(tx, h.runID, 0, now); err != nil {
			return err
		}
	} else if _, _, err := s.cancelInTx(tx, h.runID, h.jobID, now); err != nil {
		return err
	}
	_, _, err := s.rollup(tx, h.runID, now)
	return err
}

// admitNext lets the oldest pending holder of a group start once no holder
// is active any more.
func (s *Store) admitNext(tx *sql.Tx, repoID int64, group string, now int64) error {
	holders, err := groupHolders(tx, repoID, group)
	if err != nil {
		return err
	}
	var next *groupHolder
	for i, h := range holders {
		if !h.pending {
			return nil // still held
		}
		if next == nil {
			next = &holders[i]
		}
	}
	if next == nil {
		return nil
	}
	if next.jobID != 0 {
		var call string
		if err := tx.QueryRow("SELECT call FROM jobs WHERE id = ?", next.jobID).Scan(&call); err != nil {
			return err
		}
		if call != "" { // a call: its jobs are made now
			return s.admitCall(tx, next.jobID, now)
		}
		_, err := tx.Exec("UPDATE jobs SET waiting = '', ready = 1 WHERE id = ? AND status = 'queued'", next.jobID)
		return err
	}
	if _, err := tx.Exec("UPDATE runs SET pending = 0 WHERE id = ?", next.runID); err != nil {
		return err
	}
	if _, err := s.advance(tx, next.runID, now); err != nil {
		return err
	}
	_, _, err = s.rollup(tx, next.runID, now)
	return err
}
