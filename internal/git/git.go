// Git through the git CLI: the one helper every git invocation goes
// through, and reads of a repository (commits, workflow files, diffs).

package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/workflow"
)

// zeroSHA is what git says for "no commit" in a push: a created or
// deleted ref.
const ZeroSHA = "0000000000000000000000000000000000000000"

var SHARE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// gitBaseEnv is added to the environment of every git the program runs:
// never prompt for credentials, never read the system's config, and speak
// the C locale so messages read the same everywhere.
var gitBaseEnv = []string{"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C"}

// gitCommand is the one way the program starts git: bin ("" is "git") with
// the process's environment, gitBaseEnv, then env.
func gitCommand(ctx context.Context, bin string, env []string, args ...string) *exec.Cmd {
	if bin == "" {
		bin = "git"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(append(os.Environ(), gitBaseEnv...), env...)
	return cmd
}

// runGit runs git and returns its standard output. A failure is a
// *gitError that tells a git that ran and said no (exited) from one that
// could not run at all.
func Run(ctx context.Context, bin string, env []string, args ...string) ([]byte, error) {
	cmd := gitCommand(ctx, bin, env, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &Error{args: args, err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return out, nil
}

// gitError is a git command that failed.
type Error struct {
	args   []string
	err    error
	Stderr string
}

func (e *Error) Error() string {
	return fmt.Sprintf("git %s: %v: %s", gitSubcommand(e.args), e.err, e.Stderr)
}

func (e *Error) Unwrap() error { return e.err }

// exited reports whether git ran and exited non-zero, as opposed to not
// starting (no git binary) or being killed.
func (e *Error) Exited() bool {
	var ee *exec.ExitError
	return errors.As(e.err, &ee) && ee.Exited()
}

// gitSubcommand is the subcommand of a git command line, past the global
// options that take a value.
func gitSubcommand(args []string) string {
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-C", "--git-dir", "-c":
			i++
			continue
		}
		return args[i]
	}
	return ""
}

// gitExited reports whether err is git running and saying no.
func gitExited(err error) bool {
	var ge *Error
	return errors.As(err, &ge) && ge.Exited()
}

// gitRepo is a repository on disk, read through the git CLI.
type Repo struct {
	Dir string // the git directory (bare repository or .git)
}

// git runs git in the repository and returns its standard output.
func (g Repo) Git(ctx context.Context, args ...string) ([]byte, error) {
	return Run(ctx, "", nil, append([]string{"--git-dir", g.Dir}, args...)...)
}

// openGitRepo checks that path holds a git repository and returns it with
// its absolute git directory.
func Open(ctx context.Context, path string) (Repo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Repo{}, err
	}
	if _, err := os.Stat(abs); err != nil {
		return Repo{}, &apperr.Error{Code: apperr.Invalid, Msg: fmt.Sprintf("%s is not a git repository: %v", path, err), Err: err}
	}
	out, err := Run(ctx, "", nil, "-C", abs, "rev-parse", "--absolute-git-dir")
	if gitExited(err) {
		return Repo{}, apperr.Invalidf("%s is not a git repository", path)
	}
	if err != nil {
		return Repo{}, err
	}
	return Repo{Dir: strings.TrimSpace(string(out))}, nil
}

// resolve turns a ref or sha into a commit sha; apperr.ErrNotFound when there is
// no such commit, and git's own error when git could not answer.
func (g Repo) Resolve(ctx context.Context, rev string) (string, error) {
	if strings.HasPrefix(rev, "-") {
		return "", apperr.ErrNotFound
	}
	out, err := g.Git(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if gitExited(err) {
		return "", apperr.ErrNotFound
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// WorkflowFiles lists the workflow files at a commit, sorted: those of
// the directory WorkflowDirAt picks.
func (g Repo) WorkflowFiles(ctx context.Context, sha string) ([]string, error) {
	_, files, err := g.WorkflowDirAt(ctx, sha)
	return files, err
}

// WorkflowDirAt says where a commit's workflows are and lists them, sorted:
// WorkflowDir when it holds a workflow file (*.yml, *.yaml), else
// GitHubWorkflowDir when that does, else WorkflowDir and none. One git
// process lists both.
func (g Repo) WorkflowDirAt(ctx context.Context, sha string) (string, []string, error) {
	out, err := g.Git(ctx, "ls-tree", "--name-only", "-z", "--full-tree", sha, "--", WorkflowDir, GitHubWorkflowDir)
	if err != nil {
		return "", nil, err
	}
	var own, github []string
	for _, p := range strings.Split(string(out), "\x00") {
		switch {
		case !workflow.IsFile(p):
		case strings.HasPrefix(p, WorkflowDir):
			own = append(own, p)
		case strings.HasPrefix(p, GitHubWorkflowDir):
			github = append(github, p)
		}
	}
	if len(own) == 0 && len(github) > 0 {
		return GitHubWorkflowDir, github, nil
	}
	return WorkflowDir, own, nil
}

// WorkflowDir is where a repository's workflow files live; GitHubWorkflowDir
// is read instead when WorkflowDir has none, so a repository moved from
// GitHub runs its workflows as they are (as Gitea falls back from
// .gitea/workflows). The two never mix: a repository with workflow files
// in WorkflowDir has its .github/workflows ignored.
const (
	WorkflowDir       = ".shithub/workflows/"
	GitHubWorkflowDir = ".github/workflows/"
)

// WorkflowDirs are the workflow directories in the order they are tried.
var WorkflowDirs = []string{WorkflowDir, GitHubWorkflowDir}

// WorkflowName is a workflow file's name within its directory (ci.yml for
// .github/workflows/ci.yml); any other path as it is.
func WorkflowName(p string) string {
	for _, d := range WorkflowDirs {
		if rest, ok := strings.CutPrefix(p, d); ok {
			return rest
		}
	}
	return p
}

// readFile returns a file's bytes at a commit; apperr.ErrNotFound when absent.
func (g Repo) ReadFile(ctx context.Context, sha, path string) ([]byte, error) {
	out, err := g.Git(ctx, "cat-file", "blob", sha+":"+path)
	if err != nil {
		if _, rerr := g.Resolve(ctx, sha); rerr == nil {
			return nil, apperr.ErrNotFound
		}
		return nil, err
	}
	return out, nil
}

// changedFiles lists the paths a push changed; nil (unknown) when before is
// not a commit here (a new branch), which lets paths filters match.
func (g Repo) ChangedFiles(ctx context.Context, before, after string) ([]string, error) {
	if before == "" || before == ZeroSHA {
		return nil, nil
	}
	if _, err := g.Resolve(ctx, before); errors.Is(err, apperr.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	out, err := g.Git(ctx, "diff", "--name-only", "-z", "--no-renames", before, after, "--")
	if err != nil {
		return nil, err
	}
	files := []string{}
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files, nil
}

// prChangedFiles lists the files a pull request changes: the diff from
// the merge base of base and head to head, as GitHub computes it for paths
// filters. nil (unknown) when base is not in the repository.
func (g Repo) PrChangedFiles(ctx context.Context, base, head string) ([]string, error) {
	if base == "" {
		return nil, nil
	}
	if _, err := g.Resolve(ctx, base); errors.Is(err, apperr.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	out, err := g.Git(ctx, "diff", "--name-only", "-z", "--no-renames", base+"..."+head, "--")
	if err != nil {
		return nil, err
	}
	files := []string{}
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files, nil
}

// commit reads a commit's ids, message, author and committer, as GitHub's
// head_commit has them.
func (g Repo) Commit(ctx context.Context, sha string) (*Commit, error) {
	out, err := g.Git(ctx, "log", "-1", "--no-show-signature", "--format=%H%x00%T%x00%cI%x00%an%x00%ae%x00%cn%x00%ce%x00%B", "--end-of-options", sha)
	if gitExited(err) {
		return nil, apperr.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	f := strings.SplitN(string(out), "\x00", 8)
	if len(f) != 8 {
		return nil, fmt.Errorf("git log %s: unexpected output", sha)
	}
	ts, err := time.Parse(time.RFC3339, f[2])
	if err != nil {
		return nil, fmt.Errorf("git log %s: %w", sha, err)
	}
	return &Commit{
		ID: f[0], TreeID: f[1], Timestamp: ts.UTC(), Message: strings.TrimRight(f[7], "\n"),
		Author: Person{Name: f[3], Email: f[4]}, Committer: Person{Name: f[5], Email: f[6]},
	}, nil
}

// subject is the first line of a commit message.
func Subject(msg string) string {
	s, _, _ := strings.Cut(msg, "\n")
	return strings.TrimSpace(s)
}

// defaultBranch is the branch HEAD names; "main" when HEAD is detached or
// unreadable.
func (g Repo) DefaultBranch(ctx context.Context) string {
	out, err := g.Git(ctx, "symbolic-ref", "--quiet", "--short", "HEAD")
	if b := strings.TrimSpace(string(out)); err == nil && b != "" {
		return b
	}
	return "main"
}

// headCommit is the commit a run is for, as GitHub's simple-commit has it.
type Commit struct {
	ID        string    `json:"id"`
	TreeID    string    `json:"tree_id"`
	Message   string    `json:"message"`
	Timestamp time.Time `json:"timestamp"`
	Author    Person    `json:"author"`
	Committer Person    `json:"committer"`
}

type Person struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}
