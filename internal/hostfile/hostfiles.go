package hostfile

// Files on the host that hold what jobs and users must not read: the
// database (with its -wal and -shm), its backups, the data directory
// (caches, fetched actions). They are the server user's alone, whatever
// the umask: directories 0700, files 0600, set when they are made and
// tightened when an older server left them wider.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// mkdirPrivate makes dir (and its missing parents) and leaves dir itself
// at mode 0700.
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return ChmodPrivate(dir, 0o700)
}

// chmodPrivate sets path's mode to perm unless it already is; a path that
// does not exist is left alone.
func ChmodPrivate(path string, perm fs.FileMode) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Perm() == perm {
		return nil
	}
	if err := os.Chmod(path, perm); err != nil {
		return fmt.Errorf("making %s private (mode %04o): %w", path, perm, err)
	}
	return nil
}

// privateDBFiles makes the database file path if it does not exist, and
// leaves it, its -wal and its -shm at 0600 before SQLite opens them:
// SQLite gives the -wal and -shm it creates the database file's mode.
func PrivateDBFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		// Read-only or special paths are for SQLite to judge.
		return nil
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := ChmodPrivate(p, 0o600); err != nil {
			return err
		}
	}
	return nil
}
