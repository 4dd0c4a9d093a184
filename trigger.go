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

// pushResult is what a push started: its runs; created is false when this
// push was recorded before and its runs are returned again. Disabled lists
// the workflow files whose push trigger matched but that are disabled, so
// started nothing.
type pushResult struct {
	Runs     []*Run
	Created  bool
	Disabled []string
}

// triggerPush starts the runs a push calls for: every workflow at the
// pushed commit whose push trigger matches the ref and changed files, and
// every workflow that does not parse (as a failed run), except disabled
// workflows.
func triggerPush(ctx context.Context, st *Store, repo *Repo, actor *User, ref, before, after string) (*pushResult, error) {
	switch {
	case !refRE.MatchString(ref):
		return nil, invalidf("ref must be a full branch or tag ref, like refs/heads/main")
	case !shaRE.MatchString(after):
		return nil, invalidf("after must be a 40-character commit sha")
	case before != "" && !shaRE.MatchString(before):
		return nil, invalidf("before must be a 40-character commit sha")
	}
	if after == zeroSHA { // a deleted ref runs nothing
		return &pushResult{Runs: []*Run{}, Created: true}, nil
	}
	g := gitRepo{dir: repo.GitDir}
	commit, err := g.commit(ctx, after)
	if errors.Is(err, errNotFound) {
		return nil, invalidf("commit %s is not in the repository", after)
	} else if err != nil {
		return nil, err
	}
	files, err := g.workflowFiles(ctx, after)
	if err != nil {
		return nil, err
	}
	disabled, err := st.disabledWorkflows(ctx, repo.ID)
	if err != nil {
		return nil, err
	}
	res := &pushResult{}
	var changed []string // computed once, when a workflow first needs it
	diffed := false
	var specs []runSpec
	for _, f := range files {
		content, err := g.readFile(ctx, after, f)
		if err != nil {
			return nil, err
		}
		wf, perr := parseWorkflow(path.Base(f), content)
		if perr == nil {
			if wf.Push == nil {
				continue
			}
			if !diffed {
				if changed, err = g.changedFiles(ctx, before, after); err != nil {
					return nil, err
				}
				diffed = true
			}
			if !wf.Push.matches(ref, changed) {
				continue
			}
		}
		if disabled[f] {
			res.Disabled = append(res.Disabled, f)
			continue
		}
		specs = append(specs, runSpec{
			RepoID: repo.ID, File: f, Content: content, Workflow: wf, ParseErr: perr,
			HeadSHA: after, HeadRef: ref, Event: "push", ActorID: actor.ID,
			Title: subject(commit.Message), HeadCommit: commit,
		})
	}
	res.Runs, res.Created, err = st.createRuns(ctx, &pushKey{RepoID: repo.ID, Ref: ref, After: after}, specs)
	if err != nil {
		return nil, err
	}
	if !res.Created {
		res.Disabled = nil // the runs were decided when the push was first delivered
	}
	return res, nil
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
	if w, err := st.workflowByPath(ctx, repo.ID, path); err == nil && w.State != workflowActive {
		return nil, conflictf("workflow %s is disabled: enable it to start runs", file)
	} else if err != nil && !errors.Is(err, errNotFound) {
		return nil, err
	}
	commit, err := g.commit(ctx, sha)
	if err != nil {
		return nil, err
	}
	runs, _, err := st.createRuns(ctx, nil, []runSpec{{
		RepoID: repo.ID, File: path, Content: content, Workflow: wf,
		HeadSHA: sha, HeadRef: full, Event: "workflow_dispatch", Inputs: resolved, ActorID: actor.ID,
		Title: wf.Name, HeadCommit: commit,
	}})
	if err != nil {
		return nil, err
	}
	return runs[0], nil
}
