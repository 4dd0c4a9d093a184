// The built-in actions/checkout: its inputs, and the git commands that make
// a self-contained repository of the job's commit (or of the ref, path,
// depth and submodules its inputs ask for) on the host, to be copied into
// the job's workspace volume. It needs no network: the repositories come
// from this server, and a token only to reach a private one (reach.go).

package executor

// As actions/checkout v4 does (src/git-source-provider.ts, ref-helper.ts),
// with these differences: the repository is fetched on the host, never in
// the job container, and copied in; `repository` and submodules can only
// be repositories registered on this server (a submodule's URL names its
// OWNER/REPO, whatever its host); `lfs: true` is refused; `token` is a PAT
// the server checks, and only to reach a private repository of this server
// (reach.go); persist-credentials (default true) leaves the step's token,
// else the job's GITHUB_TOKEN, in the checkout's .git/config as
// actions/checkout does (checkoutcred.go); ssh-key and the other ssh
// inputs have nothing to do and are ignored.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/expr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/protocol"
)

// checkoutSpec is what a checkout step's inputs ask for.
type CheckoutSpec struct {
	Repository string // OWNER/REPO; "" is the job's repository
	Ref        string // a branch, tag, refs/... or commit; "" is the job's ref and commit (another repository's default branch)
	Depth      int    // commits of history; 0 is all of it, with every branch and tag
	Tags       bool   // fetch-tags: the tags too when Depth > 0
	Path       string // under the workspace, cleaned; "" is the workspace itself
	Submodules string // "", "true" (one level) or "recursive"
	Clean      bool   // empty the target directory first
	Token      string // the token input: a PAT that may reach a private repository (reach.go); "" none
}

// sameCheckout reports whether spec asks for what o does, whatever token
// either carries.
func (spec CheckoutSpec) sameCheckout(o CheckoutSpec) bool {
	spec.Token, o.Token = "", ""
	return spec == o
}

// defaultCheckout is what a checkout step without inputs asks for, as on
// GitHub (fetch-depth 1, clean true), and what Set up job checks out.
var DefaultCheckout = CheckoutSpec{Depth: 1, Clean: true}

// checkoutIgnored are actions/checkout's inputs that have nothing to do
// here: credentials the server has no use for, and display options.
var checkoutIgnored = []string{"ssh-key", "ssh-known-hosts", "ssh-strict", "ssh-user",
	"show-progress", "set-safe-directory", "github-server-url"}

// checkoutWholeTree are inputs that narrow the checkout; the whole tree,
// a superset, is checked out instead.
var checkoutWholeTree = []string{"sparse-checkout", "sparse-checkout-cone-mode", "filter"}

var checkoutInputs = []string{"repository", "ref", "token", "fetch-depth", "fetch-tags", "path", "submodules", "clean", "lfs", "persist-credentials"}

// parseCheckoutInputs reads a checkout step's evaluated with: into a spec
// for the job's repository jobRepo, with warnings for inputs it ignores.
func ParseCheckoutInputs(with map[string]string, jobRepo string) (spec CheckoutSpec, warnings []string, err error) {
	spec = DefaultCheckout
	boolean := func(name string, def bool) (bool, error) {
		v := strings.TrimSpace(with[name])
		switch v {
		case "":
			return def, nil
		case "true", "True", "TRUE":
			return true, nil
		case "false", "False", "FALSE":
			return false, nil
		}
		return false, fmt.Errorf("input %s: %q is not a boolean (true or false)", name, v)
	}
	if r := strings.TrimSpace(with["repository"]); r != "" {
		owner, name, ok := strings.Cut(r, "/")
		if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			return spec, nil, fmt.Errorf("input repository: %q is not OWNER/REPO", r)
		}
		if !strings.EqualFold(r, jobRepo) {
			spec.Repository = r
		}
	}
	spec.Ref = strings.TrimSpace(with["ref"])
	spec.Token = strings.TrimSpace(with["token"])
	if d := strings.TrimSpace(with["fetch-depth"]); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return spec, nil, fmt.Errorf("input fetch-depth: %q is not a whole number of commits (0 is all history)", d)
		}
		spec.Depth = n
	}
	if spec.Tags, err = boolean("fetch-tags", false); err != nil {
		return spec, nil, err
	}
	if spec.Clean, err = boolean("clean", true); err != nil {
		return spec, nil, err
	}
	if p := strings.TrimSpace(with["path"]); p != "" {
		c := path.Clean(strings.TrimPrefix(p, protocol.Workspace+"/"))
		if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
			return spec, nil, fmt.Errorf("input path: repository path %q is not under %s", p, protocol.Workspace)
		}
		if c != "." {
			spec.Path = c
		}
	}
	switch s := strings.TrimSpace(with["submodules"]); s {
	case "", "false", "False", "FALSE":
	case "true", "True", "TRUE":
		spec.Submodules = "true"
	case "recursive":
		spec.Submodules = "recursive"
	default:
		return spec, nil, fmt.Errorf("input submodules: %q is not true, false or recursive", s)
	}
	lfs, err := boolean("lfs", false)
	if err != nil {
		return spec, nil, err
	}
	if lfs {
		return spec, nil, errors.New("input lfs: Git LFS is not supported here: this server stores no LFS objects, so a checkout with lfs: true cannot be made")
	}
	for _, k := range slices.Sorted(maps.Keys(with)) {
		switch {
		case slices.Contains(checkoutInputs, k), slices.Contains(checkoutIgnored, k):
		case slices.Contains(checkoutWholeTree, k):
			warnings = append(warnings, fmt.Sprintf("input %s is not supported here and is ignored: the whole tree is checked out", k))
		default:
			valid := slices.Concat(checkoutInputs, checkoutWholeTree, checkoutIgnored)
			warnings = append(warnings, fmt.Sprintf("Unexpected input(s) '%s', valid inputs are ['%s']", k, strings.Join(valid, "', '")))
		}
	}
	return spec, warnings, nil
}

// gitRemote is a repository a checkout fetches from.
type GitRemote struct {
	URL  string   // a directory of this server, or a URL
	env  []string // git's extra environment (a remote runner's token header)
	File bool     // url is a directory: submodules need protocol.file.allow
}

// gitCheckout makes dir (which exists and is empty) a self-contained git
// repository of what spec asks for: objects copied, never borrowed from
// the host, so git works in the job container as on GitHub. resolve finds a
// repository of this server by OWNER/REPO ("" is the job's own); fail marks
// a git failure as permanent or not; display is the origin URL the job sees
// for OWNER/REPO.
func GitCheckout(ctx context.Context, job *protocol.Job, dir string, spec CheckoutSpec,
	resolve func(ctx context.Context, repo string) (GitRemote, error),
	fail func(error) error, display func(repo string) string) error {
	repoName := job.Repo
	if spec.Repository != "" {
		repoName = spec.Repository
	}
	origin, err := resolve(ctx, spec.Repository)
	if err != nil {
		return err
	}
	gitFn := func(env []string, args ...string) (string, error) {
		out, err := git.Run(ctx, "", env, args...)
		return strings.TrimSpace(string(out)), fail(err)
	}
	sha, branch, tag, err := checkoutTarget(ctx, job, spec, repoName, origin, gitFn)
	if err != nil {
		return err
	}
	if _, err := gitFn(nil, "init", "-q", dir); err != nil {
		return err
	}
	if _, err := gitFn(nil, "-C", dir, "remote", "add", "origin", display(repoName)); err != nil {
		return err
	}
	// Fetch by the URL, so origin never holds a host path or a job's
	// address; without reflogs, which would record it.
	fetch := []string{"-C", dir, "-c", "core.logAllRefUpdates=false", "fetch", "-q", "--no-recurse-submodules"}
	var refspecs []string
	switch {
	case spec.Depth == 0:
		refspecs = []string{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*", sha}
	case spec.Tags:
		fetch = append(fetch, "--depth", strconv.Itoa(spec.Depth))
		refspecs = []string{"+refs/tags/*:refs/tags/*"}
	default:
		fetch = append(fetch, "--no-tags", "--depth", strconv.Itoa(spec.Depth))
	}
	if spec.Depth > 0 {
		switch {
		case branch != "":
			refspecs = append(refspecs, "+"+sha+":refs/remotes/origin/"+branch)
		case tag != "" && !spec.Tags:
			refspecs = append(refspecs, "+"+sha+":refs/tags/"+tag)
		default:
			refspecs = append(refspecs, sha)
		}
	}
	if _, err := gitFn(origin.env, append(append(fetch, origin.URL), refspecs...)...); err != nil {
		return err
	}
	switch {
	case branch != "" && spec.Depth > 0:
		// The fetch made origin's branch the job's commit: one command
		// makes the branch there, tracking it.
		_, err = gitFn(nil, "-C", dir, "checkout", "-q", "--force", "-B", branch, "--track", "refs/remotes/origin/"+branch)
	case branch != "":
		// The branch at the job's commit, tracking origin's (which a full
		// fetch may have seen move on since).
		_, err = gitFn(nil, "-C", dir, "checkout", "-q", "--force", "-B", branch, sha)
		if err == nil {
			if _, e := gitFn(nil, "-C", dir, "rev-parse", "-q", "--verify", "refs/remotes/origin/"+branch); e == nil {
				_, err = gitFn(nil, "-C", dir, "branch", "-q", "--set-upstream-to", "origin/"+branch, branch)
			}
		}
	default:
		_, err = gitFn(nil, "-C", dir, "checkout", "-q", "--force", "--detach", sha)
	}
	if err != nil {
		return err
	}
	if spec.Submodules != "" {
		if err := checkoutSubmodules(ctx, dir, repoName, spec, resolve, gitFn, display, 0); err != nil {
			return err
		}
	}
	// FETCH_HEAD names where git fetched from: a host path or a job's
	// address, nothing the job should see.
	return filepath.WalkDir(filepath.Join(dir, ".git"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "FETCH_HEAD" && d.Type().IsRegular() {
			err = os.Remove(p)
		}
		return err
	})
}

// checkoutTarget is the commit a checkout fetches, and the branch or tag it
// is (both "" for a bare commit), as actions/checkout's ref-helper picks:
// no ref is the job's own commit and ref; a branch wins over a tag.
func checkoutTarget(ctx context.Context, job *protocol.Job, spec CheckoutSpec, repoName string, origin GitRemote,
	gitFn func(env []string, args ...string) (string, error)) (sha, branch, tag string, err error) {
	split := func(ref string) (string, string) {
		if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
			return b, ""
		}
		if t, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
			return "", t
		}
		return "", ""
	}
	ref := spec.Ref
	switch {
	case ref == "" && spec.Repository == "":
		if job.HeadSHA == "" {
			return "", "", "", MarkPermanent(errors.New("checkout: the job has no head sha"))
		}
		branch, tag = split(job.HeadRef)
		return job.HeadSHA, branch, tag, nil
	case ref == "":
		// Another repository: its default branch.
		out, err := gitFn(origin.env, "ls-remote", "--symref", origin.URL, "HEAD")
		if err != nil {
			return "", "", "", err
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 3 && f[0] == "ref:" && f[2] == "HEAD":
				branch, _ = split(f[1])
			case len(f) == 2 && f[1] == "HEAD":
				sha = f[0]
			}
		}
		if sha == "" {
			return "", "", "", apperr.NotFoundf("checkout: %s has no default branch (an empty repository?)", repoName)
		}
		return sha, branch, "", nil
	case git.SHARE.MatchString(strings.ToLower(ref)):
		return strings.ToLower(ref), "", "", nil
	}
	candidates := []string{ref}
	if !strings.HasPrefix(ref, "refs/") {
		candidates = []string{"refs/heads/" + ref, "refs/tags/" + ref}
	}
	out, err := gitFn(origin.env, append([]string{"ls-remote", origin.URL}, candidates...)...)
	if err != nil {
		return "", "", "", err
	}
	found := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			found[f[1]] = f[0]
		}
	}
	for _, c := range candidates {
		if s := found[c]; s != "" {
			branch, tag = split(c)
			return s, branch, tag, nil
		}
	}
	return "", "", "", apperr.NotFoundf("checkout: %q is neither a branch nor a tag of %s", ref, repoName)
}

// checkoutSubmodules checks out dir's submodules at the commits its tree
// records, each from the repository of this server its URL names, and
// theirs when spec.Submodules is recursive. A submodule's origin is left
// as the job sees the repository.
func checkoutSubmodules(ctx context.Context, dir, parent string, spec CheckoutSpec,
	resolve func(ctx context.Context, repo string) (GitRemote, error),
	gitFn func(env []string, args ...string) (string, error), display func(string) string, level int) error {
	if level > actionMaxDepth {
		return apperr.Invalidf("submodules nest more than %d deep", actionMaxDepth)
	}
	if _, err := os.Stat(filepath.Join(dir, ".gitmodules")); err != nil {
		return nil
	}
	out, err := gitFn(nil, "-C", dir, "config", "-f", ".gitmodules", "--get-regexp", `^submodule\..*\.url$`)
	if err != nil {
		var ge *git.Error
		if errors.As(err, &ge) && ge.Exited() && ge.Stderr == "" {
			return nil // no url: no submodules
		}
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		key, rawURL, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		name := strings.TrimSuffix(strings.TrimPrefix(key, "submodule."), ".url")
		subPath, err := gitFn(nil, "-C", dir, "config", "-f", ".gitmodules", "submodule."+name+".path")
		if err != nil {
			return fmt.Errorf("submodule %s has no path in .gitmodules: %w", name, err)
		}
		repo, err := submoduleRepo(rawURL, parent)
		if err != nil {
			return fmt.Errorf("submodule %s: %w", name, err)
		}
		remote, err := resolve(ctx, repo)
		if err != nil {
			return fmt.Errorf("submodule %s (%s): %w", name, rawURL, err)
		}
		if _, err := gitFn(nil, "-C", dir, "submodule", "init", "-q", "--", subPath); err != nil {
			return err
		}
		if _, err := gitFn(nil, "-C", dir, "config", "submodule."+name+".url", remote.URL); err != nil {
			return err
		}
		update := []string{"-C", dir, "-c", "core.logAllRefUpdates=false"}
		if remote.File {
			update = append(update, "-c", "protocol.file.allow=always")
		}
		update = append(update, "submodule", "update", "-q", "--force")
		if spec.Depth > 0 {
			update = append(update, "--depth", strconv.Itoa(spec.Depth))
		}
		if _, err := gitFn(remote.env, append(update, "--", subPath)...); err != nil {
			return fmt.Errorf("submodule %s (%s): %w", name, repo, err)
		}
		sub := filepath.Join(dir, filepath.FromSlash(subPath))
		for _, c := range [][]string{
			{"-C", dir, "config", "submodule." + name + ".url", display(repo)},
			{"-C", sub, "remote", "set-url", "origin", display(repo)},
		} {
			if _, err := gitFn(nil, c...); err != nil {
				return err
			}
		}
		if spec.Submodules == "recursive" {
			if err := checkoutSubmodules(ctx, sub, repo, spec, resolve, gitFn, display, level+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// submoduleRepo is the OWNER/REPO a submodule URL names: relative URLs
// (../other.git) against the parent's OWNER/REPO as git resolves them,
// others by the last two elements of their path, whatever the host.
func submoduleRepo(raw, parent string) (string, error) {
	p := raw
	switch {
	case strings.HasPrefix(raw, "./") || strings.HasPrefix(raw, "../"):
		p = path.Join("/"+parent, raw)
	case strings.Contains(raw, "://"):
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("bad URL %q: %v", raw, err)
		}
		p = u.Path
	default: // scp-like: git@host:owner/repo.git
		if _, rest, ok := strings.Cut(raw, ":"); ok {
			p = rest
		}
	}
	p = strings.TrimSuffix(strings.TrimRight(p, "/"), ".git")
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) < 2 || parts[len(parts)-2] == "" || parts[len(parts)-1] == "" ||
		parts[len(parts)-2] == ".." || parts[len(parts)-1] == ".." {
		return "", fmt.Errorf("%q names no OWNER/REPO of this server", raw)
	}
	return parts[len(parts)-2] + "/" + parts[len(parts)-1], nil
}

// jobServerURL is github.server_url of the job, else fallback.
func JobServerURL(job *protocol.Job, fallback string) string {
	if g, ok := job.Contexts["github"].(map[string]any); ok {
		if s, _ := g["server_url"].(string); s != "" {
			return s
		}
	}
	return fallback
}

// checkoutOrigin is the origin URL the job sees for OWNER/REPO: the
// repository's page on this server, as GitHub's is https://github.com/O/R.
func CheckoutOrigin(server, repo string) string {
	if server == "" {
		return repo
	}
	return strings.TrimRight(server, "/") + "/" + repo
}

// runCheckout runs a checkout step. Set up job made the default checkout
// in the workspace, so a step without inputs that change it has nothing
// left to do; otherwise the checkout is made on the host in a fresh 0700
// directory and copied into the volume at its path.
func (j *execJob) runCheckout(step *protocol.Step, env *expr.Env, out *stepOutput) stepResult {
	fail := func(format string, args ...any) stepResult {
		out.errorf(format, args...)
		return stepResult{outcome: protocol.ConclusionFailure}
	}
	with := map[string]string{}
	for k, v := range step.With {
		s, err := j.interpolate(v, env)
		if err != nil {
			return fail("with.%s: %v", k, err)
		}
		with[k] = s
	}
	spec, warnings, err := ParseCheckoutInputs(with, j.job.Repo)
	// A token from a secret is masked already; one written in the
	// workflow is masked too, from here on.
	j.st.masks.Add(spec.Token)
	for _, w := range warnings {
		out.linef("##[warning]%s", w)
	}
	if err != nil {
		return fail("%v", err)
	}
	persist, err := persistCredentialsInput(with)
	if err != nil {
		return fail("%v", err)
	}
	dst := path.Join(protocol.Workspace, spec.Path)
	// persist-credentials (checkoutcred.go): the step's token, else the job's.
	persisted := func() stepResult {
		if !persist {
			return stepResult{outcome: protocol.ConclusionSuccess}
		}
		tok := spec.Token
		if tok == "" {
			tok = lookupString(j.st.contexts, "github", "token")
		}
		if err := j.ensureRunning(); err != nil {
			return fail("%v", err)
		}
		if err := j.persistCredentials(dst, tok, out); err != nil {
			return fail("%v", err)
		}
		return stepResult{outcome: protocol.ConclusionSuccess}
	}
	if spec.sameCheckout(DefaultCheckout) {
		out.linef("Checked out %s at %s into %s", j.job.Repo, j.job.HeadSHA, protocol.Workspace)
		return persisted()
	}
	err = j.ex.call(j.ctx, "checkout", func(ctx context.Context) error {
		if err := j.newStage(); err != nil { // afresh for every attempt
			return MarkPermanent(err)
		}
		// A directory git makes (0755), so the copy does not give the
		// target the stage's 0700.
		return j.ex.src.Checkout(ctx, j.job, filepath.Join(j.stage, "repo"), spec)
	})
	if err != nil {
		j.removeStage()
		return fail("check out: %v", err)
	}
	defer j.removeStage()
	if err := j.ensureRunning(); err != nil {
		return fail("%v", err)
	}
	if spec.Clean {
		// The job's own sh empties the target, as checkout's clean does in
		// the job; nothing of the job runs outside its container.
		if _, _, err := j.ex.docker.Output(j.execCtx, "exec", j.name, "sh", "-c",
			`[ ! -d "$1" ] || { cd "$1" && rm -rf -- * .[!.]* ..?*; }`, "sh", dst); err != nil {
			return fail("clean %s: %v", dst, err)
		}
	}
	if err := j.copyToContainer(filepath.Join(j.stage, "repo"), dst); err != nil {
		return fail("copy the checkout into %s: %v", dst, err)
	}
	what := j.job.Repo
	if spec.Repository != "" {
		what = spec.Repository
	}
	if spec.Ref != "" {
		what += "@" + spec.Ref
	} else if spec.Repository == "" {
		what += " at " + j.job.HeadSHA
	}
	depth := "all history"
	if spec.Depth > 0 {
		depth = fmt.Sprintf("fetch-depth %d", spec.Depth)
	}
	if spec.Submodules != "" {
		depth += ", submodules " + spec.Submodules
	}
	out.linef("Checked out %s into %s (%s)", what, dst, depth)
	return persisted()
}
