package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"
)

// TestHealth: ok while the database answers; 503 with the reason while the
// write lock is held for longer than the probe waits; ok again after.
func TestHealth(t *testing.T) {
	ts := newTestServer(t)
	res := ts.do(request{method: "GET", path: "/healthz"})
	if res.code != 200 || string(res.body) != "ok\n" {
		t.Fatalf("GET /healthz: status = %d %q, want 200 ok", res.code, res.body)
	}
	release := make(chan struct{})
	held := make(chan struct{})
	go ts.store.WithTx(context.Background(), func(tx *sql.Tx) error {
		close(held)
		<-release
		return nil
	})
	<-held
	start := time.Now()
	res = ts.do(request{method: "GET", path: "/healthz"})
	if res.code != 503 || !strings.Contains(string(res.body), "write did not finish within 1s") {
		t.Fatalf("GET /healthz with the write lock held: status = %d %q, want 503", res.code, res.body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("GET /healthz took %s with the lock held; it waits about 1s", d)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		res = ts.do(request{method: "GET", path: "/healthz"})
		if res.code == 200 || time.Now().After(deadline) {
			break
		}
	}
	if res.code != 200 {
		t.Fatalf("GET /healthz after the lock was released: status = %d %q, want 200", res.code, res.body)
	}
}
