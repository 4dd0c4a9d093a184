// Live backups: a consistent copy of the database while `serve` runs and
// writes go on, verified before it is given its name.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"shithub-actions/internal/apperr"
)

// backupResult describes a finished backup.
type backupResult struct {
	Path  string
	Bytes int64
	Runs  int64
}

// backup writes a consistent copy of the database to dest with VACUUM
// INTO, which reads one snapshot (writers go on meanwhile) and writes a
// compact file with no WAL beside it. The copy is made under a temporary
// name, checked with integrity_check, and then linked to dest, which must
// not exist: a backup never overwrites anything.
func (s *Store) Backup(ctx context.Context, dest string) (*backupResult, error) {
	if _, err := os.Lstat(dest); err == nil {
		return nil, apperr.Usagef("backup: %s exists; a backup never overwrites a file", dest)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, apperr.Usagef("backup: %v", err)
	}
	dir := filepath.Dir(dest)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dest)+".partial-*")
	if err != nil {
		return nil, apperr.Usagef("backup: %v", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // a no-op once linked and removed below
	// A backup holds all the database does: the server user's alone,
	// whatever the umask.
	if err := os.Chmod(tmpName, 0o600); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	// VACUUM INTO wants a file that does not exist or is empty: this one is empty.
	if _, err := s.db.ExecContext(ctx, "VACUUM INTO ?", tmpName); err != nil {
		return nil, fmt.Errorf("backup: copying: %w", err)
	}
	res := &backupResult{Path: dest}
	if err := verifyCopy(ctx, tmpName, res); err != nil {
		return nil, err
	}
	f, err := os.Open(tmpName)
	if err != nil {
		return nil, err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	// A hard link gives the copy its name only if nothing has it: no
	// overwrite even if dest appeared meanwhile.
	if err := os.Link(tmpName, dest); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, apperr.Usagef("backup: %s exists; a backup never overwrites a file", dest)
		}
		return nil, fmt.Errorf("backup: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return res, nil
}

// verifyCopy opens a copy read-only, runs integrity_check on it, and
// counts its runs.
func verifyCopy(ctx context.Context, path string, res *backupResult) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	res.Bytes = fi.Size()
	db, err := sql.Open(SqliteDriver, "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var verdict string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check(1)").Scan(&verdict); err != nil {
		return fmt.Errorf("backup: checking the copy: %w", err)
	}
	if verdict != "ok" {
		return fmt.Errorf("backup: the copy fails integrity_check: %s", verdict)
	}
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM runs").Scan(&res.Runs); err != nil {
		return fmt.Errorf("backup: counting the copy's runs: %w", err)
	}
	return nil
}
