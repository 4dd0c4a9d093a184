// Workflows as the GitHub REST API has them: a row per workflow file of a
// repository with a stable id, its name, its enabled state, and a kept count
// of its runs with its newest run (last_run_id, kept by the runs_kept
// triggers: the Actions tab's choices and the badge). A row appears when the
// file first starts a run, or when the API lists the workflows of the
// default branch, and stays when retention removes its runs.

package store

import (
	"context"
	"database/sql"
	"errors"
	"path"
	"strconv"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/workflow"
)

// Workflow states, as GitHub names them. A disabled workflow starts no runs.
const (
	WorkflowActive   = "active"
	WorkflowDisabled = "disabled_manually"
)

// WorkflowRow is a row of the workflows table.
type WorkflowRow struct {
	ID        int64
	RepoID    int64
	Path      string // .shithub/workflows/ci.yml or .github/workflows/ci.yml
	Name      string
	State     string
	RunCount  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

const workflowCols = "id, repo_id, path, name, state, run_count, created_at, updated_at FROM workflows"

func scanWorkflow(row interface{ Scan(...any) error }) (*WorkflowRow, error) {
	w := &WorkflowRow{}
	var created, updated sql.NullInt64
	if err := row.Scan(&w.ID, &w.RepoID, &w.Path, &w.Name, &w.State, &w.RunCount, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	w.CreatedAt, w.UpdatedAt = msTime(created), msTime(updated)
	return w, nil
}

// upsertWorkflow returns the row of a repository's workflow file, creating
// it. A name from a file that parsed replaces the row's name; a file that did
// not parse keeps the name it had.
func (s *Store) UpsertWorkflow(tx *sql.Tx, repoID int64, file, name string, parsed bool, now int64) (*WorkflowRow, error) {
	if _, err := tx.Exec(`INSERT INTO workflows (repo_id, path, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (repo_id, path) DO NOTHING`, repoID, file, name, now, now); err != nil {
		return nil, err
	}
	if parsed {
		if _, err := tx.Exec("UPDATE workflows SET name = ?, updated_at = ? WHERE repo_id = ? AND path = ? AND name != ?",
			name, now, repoID, file, name); err != nil {
			return nil, err
		}
	}
	return scanWorkflow(tx.QueryRow("SELECT "+workflowCols+" WHERE repo_id = ? AND path = ?", repoID, file))
}

// listWorkflows lists a repository's workflows by path.
func (s *Store) ListWorkflows(ctx context.Context, repoID int64) ([]*WorkflowRow, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+workflowCols+" WHERE repo_id = ? ORDER BY path", repoID)
	out, err := ScanAll(rows, err, scanWorkflow)
	if out == nil && err == nil {
		out = []*WorkflowRow{} // a JSON list, never null
	}
	return out, err
}

func (s *Store) workflowByID(ctx context.Context, repoID, id int64) (*WorkflowRow, error) {
	return scanWorkflow(s.db.QueryRowContext(ctx, "SELECT "+workflowCols+" WHERE repo_id = ? AND id = ?", repoID, id))
}

func (s *Store) WorkflowByPath(ctx context.Context, repoID int64, file string) (*WorkflowRow, error) {
	return scanWorkflow(s.db.QueryRowContext(ctx, "SELECT "+workflowCols+" WHERE repo_id = ? AND path = ?", repoID, file))
}

// disabledWorkflows lists the paths of a repository's disabled workflows.
func (s *Store) disabledWorkflows(ctx context.Context, repoID int64) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT path FROM workflows WHERE repo_id = ? AND state != 'active'", repoID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out[p] = true
	}
	return out, rows.Err()
}

// setWorkflowState enables or disables a workflow. Setting the state it is
// in changes nothing and is not an error, as on GitHub.
func (s *Store) SetWorkflowState(ctx context.Context, repoID, id int64, state string) error {
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		var cur string
		if err := tx.QueryRow("SELECT state FROM workflows WHERE repo_id = ? AND id = ?", repoID, id).Scan(&cur); err != nil {
			return notFound(err)
		}
		if cur == state {
			return nil
		}
		return mustAffectOne(tx.Exec("UPDATE workflows SET state = ?, updated_at = ? WHERE id = ?", state, s.NowMS(), id))
	})
}

// workflowFile is a workflow file of a commit and the name it gives itself.
type WorkflowFile struct {
	Path, Name string
	Parsed     bool
}

// syncWorkflows makes sure every workflow file of the default branch has a
// row, so a workflow can be listed, enabled or disabled before its first run.
func (s *Store) SyncWorkflows(ctx context.Context, repoID int64, files []WorkflowFile) error {
	if len(files) == 0 {
		return nil
	}
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		now := s.NowMS()
		for _, f := range files {
			if _, err := s.UpsertWorkflow(tx, repoID, f.Path, f.Name, f.Parsed, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// defaultBranchWorkflows reads the workflow files of a repository's default
// branch with their names; none when the repository has no commit yet.
func DefaultBranchWorkflows(ctx context.Context, g git.Repo) ([]WorkflowFile, error) {
	sha, err := g.Resolve(ctx, "HEAD")
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	paths, err := g.WorkflowFiles(ctx, sha)
	if err != nil {
		return nil, err
	}
	var out []WorkflowFile
	for _, p := range paths {
		content, err := g.ReadFile(ctx, sha, p)
		if err != nil {
			return nil, err
		}
		f := WorkflowFile{Path: p, Name: p}
		if wf, perr := workflow.Parse(path.Base(p), content); perr == nil {
			f.Name, f.Parsed = wf.Name, true
		}
		out = append(out, f)
	}
	return out, nil
}

// findWorkflow resolves GitHub's {workflow_id} path value, a numeric id or a
// file name (ci.yml), to a workflow of the repository. A file of the default
// branch that has no row yet gets one.
func (s *Store) FindWorkflow(ctx context.Context, repo *Repo, key string) (*WorkflowRow, error) {
	if id, err := strconv.ParseInt(key, 10, 64); err == nil {
		return s.workflowByID(ctx, repo.ID, id)
	}
	if !workflow.IsFile(git.WorkflowDir + key) {
		return nil, apperr.NotFoundf("workflow not found")
	}
	// A row of either directory, .shithub's first (as the runs list).
	byName := func() (*WorkflowRow, error) {
		for _, dir := range git.WorkflowDirs {
			if w, err := s.WorkflowByPath(ctx, repo.ID, dir+key); !errors.Is(err, apperr.ErrNotFound) {
				return w, err
			}
		}
		return nil, apperr.NotFoundf("workflow not found")
	}
	w, err := byName()
	if !errors.Is(err, apperr.ErrNotFound) {
		return w, err
	}
	files, err := DefaultBranchWorkflows(ctx, git.Repo{Dir: repo.GitDir})
	if err != nil {
		return nil, err
	}
	if err := s.SyncWorkflows(ctx, repo.ID, files); err != nil {
		return nil, err
	}
	return byName()
}
