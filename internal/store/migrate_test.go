package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestMigrationWorkflows: a version-1 database with runs gains workflows
// with their kept counts, and each run its workflow.
func TestMigrationWorkflows(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{schemaSQL, "PRAGMA user_version = 1",
		"INSERT INTO users (id, name, created_at) VALUES (1, 'alice', 0)",
		"INSERT INTO repos (id, owner_id, name, git_dir, created_at) VALUES (1, 1, 'r', '/nonexistent', 0)",
	}
	for i, f := range []string{"ci.yml", "ci.yml", "ci.yml", "lint.yml"} {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO runs (uuid, repo_id, run_index, workflow_file, workflow_name, workflow_content, head_sha,
			head_ref, event, actor_id, status, created_at, updated_at) VALUES ('u%d', 1, %d, '.shithub/workflows/%s', 'N%d', '', 'x',
			'refs/heads/main', 'push', 1, 'completed', %d, 0)`, i, i+1, f, i, i))
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	st, err := openStore(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	wfs, err := st.ListWorkflows(ctx, 1)
	if err != nil || len(wfs) != 2 || wfs[0].Name != "N2" || wfs[0].RunCount != 3 || wfs[1].RunCount != 1 || wfs[0].State != WorkflowActive {
		t.Fatalf("workflows after migration = %+v, %v", wfs, err)
	}
	runs, total, err := st.ListRuns(ctx, 1, RunFilter{WorkflowFile: "ci.yml"}, 1, 10)
	if err != nil || total != 3 || len(runs) != 3 || runs[0].WorkflowID != wfs[0].ID || runs[0].Title != "" {
		t.Errorf("ci.yml runs after migration = %d (total %d), %v", len(runs), total, err)
	}
	var v int
	st.db.QueryRow("PRAGMA user_version").Scan(&v)
	if v != len(Migrations)+1 {
		t.Errorf("user_version = %d, want %d", v, len(Migrations)+1)
	}
}

// Migration 12 drops the keys an older server stored in the database.
func TestMigrationDropsStoredKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	st, err := openStore(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Later migrations are not idempotent, so the key-dropping one is run
	// as the store runs it, on a store that had the keys.
	i := slices.IndexFunc(Migrations, func(m string) bool { return strings.Contains(m, "'log_signing_key'") })
	if _, err := st.wdb.Exec("INSERT INTO meta (key, value) VALUES ('log_signing_key', 'aa'), ('runtime_secret', 'bb')"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.wdb.Exec(Migrations[i]); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	if err := st.db.QueryRow("SELECT COUNT(*) FROM meta WHERE key IN ('log_signing_key', 'runtime_secret')").Scan(&n); err != nil || n != 0 {
		t.Errorf("stored keys after migrating: %d, %v; want none", n, err)
	}
}
