package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"shithub-actions/internal/jobsvc"
	"shithub-actions/internal/store"
)

// The attack of issue 17 (L2): with a copy of the database alone (a
// backup, or the file left readable), forge a signed log link and a
// runtime token from what it holds. meta's log_signing_key and
// runtime_secret did it; the keys are the key file's now.
func TestDBCopyCannotForgeLinksOrTokens(t *testing.T) {
	ts, hs := newRuntimeTestServer(t)
	ts.newRun(ts.pub)
	job := ts.heartbeat()
	ts.follow(fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", job.JobID), "") // a real link works
	ctx := context.Background()
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	if _, err := ts.store.Backup(ctx, copyPath); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(store.SqliteDriver, "file:"+copyPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT key, value FROM meta")
	if err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		if k == "log_signing_key" || k == "runtime_secret" {
			t.Errorf("the database holds %s", k)
		}
		keys = append(keys, []byte(v))
		if b, err := hex.DecodeString(v); err == nil {
			keys = append(keys, b)
		}
	}
	rows.Close()
	keys = append(keys, nil) // and an empty key, when meta holds nothing
	exp := ts.clock.Now().Add(time.Minute).Unix()
	for _, key := range keys {
		m := hmac.New(sha256.New, key)
		fmt.Fprintf(m, "%s\n%d\n%d", "job", job.JobID, exp)
		path := fmt.Sprintf("/api/v1/signed-logs/job/%d?expires=%d&signature=%s", job.JobID, exp, hex.EncodeToString(m.Sum(nil)))
		if res := ts.do(request{method: "GET", path: path}); res.code != 403 {
			t.Errorf("a log link signed with meta's %q: status %d, want 403", key, res.code)
		}
		tokenKey, _ := store.RuntimeKeys(key)
		tok := jobsvc.ArtifactRuntimeToken(tokenKey, jobsvc.ArtifactJob{RunID: job.RunID, RepoID: job.RepoID, JobID: job.JobID}, ts.clock.Now(), time.Hour)
		if code, _ := artifactTwirp(t, hs.URL, cacheSvc, "GetCacheEntryDownloadURL", tok, map[string]any{"key": "k", "version": "v"}); code != 401 {
			t.Errorf("a runtime token made with meta's %q: status %d, want 401", key, code)
		}
	}
}
