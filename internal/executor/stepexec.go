// Step semantics: which steps run (if and the status functions), what they
// see (contexts, env, shells, defaults), how they end (continue-on-error,
// timeout-minutes, outcome and conclusion), and the job's outputs. The
// rules are GitHub's runner's (actions/runner src/Runner.Worker/StepsRunner.cs
// and Handlers/ScriptHandler.cs).

package executor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"shithub-actions/internal/expr"
	"shithub-actions/internal/logtext"
	"shithub-actions/internal/protocol"
)

const (
	// containerRunnerTemp is runner.temp in the job's container: the
	// directory of step scripts and environment files. It is the job's own:
	// it lives in the job container and goes with it.
	containerRunnerTemp = "/tmp/_shithub/temp"
	// containerToolCache is runner.tool_cache.
	containerToolCache = "/opt/hostedtoolcache"
	// defaultCancelTimeout is how long the steps that run after a cancel or
	// a timeout (if: always() and the like) may take in all, as GitHub's
	// cancel-timeout-minutes default.
	defaultCancelTimeout = 5 * time.Minute
)

// jobState is what the steps of one job share: the job's status as the
// status functions see it, what environment files added, the steps context,
// saved state, and the values to mask. Only the job's goroutine touches it,
// except masks, which is safe for concurrent use.
type jobState struct {
	legacy    bool              // an old claim without contexts: nothing is evaluated
	status    string            // success, failure or cancelled
	contexts  map[string]any    // the claim's contexts plus job and runner
	addedEnv  map[string]string // $GITHUB_ENV from earlier steps
	prepend   []string          // $GITHUB_PATH, oldest first
	steps     map[string]any    // the steps context, by step id
	state     map[string]map[string]string
	masks     *logtext.MaskSet
	stepDebug bool
	// defaultShell is the path of bash in the job's container, or sh.
	defaultShell string
	// jobContainer tells that the job runs in its own container: image,
	// where GitHub's default shell is sh rather than bash.
	jobContainer bool
}

// initState prepares the job's state from its claim.
func (j *execJob) initState() {
	job := j.job
	st := &j.st
	st.legacy = job.Contexts == nil
	st.status = protocol.ConclusionSuccess
	st.addedEnv = map[string]string{}
	st.steps = map[string]any{}
	st.state = map[string]map[string]string{}
	st.masks = &logtext.MaskSet{}
	st.contexts = map[string]any{}
	for k, v := range job.Contexts {
		st.contexts[k] = v
	}
	if _, ok := st.contexts["env"]; !ok {
		env := map[string]any{}
		for k, v := range job.Env {
			env[k] = v
		}
		st.contexts["env"] = env
	}
	// Secrets and the token are masked from the first byte of the log.
	if secrets, ok := st.contexts["secrets"].(map[string]any); ok {
		for _, v := range secrets {
			if s, ok := v.(string); ok {
				st.masks.Add(s)
			}
		}
	}
	if gh, ok := st.contexts["github"].(map[string]any); ok {
		if tok, ok := gh["token"].(string); ok {
			st.masks.Add(tok)
		}
	}
	st.stepDebug = isTrue(lookupString(st.contexts, "secrets", "ACTIONS_STEP_DEBUG")) ||
		isTrue(lookupString(st.contexts, "vars", "ACTIONS_STEP_DEBUG")) ||
		isTrue(job.Env["ACTIONS_STEP_DEBUG"])
	st.jobContainer = job.Container != nil && job.Container.Image != "" || job.Image != ""
	runnerCtx := map[string]any{
		"os": "Linux", "arch": runnerArch(), "name": j.ex.cfg.Instance,
		"temp": containerRunnerTemp, "tool_cache": containerToolCache,
		"environment": "self-hosted",
	}
	if st.stepDebug {
		runnerCtx["debug"] = "1"
	}
	st.contexts["runner"] = runnerCtx
	st.contexts["job"] = map[string]any{"status": st.status, "services": map[string]any{}}
}

func isTrue(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "true") }

// lookupString is contexts[ctx][key] when it is a string.
func lookupString(contexts map[string]any, ctx, key string) string {
	m, _ := contexts[ctx].(map[string]any)
	s, _ := m[key].(string)
	return s
}

// runnerArch is runner.arch as GitHub spells it.
func runnerArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "X64"
	case "386":
		return "X86"
	case "arm64":
		return "ARM64"
	case "arm":
		return "ARM"
	}
	return strings.ToUpper(runtime.GOARCH)
}

// exprEnvFor is what a step's expressions see. stepEnv is the step's own
// evaluated env (nil while it is being evaluated).
func (j *execJob) exprEnvFor(stepEnv map[string]string) *expr.Env {
	st := &j.st
	ctx := make(map[string]any, len(st.contexts)+2)
	maps.Copy(ctx, st.contexts)
	env := map[string]any{}
	if base, ok := st.contexts["env"].(map[string]any); ok {
		maps.Copy(env, base)
	}
	for k, v := range st.addedEnv {
		env[k] = v
	}
	for k, v := range stepEnv {
		env[k] = v
	}
	ctx["env"] = env
	ctx["steps"] = st.steps
	jobCtx := map[string]any{}
	if m, ok := st.contexts["job"].(map[string]any); ok {
		maps.Copy(jobCtx, m)
	}
	jobCtx["status"] = st.status
	ctx["job"] = jobCtx
	return &expr.Env{Contexts: ctx, JobStatus: st.status, HashFiles: j.hashFiles}
}

// interpolate evaluates the ${{ }} in s, unless the claim is an old one.
func (j *execJob) interpolate(s string, env *expr.Env) (string, error) {
	if j.st.legacy {
		return s, nil
	}
	return expr.Interpolate(s, env)
}

// shuttingDown reports whether drain has begun cancelling jobs: then, as
// on GitHub's runner at shutdown, no further condition is evaluated.
func (j *execJob) shuttingDown() bool {
	j.ex.mu.Lock()
	defer j.ex.mu.Unlock()
	return j.ex.drainPhase >= drainCancel
}

// runSteps runs the steps from index first on, each when its condition
// holds, and returns the job's conclusion.
func (j *execJob) runSteps(first int) string {
	steps := j.job.Steps
	for i := first; i < len(steps); i++ {
		if j.isForced() {
			j.completeRest(i, protocol.ConclusionSkipped)
			break
		}
		j.runStepAt(i)
	}
	j.runPosts()
	if reason := j.abortReason(); reason != "" {
		return reason
	}
	return j.st.status
}

// stepRecord sets steps.<id> for a step with an id.
func (j *execJob) stepRecord(step *protocol.Step, outcome, conclusion string, outputs map[string]string) {
	if step.StepKey == "" {
		return
	}
	out := map[string]any{}
	for k, v := range outputs {
		out[k] = v
	}
	j.st.steps[step.StepKey] = map[string]any{"outputs": out, "outcome": outcome, "conclusion": conclusion}
}

// runStepAt decides whether step i runs, runs it, and completes it.
func (j *execJob) runStepAt(i int) {
	step := &j.job.Steps[i]
	st := &j.st
	if j.abortReason() != "" {
		st.status = protocol.ConclusionCancelled
	}
	if j.shuttingDown() {
		j.stepRecord(step, protocol.ConclusionSkipped, protocol.ConclusionSkipped, nil)
		j.endStep(i, protocol.ConclusionSkipped)
		return
	}

	// The step's env first: its condition sees it (StepsRunner).
	var stepEnv map[string]string
	var setupErr error
	env := j.exprEnvFor(nil)
	if len(step.Env) > 0 {
		stepEnv = make(map[string]string, len(step.Env))
		for _, k := range slices.Sorted(maps.Keys(step.Env)) {
			v, err := j.interpolate(step.Env[k], env)
			if err != nil {
				setupErr = fmt.Errorf("env.%s: %w", k, err)
				break
			}
			stepEnv[k] = v
		}
	}
	env = j.exprEnvFor(stepEnv)
	run := st.status == protocol.ConclusionSuccess
	if setupErr == nil && !st.legacy {
		var err error
		run, err = expr.Condition(step.If, env)
		if err != nil {
			setupErr = fmt.Errorf("if: %w", err)
		}
	}
	if setupErr == nil && !run {
		j.stepRecord(step, protocol.ConclusionSkipped, protocol.ConclusionSkipped, nil)
		j.endStep(i, protocol.ConclusionSkipped)
		return
	}

	j.beginStep(i)
	out := j.newStepOutput(step)
	var res stepResult
	switch {
	case setupErr != nil:
		out.errorf("%s", setupErr)
		res.outcome = protocol.ConclusionFailure
	default:
		// Whether a cancel lets this step finish: its if still holds with
		// the job cancelled (StepsRunner re-evaluates it on a cancel).
		keep := st.status == protocol.ConclusionCancelled
		if !keep && !st.legacy {
			ce := *env
			ce.JobStatus = protocol.ConclusionCancelled
			keep, _ = expr.Condition(step.If, &ce)
		}
		j.mu.Lock()
		j.keepOnCancel = keep
		j.mu.Unlock()
		defer func() {
			j.mu.Lock()
			j.keepOnCancel = false
			j.mu.Unlock()
		}()
		// A step that runs after a cancel needs the container back.
		if err := j.ensureRunning(); err != nil {
			out.errorf("%v", err)
			res.outcome = protocol.ConclusionCancelled
			break
		}
		res = j.runStep(step, stepEnv, env, out)
	}
	conclusion := res.outcome
	if res.outcome == protocol.ConclusionFailure && !st.legacy {
		coe, err := j.evalBool(step.ContinueOnError, env)
		if err != nil {
			out.errorf("The step failed and an error occurred when attempting to determine whether to continue on error.")
			out.errorf("%v", err)
		}
		if coe {
			conclusion = protocol.ConclusionSuccess
		}
	}
	out.close()
	j.sendStepExtras(step, out)
	j.stepRecord(step, res.outcome, conclusion, res.outputs)
	if conclusion == protocol.ConclusionFailure && st.status == protocol.ConclusionSuccess {
		st.status = protocol.ConclusionFailure
	}
	j.endStep(i, conclusion)
}

// evalBool evaluates continue-on-error: "", "false" or a falsy value is
// false; an error is reported and counts as false, as on GitHub.
func (j *execJob) evalBool(s string, env *expr.Env) (bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return false, nil
	}
	v, err := expr.EvalValue(s, env)
	if err != nil {
		return false, err
	}
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		return isTrue(v), nil
	}
	return expr.Truthy(v), nil
}

// evalMinutes evaluates timeout-minutes: empty is 0 (no step timeout).
func evalMinutes(s string, env *expr.Env) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	v, err := expr.EvalValue(s, env)
	if err != nil {
		return 0, err
	}
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case string:
		if f, err = strconv.ParseFloat(strings.TrimSpace(v), 64); err != nil {
			return 0, fmt.Errorf("timeout-minutes: %q is not a number", v)
		}
	default:
		return 0, fmt.Errorf("timeout-minutes: %s is not a number", expr.String(v))
	}
	if math.IsNaN(f) || f < 0 {
		return 0, fmt.Errorf("timeout-minutes: %s is not a positive number", expr.String(v))
	}
	return f, nil
}

// stepResult is how a step ended before continue-on-error.
type stepResult struct {
	outcome string            // success, failure or cancelled
	outputs map[string]string // steps.<id>.outputs
}

// runStep runs one step after Set up job.
func (j *execJob) runStep(step *protocol.Step, stepEnv map[string]string, env *expr.Env, out *stepOutput) stepResult {
	switch step.Kind {
	case "checkout":
		return j.runCheckout(step, env, out)
	case "run":
		return j.runScript(step, stepEnv, env, out)
	case "uses":
		return j.runAction(step, stepEnv, env, out, 0)
	default:
		out.errorf("this executor cannot run a step of kind %q (uses: %q).", step.Kind, step.Uses)
		return stepResult{outcome: protocol.ConclusionFailure}
	}
}

// runScript runs a run step with docker exec, streaming its output, and
// applies its environment files.
func (j *execJob) runScript(step *protocol.Step, stepEnv map[string]string, env *expr.Env, out *stepOutput) stepResult {
	fail := func(format string, args ...any) stepResult {
		out.errorf(format, args...)
		return stepResult{outcome: protocol.ConclusionFailure}
	}
	script, err := j.interpolate(step.Run, env)
	if err != nil {
		return fail("run: %v", err)
	}
	wd := step.WorkingDirectory
	if wd == "" {
		wd = j.job.Defaults.WorkingDirectory
	}
	if wd, err = j.interpolate(wd, env); err != nil {
		return fail("working-directory: %v", err)
	}
	shellOpt := step.Shell
	if shellOpt == "" {
		shellOpt = j.job.Defaults.Shell
	}
	if shellOpt, err = j.interpolate(shellOpt, env); err != nil {
		return fail("shell: %v", err)
	}
	var timeout float64
	if !j.st.legacy {
		if timeout, err = evalMinutes(step.TimeoutMinutes, env); err != nil {
			return fail("%v", err)
		}
	}
	files := newStepFiles(step.FilesKey()).withExtension(scriptExtension(shellOpt))
	sh, err := resolveShell(shellOpt, j.st.defaultShell, j.st.jobContainer, files.script)
	if err != nil {
		return fail("%v", err)
	}
	script = sh.fixUp(script)
	full := j.processEnv(stepEnv, files)
	if step.ActionPath != "" { // a composite action's step
		full["GITHUB_ACTION_PATH"] = step.ActionPath
	}
	return j.execProcess(step, full, wd, files, script, sh.argv, timeout, out)
}

// processEnv is the environment of a step's process. Precedence:
// container env < workflow and job env < $GITHUB_ENV < the step's env <
// the runner's own variables.
func (j *execJob) processEnv(stepEnv map[string]string, files stepFiles) map[string]string {
	full := map[string]string{}
	if c := j.job.Container; c != nil {
		maps.Copy(full, c.Env)
	}
	maps.Copy(full, j.job.Env)
	maps.Copy(full, j.st.addedEnv)
	maps.Copy(full, stepEnv)
	for k, v := range j.job.Env {
		if (strings.HasPrefix(k, "GITHUB_") || strings.HasPrefix(k, "RUNNER_")) && k != "GITHUB_TOKEN" { // the workflow's own, which a step's env overrides
			full[k] = v
		}
	}
	maps.Copy(full, files.vars())
	full["RUNNER_OS"] = "Linux"
	full["RUNNER_ARCH"] = runnerArch()
	full["RUNNER_NAME"] = j.ex.cfg.Instance
	full["RUNNER_TEMP"] = containerRunnerTemp
	full["RUNNER_TOOL_CACHE"] = containerToolCache
	if j.st.stepDebug {
		full["RUNNER_DEBUG"] = "1"
	}
	maps.Copy(full, j.runtimeEnv())
	addResolveEnv(full, j.jobResolve()) // git and curl find the server (jobnet.go)
	return full
}

// execProcess runs argv in the job's container with docker exec, stdin
// saved to files.script first, streaming its output, and applies its
// environment files.
func (j *execJob) execProcess(step *protocol.Step, full map[string]string, wd string, files stepFiles, stdin string, argv []string, timeout float64, out *stepOutput) stepResult {
	out.proc.StepDebug = j.st.stepDebug
	out.proc.AllowUnsecureCommands = isTrue(full["ACTIONS_ALLOW_UNSECURE_COMMANDS"])
	out.proc.AllowUnsecureStopTokens = isTrue(full["ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS"])

	args := []string{"exec", "-i"}
	var clientEnv, names []string
	for _, name := range slices.Sorted(maps.Keys(full)) {
		if !validEnvName(name) {
			out.linef("##[warning]not setting %q: an environment variable name is letters, digits and _, not starting with a digit.", name)
			continue
		}
		names = append(names, name)
		args = append(args, "-e", envAliasPrefix+name)
		clientEnv = append(clientEnv, envAliasPrefix+name+"="+full[name])
	}
	if len(names) > 0 {
		args = append(args, "-e", envAliasList)
		clientEnv = append(clientEnv, envAliasList+"="+strings.Join(names, " "))
	}
	if len(j.st.prepend) > 0 {
		args = append(args, "-e", envPathPrepend)
		clientEnv = append(clientEnv, envPathPrepend+"="+envFilePATH(j.st.prepend, ""))
	}
	args = append(args, "-w", containerDir(wd), j.name, "sh", "-c", stepBootstrap, "shithub-step", files.dir, files.script)
	args = append(args, argv...)

	stepCtx, kill := context.WithCancel(j.execCtx)
	defer kill()
	j.mu.Lock()
	j.stepKill = kill
	j.stepTimedOut = false
	j.stepGen++
	gen := j.stepGen
	j.mu.Unlock()
	var timer *time.Timer
	if timeout > 0 {
		timer = time.AfterFunc(time.Duration(timeout*float64(j.ex.minute)), func() {
			j.mu.Lock()
			current := j.stepGen == gen && j.stepKill != nil
			if current {
				j.stepTimedOut = true
			}
			j.mu.Unlock()
			if current {
				j.stopContainerAsync()
			}
		})
	}

	cmd := j.ex.docker.command(stepCtx, clientEnv, args...)
	cmd.Stdin = strings.NewReader(stdin)
	// One writer for both: os/exec then gives the client a single pipe, so
	// docker's own messages (a missing working directory) land in order.
	cmd.Stdout = out
	cmd.Stderr = out
	j.clock.mark("at_step_exec")
	err := cmd.Run()
	if timer != nil {
		timer.Stop()
	}
	j.mu.Lock()
	j.stepKill = nil
	timedOut := j.stepTimedOut
	kept := j.keepOnCancel
	j.mu.Unlock()
	out.endLines()

	res := stepResult{outcome: protocol.ConclusionFailure}
	switch code := processExitCode(err); {
	case j.abortReason() != "" && !kept, j.isForced():
		res.outcome = protocol.ConclusionCancelled
	case timedOut:
		out.errorf("The action has timed out.")
	case err == nil:
		res.outcome = protocol.ConclusionSuccess
	case code >= 0:
		out.errorf("Process completed with exit code %d.", code)
	default:
		out.errorf("%v", fmt.Errorf("docker exec: %w", err))
	}
	if out.cmdFailed {
		res.outcome = protocol.ConclusionFailure
	}
	res.outputs = out.outputs
	if err := j.applyFiles(step, files, out, &res); err != nil {
		out.errorf("%v", err)
		if res.outcome == protocol.ConclusionSuccess {
			res.outcome = protocol.ConclusionFailure
		}
	}
	return res
}

// stepShell is how a run step's script is run.
type stepShell struct {
	name    string   // the shell command as given: bash, sh, pwsh, python, ...
	argv    []string // the command line, the script's path in place of {0}
	display string   // "shell: ..." as the runner prints it
}

// builtinShellArgs are the runner's argument formats for its built-in
// shells (ScriptHandlerHelpers), and the script files' extensions.
var builtinShellArgs = map[string]string{
	"bash":       "--noprofile --norc -e -o pipefail {0}",
	"sh":         "-e {0}",
	"pwsh":       `-command ". '{0}'"`,
	"powershell": `-command ". '{0}'"`,
	"python":     "{0}",
}

var shellExtensions = map[string]string{"bash": ".sh", "sh": ".sh", "pwsh": ".ps1", "powershell": ".ps1", "python": ".py"}

// scriptExtension is the extension the script file needs for opt.
func scriptExtension(opt string) string {
	name, _, _ := strings.Cut(strings.TrimSpace(opt), " ")
	if opt == "" {
		return ".sh"
	}
	return shellExtensions[name]
}

// resolveShell turns a step's shell option into a command line. With no
// option the script runs with `bash -e {0}` where the image has bash (as
// on GitHub's hosted runners) and `sh -e {0}` in a job container of the
// workflow's own choosing (as GitHub documents for container jobs).
func resolveShell(opt, defaultShell string, jobContainer bool, script string) (stepShell, error) {
	opt = strings.TrimSpace(opt)
	var name, format, cmd string
	if opt == "" {
		name, format, cmd = "sh", builtinShellArgs["sh"], defaultShell
		if jobContainer || cmd == "" {
			cmd = "sh"
		}
	} else {
		var rest string
		name, rest, _ = strings.Cut(opt, " ")
		cmd = name
		format = strings.TrimLeft(rest, " ")
		if format == "" {
			format = builtinShellArgs[name]
		}
	}
	if name == "cmd" {
		return stepShell{}, errors.New("shell cmd needs a Windows runner; this one runs Linux containers")
	}
	if format == "" || !strings.Contains(format, "{0}") {
		return stepShell{}, errors.New("Invalid shell option. Shell must be a valid built-in (bash, sh, cmd, powershell, pwsh) or a format string containing '{0}'")
	}
	words, err := splitCommandLine(format)
	if err != nil {
		return stepShell{}, fmt.Errorf("shell %q: %v", opt, err)
	}
	argv := []string{cmd}
	for _, w := range words {
		argv = append(argv, strings.ReplaceAll(w, "{0}", script))
	}
	return stepShell{name: name, argv: argv, display: "shell: " + cmd + " " + format}, nil
}

// fixUp adds what the runner adds around a PowerShell script, so that a
// failing command fails the step.
func (s stepShell) fixUp(script string) string {
	if s.name == "pwsh" || s.name == "powershell" {
		return "$ErrorActionPreference = 'stop'\n" + script + "\nif ((Test-Path -LiteralPath variable:\\LASTEXITCODE)) { exit $LASTEXITCODE }"
	}
	return script
}

// splitCommandLine splits a shell option's arguments at spaces, keeping
// double-quoted parts together (the quotes removed, \" for a quote), the
// way the runner's process invoker reads an argument string.
func splitCommandLine(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, inQuote := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			inWord = true
			i++
		case c == '"':
			inQuote = !inQuote
			inWord = true
		case (c == ' ' || c == '\t') && !inQuote:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inQuote {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// environmentURL evaluates the job's environment url that reads steps,
// after its last step; "" when there is none, it fails or it would show a
// masked secret.
func (j *execJob) environmentURL() string {
	if j.job.EnvironmentURL == "" || j.st.legacy {
		return ""
	}
	v, err := expr.Interpolate(j.job.EnvironmentURL, j.exprEnvFor(nil))
	if err != nil {
		j.log.Warn("the environment url did not evaluate", "err", err)
		return ""
	}
	if j.st.masks.Mask(v) != v {
		return ""
	}
	return v
}

// jobOutputs evaluates the job's outputs after its last step. An empty
// value and a value holding a masked secret are left out, as GitHub's
// runner does: so the legs of a matrix can each set their own output
// without a later leg's empty value replacing it in needs.<id>.outputs.
func (j *execJob) jobOutputs() map[string]string {
	if len(j.job.Outputs) == 0 || j.st.legacy {
		return nil
	}
	env := j.exprEnvFor(nil)
	out := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(j.job.Outputs)) {
		v, err := expr.Interpolate(j.job.Outputs[k], env)
		if err != nil {
			j.log.Warn("job output did not evaluate", "output", k, "err", err)
			continue
		}
		if v == "" {
			continue
		}
		if j.st.masks.Mask(v) != v {
			j.log.Warn("skip a job output since it may contain a secret", "output", k)
			continue
		}
		out[k] = v
	}
	return out
}
