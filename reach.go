// Which repositories of this server a job may fetch besides its own:
// actions/checkout's repository input and submodules (on the server's pool
// and through the runner's git endpoint) and repository actions
// (`uses: OWNER/REPO@REF`). The rule, as on GitHub:
//
//   - its own repository and any public one;
//   - a private one with a token that may read it (checkout's token input:
//     a PAT, checked as the API checks it: valid, repo:read, and its user
//     may read the repository);
//   - a private one whose owner opened it to Actions ("access" user, like
//     GitHub's "accessible from repositories owned by the user"), from
//     repositories of the same owner;
//   - never a private one from an untrusted run (a fork's pull request,
//     isForkPullRequest: the runs that get no secrets), token or not.
//
// Whether a run is untrusted is read from the run, never from what a runner
// or a job says. A repository a job may not reach is "not found", worded
// the same whether it exists or not.

package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strings"

	"shithub-actions/internal/apperr"
)

// Actions access levels of a repository (GitHub's
// actions/permissions/access): none, or open to workflows of repositories
// of the same owner. Owners here are users, so organization means the same
// as user.
const (
	accessNone         = "none"
	accessUser         = "user"
	accessOrganization = "organization"
)

var accessLevels = []string{accessNone, accessUser, accessOrganization}

// repoReach is who asks for a repository: a job of repository From, from a
// run that is Untrusted or not, with the token its step passed.
type repoReach struct {
	From      *Repo  // the job's repository; nil: none (the operator's `actions fetch`), public ones only
	Untrusted bool   // a fork's pull request: never a private repository
	Token     string // a PAT from checkout's token input; "" none
}

// errUnreachable is the answer for a repository a job may not fetch, the
// same whether it exists or not, so a private repository's name is never
// confirmed to a job that may not read it.
func errUnreachable(full string) error {
	return apperr.NotFoundf("repository %s not found, or not reachable from this job: a private repository is reachable only "+
		"with a token (checkout's token input) that may read it, or from its owner's repositories when its owner "+
		"opened it to them (repo access), and never from a pull request's run", full)
}

// reachRepo is repository owner/name if from may fetch it (the rule above).
// A token that is given must be a valid PAT with repo:read, whatever
// the repository, as the API asks of any credentials it is sent.
func (s *Store) reachRepo(ctx context.Context, from repoReach, owner, name string) (*Repo, error) {
	var tokUser *User
	if from.Token != "" && !isJobToken(from.Token) { // a GITHUB_TOKEN reaches no more than the job does
		u, t, err := s.patUser(ctx, from.Token)
		if err != nil {
			return nil, tokenInputError(err)
		}
		if !t.hasScope(scopeRead) {
			return nil, tokenInputError(errLacksScope(scopeRead))
		}
		_ = s.touchToken(ctx, t) // a record of use: failing to write it does not fail the checkout
		tokUser = u
	}
	full := owner + "/" + name
	repo, err := s.repoByName(ctx, owner, name)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, errUnreachable(full)
	}
	if err != nil {
		return nil, err
	}
	if !repo.Private || (from.From != nil && repo.ID == from.From.ID) {
		return repo, nil
	}
	if from.From == nil || from.Untrusted {
		return nil, errUnreachable(full)
	}
	if tokUser != nil {
		p, err := s.permission(ctx, repo, tokUser)
		if err != nil {
			return nil, err
		}
		if p >= permRead {
			return repo, nil
		}
	}
	if repo.OwnerID == from.From.OwnerID {
		level, err := s.actionsAccess(ctx, repo.ID)
		if err != nil {
			return nil, err
		}
		if level != accessNone {
			return repo, nil
		}
	}
	return nil, errUnreachable(full)
}

// tokenInputError says that checkout's token input was refused, and why,
// in the API's words (bad credentials, expired, revoked, lacks a scope).
func tokenInputError(err error) error {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return &apperr.Error{Code: ae.Code, Msg: "input token: " + ae.Msg}
	}
	return err
}

// jobReach is what the job jobID is, for reachRepo: its repository, and
// whether its run is untrusted, read from the run.
func (s *Store) jobReach(ctx context.Context, jobID int64, token string) (repoReach, error) {
	job, err := s.jobByID(ctx, jobID)
	if err != nil {
		return repoReach{}, err
	}
	run, err := s.runByID(ctx, job.RunID)
	if err != nil {
		return repoReach{}, err
	}
	return s.runReach(ctx, run, token)
}

// runReach is jobReach for a job of run.
func (s *Store) runReach(ctx context.Context, run *Run, token string) (repoReach, error) {
	repo, err := s.repoByID(ctx, run.RepoID)
	if err != nil {
		return repoReach{}, err
	}
	return repoReach{From: repo, Untrusted: isForkPullRequest(run.Event, run.EventPayload, repo.FullName()), Token: token}, nil
}

// workflow.ActionRepo is the git directory of repository owner/name for the job
// jobID (0: the operator's `actions fetch`, public repositories only) to
// use as an action: apperr.ErrNotFound (errUnreachable) for one it may not
// reach, so the name falls through to --actions-url as if this server had
// no such repository.
func (s *Store) actionRepo(ctx context.Context, owner, name string, jobID int64) (string, error) {
	from := repoReach{}
	if jobID != 0 {
		var err error
		if from, err = s.jobReach(ctx, jobID, ""); err != nil {
			return "", err
		}
	}
	repo, err := s.reachRepo(ctx, from, owner, name)
	if err != nil {
		return "", err
	}
	return repo.GitDir, nil
}

// actionsAccess is a repository's Actions access level (accessLevels).
func (s *Store) actionsAccess(ctx context.Context, repoID int64) (string, error) {
	var level string
	err := s.rd.QueryRowContext(ctx, "SELECT actions_access FROM repos WHERE id = ?", repoID).Scan(&level)
	if errors.Is(err, sql.ErrNoRows) {
		return "", apperr.ErrNotFound
	}
	return level, err
}

// setActionsAccess sets a repository's Actions access level.
func (s *Store) setActionsAccess(ctx context.Context, repoID int64, level string) error {
	level, err := parseAccessLevel(level)
	if err != nil {
		return err
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec("UPDATE repos SET actions_access = ? WHERE id = ?", level, repoID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apperr.ErrNotFound
		}
		return nil
	})
}

// parseAccessLevel checks an access level as the API and the CLI take it.
func parseAccessLevel(level string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(level))
	for _, a := range accessLevels {
		if l == a {
			return l, nil
		}
	}
	return "", apperr.Invalidf("access_level %q is not none, user or organization", level)
}

// accessRepo authenticates a request to the access endpoints: a PAT with
// scope whose user is an admin of the path's repository, as GitHub asks.
func (s *server) accessRepo(r *http.Request, scope string) (*Repo, error) {
	user, err := s.requireUser(r, scope)
	if err != nil {
		return nil, err
	}
	return s.repoFor(r, user, permAdmin)
}

// handleAccessGet serves GET /api/v1/repos/{owner}/{repo}/actions/permissions/access:
// {"access_level"}, as GitHub's.
func (s *server) handleAccessGet(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.accessRepo(r, scopeRead)
	if err != nil {
		return err
	}
	level, err := s.store.actionsAccess(r.Context(), repo.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"access_level": level})
	return nil
}

// handleAccessPut serves PUT /api/v1/repos/{owner}/{repo}/actions/permissions/access
// with {"access_level": "none"|"user"|"organization"}: 204.
func (s *server) handleAccessPut(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.accessRepo(r, scopeWrite)
	if err != nil {
		return err
	}
	var body struct {
		AccessLevel *string `json:"access_level"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.AccessLevel == nil {
		return apperr.Invalidf("access_level is required: none, user or organization")
	}
	if err := s.store.setActionsAccess(r.Context(), repo.ID, *body.AccessLevel); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// repoAccess is `repo access OWNER/NAME [none|user|organization]`: it sets
// the repository's Actions access level, or prints it.
func (c *cli) repoAccess(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("repo access", flag.ContinueOnError)
	pos, err := c.parseAny(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 && len(pos) != 2 {
		return apperr.Usagef("usage: shithub-actions repo access OWNER/NAME [none|user]")
	}
	if _, _, err := splitRepo(pos[0]); err != nil {
		return err
	}
	level := ""
	if len(pos) == 2 {
		if level, err = parseAccessLevel(pos[1]); err != nil {
			return apperr.Usagef("repo access: %v", err)
		}
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
	if level != "" {
		if err := st.setActionsAccess(ctx, r.ID, level); err != nil {
			return err
		}
	}
	if level, err = st.actionsAccess(ctx, r.ID); err != nil {
		return err
	}
	what := fmt.Sprintf("jobs of %s's other repositories reach it too (never a pull request's run)", r.Owner)
	if level == accessNone {
		what = "another repository's job reaches it only with a token that may read it"
	}
	if !r.Private {
		what = "public: every job reaches it; the level counts while it is private"
	}
	fmt.Fprintf(c.stdout, "%s: access %s (%s)\n", r.FullName(), level, what)
	return nil
}
