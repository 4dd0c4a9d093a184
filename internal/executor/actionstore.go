// The action store: where `uses: OWNER/REPO[/PATH]@REF` actions come from,
// fetched with the git CLI into the data directory, shared by jobs and
// verified by commit id.

package executor

// Layout under the store's directory (<data-dir>/actions):
//
//	local/<owner>/<repo>.git   a bare repository holding what was fetched from this server's repository
//	remote/<owner>/<repo>.git  the same for what came from --actions-url
//	trees/<owner>/<repo>/<sha> the files of commit <sha>, written once
//
// The two sources never share a repository: a job that may not reach a
// private repository of this server (reach.go) is sent to --actions-url
// under the same name, and must not find that repository's commits or
// branches in what was fetched for a job that could. (Older versions kept
// both in repos/, which is removed for that reason.) Trees are named by
// commit, so sharing them is harmless: a job reaches a tree only through a
// commit its own source gave.
//
// A tree directory appears by rename when it is complete, so a directory
// that exists is whole and is the commit its name says; jobs only read it.
// Resolving REF asks the source (git ls-remote) each time, as GitHub does,
// so a moved tag is seen; when the source cannot be reached, a REF fetched
// before (by a job or by `actions fetch`) is used, and the log says so.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/workflow"
)

// actionStore fetches and caches repository actions.
type actionStore struct {
	dir    string // <data-dir>/actions
	source string // --actions-url: https://host[/prefix] or file:///dir
	// local finds a repository registered on this server, for the job
	// jobID (0: the command line); apperr.ErrNotFound when there is none or the
	// job may not reach it (Store.actionRepo). nil on a remote runner.
	Local func(ctx context.Context, owner, repo string, jobID int64) (gitDir string, err error)

	mu    sync.Mutex             // guards locks
	locks map[string]*sync.Mutex // per OWNER/REPO: its fetches go one at a time
}

// defaultActionsURL is where actions come from unless --actions-url says.
const DefaultActionsURL = "https://github.com"

func NewActionStore(dir, source string) (*actionStore, error) {
	if source == "" {
		source = DefaultActionsURL
	}
	if err := CheckActionsURL(source); err != nil {
		return nil, err
	}
	// What older versions fetched, from either source (see the layout).
	if err := os.RemoveAll(filepath.Join(dir, "repos")); err != nil {
		return nil, err
	}
	return &actionStore{dir: dir, source: strings.TrimRight(source, "/"), locks: map[string]*sync.Mutex{}}, nil
}

// checkActionsURL validates --actions-url.
func CheckActionsURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") ||
		(u.Scheme != "file" && u.Host == "") || (u.Scheme == "file" && (u.Host != "" || !strings.HasPrefix(u.Path, "/"))) {
		return fmt.Errorf("bad --actions-url %q: want https://HOST[/PATH] or file:///DIR", s)
	}
	return nil
}

// fetchedAction is an action on disk, ready to run.
type fetchedAction struct {
	Ref    workflow.ActionRef
	SHA    string // the commit the ref resolved to
	Root   string // the repository's files at SHA
	Dir    string // the action's directory: Root, or Root/PATH
	Origin string // where it came from, for the log
	Notes  []string
}

func (s *actionStore) repoLock(key string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		s.locks[key] = l
	}
	return l
}

// actionSource is one place a repository can be fetched from.
type actionSource struct {
	url    string // what git fetches from: a URL or a directory
	show   string // for messages
	remote bool   // over the network: fetch shallow
	local  bool   // a repository of this server
}

// sourceFor is where OWNER/REPO comes from for the job jobID: this
// server's repository of that name when the job may reach it, else
// --actions-url.
func (s *actionStore) sourceFor(ctx context.Context, ref workflow.ActionRef, jobID int64) (actionSource, error) {
	if s.Local != nil {
		dir, err := s.Local(ctx, ref.Owner, ref.Repo, jobID)
		if err == nil {
			return actionSource{url: dir, show: "this server's " + ref.Owner + "/" + ref.Repo, local: true}, nil
		}
		if !errors.Is(err, apperr.ErrNotFound) {
			return actionSource{}, err
		}
	}
	if dir, ok := strings.CutPrefix(s.source, "file://"); ok {
		for _, c := range []string{filepath.Join(dir, ref.Owner, ref.Repo+".git"), filepath.Join(dir, ref.Owner, ref.Repo)} {
			if fi, err := os.Stat(c); err == nil && fi.IsDir() {
				return actionSource{url: c, show: "file://" + c}, nil
			}
		}
		return actionSource{}, apperr.NotFoundf("action %s/%s is neither on this server nor in %s (looked for %s/%s[.git]; a private repository of this server counts only for the jobs that may reach it)",
			ref.Owner, ref.Repo, s.source, ref.Owner, ref.Repo)
	}
	u := s.source + "/" + url.PathEscape(ref.Owner) + "/" + url.PathEscape(ref.Repo)
	return actionSource{url: u, show: u, remote: true}, nil
}

// fetch makes the action ref names available on disk, for the job jobID
// (0 from the command line).
func (s *actionStore) Fetch(ctx context.Context, ref workflow.ActionRef, jobID int64) (*fetchedAction, error) {
	if ref.Kind != workflow.ActionRepo {
		return nil, apperr.Invalidf("%s is not a repository action", ref)
	}
	owner, repo := strings.ToLower(ref.Owner), strings.ToLower(ref.Repo)
	l := s.repoLock(owner + "/" + repo)
	l.Lock()
	defer l.Unlock()

	src, err := s.sourceFor(ctx, ref, jobID)
	if err != nil {
		return nil, err
	}
	kind := "remote"
	if src.local {
		kind = "local"
	}
	bare := git.Repo{Dir: filepath.Join(s.dir, kind, owner, repo+".git")}
	if _, err := os.Stat(filepath.Join(bare.Dir, "HEAD")); err != nil {
		if err := os.MkdirAll(filepath.Dir(bare.Dir), 0o755); err != nil {
			return nil, err
		}
		if _, err := git.Run(ctx, "", nil, "init", "--quiet", "--bare", bare.Dir); err != nil {
			return nil, err
		}
	}
	fa := &fetchedAction{Ref: ref, Origin: src.show}
	if fa.SHA, err = s.resolve(ctx, bare, src, ref, fa); err != nil {
		return nil, err
	}
	fa.Root = filepath.Join(s.dir, "trees", owner, repo, fa.SHA)
	if err := s.materialize(ctx, bare, fa.SHA, fa.Root); err != nil {
		return nil, fmt.Errorf("%s: the files of %.12s from %s: %w", ref, fa.SHA, src.show, err)
	}
	fa.Dir = fa.Root
	if ref.Path != "" {
		fa.Dir = filepath.Join(fa.Root, filepath.FromSlash(ref.Path))
		if fi, err := os.Stat(fa.Dir); err != nil || !fi.IsDir() {
			return nil, apperr.NotFoundf("%s: %s has no directory %s at %.12s", ref, src.show, ref.Path, fa.SHA)
		}
	}
	return fa, nil
}

// resolve turns ref.Ref into a commit present in bare, fetching it from
// src when needed.
func (s *actionStore) resolve(ctx context.Context, bare git.Repo, src actionSource, ref workflow.ActionRef, fa *fetchedAction) (string, error) {
	want := ref.Ref
	if workflow.FullSHA.MatchString(want) {
		if have, _ := bare.Resolve(ctx, want); have == want {
			return want, nil
		}
		// Fetching a commit by id works where the source allows it
		// (GitHub does); else fetch every branch and tag and look.
		if _, err := s.gitFetch(ctx, bare, src, want); err != nil {
			if _, err := s.gitFetch(ctx, bare, src, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"); err != nil {
				return "", apperr.Unavailablef("%s: cannot fetch from %s: %v", ref, src.show, gitMessage(err))
			}
		}
		if have, _ := bare.Resolve(ctx, want); have != want {
			return "", apperr.NotFoundf("%s: no commit %s in %s", ref, want, src.show)
		}
		return want, nil
	}

	full, sha, err := s.lsRemote(ctx, src, want)
	if err != nil {
		// Unreachable: use what was fetched before, if anything.
		for _, r := range []string{"refs/tags/" + want, "refs/heads/" + want} {
			if have, rerr := bare.Resolve(ctx, r); rerr == nil {
				fa.Notes = append(fa.Notes, fmt.Sprintf("cannot reach %s (%v); using %s as fetched before: %s", src.show, gitMessage(err), r, have))
				return have, nil
			}
		}
		return "", apperr.Unavailablef("%s: cannot reach %s: %v", ref, src.show, gitMessage(err))
	}
	if full == "" {
		return "", apperr.NotFoundf("%s: %s has no tag or branch %q (a commit id must be all 40 hex digits)", ref, src.show, want)
	}
	if have, _ := bare.Resolve(ctx, sha); have == sha {
		// Keep the ref, so a later offline job finds it.
		if _, err := bare.Git(ctx, "update-ref", full, sha); err != nil {
			return "", err
		}
		return sha, nil
	}
	if _, err := s.gitFetch(ctx, bare, src, "+"+full+":"+full); err != nil {
		return "", apperr.Unavailablef("%s: cannot fetch %s from %s: %v", ref, full, src.show, gitMessage(err))
	}
	have, err := bare.Resolve(ctx, full)
	if err != nil {
		return "", apperr.NotFoundf("%s: %s fetched from %s is not there: %v", ref, full, src.show, gitMessage(err))
	}
	// The commit we fetched must be the one the source advertised: the
	// tag may have moved between ls-remote and fetch.
	if have != sha {
		return "", apperr.Conflictf("%s: %s moved while it was fetched (%s, then %s); try again", ref, full, sha, have)
	}
	return sha, nil
}

// lsRemote resolves name to a full ref and its commit as git does, tags
// before branches; full is "" when there is no such ref.
func (s *actionStore) lsRemote(ctx context.Context, src actionSource, name string) (full, sha string, err error) {
	tag, head := "refs/tags/"+name, "refs/heads/"+name
	out, err := git.Run(ctx, "", nil, "ls-remote", "--", src.url, tag, head)
	if err != nil {
		return "", "", err
	}
	refs := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		id, r, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && git.SHARE.MatchString(id) {
			refs[r] = id
		}
	}
	switch {
	case refs[tag+"^{}"] != "": // an annotated tag: its commit
		return tag, refs[tag+"^{}"], nil
	case refs[tag] != "":
		return tag, refs[tag], nil
	case refs[head] != "":
		return head, refs[head], nil
	}
	return "", "", nil
}

// gitFetch fetches refspecs from src into bare; shallow over the network,
// since an action needs only its commit.
func (s *actionStore) gitFetch(ctx context.Context, bare git.Repo, src actionSource, refspecs ...string) ([]byte, error) {
	// --update-shallow: a mirror made with `git clone --depth 1` is shallow,
	// and without it git refuses the refs whose history it cut.
	args := []string{"--git-dir", bare.Dir, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--update-shallow"}
	if src.remote {
		args = append(args, "--depth=1")
	}
	args = append(append(args, "--", src.url), refspecs...)
	return git.Run(ctx, "", nil, args...)
}

// materialize writes commit sha's files to dir, once.
func (s *actionStore) materialize(ctx context.Context, bare git.Repo, sha, dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if have, err := bare.Resolve(ctx, sha); err != nil || have != sha {
		return fmt.Errorf("commit %s is not in %s: %v", sha, bare.Dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), sha+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	index := tmp + ".index"
	defer os.Remove(index)
	// checkout, not archive: archive would drop export-ignore'd files.
	if _, err := git.Run(ctx, "", []string{"GIT_INDEX_FILE=" + index},
		"--git-dir", bare.Dir, "--work-tree", tmp, "-c", "core.autocrlf=false", "-c", "core.symlinks=true",
		"checkout", "--quiet", "--force", sha, "--", "."); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if fi, serr := os.Stat(dir); serr == nil && fi.IsDir() {
			return nil // another process got there first
		}
		return err
	}
	return nil
}

// gitMessage is git's own complaint, for a log line.
func gitMessage(err error) string {
	var ge *git.Error
	if errors.As(err, &ge) && ge.Stderr != "" {
		return ge.Stderr
	}
	return err.Error()
}

// FetchWorkflow reads the reusable workflow file OWNER/REPO/FILE at REF
// for the server (Store's Options.FetchWorkflow): fetched as an action of
// that repository would be by the command line (job 0: from this server
// only a public repository, else --actions-url), and read from the fetched
// commit's files. It returns the file, the commit and where it came from.
func (s *actionStore) FetchWorkflow(ctx context.Context, owner, repo, ref, file string) ([]byte, string, string, error) {
	dir, name := path.Split(file)
	fa, err := s.Fetch(ctx, workflow.ActionRef{Kind: workflow.ActionRepo, Owner: owner, Repo: repo, Path: strings.TrimSuffix(dir, "/"), Ref: ref}, 0)
	if err != nil {
		return nil, "", "", err
	}
	b, err := os.ReadFile(filepath.Join(fa.Dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", "", apperr.NotFoundf("%s has no file %s at %.12s", fa.Origin, file, fa.SHA)
	}
	if err != nil {
		return nil, "", "", err
	}
	return b, fa.SHA, fa.Origin, nil
}

// actionMetadata reads and parses the action.yml (or action.yaml) in dir;
// name says what the action is for errors.
func ActionMetadata(dir, name string) (*workflow.ActionDef, error) {
	for _, f := range []string{"action.yml", "action.yaml"} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return workflow.ParseActionYAML(name+"/"+f, data)
	}
	return nil, apperr.NotFoundf("%s has no action.yml or action.yaml", name)
}
