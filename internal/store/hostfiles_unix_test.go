//go:build unix

package store

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"shithub-actions/internal/hostfile"
	"shithub-actions/internal/jobsvc"
	"syscall"
	"testing"
)

// The database, its -wal and -shm, backups and the data directory are the
// server user's alone: made so whatever the umask (0 here), and tightened
// when an older server left them wider.
func TestPrivateFileModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "ci.db")
	wantMode := func(p string, want fs.FileMode) {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Error(err)
			return
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %04o, want %04o", filepath.Base(p), got, want)
		}
	}
	ctx := context.Background()
	st, err := openStore(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		wantMode(p, 0o600)
	}
	backup := filepath.Join(dir, "backup.db")
	if _, err := st.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	wantMode(backup, 0o600)
	st.Close()

	// Left world-readable by an older server: tightened at open.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); err != nil {
			os.WriteFile(p, nil, 0o644)
		}
		os.Chmod(p, 0o644)
	}
	st, err = openStore(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		wantMode(p, 0o600)
	}
	st.Close()

	// The data directory, and the cache in it.
	data := filepath.Join(dir, "ci.db.d")
	os.Mkdir(data, 0o755)
	if err := hostfile.MkdirPrivate(data); err != nil {
		t.Fatal(err)
	}
	wantMode(data, 0o700)
	cache := filepath.Join(data, "cache")
	svc, err := jobsvc.NewCacheService(jobsvc.CacheConfig{Dir: cache, Key: make([]byte, 32), Auth: func(context.Context, string) (jobsvc.CacheScope, error) { return jobsvc.CacheScope{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Reserve(jobsvc.CacheScope{RepoID: 1, Ref: "refs/heads/main"}, "k", "v", 0); err != nil {
		t.Fatal(err)
	}
	wantMode(cache, 0o700)
	wantMode(filepath.Join(cache, "entries"), 0o700)
	wantMode(filepath.Join(cache, "index.json"), 0o600)
	wantMode(svc.PartFile(1), 0o600)
}
