// Git over HTTP for repositories: git's smart protocol at
// /{owner}/{repo}.git (or without .git), through `git http-backend`, for
// people with a PAT and for jobs with their GITHUB_TOKEN. Fetching needs
// read permission (anyone, on a public repository); pushing needs write
// permission and a PAT with repo:write, or a GITHUB_TOKEN with
// `contents: write`. A push starts runs as a push does, except one made
// with a GITHUB_TOKEN: GitHub's rule that keeps workflows from triggering
// themselves in a loop.

package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"strconv"
	"strings"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/store"
)

// gitHTTPPushEnv is set in the environment of a push through the server, so
// the repository's post-receive hook (shithub-actions hook post-receive)
// leaves the push to the server, which knows who pushed.
const gitHTTPPushEnv = "SHITHUB_ACTIONS_HTTP_PUSH"

// maxGitBody caps a push's request body.
const maxGitBody = 1 << 30

// gitServices are the endings of smart-HTTP paths.
var gitServices = []string{"/info/refs", "/git-upload-pack", "/git-receive-pack"}

// isGitRequest reports whether r is for the git endpoint: its errors carry
// a Basic challenge (git asks for credentials only then) and plain text.
func isGitRequest(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		return false
	}
	for _, s := range gitServices {
		if strings.HasSuffix(r.URL.Path, s) && strings.Count(r.URL.Path, "/") == 2+strings.Count(s, "/") {
			return true
		}
	}
	return false
}

// errGitAuthRequired asks git for credentials.
var errGitAuthRequired = &apperr.Error{Code: apperr.Unauthenticated, Msg: "authentication required: use a personal access token (or a job's GITHUB_TOKEN) as the password"}

// handleGitInfoRefs serves GET /{owner}/{repo}/info/refs?service=git-upload-pack|git-receive-pack.
func (s *server) handleGitInfoRefs(w http.ResponseWriter, r *http.Request) error {
	service := r.URL.Query().Get("service")
	if service != "git-upload-pack" && service != "git-receive-pack" {
		return apperr.NotFoundf("only git's smart HTTP protocol is served: use git 1.6.6 or newer")
	}
	return s.serveGit(w, r, service == "git-receive-pack")
}

// handleGitUploadPack serves POST /{owner}/{repo}/git-upload-pack: fetch.
func (s *server) handleGitUploadPack(w http.ResponseWriter, r *http.Request) error {
	return s.serveGit(w, r, false)
}

// handleGitReceivePack serves POST /{owner}/{repo}/git-receive-pack: push.
func (s *server) handleGitReceivePack(w http.ResponseWriter, r *http.Request) error {
	return s.serveGit(w, r, true)
}

// gitRepoFromPath loads the path's repository: {repo} may end in .git.
func (s *server) gitRepoFromPath(ctx context.Context, r *http.Request) (*store.Repo, error) {
	owner, name := r.PathValue("owner"), r.PathValue("repo")
	if base, ok := strings.CutSuffix(name, ".git"); ok && base != "" {
		repo, err := s.store.RepoByName(ctx, owner, base)
		if !errors.Is(err, apperr.ErrNotFound) {
			return repo, err
		}
	}
	return s.store.RepoByName(ctx, owner, name)
}

// serveGit checks who may do what and hands the request to git
// http-backend. push is true for git-receive-pack.
func (s *server) serveGit(w http.ResponseWriter, r *http.Request, push bool) error {
	ctx := r.Context()
	user, tok, err := s.authUser(r)
	if err != nil {
		return err
	}
	scope := store.ScopeRead
	if push {
		scope = store.ScopeWrite
	}
	if tok != nil && user.Job == nil && !tok.HasScope(scope) {
		return store.ErrLacksScope(scope)
	}
	repo, err := s.gitRepoFromPath(ctx, r)
	if errors.Is(err, apperr.ErrNotFound) && user == nil {
		return errGitAuthRequired // it may be private: ask for credentials
	}
	if err != nil {
		return err
	}
	p, err := s.store.Permission(ctx, repo, user)
	if err != nil {
		return err
	}
	if user != nil && user.Job != nil {
		// A GITHUB_TOKEN's git rights are its `contents` permission.
		p = store.JobPermission(user.Job, repo, user.Job.Perms.Contents)
	}
	switch {
	case p < store.PermRead && user == nil:
		return errGitAuthRequired
	case p < store.PermRead:
		return apperr.ErrNotFound
	case push && user == nil:
		return errGitAuthRequired
	case push && p < store.PermWrite:
		if user.Job != nil && user.Job.RepoID != repo.ID {
			own := "its own repository"
			if r, err := s.store.RepoByID(ctx, user.Job.RepoID); err == nil {
				own += ", " + r.FullName()
			}
			return apperr.Forbiddenf("a job's GITHUB_TOKEN may push only %s", own)
		}
		if user.Job != nil {
			return apperr.Forbiddenf("this job's GITHUB_TOKEN may not push: give the job `permissions: contents: write` (a fork's pull request gets contents: read at most)")
		}
		return apperr.Forbiddenf("write permission on %s required to push", repo.FullName())
	}

	var cmds []gitPushCommand
	if push && r.Method == http.MethodPost {
		if cmds, err = gitReadPushCommands(r); err != nil {
			return err
		}
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return err
	}
	env := []string{
		"GIT_PROJECT_ROOT=" + repo.GitDir,
		"GIT_HTTP_EXPORT_ALL=1",
		"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=uploadpack.allowReachableSHA1InWant", "GIT_CONFIG_VALUE_0=true",
		"GIT_CONFIG_KEY_1=http.receivepack", "GIT_CONFIG_VALUE_1=" + strconv.FormatBool(push),
		gitHTTPPushEnv + "=1",
	}
	if user != nil {
		env = append(env, "REMOTE_USER="+user.Name)
	}
	suffix := ""
	for _, sv := range gitServices {
		if strings.HasSuffix(r.URL.Path, sv) {
			suffix = sv
		}
	}
	h := &cgi.Handler{
		Path:   gitPath,
		Args:   []string{"http-backend"},
		Root:   strings.TrimSuffix(r.URL.Path, suffix),
		Env:    env,
		Stderr: io.Discard,
	}
	h.ServeHTTP(w, r)

	if len(cmds) > 0 && user.Job == nil {
		s.triggerPushed(context.WithoutCancel(ctx), repo, user, cmds)
	}
	return nil
}

// gitPushCommand is one ref update a push asked for.
type gitPushCommand struct {
	Old, New, Ref string
}

// gitZeroSHA is the sha of a ref that does not exist (before a create,
// after a delete).
const gitZeroSHA = "0000000000000000000000000000000000000000"

// gitReadPushCommands reads the ref updates at the start of a
// git-receive-pack request (pkt-lines up to the first flush-pkt) and
// leaves r.Body as it was for http-backend. A gzipped body is unzipped
// for both.
func gitReadPushCommands(r *http.Request) ([]gitPushCommand, error) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, apperr.Malformedf("the request body is not gzip: %v", err)
		}
		body = gz
		r.Header.Del("Content-Encoding")
		r.ContentLength = -1
	}
	br := bufio.NewReader(body)
	var prefix bytes.Buffer
	var cmds []gitPushCommand
	for prefix.Len() < 8<<20 {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil, apperr.Malformedf("reading the push commands: %v", err)
		}
		prefix.Write(hdr[:])
		n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
		if err != nil {
			return nil, apperr.Malformedf("bad pkt-line length %q", hdr)
		}
		if n == 0 { // flush-pkt: the commands are done
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(prefix.Bytes()), br))
			return cmds, nil
		}
		if n < 4 {
			continue // delim-pkt and the like
		}
		line := make([]byte, n-4)
		if _, err := io.ReadFull(br, line); err != nil {
			return nil, apperr.Malformedf("reading the push commands: %v", err)
		}
		prefix.Write(line)
		text, _, _ := strings.Cut(string(line), "\x00") // capabilities follow the first command
		f := strings.Fields(text)
		if len(f) == 3 && gitIsSHA(f[0]) && gitIsSHA(f[1]) {
			cmds = append(cmds, gitPushCommand{f[0], f[1], f[2]})
		}
	}
	return nil, apperr.Malformedf("too many push commands")
}

func gitIsSHA(s string) bool {
	if len(s) != 40 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// triggerPushed starts the runs of the ref updates of a push that took
// effect: branches and tags now at the pushed commit.
func (s *server) triggerPushed(ctx context.Context, repo *store.Repo, user *store.User, cmds []gitPushCommand) {
	g := git.Repo{Dir: repo.GitDir}
	started := false
	for _, c := range cmds {
		if c.New == gitZeroSHA || !strings.HasPrefix(c.Ref, "refs/heads/") && !strings.HasPrefix(c.Ref, "refs/tags/") {
			continue
		}
		out, err := git.Run(ctx, "git", nil, "--git-dir", g.Dir, "rev-parse", "--verify", "-q", c.Ref)
		if err != nil || strings.TrimSpace(string(out)) != c.New {
			continue // refused, or moved on since
		}
		res, err := store.TriggerPush(ctx, s.store, repo, &store.User{ID: user.ID, Name: user.Name}, c.Ref, c.Old, c.New)
		if err != nil {
			s.log.Error("starting the runs of a push", "repo", repo.FullName(), "ref", c.Ref, "err", err)
			continue
		}
		started = started || res.Created
	}
	if started {
		s.Wake()
	}
}

// gitErrorBody is what git shows of a refusal: one line of text.
func gitErrorBody(msg string) string { return fmt.Sprintf("%s\n", msg) }
