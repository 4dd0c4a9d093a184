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

package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"shithub-actions/internal/apperr"
)

// Actions access levels of a repository (GitHub's
// actions/permissions/access): none, or open to workflows of repositories
// of the same owner. Owners here are users, so organization means the same
// as user.
const (
	AccessNone         = "none"
	AccessUser         = "user"
	accessOrganization = "organization"
)

var accessLevels = []string{AccessNone, AccessUser, accessOrganization}

// repoReach is who asks for a repository: a job of repository From, from a
// run that is Untrusted or not, with the token its step passed.
type RepoReach struct {
	From      *Repo  // the job's repository; nil: none (the operator's `actions fetch`), public ones only
	Untrusted bool   // a fork's pull request: never a private repository
	Token     string // a PAT from checkout's token input; "" none
}

// errUnreachable is the answer for a repository a job may not fetch, the
// same whether it exists or not, so a private repository's name is never
// confirmed to a job that may not read it.
func ErrUnreachable(full string) error {
	return apperr.NotFoundf("repository %s not found, or not reachable from this job: a private repository is reachable only "+
		"with a token (checkout's token input) that may read it, or from its owner's repositories when its owner "+
		"opened it to them (repo access), and never from a pull request's run", full)
}

// reachRepo is repository owner/name if from may fetch it (the rule above).
// A token that is given must be a valid PAT with repo:read, whatever
// the repository, as the API asks of any credentials it is sent.
func (s *Store) ReachRepo(ctx context.Context, from RepoReach, owner, name string) (*Repo, error) {
	var tokUser *User
	if from.Token != "" && !IsJobToken(from.Token) { // a GITHUB_TOKEN reaches no more than the job does
		u, t, err := s.PatUser(ctx, from.Token)
		if err != nil {
			return nil, tokenInputError(err)
		}
		if !t.HasScope(ScopeRead) {
			return nil, tokenInputError(ErrLacksScope(ScopeRead))
		}
		_ = s.TouchToken(ctx, t) // a record of use: failing to write it does not fail the checkout
		tokUser = u
	}
	full := owner + "/" + name
	repo, err := s.RepoByName(ctx, owner, name)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, ErrUnreachable(full)
	}
	if err != nil {
		return nil, err
	}
	if !repo.Private || (from.From != nil && repo.ID == from.From.ID) {
		return repo, nil
	}
	if from.From == nil || from.Untrusted {
		return nil, ErrUnreachable(full)
	}
	if tokUser != nil {
		p, err := s.Permission(ctx, repo, tokUser)
		if err != nil {
			return nil, err
		}
		if p >= PermRead {
			return repo, nil
		}
	}
	if repo.OwnerID == from.From.OwnerID {
		level, err := s.ActionsAccess(ctx, repo.ID)
		if err != nil {
			return nil, err
		}
		if level != AccessNone {
			return repo, nil
		}
	}
	return nil, ErrUnreachable(full)
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
func (s *Store) JobReach(ctx context.Context, jobID int64, token string) (RepoReach, error) {
	job, err := s.JobByID(ctx, jobID)
	if err != nil {
		return RepoReach{}, err
	}
	run, err := s.RunByID(ctx, job.RunID)
	if err != nil {
		return RepoReach{}, err
	}
	return s.RunReach(ctx, run, token)
}

// runReach is jobReach for a job of run.
func (s *Store) RunReach(ctx context.Context, run *Run, token string) (RepoReach, error) {
	repo, err := s.RepoByID(ctx, run.RepoID)
	if err != nil {
		return RepoReach{}, err
	}
	return RepoReach{From: repo, Untrusted: isForkPullRequest(run.Event, run.EventPayload, repo.FullName()), Token: token}, nil
}

// workflow.ActionRepo is the git directory of repository owner/name for the job
// jobID (0: the operator's `actions fetch`, public repositories only) to
// use as an action: apperr.ErrNotFound (errUnreachable) for one it may not
// reach, so the name falls through to --actions-url as if this server had
// no such repository.
func (s *Store) ActionRepo(ctx context.Context, owner, name string, jobID int64) (string, error) {
	from := RepoReach{}
	if jobID != 0 {
		var err error
		if from, err = s.JobReach(ctx, jobID, ""); err != nil {
			return "", err
		}
	}
	repo, err := s.ReachRepo(ctx, from, owner, name)
	if err != nil {
		return "", err
	}
	return repo.GitDir, nil
}

// actionsAccess is a repository's Actions access level (accessLevels).
func (s *Store) ActionsAccess(ctx context.Context, repoID int64) (string, error) {
	var level string
	err := s.rd.QueryRowContext(ctx, "SELECT actions_access FROM repos WHERE id = ?", repoID).Scan(&level)
	if errors.Is(err, sql.ErrNoRows) {
		return "", apperr.ErrNotFound
	}
	return level, err
}

// setActionsAccess sets a repository's Actions access level.
func (s *Store) SetActionsAccess(ctx context.Context, repoID int64, level string) error {
	level, err := ParseAccessLevel(level)
	if err != nil {
		return err
	}
	return s.WithTx(ctx, func(tx *sql.Tx) error {
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
func ParseAccessLevel(level string) (string, error) {
	l := strings.ToLower(strings.TrimSpace(level))
	for _, a := range accessLevels {
		if l == a {
			return l, nil
		}
	}
	return "", apperr.Invalidf("access_level %q is not none, user or organization", level)
}
