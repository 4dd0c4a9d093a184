// Triggers: the runs a push or a workflow_dispatch starts.

package main

import (
	"context"
	"errors"
	"path"
	"regexp"
	"strings"
)

var refRE = regexp.MustCompile(`^refs/(heads|tags)/[^\x00-\x20~^:?*\[\\]+$`)

// triggerPush starts the runs a push calls for: every workflow at the
// pushed commit whose push trigger matches the ref and changed files, and
// every workflow that does not parse (as a failed run). created is false
// when this push was recorded before; its runs are returned again.
func triggerPush(ctx context.Context, st *Store, repo *Repo, actor *User, ref, before, after string) (runs []*Run, created bool, err error) {
	switch {
	case !refRE.MatchString(ref):
		return nil, false, invalidf("ref must be a full branch or tag ref, like refs/heads/main")
	case !shaRE.MatchString(after):
		return nil, false, invalidf("after must be a 40-character commit sha")
	case before != "" && !shaRE.MatchString(before):
		return nil, false, invalidf("before must be a 40-character commit sha")
	}
	if after == zeroSHA { // a deleted ref runs nothing
		return []*Run{}, true, nil
	}
	g := gitRepo{dir: repo.GitDir}
	if _, err := g.resolve(ctx, after); errors.Is(err, errNotFound) {
		return nil, false, invalidf("commit %s is not in the repository", after)
	} else if err != nil {
		return nil, false, err
	}
	files, err := g.workflowFiles(ctx, after)
	if err != nil {
		return nil, false, err
	}
	var changed []string // computed once, when a workflow first needs it
	diffed := false
	var specs []runSpec
	for _, f := range files {
		content, err := g.readFile(ctx, after, f)
		if err != nil {
			return nil, false, err
		}
		wf, perr := parseWorkflow(path.Base(f), content)
		if len(content) > maxWorkflowBytes {
			content = content[:maxWorkflowBytes+1] // enough for a re-run to fail the same way
		}
		if perr == nil {
			if wf.Push == nil {
				continue
			}
			if !diffed {
				if changed, err = g.changedFiles(ctx, before, after); err != nil {
					return nil, false, err
				}
				diffed = true
			}
			if !wf.Push.matches(ref, changed) {
				continue
			}
		}
		specs = append(specs, runSpec{
			RepoID: repo.ID, File: f, Content: content, Workflow: wf, ParseErr: perr,
			HeadSHA: after, HeadRef: ref, Event: "push", ActorID: actor.ID,
		})
	}
	return st.createRuns(ctx, &pushKey{RepoID: repo.ID, Ref: ref, After: after}, specs)
}

// triggerDispatch starts a workflow_dispatch run of one workflow file at a
// ref (a branch or tag name, or a full ref).
func triggerDispatch(ctx context.Context, st *Store, repo *Repo, actor *User, file, ref string, inputs map[string]any) (*Run, error) {
	if !isWorkflowFile(workflowDir + file) {
		return nil, notFoundf("workflow not found")
	}
	if ref == "" {
		return nil, invalidf("ref is required")
	}
	g := gitRepo{dir: repo.GitDir}
	full := ref
	if !strings.HasPrefix(ref, "refs/") {
		full = "refs/heads/" + ref
		if _, err := g.resolve(ctx, full); errors.Is(err, errNotFound) {
			full = "refs/tags/" + ref
		} else if err != nil {
			return nil, err
		}
	}
	sha, err := g.resolve(ctx, full)
	if errors.Is(err, errNotFound) || err == nil && !refRE.MatchString(full) {
		return nil, invalidf("no branch or tag %q", ref)
	}
	if err != nil {
		return nil, err
	}
	path := workflowDir + file
	content, err := g.readFile(ctx, sha, path)
	if errors.Is(err, errNotFound) {
		return nil, notFoundf("workflow not found")
	}
	if err != nil {
		return nil, err
	}
	wf, err := parseWorkflow(file, content)
	if err != nil {
		return nil, invalidf("%v", err)
	}
	if wf.Dispatch == nil {
		return nil, invalidf("workflow %s has no workflow_dispatch trigger", file)
	}
	resolved, err := wf.Dispatch.resolve(inputs)
	if err != nil {
		return nil, invalidf("%v", err)
	}
	runs, _, err := st.createRuns(ctx, nil, []runSpec{{
		RepoID: repo.ID, File: path, Content: content, Workflow: wf,
		HeadSHA: sha, HeadRef: full, Event: "workflow_dispatch", Inputs: resolved, ActorID: actor.ID,
	}})
	if err != nil {
		return nil, err
	}
	return runs[0], nil
}
