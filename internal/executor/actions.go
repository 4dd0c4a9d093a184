// The actions runtime in the executor: running a `uses:` step's action in
// the job (JavaScript with the operator's Node.js, composite, Docker), its
// inputs, the runner environment actions expect, and post steps.

package executor

// As GitHub's runner does (actions/runner src/Runner.Worker/ActionManager.cs,
// Handlers/NodeScriptActionHandler.cs, CompositeActionHandler.cs,
// ContainerActionHandler.cs), with these differences: the action's files
// are copied into the job container under /__shithub/actions; Node.js is
// the directory the operator names with --node, mounted read-only at
// /__shithub/node; a `pre` script runs at the start of its own step rather
// than before the first step; post scripts run after the last step in
// reverse order, and their output joins their step's log under "Post NAME".

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/expr"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

const (
	// containerActions is where actions' files go in the job container.
	containerActions = "/__shithub/actions"
	// containerNode is where --node's directory is mounted.
	ContainerNode = "/__shithub/node"
	// actionMaxDepth bounds composite actions using composite actions.
	actionMaxDepth = 9
	// actionHostAlias stands for the server in GITHUB_SERVER_URL as
	// JavaScript actions see it: @actions/artifact refuses to run unless
	// the host is github.com, *.ghe.com or *.localhost (its isGhes check),
	// and it reaches the server through ACTIONS_RESULTS_URL anyway.
	actionHostAlias = "shithub-actions.localhost"
)

// labelToolCache marks a repository's tool cache volume with the instance
// that made it. It is not labelInstance: removeStale and the sweep remove
// what carries that, and a tool cache outlives jobs and restarts.
const LabelToolCache = "shithub-actions.toolcache"

// repoToolCache is the Docker volume at RUNNER_TOOL_CACHE for the trusted
// jobs of one repository, kept between jobs so that setup-* actions
// download a toolchain once. One volume per repository: a job never sees
// what another repository's jobs installed. The name carries the
// repository's id and a hash of its name, so a repository made again under
// an old id, or renamed, starts afresh.
func (ex *Executor) repoToolCache(job *protocol.Job) string {
	sum := sha256.Sum256([]byte(strings.ToLower(job.Repo)))
	return fmt.Sprintf("%stoolcache-%d-%s", ex.namePrefix(), job.RepoID, hex.EncodeToString(sum[:4]))
}

// toolCacheVolume is the volume a job sees at RUNNER_TOOL_CACHE: its
// repository's for a trusted job. An untrusted job (a pull request's) gets
// a volume of its own, named and labelled like its workspace so that it
// goes with the job (or with the sweep), which setUp seeds with a copy of
// the repository's: its setup-* steps still find what trusted jobs
// installed, and nothing it writes reaches them.
func (j *execJob) toolCacheVolume() string {
	if j.job.Untrusted {
		return j.name + "-toolcache"
	}
	return j.ex.repoToolCache(j.job)
}

// createToolCache creates the job's tool cache volume before its container
// names it (docker would make it unlabelled). Creating a volume that exists
// changes nothing, so the repository's is created for every job: an
// untrusted job copies from it.
func (j *execJob) createToolCache() error {
	repo := j.ex.repoToolCache(j.job)
	if _, _, err := j.ex.docker.Output(j.ctx, "volume", "create", "--label", LabelToolCache+"="+j.ex.cfg.Instance, repo); err != nil {
		return err
	}
	if !j.job.Untrusted {
		return nil
	}
	j.toolCacheAttempted = true
	_, _, err := j.ex.docker.Output(j.ctx, append(append([]string{"volume", "create"}, j.labelArgs()...), j.toolCacheVolume())...)
	return err
}

// seedToolCache copies the repository's tool cache into an untrusted job's
// own, through the engine: docker cp out of a container that is never
// started (it only mounts the repository's volume read-only) and into the
// job's container, created but not yet started. Nothing runs, and nothing
// touches the host's file system.
func (j *execJob) seedToolCache(image string) error {
	if !j.job.Untrusted {
		return nil
	}
	seed := j.name + "-toolcache-seed"
	args := append(append([]string{"create", "--name", seed}, j.labelArgs()...),
		"--network", "none", "-v", j.ex.repoToolCache(j.job)+":/from:ro", "--entrypoint", "true", "--", image)
	if _, _, err := j.ex.docker.Output(j.ctx, args...); err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), jobCleanupTimeout)
		defer cancel()
		j.remove(ctx, true, "tool cache seed container", "rm", "-f", seed)
	}()
	out := j.ex.docker.command(j.ctx, nil, "cp", seed+":/from/.", "-")
	in := j.ex.docker.command(j.ctx, nil, "cp", "-a", "-", j.name+":"+containerToolCache)
	pipe, err := out.StdoutPipe()
	if err != nil {
		return err
	}
	in.Stdin = pipe
	var outErr, inErr bytes.Buffer
	out.Stderr, in.Stderr = &outErr, &inErr
	if err := out.Start(); err != nil {
		return err
	}
	errIn := in.Run()
	if errIn != nil {
		out.Process.Kill() // it could wait for a reader forever
	}
	errOut := out.Wait()
	switch {
	case errIn != nil:
		return &dockerError{cmd: "cp", stderr: strings.TrimSpace(inErr.String()), err: errIn}
	case errOut != nil:
		return &dockerError{cmd: "cp", stderr: strings.TrimSpace(outErr.String()), err: errOut}
	}
	return nil
}

// actionMounts are the job container's mounts for actions: the tool cache
// volume, Node.js when configured, and curl's configuration (netMount).
func (j *execJob) actionMounts() []string {
	return j.ex.actionMounts(j.toolCacheVolume(), j.netMountDir())
}

// actionMounts is actionMounts of a container with toolCache and the
// .curlrc directory netDir ("" for none).
func (ex *Executor) actionMounts(toolCache, netDir string) []string {
	args := []string{"-v", toolCache + ":" + containerToolCache}
	if n := ex.cfg.NodeDir; n != "" {
		args = append(args, "-v", n+":"+ContainerNode+":ro")
	}
	if netDir != "" { // curl's resolve list (jobnet.go)
		args = append(args, "-v", netDir+":"+containerNet+":ro")
	}
	return args
}

// runtimeEnv is what every step sees of the server: its URLs and the
// job's runtime token, as the toolkit expects them.
func (j *execJob) runtimeEnv() map[string]string {
	env := map[string]string{}
	if u := strings.TrimRight(j.ex.cfg.JobURL, "/"); u != "" {
		env["GITHUB_SERVER_URL"] = u
		env["GITHUB_API_URL"] = u + "/api/v1"
		env["ACTIONS_RUNTIME_URL"] = u + "/"
		env["ACTIONS_RESULTS_URL"] = u + "/"
		env["ACTIONS_CACHE_URL"] = u + "/" // the toolkit appends _apis/... with no slash of its own
		env["ACTIONS_CACHE_SERVICE_V2"] = "true"
	}
	if tok := j.job.RuntimeToken; tok != "" {
		env["ACTIONS_RUNTIME_TOKEN"] = tok
		if !j.tokenMasked {
			j.st.masks.Add(tok)
			j.tokenMasked = true
		}
	}
	return env
}

// loadedAction is an action ready to run in the job.
type loadedAction struct {
	ref       workflow.ActionRef
	def       *workflow.ActionDef // nil for docker://
	hostDir   string              // its files on the host (for docker build); "" for docker://
	path      string              // its directory in the job container
	repoName  string              // GITHUB_ACTION_REPOSITORY
	refName   string              // GITHUB_ACTION_REF
	commitSHA string
}

// loadAction resolves, fetches and copies the action into the container.
func (j *execJob) loadAction(uses string, out *stepOutput) (*loadedAction, error) {
	ref, err := workflow.ParseActionRef(uses)
	if err != nil {
		return nil, err
	}
	if !workflow.ActionAllowed(j.ex.cfg.AllowActions, ref) {
		return nil, fmt.Errorf("%s is not allowed on this runner: --allow-actions is %s", ref, strings.Join(j.ex.cfg.AllowActions, ","))
	}
	la := &loadedAction{ref: ref}
	switch ref.Kind {
	case workflow.ActionDocker:
		return la, nil
	case workflow.ActionLocal:
		la.path = path.Join(protocol.Workspace, ref.Local)
		// la.hostDir stays "": the workspace is the job's volume, so a
		// Docker action's files are copied out when it is built.
		data, err := j.readContainerFile(path.Join(la.path, "action.yml"))
		name := "action.yml"
		if errors.Is(err, apperr.ErrNotFound) {
			data, err = j.readContainerFile(path.Join(la.path, "action.yaml"))
			name = "action.yaml"
		}
		if errors.Is(err, apperr.ErrNotFound) {
			return nil, fmt.Errorf("%s has no action.yml or action.yaml (did a checkout step run first?)", ref)
		}
		if err != nil {
			return nil, err
		}
		if la.def, err = workflow.ParseActionYAML(ref.Local+"/"+name, data); err != nil {
			return nil, err
		}
		return la, nil
	}
	if j.ex.actions == nil {
		return nil, fmt.Errorf("cannot fetch %s: this runner has no data directory for actions (--data-dir)", ref)
	}
	fa, err := j.ex.actions.Fetch(j.execCtx, ref, j.job.JobID)
	if err != nil {
		return nil, err
	}
	for _, n := range fa.Notes {
		out.linef("##[warning]%s", n)
	}
	out.linef("Download action repository '%s' (SHA:%s) from %s", ref, fa.SHA, fa.Origin)
	if la.def, err = ActionMetadata(fa.Dir, ref.String()); err != nil {
		return nil, err
	}
	la.hostDir, la.commitSHA = fa.Dir, fa.SHA
	la.repoName, la.refName = ref.Owner+"/"+ref.Repo, ref.Ref
	root := path.Join(containerActions, strings.ToLower(ref.Owner), strings.ToLower(ref.Repo), fa.SHA)
	la.path = root
	if ref.Path != "" {
		la.path = path.Join(root, ref.Path)
	}
	if !j.copied[root] {
		if err := j.copyToContainer(fa.Root, root); err != nil {
			return nil, fmt.Errorf("copy %s into the job container: %w", ref, err)
		}
		if j.copied == nil {
			j.copied = map[string]bool{}
		}
		j.copied[root] = true
	}
	return la, nil
}

// readContainerFile reads one file of the job container with docker cp.
func (j *execJob) readContainerFile(p string) ([]byte, error) {
	cmd := j.ex.docker.command(j.execCtx, nil, "cp", j.name+":"+p, "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "Could not find the file") || strings.Contains(msg, "No such container:path") {
			return nil, apperr.ErrNotFound
		}
		return nil, &dockerError{cmd: "cp", stderr: msg, err: err}
	}
	tr := tar.NewReader(&stdout)
	for {
		h, err := tr.Next()
		if err != nil {
			return nil, apperr.ErrNotFound
		}
		if h.Typeflag == tar.TypeReg {
			return io.ReadAll(io.LimitReader(tr, workflow.ActionMaxFile+1))
		}
	}
}

// copyToContainer copies the host directory src to dst in the job
// container, as a tar stream on docker cp's stdin: no file of the action
// is ever written through a path the container controls.
func (j *execJob) copyToContainer(src, dst string) error {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			h, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			h.Name = strings.TrimPrefix(path.Join(dst, filepath.ToSlash(rel)), "/")
			if d.IsDir() {
				h.Name += "/"
			}
			h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.Copy(tw, f)
				f.Close()
				return err
			}
			return nil
		})
		// The parents of dst, so that docker cp can unpack at /.
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	cmd := j.ex.docker.command(j.execCtx, nil, "cp", "-", j.name+":/")
	cmd.Stdin = pr
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return &dockerError{cmd: "cp", stderr: strings.TrimSpace(stderr.String()), err: err}
	}
	return nil
}

// actionInputs evaluates the step's with: and the action's defaults into
// INPUT_ values, warning as GitHub does about unexpected, missing and
// deprecated inputs.
func (j *execJob) actionInputs(la *loadedAction, with map[string]string, env *expr.Env, out *stepOutput) (map[string]string, error) {
	given := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(with)) {
		v, err := j.interpolate(with[k], env)
		if err != nil {
			return nil, fmt.Errorf("with.%s: %w", k, err)
		}
		given[strings.ToLower(k)] = v
	}
	inputs := map[string]string{}
	if la.def == nil { // docker://: every with: is an input
		maps.Copy(inputs, given)
		return inputs, nil
	}
	declared := map[string]bool{}
	var valid []string
	for _, in := range la.def.Inputs {
		name := strings.ToLower(in.Name)
		declared[name] = true
		valid = append(valid, in.Name)
		v, ok := given[name]
		switch {
		case ok && in.Deprecation != "":
			out.linef("##[warning]Input '%s' has been deprecated with message: %s", in.Name, in.Deprecation)
		case !ok && in.HasDefault:
			d, err := j.interpolate(in.Default, env)
			if err != nil {
				return nil, fmt.Errorf("the default of input %s: %w", in.Name, err)
			}
			v = d
		case !ok && in.Required:
			out.linef("##[warning]Input required and not supplied: %s", in.Name)
		}
		inputs[in.Name] = v
	}
	var unexpected []string
	for _, k := range slices.Sorted(maps.Keys(given)) {
		if !declared[k] {
			unexpected = append(unexpected, k)
			inputs[k] = given[k]
		}
	}
	if len(unexpected) > 0 {
		out.linef("##[warning]Unexpected input(s) '%s', valid inputs are ['%s']", strings.Join(unexpected, "', '"), strings.Join(valid, "', '"))
	}
	return inputs, nil
}

// inputEnvName is INPUT_<NAME>: upper case, spaces to _.
func inputEnvName(name string) string {
	return "INPUT_" + strings.ToUpper(strings.ReplaceAll(name, " ", "_"))
}

// actionEnv is the runner's environment for an action's process.
func (j *execJob) actionEnv(step *protocol.Step, la *loadedAction, inputs map[string]string, base map[string]string) map[string]string {
	full := maps.Clone(base)
	for k, v := range inputs {
		full[inputEnvName(k)] = v
	}
	action := step.StepKey
	if action == "" {
		action = "__" + strings.ReplaceAll(la.repoName, "/", "_")
		if la.repoName == "" {
			action = "__run"
		}
	}
	full["GITHUB_ACTION"] = action
	full["GITHUB_ACTION_PATH"] = la.path
	full["GITHUB_ACTION_REPOSITORY"] = la.repoName
	full["GITHUB_ACTION_REF"] = la.refName
	full["RUNNER_TOOL_CACHE"] = containerToolCache
	return full
}

// stateEnv is STATE_<name> for each value the step saved ($GITHUB_STATE).
func (j *execJob) stateEnv(step *protocol.Step) map[string]string {
	env := map[string]string{}
	for k, v := range j.st.state[step.StateKey()] {
		env["STATE_"+k] = v
	}
	return env
}

// runAction runs a uses: step (depth counts composite nesting).
func (j *execJob) runAction(step *protocol.Step, stepEnv map[string]string, env *expr.Env, out *stepOutput, depth int) stepResult {
	fail := func(format string, args ...any) stepResult {
		out.errorf(format, args...)
		return stepResult{outcome: protocol.ConclusionFailure}
	}
	if depth > actionMaxDepth {
		return fail("%s: composite actions nest more than %d deep", step.Uses, actionMaxDepth)
	}
	if workflow.IsCheckoutAction(step.Uses) { // built in, in a composite action too
		return j.runCheckout(step, env, out)
	}
	la, err := j.loadAction(step.Uses, out)
	if err != nil {
		return fail("%v", err)
	}
	inputs, err := j.actionInputs(la, step.With, env, out)
	if err != nil {
		return fail("%v", err)
	}
	var timeout float64
	if !j.st.legacy {
		if timeout, err = evalMinutes(step.TimeoutMinutes, env); err != nil {
			return fail("%v", err)
		}
	}
	switch {
	case la.def == nil || la.def.Runs.Using == "docker":
		return j.runDockerAction(step, la, inputs, stepEnv, env, timeout, out)
	case la.def.IsNode():
		return j.runNodeAction(step, la, inputs, stepEnv, env, timeout, out)
	case la.def.Runs.Using == "composite":
		return j.runCompositeAction(step, la, inputs, stepEnv, env, out, depth)
	}
	return fail("%s: runs.using %q cannot run here", step.Uses, la.def.Runs.Using)
}

// nodeEnv adjusts GITHUB_SERVER_URL for JavaScript actions (see actionHostAlias).
func nodeServerURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return u
	}
	h := strings.ToLower(p.Hostname())
	if h == "github.com" || strings.HasSuffix(h, ".ghe.com") || strings.HasSuffix(h, ".localhost") {
		return u
	}
	p.Host = actionHostAlias
	if port := p.Port(); port != "" {
		p.Host += ":" + port
	}
	return p.String()
}

// runNodeAction runs a JavaScript action's pre (when its pre-if holds)
// and main, and registers its post.
func (j *execJob) runNodeAction(step *protocol.Step, la *loadedAction, inputs, stepEnv map[string]string, env *expr.Env, timeout float64, out *stepOutput) stepResult {
	node, err := j.findNode(step.Uses, la.def.Runs.Using) // --node's, else the image's (actionnode.go)
	if err != nil {
		out.errorf("%v", err)
		return stepResult{outcome: protocol.ConclusionFailure}
	}
	note, warning := nodeNote(node, la.def.Runs.Using)
	out.linef("%s", note)
	if warning != "" {
		out.linef("##[warning]%s", warning)
	}
	run := func(script string, out *stepOutput) stepResult {
		files := newStepFiles(step.FilesKey())
		full := j.actionEnv(step, la, inputs, j.processEnv(stepEnv, files))
		maps.Copy(full, j.stateEnv(step))
		if u := full["GITHUB_SERVER_URL"]; u != "" {
			full["GITHUB_SERVER_URL"] = nodeServerURL(u)
		}
		// Names a shell cannot export (INPUT_GO-VERSION) travel hex-encoded
		// and nodePreload renames them inside node, before the action runs.
		for _, k := range slices.Sorted(maps.Keys(full)) {
			if !validEnvName(k) && k != "" && !strings.ContainsAny(k, "=\x00") {
				full[nodeEnvPrefix+hex.EncodeToString([]byte(k))] = full[k]
				delete(full, k)
			}
		}
		if err := j.ensurePreload(); err != nil {
			out.errorf("%v", err)
			return stepResult{outcome: protocol.ConclusionFailure}
		}
		argv := []string{node.path, "--require", containerPreload, path.Join(la.path, script)}
		// Saved state belongs to this action, also inside a composite.
		prev := out.step
		out.step = step
		defer func() { out.step = prev }()
		return j.execProcess(step, full, "", files, "", argv, timeout, out)
	}
	if la.def.Runs.Pre != "" {
		cond := la.def.Runs.PreIf
		if cond == "" {
			cond = "always()"
		}
		ok, err := expr.Condition(cond, env)
		if err != nil {
			out.errorf("pre-if: %v", err)
			return stepResult{outcome: protocol.ConclusionFailure}
		}
		if ok {
			out.linef("##[group]Pre %s", step.Name)
			res := run(la.def.Runs.Pre, out)
			out.linef("##[endgroup]")
			if res.outcome != protocol.ConclusionSuccess {
				return res
			}
		}
	}
	res := run(la.def.Runs.Main, out)
	if la.def.Runs.Post != "" {
		j.addPost(step, la.def.Runs.PostIf, out, func(o *stepOutput) stepResult { return run(la.def.Runs.Post, o) })
	}
	return res
}

const (
	nodeEnvPrefix    = "SHITHUB_ENVX_"
	containerPreload = "/__shithub/lib/preload.js"
	// nodePreload restores the environment variables whose names a shell
	// cannot carry, then removes itself from what the action sees.
	nodePreload = `"use strict";
for (const k of Object.keys(process.env)) {
  if (k.startsWith("` + nodeEnvPrefix + `")) {
    process.env[Buffer.from(k.slice(` + "13" + `), "hex").toString()] = process.env[k];
    delete process.env[k];
  }
}
`
)

// ensurePreload puts nodePreload into the job container, once.
func (j *execJob) ensurePreload() error {
	if j.copied[containerPreload] {
		return nil
	}
	dir, err := os.MkdirTemp("", "shithub-preload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "preload.js"), []byte(nodePreload), 0o644); err != nil {
		return err
	}
	if err := j.copyToContainer(dir, path.Dir(containerPreload)); err != nil {
		return fmt.Errorf("copy the node preload into the job container: %w", err)
	}
	if j.copied == nil {
		j.copied = map[string]bool{}
	}
	j.copied[containerPreload] = true
	return nil
}

// postStep is an action's post script, run after the last step.
type postStep struct {
	step *protocol.Step
	cond string
	out  *stepOutput // the main step's log, to continue
	run  func(*stepOutput) stepResult
}

func (j *execJob) addPost(step *protocol.Step, cond string, out *stepOutput, run func(*stepOutput) stepResult) {
	if cond == "" {
		cond = "always()"
	}
	j.posts = append(j.posts, postStep{step: step, cond: cond, out: out, run: run})
}

// runPosts runs the registered post scripts, last first, each when its
// post-if holds with the job's status; a failing one fails the job.
func (j *execJob) runPosts() {
	for i := len(j.posts) - 1; i >= 0; i-- {
		p := j.posts[i]
		if j.isForced() {
			return
		}
		ok, err := expr.Condition(p.cond, j.exprEnvFor(nil))
		if err != nil || !ok {
			continue
		}
		if err := j.ensureRunning(); err != nil {
			return
		}
		o := j.newStepOutput(p.step)
		p.out.log.mu.Lock()
		o.log.seq = p.out.log.seq // continue the step's log
		p.out.log.mu.Unlock()
		o.linef("##[group]Post %s", p.step.Name)
		res := p.run(o)
		o.linef("##[endgroup]")
		o.close()
		j.sendStepExtras(p.step, o)
		if res.outcome == protocol.ConclusionFailure && j.st.status == protocol.ConclusionSuccess {
			j.st.status = protocol.ConclusionFailure
		}
	}
}

// runCompositeAction runs a composite action's steps with its inputs, its
// own steps context and github.action_path, and maps its outputs.
func (j *execJob) runCompositeAction(parent *protocol.Step, la *loadedAction, inputs, stepEnv map[string]string, env *expr.Env, out *stepOutput, depth int) stepResult {
	inCtx := map[string]any{}
	for k, v := range inputs {
		inCtx[k] = v
		inCtx[strings.ToLower(k)] = v
	}
	steps := map[string]any{}
	status := protocol.ConclusionSuccess
	newEnv := func(stepEnv map[string]string) *expr.Env {
		e := j.exprEnvFor(stepEnv)
		ctx := maps.Clone(e.Contexts)
		gh := map[string]any{}
		if m, ok := ctx["github"].(map[string]any); ok {
			maps.Copy(gh, m)
		}
		gh["action_path"] = la.path
		gh["action_repository"] = la.repoName
		gh["action_ref"] = la.refName
		ctx["github"] = gh
		ctx["inputs"] = inCtx
		ctx["steps"] = steps
		jobCtx := map[string]any{}
		if m, ok := ctx["job"].(map[string]any); ok {
			maps.Copy(jobCtx, m)
		}
		jobCtx["status"] = status
		ctx["job"] = jobCtx
		return &expr.Env{Contexts: ctx, JobStatus: status, HashFiles: e.HashFiles}
	}
	for i, cs := range la.def.Runs.Steps {
		nested := protocol.Step{
			ID: parent.ID, Name: cs.Name, Run: cs.Run, Uses: cs.Uses, Shell: cs.Shell,
			WorkingDirectory: cs.WorkingDirectory, StepKey: cs.ID, If: cs.If, ContinueOnError: cs.ContinueOnError,
			With: map[string]string{}, Kind: "run", ActionPath: la.path,
		}
		j.filesSeq++
		nested.FilesID = -j.filesSeq // a directory of its own
		if cs.Uses != "" {
			nested.Kind = "uses"
			if nested.Name == "" {
				nested.Name = "Run " + cs.Uses
			}
		}
		for _, w := range cs.With {
			nested.With[w.Name] = w.Value
		}
		// The step's env: the calling step's, then its own.
		nestedEnv := maps.Clone(stepEnv)
		if nestedEnv == nil {
			nestedEnv = map[string]string{}
		}
		e := newEnv(nestedEnv)
		for _, kv := range cs.Env {
			v, err := j.interpolate(kv.Value, e)
			if err != nil {
				out.errorf("%s step %d: env.%s: %v", la.ref, i+1, kv.Name, err)
				return stepResult{outcome: protocol.ConclusionFailure}
			}
			nestedEnv[kv.Name] = v
		}
		e = newEnv(nestedEnv)
		run, err := expr.Condition(cs.If, e)
		if err != nil {
			out.errorf("%s step %d: if: %v", la.ref, i+1, err)
			return stepResult{outcome: protocol.ConclusionFailure}
		}
		record := func(outcome, conclusion string, outputs map[string]string) {
			if cs.ID == "" {
				return
			}
			o := map[string]any{}
			for k, v := range outputs {
				o[k] = v
			}
			steps[cs.ID] = map[string]any{"outputs": o, "outcome": outcome, "conclusion": conclusion}
		}
		if !run {
			record(protocol.ConclusionSkipped, protocol.ConclusionSkipped, nil)
			continue
		}
		var res stepResult
		if nested.Kind == "uses" {
			res = j.runAction(&nested, nestedEnv, e, out, depth+1)
		} else {
			res = j.runScript(&nested, nestedEnv, e, out)
		}
		conclusion := res.outcome
		if res.outcome == protocol.ConclusionFailure {
			if coe, _ := j.evalBool(cs.ContinueOnError, e); coe {
				conclusion = protocol.ConclusionSuccess
			}
		}
		record(res.outcome, conclusion, res.outputs)
		if conclusion == protocol.ConclusionCancelled {
			return stepResult{outcome: protocol.ConclusionCancelled}
		}
		if conclusion == protocol.ConclusionFailure && status == protocol.ConclusionSuccess {
			status = protocol.ConclusionFailure
		}
	}
	res := stepResult{outcome: status, outputs: map[string]string{}}
	e := newEnv(stepEnv)
	for _, o := range la.def.Outputs {
		v, err := j.interpolate(o.Value, e)
		if err != nil {
			out.errorf("%s: output %s: %v", la.ref, o.Name, err)
			res.outcome = protocol.ConclusionFailure
			continue
		}
		res.outputs[o.Name] = v
	}
	return res
}

// dockerClientEnv are names the docker CLI itself reads: they reach a
// Docker action through --env-file, never the client's environment.
func dockerClientEnv(name string) bool {
	switch name {
	case "HOME", "PATH", "TMPDIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy":
		return true
	}
	return strings.HasPrefix(name, "DOCKER_") || strings.HasPrefix(name, "LD_") || strings.HasPrefix(name, "GODEBUG")
}

// Labels and bounds of the images Docker actions are built into.
const (
	// labelActionImage marks an image built for a Docker action with the
	// instance that built it; images of a job's own (local actions, and any
	// build of an untrusted job) also carry labelJob.
	labelActionImage = "shithub-actions.action-image"
	// actionImageRepo is the repository of those images' tags.
	actionImageRepo = "shithub-actions-action"
	// actionImagesKept bounds the images of remote actions kept, one per
	// action, commit and image: past it the oldest go.
	actionImagesKept = 32
)

// dockerURLImage checks the image of a docker:// action before docker is
// asked for it: --allow-images applies, as to a job's own container, and a
// registry on this host or on a private network is refused, since the
// daemon would reach it from the host on the workflow's behalf.
func (j *execJob) dockerURLImage(image string) (string, error) {
	if image == "" || strings.HasPrefix(image, "-") {
		return "", fmt.Errorf("docker://%s is not an image name", image)
	}
	if err := j.checkImage("image", image); err != nil {
		return "", err
	}
	return image, nil
}

// actionImage is the image of a Docker action: docker://IMAGE, or built
// from its Dockerfile. A remote action's image is built once per commit
// and kept (up to actionImagesKept); a local action's, and any image an
// untrusted job builds, belongs to the job and goes when it ends: a pull
// request never makes an image that a trusted job would use.
func (j *execJob) actionImage(la *loadedAction, out *stepOutput) (string, error) {
	if la.def == nil {
		return j.dockerURLImage(la.ref.Image)
	}
	img := la.def.Runs.Image
	if name, ok := strings.CutPrefix(img, "docker://"); ok {
		return j.dockerURLImage(name)
	}
	rel := filepath.Clean(filepath.FromSlash(img))
	if filepath.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("runs.image %q leaves the action's directory", img)
	}
	sum := sha256.Sum256([]byte(la.ref.String() + "\x00" + la.commitSHA + "\x00" + img))
	own := la.commitSHA == "" || j.job.Untrusted // the job's own image, removed when it ends
	key := jobImageKey(j.job.JobID)
	if !own {
		key = la.commitSHA[:min(12, len(la.commitSHA))]
	}
	tag := actionImageRepo + ":" + key + "-" + hex.EncodeToString(sum[:6])
	if !own || j.builtImages[tag] {
		if _, _, err := j.ex.docker.Output(j.execCtx, "image", "inspect", "--format", "{{.Id}}", tag); err == nil {
			out.linef("Using the image built before: %s", tag)
			return tag, nil
		}
	}
	// The build context is a private (0700) copy, so the action's files
	// cannot change under the build, and a local action's come out of the
	// job's workspace volume.
	tmp, err := os.MkdirTemp(j.ex.cfg.WorkDir, j.name+"-action-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if la.hostDir == "" {
		if _, _, err := j.ex.docker.Output(j.execCtx, "cp", j.name+":"+la.path+"/.", tmp); err != nil {
			return "", fmt.Errorf("copy %s out of the workspace to build it: %w", la.ref, err)
		}
	} else if err := copyTreeNoFollow(la.hostDir, tmp); err != nil {
		return "", fmt.Errorf("copy %s to build it: %w", la.ref, err)
	}
	// The docker client reads the Dockerfile and .dockerignore itself, on
	// the host: a symbolic link there would make it read a file of the
	// host (and print its first line in the error).
	for _, f := range []string{rel, ".dockerignore"} {
		if err := noSymlinkUnder(tmp, f); err != nil {
			if f == ".dockerignore" && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return "", fmt.Errorf("%s: refusing to build: %w", la.ref, err)
		}
	}
	out.linef("##[group]Build container for action use: %s", tag)
	args := []string{"build", "--pull=false", "--no-cache", "--force-rm",
		"--network", j.network, "--memory", j.ex.cfg.Memory,
		"--label", labelActionImage + "=" + j.ex.cfg.Instance}
	if own {
		args = append(args, "--label", LabelJob+"="+strconv.FormatInt(j.job.JobID, 10))
	}
	args = append(args, "-t", tag, "-f", filepath.Join(tmp, rel), tmp)
	// The classic builder: BuildKit takes neither a network of the
	// engine's (only default, host or none) nor a memory limit.
	cmd := j.ex.docker.command(j.execCtx, []string{"DOCKER_BUILDKIT=0"}, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if own {
		if j.builtImages == nil {
			j.builtImages = map[string]bool{}
		}
		j.builtImages[tag] = true // removed at the end, even half-built
	}
	err = cmd.Run()
	out.linef("##[endgroup]")
	if err != nil {
		return "", fmt.Errorf("docker build of %s failed: %v", la.ref, err)
	}
	if !own {
		j.ex.pruneActionImages(j.execCtx)
	}
	return tag, nil
}

// jobImageKey starts the tags of a job's own action images.
func jobImageKey(jobID int64) string { return "job" + strconv.FormatInt(jobID, 10) }

// noSymlinkUnder checks that rel names a regular file under dir reached
// through no symbolic link: fs.ErrNotExist when it is not there.
func noSymlinkUnder(dir, rel string) error {
	p := dir
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i, part := range parts {
		p = filepath.Join(p, part)
		info, err := os.Lstat(p)
		if err != nil {
			return fs.ErrNotExist
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link, which the build does not follow", strings.Join(parts[:i+1], "/"))
		case i < len(parts)-1 && !info.IsDir():
			return fs.ErrNotExist
		case i == len(parts)-1 && !info.Mode().IsRegular():
			return fmt.Errorf("%s is not a regular file", rel)
		}
	}
	return nil
}

// copyTreeNoFollow copies the directory src into dst (which exists):
// directories and regular files, and symbolic links as links, never
// followed, so nothing outside src is read.
func copyTreeNoFollow(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(to, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, to)
		case info.Mode().IsRegular():
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			defer in.Close()
			f, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, info.Mode().Perm()&0o755|0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, in)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}
		return nil // sockets, devices, fifos: not part of an action
	})
}

// removeActionImages removes the images the job built for itself.
func (j *execJob) removeActionImages(ctx context.Context) {
	for _, tag := range slices.Sorted(maps.Keys(j.builtImages)) {
		j.remove(ctx, false, "action image", "image", "rm", "-f", tag)
	}
	j.builtImages = nil
}

// pruneActionImages keeps this instance's images of remote actions under
// actionImagesKept, removing the oldest, and removes the images of jobs
// that are over (left by a crash). An image a container still uses is
// left for next time.
func (ex *Executor) pruneActionImages(ctx context.Context) {
	out, _, err := ex.docker.Output(ctx, "images", "--filter", "label="+labelActionImage+"="+ex.cfg.Instance,
		"--format", "{{.CreatedAt}}\t{{.Repository}}:{{.Tag}}")
	if err != nil {
		return
	}
	ex.mu.Lock()
	live := map[string]bool{}
	for id := range ex.jobs {
		live[jobImageKey(id)] = true
	}
	ex.mu.Unlock()
	var kept []string // "created\ttag", of remote actions
	var gone []string
	for _, line := range strings.Split(out, "\n") {
		created, tag, ok := strings.Cut(line, "\t")
		name, ok2 := strings.CutPrefix(tag, actionImageRepo+":")
		if !ok || !ok2 {
			continue
		}
		key, _, _ := strings.Cut(name, "-")
		switch {
		case !strings.HasPrefix(key, "job"):
			kept = append(kept, created+"\t"+tag)
		case !live[key]:
			gone = append(gone, tag)
		}
	}
	slices.Sort(kept) // oldest first: CreatedAt sorts as text
	for len(kept) > actionImagesKept {
		_, tag, _ := strings.Cut(kept[0], "\t")
		gone = append(gone, tag)
		kept = kept[1:]
	}
	for _, tag := range gone {
		ex.docker.Output(ctx, "image", "rm", tag) // not -f: one in use stays
	}
}

// filesDir is a new directory for a Docker action's file commands, which
// the action's user (any user) writes: a 0777 directory inside the job's
// private one, a 0700 directory of WorkDir that only the server's user can
// enter, so no other user of the host reaches what the action puts there
// (a setuid binary, say). It goes with the job, and a stale one with
// removeStale (its name starts like a staged checkout's).
func (j *execJob) filesDir() (string, error) {
	if j.privDir == "" {
		dir, err := os.MkdirTemp(j.ex.cfg.WorkDir, j.name+"-files-")
		if err != nil {
			return "", err
		}
		j.privDir = dir
	}
	dir, err := os.MkdirTemp(j.privDir, "fc-")
	if err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o777)
}

// removeFilesDir removes the job's private directory of file commands.
func (j *execJob) removeFilesDir() {
	if j.privDir == "" {
		return
	}
	if err := os.RemoveAll(j.privDir); err != nil {
		j.log.Warn("cannot remove the Docker actions' file commands", "err", err)
	}
	j.privDir = ""
}

// dockerActionArgs is how a docker:// action's args input becomes its
// arguments: split as a shell would split them, quotes kept together.
func dockerActionArgs(s string) ([]string, error) {
	return splitShellWords(s)
}

// splitShellWords splits s into words as a POSIX shell does, without
// expansions: blanks separate words; 'single quotes' keep everything
// literally; "double quotes" keep blanks, and a backslash in them escapes
// only ", \\, $ and `; outside quotes a backslash escapes any character.
// An unterminated quote is an error.
func splitShellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				if s[i] != '\n' { // a backslash-newline joins lines
					cur.WriteByte(s[i])
				}
			}
		case c == '\'':
			inWord = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated ' quote")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			inWord = true
			closed := false
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					closed = true
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if !closed {
				return nil, errors.New(`unterminated " quote`)
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// runDockerAction runs a Docker action in a container of its own that
// shares the job container's network, workspace and tool cache, under the
// job container's sandbox (sandboxArgs), with its environment files in a
// private directory of the host (filesDir) that it sees at
// /github/file_commands.
func (j *execJob) runDockerAction(step *protocol.Step, la *loadedAction, inputs, stepEnv map[string]string, env *expr.Env, timeout float64, out *stepOutput) stepResult {
	fail := func(format string, args ...any) stepResult {
		out.errorf(format, args...)
		return stepResult{outcome: protocol.ConclusionFailure}
	}
	image, err := j.actionImage(la, out)
	if err != nil {
		return fail("%v", err)
	}
	var runs workflow.ActionRuns
	if la.def != nil {
		runs = la.def.Runs
	}
	// runs.env and runs.args may use inputs.
	ie := j.exprEnvFor(stepEnv)
	ctx := maps.Clone(ie.Contexts)
	inCtx := map[string]any{}
	for k, v := range inputs {
		inCtx[k] = v
	}
	ctx["inputs"] = inCtx
	ie = &expr.Env{Contexts: ctx, JobStatus: ie.JobStatus, HashFiles: ie.HashFiles}
	var args []string
	for _, a := range runs.Args {
		v, err := j.interpolate(a, ie)
		if err != nil {
			return fail("runs.args: %v", err)
		}
		args = append(args, v)
	}
	if la.def == nil { // docker://: the args and entrypoint inputs, as on GitHub
		if args, err = dockerActionArgs(inputs["args"]); err != nil {
			return fail("with.args: %v", err)
		}
		runs.Entrypoint = inputs["entrypoint"]
	}
	hostFiles, err := j.filesDir()
	if err != nil {
		return fail("%v", err)
	}
	keepFiles := false // a post step still needs them
	defer func() {
		if !keepFiles {
			os.RemoveAll(hostFiles)
		}
	}()
	const cf = "/github/file_commands"
	files := stepFiles{dir: cf, output: cf + "/set_output", env: cf + "/set_env", path: cf + "/add_path", state: cf + "/save_state", summary: cf + "/step_summary"}
	for _, f := range []string{"set_output", "set_env", "add_path", "save_state", "step_summary"} {
		if err := os.WriteFile(filepath.Join(hostFiles, f), nil, 0o666); err != nil {
			return fail("%v", err)
		}
		os.Chmod(filepath.Join(hostFiles, f), 0o666) // the action's user writes here
	}
	full := j.actionEnv(step, la, inputs, j.processEnv(stepEnv, files))
	for _, kv := range runs.Env {
		v, err := j.interpolate(kv.Value, ie)
		if err != nil {
			return fail("runs.env.%s: %v", kv.Name, err)
		}
		full[kv.Name] = v
	}
	maps.Copy(full, j.stateEnv(step))
	full["HOME"] = "/github/home"
	full["GITHUB_WORKSPACE"] = protocol.Workspace

	run := func(entrypoint string, out *stepOutput) stepResult {
		name := fmt.Sprintf("%sstep%d-%d", j.name+"-", step.ID, j.filesSeq)
		j.filesSeq++
		dargs := j.dockerActionRunArgs(name, hostFiles)
		var clientEnv []string
		envFile := &strings.Builder{}
		for _, k := range slices.Sorted(maps.Keys(full)) {
			v := full[k]
			if !validEnvName(k) {
				continue
			}
			if dockerClientEnv(k) {
				if strings.ContainsAny(v, "\r\n") {
					out.linef("##[warning]not setting %s: a multi-line value cannot reach a Docker action under this name", k)
					continue
				}
				fmt.Fprintf(envFile, "%s=%s\n", k, v)
				continue
			}
			dargs = append(dargs, "-e", k)
			clientEnv = append(clientEnv, k+"="+v)
		}
		if envFile.Len() > 0 {
			// In the job's private directory, beside the file commands.
			f, err := os.CreateTemp(filepath.Dir(hostFiles), "env-")
			if err != nil {
				out.errorf("%v", err)
				return stepResult{outcome: protocol.ConclusionFailure}
			}
			defer os.Remove(f.Name())
			f.WriteString(envFile.String())
			f.Close()
			dargs = append(dargs, "--env-file", f.Name())
		}
		if entrypoint != "" {
			dargs = append(dargs, "--entrypoint", entrypoint)
		}
		dargs = append(dargs, "--", image)
		dargs = append(dargs, args...)
		stepCtx := j.execCtx
		if timeout > 0 {
			var cancel context.CancelFunc
			stepCtx, cancel = context.WithTimeout(stepCtx, time.Duration(timeout*float64(j.ex.minute)))
			defer cancel()
		}
		cmd := j.ex.docker.command(stepCtx, clientEnv, dargs...)
		cmd.Stdout, cmd.Stderr = out, out
		err := cmd.Run()
		out.endLines()
		res := stepResult{outcome: protocol.ConclusionFailure}
		switch code := processExitCode(err); {
		case j.abortReason() != "" || j.isForced():
			res.outcome = protocol.ConclusionCancelled
		case err == nil:
			res.outcome = protocol.ConclusionSuccess
		case stepCtx.Err() != nil:
			out.errorf("The action has timed out.")
		case code >= 0:
			out.errorf("Docker run failed with exit code %d", code)
		default:
			out.errorf("docker run: %v", err)
		}
		if out.cmdFailed {
			res.outcome = protocol.ConclusionFailure
		}
		res.outputs = out.outputs
		prev := out.step
		out.step = step // saved state belongs to this action
		defer func() { out.step = prev }()
		got := map[string][]byte{}
		for _, f := range []string{"set_output", "set_env", "add_path", "save_state", "step_summary"} {
			b, err := readRegularFile(filepath.Join(hostFiles, f), envFileMaxSize)
			if err == nil && len(b) > 0 {
				got[f] = b
			}
			os.Remove(filepath.Join(hostFiles, f))
			os.WriteFile(filepath.Join(hostFiles, f), nil, 0o666)
			os.Chmod(filepath.Join(hostFiles, f), 0o666)
		}
		if err := j.applyFileMap(step, files, got, out, &res); err != nil {
			out.errorf("%v", err)
			if res.outcome == protocol.ConclusionSuccess {
				res.outcome = protocol.ConclusionFailure
			}
		}
		return res
	}
	if runs.PreEntrypoint != "" {
		out.linef("##[group]Pre %s", step.Name)
		res := run(runs.PreEntrypoint, out)
		out.linef("##[endgroup]")
		if res.outcome != protocol.ConclusionSuccess {
			return res
		}
	}
	res := run(runs.Entrypoint, out)
	if runs.PostEntrypoint != "" {
		post := runs.PostEntrypoint
		keepFiles = true
		j.addPost(step, runs.PostIf, out, func(o *stepOutput) stepResult {
			defer os.RemoveAll(hostFiles)
			return run(post, o)
		})
	}
	return res
}

// dockerActionRunArgs is the docker run command line of a Docker action's
// container, up to its environment: the job container's sandbox, its
// network namespace and volumes, and the file commands directory.
func (j *execJob) dockerActionRunArgs(name, hostFiles string) []string {
	args := []string{"run", "--rm", "--init", "--name", name}
	args = append(args, j.labelArgs()...)
	args = append(args, "--network", "container:"+j.name)
	args = append(args, j.sandboxArgs()...)
	return append(args, "--volumes-from", j.name,
		"-v", hostFiles+":/github/file_commands", "-w", protocol.Workspace)
}

// readRegularFile reads at most limit bytes of the regular file p, never
// following a symbolic link or opening a fifo or device that the action
// put in its place: fs.ErrInvalid for those, and for a larger file.
func readRegularFile(p string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() || info.Size() > limit {
		return nil, fs.ErrInvalid
	}
	return io.ReadAll(io.LimitReader(f, limit))
}
