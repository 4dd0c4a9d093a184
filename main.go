// Command shithub-actions is a self-hosted Actions (CI) service for hobby
// forges: one binary, one SQLite file, jobs in Docker containers.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/executor"
	"shithub-actions/internal/git"
	"shithub-actions/internal/hostfile"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

const usage = `usage: shithub-actions [--db FILE] COMMAND [ARGS]

  serve [--addr 127.0.0.1:8080] [--base-url URL] [--job-addr auto|off|HOST:PORT] [--runners 2] [--image LABEL=IMAGE]...
        [--pull missing|never] [--allow-images PATTERN,...] [--memory 2g] [--cpus 1]
        [--pids-limit 1024] [--stop-grace 10s] [--shutdown-grace 30s] [--queue-timeout 24h]
        [--trust-proxy CIDR,...] [--data-dir DIR] [--actions-url URL] [--allow-actions PATTERNS]
        [--node DIR] [--job-url URL] [--max-artifact-size 2GiB] [--cache-size 10GiB]
        [--keep-logs 90d] [--keep-runs 0] [--metrics-token-file FILE]   run the server
  user create NAME
  repo create OWNER/NAME --git PATH [--private] [--default-branch main]
  repo grant OWNER/NAME USER read|write|admin
  repo access OWNER/NAME [none|user]                  may the owner's other repositories' jobs reach it
  token create USER --scopes repo:read[,repo:write] [--expires 720h] [--name LABEL]
  token list USER
  token revoke TOKEN_ID
  runner register NAME [--labels a,b]
  runner list
  runner revoke NAME
  runner --server URL --token-file FILE [--labels a,b] [--capacity 2] [--image LABEL=IMAGE]...
        [--pull missing|never] [--allow-images PATTERN,...] [--memory 2g] [--cpus 1]
        [--pids-limit 1024] [--stop-grace 10s] [--shutdown-grace 30s] [--data-dir DIR]
        [--actions-url URL] [--allow-actions PATTERNS] [--node DIR]   run a remote runner
  hook post-receive --repo OWNER/NAME [--actor USER]   git's post-receive hook
  prune [--logs-older-than 90d] [--runs-older-than 365d] [--dry-run] [--vacuum]
                                                     remove old logs and runs now
  backup FILE                                        a consistent copy, while serve runs
  check [--quick]                                    integrity and stuck state; exit 1 on findings
  actions fetch OWNER/REPO[/PATH]@REF... [--data-dir DIR] [--actions-url URL]
                                                     fill the action cache ahead of time
  workflow check [FILE|DIR...]                         check workflow files offline (a DIR, or
                                                     none: the repository's workflow directory)
  secret set OWNER/REPO NAME | secret set --owner USER NAME   the value is read from stdin
  secret list OWNER/REPO | secret list --owner USER
  secret delete OWNER/REPO NAME | secret delete --owner USER NAME
  var set|list|delete ...                              the same for variables

Every command but the remote runner takes --db FILE (default ./shithub-actions.db, or
$SHITHUB_ACTIONS_DB) and --secret-key-file FILE (default: the database's name + .key).
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err on stderr as one line. Bad input (usage, unknown or
// duplicate names) exits 2; a failure of the program itself exits 1.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitUsage
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintln(stderr, "shithub-actions:", msg)
	var ue apperr.UsageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	var wc workflowCheckFailed
	if errors.As(err, &wc) {
		return 1
	}
	return exitStatus(errorCode(err))
}

// run is the whole program, minus the process: tests call it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	// --db may come before the command, too.
	global := flag.NewFlagSet("shithub-actions", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	dbPath := global.String("db", defaultDB(), "database file")
	keyFile := global.String("secret-key-file", "", "the server key that encrypts secrets (default: the database file + .key)")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return apperr.Usagef("%v", err)
	}
	args = global.Args()
	if len(args) == 0 {
		return apperr.Usagef("no command given; run shithub-actions --help")
	}
	c := &cli{db: *dbPath, keyFile: *keyFile, stdin: stdin, stdout: stdout, stderr: stderr}
	cmd, rest := args[0], args[1:]
	sub := ""
	if len(rest) > 0 {
		sub = rest[0]
	}
	switch {
	case cmd == "serve":
		return c.serve(ctx, rest)
	case cmd == "user" && sub == "create":
		return c.userCreate(ctx, rest[1:])
	case cmd == "repo" && sub == "create":
		return c.repoCreate(ctx, rest[1:])
	case cmd == "repo" && sub == "grant":
		return c.repoGrant(ctx, rest[1:])
	case cmd == "repo" && sub == "access":
		return c.repoAccess(ctx, rest[1:])
	case cmd == "token" && sub == "create":
		return c.tokenCreate(ctx, rest[1:])
	case cmd == "token" && sub == "list":
		return c.tokenList(ctx, rest[1:])
	case cmd == "token" && sub == "revoke":
		return c.tokenRevoke(ctx, rest[1:])
	case cmd == "runner" && sub == "register":
		return c.runnerRegister(ctx, rest[1:])
	case cmd == "runner" && sub == "list":
		return c.runnerList(ctx, rest[1:])
	case cmd == "runner" && sub == "revoke":
		return c.runnerRevoke(ctx, rest[1:])
	case cmd == "runner":
		return cmdRunner(ctx, rest, stdout, stderr)
	case cmd == "actions" && sub == "fetch":
		return c.actionsFetch(ctx, rest[1:])
	case cmd == "hook" && sub == "post-receive":
		return c.hookPostReceive(ctx, rest[1:])
	case cmd == "prune":
		return c.prune(ctx, rest)
	case cmd == "backup":
		return c.backup(ctx, rest)
	case cmd == "check":
		return c.check(ctx, rest)
	case cmd == "dev" && sub == "fill":
		return c.devFill(ctx, rest[1:])
	case cmd == "workflow" && sub == "check":
		return workflowCheck(rest[1:], stdout)
	case (cmd == "secret" || cmd == "var") && (sub == "set" || sub == "list" || sub == "delete"):
		return c.secretCommand(ctx, cmd, sub, rest[1:])
	case cmd == "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return apperr.Usagef("unknown command %q; run shithub-actions --help", strings.TrimSpace(cmd+" "+sub))
}

func defaultDB() string {
	if v := os.Getenv("SHITHUB_ACTIONS_DB"); v != "" {
		return v
	}
	return "shithub-actions.db"
}

// cli holds what every subcommand shares.
type cli struct {
	db             string
	keyFile        string // --secret-key-file; "" means db + ".key"
	stdin          io.Reader
	stdout, stderr io.Writer
}

// parse parses a subcommand's flags, which may stand before, between or
// after its positional arguments, and checks the positional count.
func (c *cli) parse(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	pos, err := c.parseAny(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != len(names) {
		return nil, apperr.Usagef("usage: shithub-actions %s %s", fs.Name(), strings.Join(names, " "))
	}
	return pos, nil
}

// parseAny parses like parse and returns the positional arguments,
// however many there are.
func (c *cli) parseAny(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.db, "db", c.db, "database file")
	fs.StringVar(&c.keyFile, "secret-key-file", c.keyFile, "the server key file")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, apperr.Usagef("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return pos, nil
}

func (c *cli) open() (*store.Store, error) { return c.openWith(store.Options{}) }

// openWith opens the database with o and the key file of --secret-key-file.
func (c *cli) openWith(o store.Options) (*store.Store, error) {
	o.KeyFile = c.keyFile
	return openStore(c.db, o)
}

var (
	userNameRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$`)
	repoNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
)

// reservedNames would shadow the server's own top-level paths.
var reservedNames = []string{"api", "login", "logout", "static", "assets", "help"}

func checkUserName(name string) error {
	if !userNameRE.MatchString(name) || slices.Contains(reservedNames, strings.ToLower(name)) {
		return apperr.Usagef("bad user name %q: use letters, digits and single dashes, at most 39 characters", name)
	}
	return nil
}

// splitRepo parses OWNER/NAME.
func splitRepo(s string) (string, string, error) {
	owner, name, ok := strings.Cut(s, "/")
	if !ok || checkUserName(owner) != nil || !repoNameRE.MatchString(name) || name == "." || name == ".." || strings.HasSuffix(name, ".atom") {
		return "", "", apperr.Usagef("bad repository name %q: want OWNER/NAME", s)
	}
	return owner, name, nil
}

func (c *cli) userCreate(ctx context.Context, args []string) error {
	pos, err := c.parse(flag.NewFlagSet("user create", flag.ContinueOnError), args, "NAME")
	if err != nil {
		return err
	}
	if err := checkUserName(pos[0]); err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.CreateUser(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "created user %s (id %d)\n", u.Name, u.ID)
	return nil
}

// findUser is userByName with the error a command line wants.
func findUser(ctx context.Context, st *store.Store, name string) (*store.User, error) {
	u, err := st.UserByName(ctx, name)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, apperr.Usagef("unknown user %q", name)
	}
	return u, err
}

func findRepo(ctx context.Context, st *store.Store, full string) (*store.Repo, error) {
	owner, name, err := splitRepo(full)
	if err != nil {
		return nil, err
	}
	r, err := st.RepoByName(ctx, owner, name)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, apperr.Usagef("unknown repository %q", full)
	}
	return r, err
}

func (c *cli) repoCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("repo create", flag.ContinueOnError)
	gitPath := fs.String("git", "", "path of the git repository")
	private := fs.Bool("private", false, "only collaborators may see it")
	defaultBranch := fs.String("default-branch", "main", "the branch scheduled workflows run on")
	pos, err := c.parse(fs, args, "OWNER/NAME --git PATH [--private] [--default-branch BRANCH]")
	if err != nil {
		return err
	}
	owner, name, err := splitRepo(pos[0])
	if err != nil {
		return err
	}
	if *gitPath == "" {
		return apperr.Usagef("repo create: --git PATH is required")
	}
	if !store.RefRE.MatchString("refs/heads/" + *defaultBranch) {
		return apperr.Usagef("repo create: --default-branch %q is not a branch name", *defaultBranch)
	}
	g, err := git.Open(ctx, *gitPath)
	if err != nil {
		return apperr.Usagef("%v", err)
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := findUser(ctx, st, owner)
	if err != nil {
		return err
	}
	r, err := st.CreateRepoOn(ctx, u, name, g.Dir, *private, *defaultBranch)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "created repository %s (id %d) on %s\n", r.FullName(), r.ID, g.Dir)
	fmt.Fprintln(c.stdout, "install the post-receive hook, so that pushes start runs:")
	fmt.Fprintln(c.stdout, hookInstallLine(c.db, r.FullName(), g.Dir))
	return nil
}

// hookInstallLine is one shell line that installs the post-receive hook.
func hookInstallLine(db, repo, gitDir string) string {
	self := "shithub-actions"
	if exe, err := os.Executable(); err == nil && !strings.Contains(exe, "go-build") {
		self = exe
	}
	if abs, err := filepath.Abs(db); err == nil {
		db = abs
	}
	hook := filepath.Join(gitDir, "hooks", "post-receive")
	script := fmt.Sprintf("#!/bin/sh\\nexec %s --db %s hook post-receive --repo %s\\n", shellQuote(self), shellQuote(db), repo)
	return fmt.Sprintf("printf '%s' > %s && chmod +x %s", strings.ReplaceAll(script, "'", `'\''`), shellQuote(hook), shellQuote(hook))
}

var shellSafeRE = regexp.MustCompile(`^[A-Za-z0-9_./:-]+$`)

func shellQuote(s string) string {
	if shellSafeRE.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (c *cli) repoGrant(ctx context.Context, args []string) error {
	pos, err := c.parse(flag.NewFlagSet("repo grant", flag.ContinueOnError), args, "OWNER/NAME", "USER", "read|write|admin")
	if err != nil {
		return err
	}
	p, ok := store.ParsePerm(pos[2])
	if !ok {
		return apperr.Usagef("bad permission %q: want read, write or admin", pos[2])
	}
	if _, _, err := splitRepo(pos[0]); err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := findRepo(ctx, st, pos[0])
	if err != nil {
		return err
	}
	u, err := findUser(ctx, st, pos[1])
	if err != nil {
		return err
	}
	if err := st.Grant(ctx, r, u, p); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "granted %s on %s to %s\n", p, r.FullName(), u.Name)
	return nil
}

func (c *cli) tokenCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	scopes := fs.String("scopes", "", "comma-separated: repo:read, repo:write")
	expires := fs.Duration("expires", 0, "lifetime, e.g. 720h (default: never expires)")
	name := fs.String("name", "", "a label to recognise the token by")
	pos, err := c.parse(fs, args, "USER --scopes repo:read[,repo:write] [--expires 720h] [--name LABEL]")
	if err != nil {
		return err
	}
	var list []string
	for _, sc := range strings.Split(*scopes, ",") {
		sc = strings.TrimSpace(sc)
		if !slices.Contains(validScopes, sc) {
			return apperr.Usagef("bad scope %q: want repo:read or repo:write", sc)
		}
		if !slices.Contains(list, sc) {
			list = append(list, sc)
		}
	}
	if *expires < 0 {
		return apperr.Usagef("--expires must be positive")
	}
	if len(*name) > 100 {
		return apperr.Usagef("--name is at most 100 characters")
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := findUser(ctx, st, pos[0])
	if err != nil {
		return err
	}
	t, secret, err := st.CreateToken(ctx, u, *name, list, *expires)
	if err != nil {
		return err
	}
	exp := "never expires"
	if !t.ExpiresAt.IsZero() {
		exp = "expires " + t.ExpiresAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(c.stdout, "created token %d for %s with %s, %s; it is shown once:\n", t.ID, u.Name, strings.Join(list, ","), exp)
	fmt.Fprintln(c.stdout, secret)
	return nil
}

func (c *cli) tokenList(ctx context.Context, args []string) error {
	pos, err := c.parse(flag.NewFlagSet("token list", flag.ContinueOnError), args, "USER")
	if err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := findUser(ctx, st, pos[0])
	if err != nil {
		return err
	}
	tokens, err := st.ListTokens(ctx, u)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%-6s %-20s %-22s %-20s %-20s %s\n", "ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "STATE")
	now := st.Now()
	for _, t := range tokens {
		state := "active"
		switch {
		case !t.RevokedAt.IsZero():
			state = "revoked"
		case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
			state = "expired"
		}
		exp := "never"
		if !t.ExpiresAt.IsZero() {
			exp = t.ExpiresAt.UTC().Format("2006-01-02 15:04")
		}
		name := t.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(c.stdout, "%-6d %-20s %-22s %-20s %-20s %s\n", t.ID, name, strings.Join(t.Scopes, ","),
			t.CreatedAt.UTC().Format("2006-01-02 15:04"), exp, state)
	}
	return nil
}

func (c *cli) tokenRevoke(ctx context.Context, args []string) error {
	pos, err := c.parse(flag.NewFlagSet("token revoke", flag.ContinueOnError), args, "TOKEN_ID")
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return apperr.Usagef("bad token id %q: want the number token list shows", pos[0])
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.RevokeToken(ctx, id); errors.Is(err, apperr.ErrNotFound) {
		return apperr.Usagef("unknown token %d", id)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "revoked token %d\n", id)
	return nil
}

var labelRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// parseLabels parses a comma-separated label list.
func parseLabels(s string) ([]string, error) {
	labels := []string{}
	if s == "" {
		return labels, nil
	}
	for _, l := range strings.Split(s, ",") {
		l = strings.TrimSpace(l)
		if !labelRE.MatchString(l) {
			return nil, apperr.Usagef("bad label %q: use letters, digits, dots, dashes and underscores", l)
		}
		if !slices.Contains(labels, l) {
			labels = append(labels, l)
		}
	}
	return labels, nil
}

func (c *cli) runnerRegister(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("runner register", flag.ContinueOnError)
	labelFlag := fs.String("labels", "", "comma-separated runs-on labels this runner takes")
	pos, err := c.parse(fs, args, "NAME")
	if err != nil {
		return err
	}
	if !labelRE.MatchString(pos[0]) || pos[0] == store.LocalRunnerName {
		return apperr.Usagef("bad runner name %q", pos[0])
	}
	labels, err := parseLabels(*labelFlag)
	if err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	rn, secret, err := st.CreateRunner(ctx, pos[0], labels)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "registered runner %s (id %d) with labels %s; its token is shown once:\n", rn.Name, rn.ID, strings.Join(labels, ","))
	fmt.Fprintln(c.stdout, secret)
	return nil
}

func (c *cli) runnerList(ctx context.Context, args []string) error {
	if _, err := c.parse(flag.NewFlagSet("runner list", flag.ContinueOnError), args); err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	runners, err := st.ListRunners(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%-20s %-30s %-20s %-7s %s\n", "NAME", "LABELS", "LAST SEEN", "RUNNING", "STATE")
	for _, r := range runners {
		seen, state := "never", "active"
		if !r.LastSeen.IsZero() {
			seen = r.LastSeen.UTC().Format("2006-01-02 15:04:05")
		}
		if r.Revoked {
			state = "revoked " + r.RevokedAt.UTC().Format("2006-01-02 15:04")
		}
		labels := strings.Join(r.Labels, ",")
		if labels == "" {
			labels = "-"
		}
		fmt.Fprintf(c.stdout, "%-20s %-30s %-20s %-7d %s\n", r.Name, labels, seen, r.RunningJobs, state)
	}
	return nil
}

func (c *cli) runnerRevoke(ctx context.Context, args []string) error {
	pos, err := c.parse(flag.NewFlagSet("runner revoke", flag.ContinueOnError), args, "NAME")
	if err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	failed, err := st.RevokeRunner(ctx, pos[0])
	if errors.Is(err, apperr.ErrNotFound) {
		return apperr.Usagef("unknown runner %q (runner list shows them)", pos[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "revoked runner %s; %d running job(s) failed\n", pos[0], len(failed))
	return nil
}

// hookPostReceive reads git's post-receive lines ("OLD NEW REF") and starts
// the runs each push calls for, on the database file directly, as the
// server would.
func (c *cli) hookPostReceive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("hook post-receive", flag.ContinueOnError)
	repoName := fs.String("repo", "", "OWNER/NAME")
	actorName := fs.String("actor", "", "who pushed (default: the repository's owner)")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	if os.Getenv(gitHTTPPushEnv) != "" {
		// A push through the server's git endpoint: the server starts its
		// runs itself, as the pusher, and none for a GITHUB_TOKEN's push.
		_, err := io.Copy(io.Discard, c.stdin)
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	repo, err := findRepo(ctx, st, *repoName)
	if err != nil {
		return err
	}
	actor := &store.User{ID: repo.OwnerID, Name: repo.Owner}
	if *actorName != "" {
		if actor, err = findUser(ctx, st, *actorName); err != nil {
			return err
		}
	}
	sc := bufio.NewScanner(c.stdin)
	var errs []error
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			errs = append(errs, apperr.Usagef("bad post-receive line %q: want OLD NEW REF", sc.Text()))
			continue
		}
		if !strings.HasPrefix(f[2], "refs/heads/") && !strings.HasPrefix(f[2], "refs/tags/") {
			continue // notes, pull refs and the like start nothing
		}
		res, err := store.TriggerPush(ctx, st, repo, actor, f[2], f[0], f[1])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f[2], err))
			continue
		}
		for _, r := range res.Runs {
			fmt.Fprintf(c.stdout, "shithub-actions: %s #%d queued for %s\n", r.WorkflowName, r.RunIndex, workflow.RefName(r.HeadRef))
		}
		for _, f := range res.Disabled {
			fmt.Fprintf(c.stdout, "shithub-actions: %s is disabled: no run\n", f)
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// serve runs the server until ctx is done (SIGINT or SIGTERM). The whole
// command line is read first, so that bad input is refused before the
// database or a socket is opened.
func (c *cli) serve(ctx context.Context, args []string) error {
	sc, err := c.parseServeArgs(args, os.Getenv)
	if err != nil {
		return err
	}
	return c.runServe(ctx, sc)
}

// serveConfig is a parsed `serve` command line: everything serve knows
// before it opens anything.
type serveConfig struct {
	addr          string          // --addr: the main listener
	jobAddr       string          // --job-addr: auto, off or HOST:PORT (jobaddr.go)
	baseURL       string          // --base-url; "" takes links from each request
	runners       int             // the in-process pool's workers; 0 leaves jobs to remote runners
	keep          store.Retention // --keep-logs and --keep-runs
	metricsToken  string          // the bearer token /metrics requires; "" leaves it open
	queueTimeout  time.Duration   // how long a job no runner can take stays queued
	checkpoint    string          // --checkpoint: auto, or litestream (which then checkpoints the WAL)
	trustProxies  []netip.Prefix  // --trust-proxy
	runtime       runtimeConfig   // the artifact and cache services; PublicURL is --job-url
	cfg           executor.Config // the pool as its flags shape it; the listeners and the store fill in the rest
	shutdownGrace time.Duration   // on SIGTERM, how long running jobs may go on
	tls           serveTLS        // --tls-cert/--tls-key or --acme (servetls.go)
}

// baseURLRE is the form --base-url must have.
var baseURLRE = regexp.MustCompile(`^https?://[^/\s]+(/\S*)?$`)

// parseServeArgs parses and checks the `serve` command line (its --db and
// --secret-key-file go into c, as for every command); getenv supplies
// $SHITHUB_METRICS_TOKEN. It reads a --metrics-token-file and a --node
// directory, and opens and starts nothing, so every bad flag is a usage
// error before the database, the data directory or a socket is touched.
func (c *cli) parseServeArgs(args []string, getenv func(string) string) (serveConfig, error) {
	var sc serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&sc.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&sc.baseURL, "base-url", "", "absolute URL the server is reached at, for links (default: from each request)")
	fs.StringVar(&sc.jobAddr, "job-addr", "auto", "where jobs' containers reach the server: auto (the Docker bridge's address when --addr is loopback), off, or HOST:PORT")
	fs.IntVar(&sc.runners, "runners", 2, "jobs the server runs at once in its own pool (0: only remote runners run jobs)")
	keepLogs := fs.String("keep-logs", "90d", "remove job logs of runs older than this (Nd or a duration; 0 keeps them)")
	keepRuns := fs.String("keep-runs", "0", "remove runs older than this (Nd or a duration; 0 keeps them)")
	metricsToken := fs.String("metrics-token", "", "require this bearer token on /metrics (visible in ps: prefer --metrics-token-file or $SHITHUB_METRICS_TOKEN)")
	metricsTokenFile := fs.String("metrics-token-file", "", "`FILE` holding the bearer token /metrics requires")
	fs.DurationVar(&sc.queueTimeout, "queue-timeout", defaultQueueTimeout, "how long a job no runner can take (by its runs-on labels) stays queued before it fails")
	fs.StringVar(&sc.checkpoint, "checkpoint", "auto", "who checkpoints the WAL: auto (this server, when writes pause) or litestream (Litestream replicates the file and checkpoints it)")
	fs.Func("trust-proxy", "`CIDR,...`: reverse proxies whose X-Forwarded-For names the client, for sign-in limiting", func(v string) error {
		for s := range strings.SplitSeq(v, ",") {
			s = strings.TrimSpace(s)
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					return fmt.Errorf("want an address or CIDR, got %q", s)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			sc.trustProxies = append(sc.trustProxies, p.Masked())
		}
		return nil
	})
	maxArtifact := fs.String("max-artifact-size", "2GiB", "the largest artifact, and the most all artifacts of one run may hold")
	cacheSize := fs.String("cache-size", "10GiB", "the most all caches may hold; least recently used ones go first")
	jobURL := fs.String("job-url", "", "`URL` (http://HOST:PORT) jobs reach this server at: GITHUB_SERVER_URL, git, the API, artifacts and caches (default: http://shithub.localhost:PORT for the server's own pool, mapped to the job address; for remote runners, the URL they reach the server at)")
	check := executorFlags(fs, &sc.cfg, &sc.shutdownGrace)
	sc.tls.flags(fs)
	if _, err := c.parse(fs, args); err != nil {
		return sc, err
	}
	var err error
	sc.runtime.DataDir = sc.cfg.DataDir
	if sc.runtime.MaxArtifactSize, err = parseByteSize(*maxArtifact); err != nil {
		return sc, apperr.Usagef("serve: --max-artifact-size: %v", err)
	}
	if sc.runtime.CacheSize, err = parseByteSize(*cacheSize); err != nil {
		return sc, apperr.Usagef("serve: --cache-size: %v", err)
	}
	if *jobURL != "" {
		u, err := url.Parse(*jobURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" {
			return sc, apperr.Usagef("serve: bad --job-url %q: want http(s)://HOST[:PORT]", *jobURL)
		}
		sc.runtime.PublicURL = strings.TrimRight(*jobURL, "/")
		sc.cfg.JobURL = sc.runtime.PublicURL
	}
	if sc.runtime.DataDir == "" {
		sc.runtime.DataDir = c.db + ".d"
		sc.cfg.DataDir = sc.runtime.DataDir
	}
	if sc.baseURL != "" && !baseURLRE.MatchString(sc.baseURL) {
		return sc, apperr.Usagef("bad --base-url %q: want http(s)://host[:port][/path]", sc.baseURL)
	}
	if msg := check(); msg != "" {
		return sc, apperr.Usagef("serve: %s", msg)
	}
	if sc.runners < 0 {
		return sc, apperr.Usagef("serve: --runners must not be negative")
	}
	if sc.keep.Logs, err = store.ParseAge(*keepLogs); err != nil {
		return sc, apperr.Usagef("serve: --keep-logs: %v", err)
	}
	if sc.keep.Runs, err = store.ParseAge(*keepRuns); err != nil {
		return sc, apperr.Usagef("serve: --keep-runs: %v", err)
	}
	if sc.queueTimeout <= 0 {
		return sc, apperr.Usagef("serve: --queue-timeout must be positive")
	}
	if sc.metricsToken, err = secretOption("metrics-token", *metricsToken, *metricsTokenFile, "SHITHUB_METRICS_TOKEN", getenv, c.stderr); err != nil {
		return sc, apperr.Usagef("serve: %v", err)
	}
	if sc.checkpoint != "auto" && sc.checkpoint != "litestream" {
		return sc, apperr.Usagef("serve: --checkpoint: want auto or litestream, got %q", sc.checkpoint)
	}
	// The addresses' form; listenServe plans what they mean.
	if err := checkListenAddrs(sc.addr, sc.jobAddr); err != nil {
		return sc, apperr.Usagef("serve: %v", err)
	}
	if err := sc.tls.check(); err != nil {
		return sc, err
	}
	return sc, nil
}

// runServe is the run loop: it opens the store, the listeners and the
// pool, serves until ctx is done, then shuts down in order: the pool stops
// claiming and drains while both listeners still serve, so that remote
// runners and the pool's own jobs can report how they ended.
func (c *cli) runServe(ctx context.Context, sc serveConfig) error {
	// The action store exists before the store: reusable workflows not on
	// this server come from --actions-url through it, as actions do.
	actions, err := executor.NewActionStore(filepath.Join(sc.cfg.DataDir, "actions"), sc.cfg.ActionsURL)
	if err != nil {
		return apperr.Usagef("serve: %v", err)
	}
	st, err := c.openWith(store.Options{ServerURL: sc.baseURL, LeaveCheckpoints: sc.checkpoint == "litestream",
		FetchWorkflow: actions.FetchWorkflow})
	if err != nil {
		return err
	}
	defer st.Close()
	// The data directory (caches, fetched actions) is the server user's
	// alone, as the database is.
	if err := hostfile.MkdirPrivate(sc.cfg.DataDir); err != nil {
		return fmt.Errorf("the data directory: %w", err)
	}
	// The key that seals secrets: made now if there is none, and a key file
	// that is unsafe or damaged stops the server here, saying why.
	if _, err := st.SecretKey(); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(c.stderr, nil))
	srv := newServer(st, logger, sc.baseURL)
	srv.metricsToken = sc.metricsToken
	// The logs' signing key, derived from the key file now rather than on
	// the first log read.
	key, err := st.LogSigningKey(ctx)
	if err != nil {
		return err
	}
	srv.logs.key = key
	srv.trustProxies, srv.queueTimeout = sc.trustProxies, sc.queueTimeout
	srv.jobURL = sc.runtime.PublicURL // remote runners' jobs: --job-url, else --base-url or the URL they use

	// The listeners: the server's, and the one its jobs reach it at.
	cfg := sc.cfg.WithDefaults()
	cfg.Actions = actions
	gateway := func() (string, error) {
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return dockerBridgeGateway(gctx, executor.DockerCLI{Bin: cfg.Docker, Env: cfg.DockerEnv})
	}
	jobAddr := sc.jobAddr
	if sc.tls.on() && sc.runtime.PublicURL == "" { // jobs speak plain HTTP: never to the TLS listener
		var warn string
		if jobAddr, warn = tlsJobAddr(sc.addr, jobAddr, gateway); warn != "" {
			logger.Warn(warn)
		}
	}
	ls, err := listenServe(sc.addr, jobAddr, sc.runtime.PublicURL, gateway)
	if err != nil {
		return err
	}
	defer ls.Close()
	plan := ls.plan
	if plan.Warning != "" {
		logger.Warn(plan.Warning)
	}
	// The pool's jobs see the server at plan.URL; the artifact and cache
	// services sign URLs for --job-url, else for the Host a job asked with.
	cfg.AddHosts, cfg.JobURL = plan.AddHosts, plan.URL

	if err := srv.enableRuntime(ctx, sc.runtime); err != nil {
		return err
	}
	ex, err := attachLocalPool(ctx, srv, cfg, sc.runners, logger)
	if err != nil {
		return err
	}

	if n, err := st.CountUsers(ctx); err == nil && n == 0 {
		fmt.Fprintf(c.stdout, `The database %s is empty. Start with:
  shithub-actions --db %s user create alice
  shithub-actions --db %s repo create alice/hello --git /path/to/hello.git
  shithub-actions --db %s token create alice --scopes repo:read,repo:write
`, c.db, c.db, c.db, c.db)
	}
	hs := newHTTPServer(srv, logger)
	logger.Info("serving", "addr", ls.main.Addr().String(), "db", c.db)
	var jobHS *http.Server
	if ls.job != nil {
		jobHS = newJobHTTPServer(srv, hs)
		go jobHS.Serve(ls.job)
		defer jobHS.Close()
	}
	logger.Info("jobs reach the server at", "url", plan.URL, "listen", plan.Listen, "add_host", strings.Join(plan.AddHosts, ","))

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	go srv.reap(bg)
	maint := &store.Maintainer{Store: st, Log: logger, Keep: sc.keep, Every: 10 * time.Minute, Idle: 5 * time.Second, LocalRun: srv.localRunnerID}
	go maint.Run(bg)
	go srv.sweepRuntime(bg)
	go srv.schedule(bg)
	go srv.fireWorkflowRuns(bg)
	go srv.fetchCalls(bg)
	drain := func(time.Duration) {}
	if ex != nil {
		drain = startPool(bg, ex)
	}

	errc := make(chan error, 1)
	if sc.tls.on() {
		tc, redirect, err := sc.tls.config(sc.cfg.DataDir)
		if err != nil {
			return err
		}
		hs.TLSConfig = tc
		go func() { errc <- hs.ServeTLS(ls.main, "", "") }()
		if redirect != nil { // --acme: challenges and the redirect on plain HTTP
			plain := newHTTPServer(redirect, logger)
			plain.Addr = sc.tls.acmeHTTPAddr
			go func() { errc <- plain.ListenAndServe() }()
			defer plain.Close()
		}
	} else {
		go func() { errc <- hs.Serve(ls.main) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Stop taking jobs, let running ones finish for a while, then cancel
	// them; keep serving meanwhile, so remote runners can report.
	logger.Info("shutting down", "grace", sc.shutdownGrace)
	drain(sc.shutdownGrace)
	stopBG()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if jobHS != nil {
		jobHS.Shutdown(shutCtx)
	}
	return hs.Shutdown(shutCtx)
}

// attachLocalPool makes the server's own pool of runners workers, as the
// runner row the store keeps for it, after cleaning up what a previous
// process of this server left: its jobs fail, its containers go (even when
// this one runs no pool). The pool is srv's to wake and cancel; it is nil
// when runners is 0.
func attachLocalPool(ctx context.Context, srv *server, cfg executor.Config, runners int, logger *slog.Logger) (*executor.Executor, error) {
	st := srv.store
	var err error
	if cfg.Actions == nil {
		if cfg.Actions, err = executor.NewActionStore(filepath.Join(cfg.DataDir, "actions"), cfg.ActionsURL); err != nil {
			return nil, apperr.Usagef("serve: %v", err)
		}
	}
	cfg.Actions.Local = st.ActionRepo
	instance, err := st.InstanceID(ctx)
	if err != nil {
		return nil, err
	}
	cfg.Workers, cfg.Instance, cfg.PollInterval = runners, instance, time.Second
	local, err := st.LocalRunner(ctx, cfg.Labels)
	if err != nil {
		return nil, err
	}
	srv.localRunnerID = local.ID
	if ids, err := st.FailRunnerJobs(ctx, local.ID, "interrupted: the server restarted"); err != nil {
		return nil, err
	} else if len(ids) > 0 {
		logger.Warn("failed jobs the previous process left running", "jobs", ids)
	}
	ex := executor.New(cfg, &localSource{store: st, runner: local, wake: srv.Wake, jobURL: cfg.JobURL}, logger)
	if err := ex.DockerOK(ctx); err != nil {
		if runners > 0 {
			logger.Warn("docker does not answer: jobs will fail until it does", "err", err)
		}
	} else if err := ex.RemoveStale(ctx); err != nil {
		logger.Warn("removing containers of the previous process", "err", err)
	}
	if runners == 0 {
		return nil, nil
	}
	srv.exec = ex
	return ex, nil
}

// The HTTP server's timeouts, so that a client sending a request (or
// reading an answer) a byte at a time cannot hold a connection forever.
const (
	// httpReadHeaderTimeout bounds reading a request's headers.
	httpReadHeaderTimeout = 10 * time.Second
	// httpReadTimeout bounds reading a whole request, body included. The
	// largest bodies are a runner's log chunks (2 MiB at most) and a git
	// fetch's list of wants and haves.
	httpReadTimeout = time.Minute
	// httpWriteTimeout bounds an answer from the end of its request. The
	// longest are a job's raw log (up to 16 MiB a step), a run page, and a
	// remote runner's git fetch of a whole repository: ten minutes is 1 MiB/s
	// for 600 MiB.
	httpWriteTimeout = 10 * time.Minute
	// httpIdleTimeout closes keep-alive connections that send nothing.
	httpIdleTimeout = 2 * time.Minute
)

// newHTTPServer is serve's HTTP server for h, with its timeouts.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// newJobHTTPServer is the job listener's server: the job handler with
// main's timeouts and error log. Jobs run code from pull requests, so the
// listener they reach is no more patient with a stalled client than the
// main one.
func newJobHTTPServer(srv *server, main *http.Server) *http.Server {
	return &http.Server{
		Handler:           srv.jobHandler(),
		ReadHeaderTimeout: main.ReadHeaderTimeout,
		ReadTimeout:       main.ReadTimeout,
		WriteTimeout:      main.WriteTimeout,
		IdleTimeout:       main.IdleTimeout,
		ErrorLog:          main.ErrorLog,
	}
}

// parseByteSize reads a size: a whole number of bytes, or one with a unit
// (K, M, G, T, as powers of 1024, with an optional "iB" or "B").
func parseByteSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult = 1 << (10 * (i + 1))
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size: want a positive number of bytes, or one like 512M, 2GiB", s)
	}
	return n * mult, nil
}

// secretOption is a secret that may come from --NAME on the command line,
// from the file --NAME-file names, or from the environment variable env,
// in that order; "" when none is given. A command line is visible to every
// local user (ps, /proc/PID/cmdline), so --NAME still works, as before,
// but warns on stderr; a process's environment and a 0600 file are the
// user's own. A file is read whole, less trailing white space; one that
// cannot be read, or holds nothing, is an error, as is giving both flags.
func secretOption(name, value, file, env string, getenv func(string) string, stderr io.Writer) (string, error) {
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("--%s and --%s-file: give one", name, name)
	case value != "":
		fmt.Fprintf(stderr, "shithub-actions: warning: --%s on the command line is visible to every local user (ps); use --%s-file FILE or $%s\n", name, name, env)
		return value, nil
	case file != "":
		v, err := readSecretFile(file)
		if err != nil {
			return "", fmt.Errorf("--%s-file: %v", name, err)
		}
		return v, nil
	}
	return getenv(env), nil
}

// readSecretFile reads a token from a file: a regular file of at most
// 4 KiB, its trailing white space (the newline of echo) dropped.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return "", err
	} else if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4<<10+1))
	if err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	if len(b) > 4<<10 {
		return "", fmt.Errorf("%s is longer than 4 KiB, too long for a token", path)
	}
	v := strings.TrimRight(string(b), " \t\r\n")
	if v == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("%s holds more than one line", path)
	}
	return v, nil
}

// secretCommand is `secret set|list|delete` and `var set|list|delete`, for
// a repository (OWNER/REPO) or for every repository of a user (--owner
// USER). A value is read from standard input, byte for byte, never from
// the command line, where other users could see it in the process list.
// Nothing prints a secret's value.
func (c *cli) secretCommand(ctx context.Context, kind, verb string, args []string) error {
	fs := flag.NewFlagSet(kind+" "+verb, flag.ContinueOnError)
	owner := fs.String("owner", "", "a user: the "+kind+" is for every repository of USER")
	pos, err := c.parseAny(fs, args)
	if err != nil {
		return err
	}
	want := 1 // OWNER/REPO
	if *owner != "" {
		want = 0
	}
	if verb != "list" {
		want++ // NAME
	}
	if len(pos) != want {
		name := " NAME"
		if verb == "list" {
			name = ""
		}
		return apperr.Usagef("usage: shithub-actions %s %s OWNER/REPO%s (or --owner USER%s)", kind, verb, name, name)
	}
	var name string
	if verb != "list" {
		name = pos[len(pos)-1]
		check := store.CheckSecretName
		if kind == "var" {
			check = store.CheckVariableName
		}
		if name, err = check(name); err != nil {
			return apperr.Usagef("%v", err)
		}
	}
	var value []byte
	if verb == "set" {
		// Read before opening the database: a pipe that fails changes nothing.
		value, err = io.ReadAll(io.LimitReader(c.stdin, store.SecretValueMax+1))
		if err != nil {
			return fmt.Errorf("reading the value from standard input: %w", err)
		}
		if len(value) > store.SecretValueMax {
			return apperr.Usagef("the value on standard input is longer than %d bytes (48 KiB)", store.SecretValueMax)
		}
		check := store.SecretCheckValue
		if kind == "var" {
			check = func(v []byte) error { return store.CheckVariableValue(string(v)) }
		}
		if err := check(value); err != nil {
			return apperr.Usagef("%v", err)
		}
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	var sc store.SecretScope
	where := ""
	if *owner != "" {
		u, err := findUser(ctx, st, *owner)
		if err != nil {
			return err
		}
		sc, where = store.SecretScope{OwnerID: u.ID}, "owner "+u.Name
	} else {
		r, err := findRepo(ctx, st, pos[0])
		if err != nil {
			return err
		}
		sc, where = store.SecretScope{RepoID: r.ID}, r.FullName()
	}
	what := map[string]string{"secret": "secret", "var": "variable"}[kind]
	switch verb {
	case "set":
		var created bool
		if kind == "secret" {
			created, err = st.SetSecret(ctx, sc, name, value)
			clear(value)
		} else {
			created, err = st.WriteVariable(ctx, sc, store.VarUpsert, name, "", string(value))
		}
		if err != nil {
			return err
		}
		done := "updated"
		if created {
			done = "created"
		}
		fmt.Fprintf(c.stdout, "%s %s %s of %s\n", done, what, name, where)
	case "delete":
		if kind == "secret" {
			err = st.DeleteSecret(ctx, sc, name)
		} else {
			err = st.DeleteVariable(ctx, sc, name)
		}
		if errors.Is(err, apperr.ErrNotFound) {
			return apperr.Usagef("%s has no %s %s", where, what, name)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "deleted %s %s of %s\n", what, name, where)
	case "list":
		const day = "2006-01-02 15:04"
		if kind == "secret" {
			list, err := st.ListSecrets(ctx, sc)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%-40s %-17s %s\n", "NAME", "CREATED", "UPDATED")
			for _, m := range list {
				fmt.Fprintf(c.stdout, "%-40s %-17s %s\n", m.Name, m.CreatedAt.UTC().Format(day), m.UpdatedAt.UTC().Format(day))
			}
			return nil
		}
		list, _, err := st.ListVariables(ctx, sc, 1, 0)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%-40s %-17s %s\n", "NAME", "UPDATED", "VALUE")
		for _, v := range list {
			val := strconv.Quote(v.Value)
			if len(val) > 60 {
				val = val[:57] + "..."
			}
			fmt.Fprintf(c.stdout, "%-40s %-17s %s\n", v.Name, v.UpdatedAt.UTC().Format(day), val)
		}
	}
	return nil
}

// actionsFetch is `actions fetch OWNER/REPO[/PATH]@REF...`: it fetches the
// actions into the data directory, as a job would, and checks that each
// has a metadata file that parses, so jobs find them without the network.
func (c *cli) actionsFetch(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("actions fetch", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "the data directory (default: the database's path + .d)")
	source := fs.String("actions-url", executor.DefaultActionsURL, "where actions not on this server come from")
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.db, "db", c.db, "database file")
	var refs []string
	for { // flags before, between or after the references
		if err := fs.Parse(args); err != nil {
			return apperr.Usagef("actions fetch: %v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		refs = append(refs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(refs) == 0 {
		return apperr.Usagef("actions fetch: name at least one OWNER/REPO@REF")
	}
	var parsed []workflow.ActionRef
	for _, s := range refs {
		r, err := workflow.ParseActionRef(s)
		if err != nil {
			return apperr.Usagef("actions fetch: %v", err)
		}
		if r.Kind != workflow.ActionRepo {
			return apperr.Usagef("actions fetch: %s is not OWNER/REPO[/PATH]@REF", s)
		}
		parsed = append(parsed, r)
	}
	if *dataDir == "" {
		*dataDir = c.db + ".d"
	}
	as, err := executor.NewActionStore(filepath.Join(*dataDir, "actions"), *source)
	if err != nil {
		return apperr.Usagef("actions fetch: %v", err)
	}
	if _, err := os.Stat(c.db); err == nil {
		st, err := c.open()
		if err != nil {
			return err
		}
		defer st.Close()
		as.Local = st.ActionRepo
	}
	for _, r := range parsed {
		fa, err := as.Fetch(ctx, r, 0)
		if err != nil {
			return err
		}
		for _, n := range fa.Notes {
			fmt.Fprintln(c.stderr, "note:", n)
		}
		if r.IsCheckout() {
			fmt.Fprintf(c.stdout, "%s %s (built in: jobs do not run it)\n", r, fa.SHA)
			continue
		}
		if _, err := executor.ActionMetadata(fa.Dir, r.String()); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%s %s from %s\n", r, fa.SHA, fa.Origin)
	}
	return nil
}

// workflowFilesIn lists the workflow files of a repository's work tree
// as the server picks them from a commit (git.WorkflowDirAt): those of
// .shithub/workflows/, else those of .github/workflows/, sorted, as
// repository paths, with the directory they are in.
func workflowFilesIn(root string) (string, []string, error) {
	for _, dir := range git.WorkflowDirs {
		entries, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		var names []string
		for _, e := range entries {
			if p := dir + e.Name(); e.Type().IsRegular() && workflow.IsFile(p) {
				names = append(names, p)
			}
		}
		if len(names) > 0 {
			return dir, names, nil
		}
	}
	return git.WorkflowDir, nil, nil
}

// errWorkflowProblems makes `workflow check` exit 1 once it has printed the
// problems; the message itself is the count.
type workflowCheckFailed struct{ problems, files int }

func (e workflowCheckFailed) Error() string {
	return fmt.Sprintf("%d problem(s) in %d file(s)", e.problems, e.files)
}

// workflowCheck is `workflow check [FILE|DIR...]`: it parses each file
// offline and prints every problem as file:line:col: message. A directory
// is a repository's work tree: its workflow files are those of the
// directory the server reads (.shithub/workflows/, else
// .github/workflows/), and a line says which; no argument is the current
// directory. Exit 1 when any file has a problem; 2 for bad usage, such as
// a file that cannot be read or a repository with no workflow files.
func workflowCheck(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		args = []string{"."}
	}
	type file struct {
		name string
		data []byte
	}
	var files []file
	for _, a := range args {
		if strings.HasPrefix(a, "-") && a != "-" {
			return apperr.Usagef("workflow check: unknown flag %s", a)
		}
		if st, err := os.Stat(a); err == nil && st.IsDir() {
			dir, names, err := workflowFilesIn(a)
			if err != nil {
				return apperr.Usagef("workflow check: %v", err)
			}
			if len(names) == 0 {
				return apperr.Usagef("workflow check: %s has no workflow files in %s or %s", a, git.WorkflowDir, git.GitHubWorkflowDir)
			}
			note := ""
			if dir == git.GitHubWorkflowDir {
				note = " (" + git.WorkflowDir + " has none)"
			}
			fmt.Fprintf(stdout, "%s: %d workflow file(s) in %s%s\n", a, len(names), dir, note)
			for _, n := range names {
				p := filepath.Join(a, filepath.FromSlash(n))
				data, err := os.ReadFile(p)
				if err != nil {
					return apperr.Usagef("workflow check: %v", err)
				}
				files = append(files, file{p, data})
			}
			continue
		}
		data, err := os.ReadFile(a)
		if err != nil {
			return apperr.Usagef("workflow check: %v", err)
		}
		files = append(files, file{a, data})
	}
	failed := workflowCheckFailed{}
	for _, f := range files {
		_, errs := workflow.Check(f.name, f.data)
		for _, e := range errs {
			fmt.Fprintln(stdout, e.Error())
		}
		if len(errs) > 0 {
			failed.problems += len(errs)
			failed.files++
		}
	}
	if failed.files > 0 {
		return failed
	}
	return nil
}
