package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAuthMatrix runs every kind of caller against a lifecycle endpoint.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	_, pubJobs := ts.newRun(ts.pub)
	_, privJobs := ts.newRun(ts.priv)
	_, expired, _ := ts.store.createToken(ctx, ts.users["bob"], "", []string{scopeWrite}, time.Hour)
	revokedTok, revoked, _ := ts.store.createToken(ctx, ts.users["bob"], "", []string{scopeWrite}, 0)
	if err := ts.store.revokeToken(ctx, revokedTok.ID); err != nil {
		t.Fatal(err)
	}
	ts.clock.Add(2 * time.Hour) // expires the first
	unknown := patPrefix + strings.Repeat("A", 32)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:"+ts.tokens["bob"]))
	pub := fmt.Sprintf("/api/v1/jobs/%d/cancel", pubJobs[1].ID)
	priv := fmt.Sprintf("/api/v1/jobs/%d/cancel", privJobs[1].ID)
	tests := []struct {
		name, path, auth string
		code             int
		msg              string
	}{
		{"none", pub, "", 401, "authentication required"},
		{"malformed", pub, "Bearer nonsense", 401, "bad credentials"},
		{"unknown scheme", pub, "Digest abc", 401, "bad credentials"},
		{"unknown", pub, bearer(unknown), 401, "bad credentials"},
		{"expired", pub, bearer(expired), 401, "token expired"},
		{"revoked", pub, bearer(revoked), 401, "token revoked"},
		{"runner token", pub, bearer(ts.rtoken), 401, "bad credentials"},
		{"read-only scope", pub, bearer(ts.tokens["bob:read"]), 403, "repo:write"},
		{"reader without write", pub, bearer(ts.tokens["carol"]), 404, "not found"},
		{"outsider on public", pub, bearer(ts.tokens["dave"]), 404, "not found"},
		{"outsider on private", priv, bearer(ts.tokens["dave"]), 404, "not found"},
		{"unknown id", "/api/v1/jobs/999999/cancel", bearer(ts.tokens["bob"]), 404, "not found"},
		{"non-numeric id", "/api/v1/jobs/abc/cancel", bearer(ts.tokens["bob"]), 404, "not found"},
		{"writer, token scheme", pub, "token " + ts.tokens["bob"], 202, ""},
		{"writer, basic", priv, basic, 202, ""},
		{"owner", priv, bearer(ts.tokens["alice"]), 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(request{method: "POST", path: tt.path, auth: tt.auth})
			if res.code != tt.code {
				t.Fatalf("POST %s: status = %d, want %d; body %s", tt.path, res.code, tt.code, res.body)
			}
			if tt.code >= 400 {
				var body struct{ Message string }
				if err := json.Unmarshal(res.body, &body); err != nil || !strings.Contains(body.Message, tt.msg) {
					t.Errorf("POST %s: body = %s, want message containing %q", tt.path, res.body, tt.msg)
				}
			}
			if tt.code == 401 && res.header.Get("WWW-Authenticate") == "" {
				t.Errorf("POST %s: 401 without WWW-Authenticate", tt.path)
			}
		})
	}
	// Another repository's job id through the read API is not found either.
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", privJobs[0].ID), auth: bearer(ts.tokens["bob"])}, 404, nil)
}

func TestLoginLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLoginLimiter(func() time.Time { return now }, 3, time.Minute)
	for i := 0; i < 3; i++ {
		if l.wait("a") != 0 {
			t.Fatalf("held back after %d failures", i)
		}
		l.fail("a")
	}
	if w := l.wait("a"); w != time.Minute {
		t.Errorf("wait %v", w)
	}
	if l.wait("b") != 0 {
		t.Errorf("another key held back")
	}
	now = now.Add(59 * time.Second)
	if l.wait("a") != time.Second {
		t.Errorf("wait %v", l.wait("a"))
	}
	now = now.Add(time.Second)
	if l.wait("a") != 0 {
		t.Errorf("still held back after the window")
	}
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:80", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.9]:80", "192.0.2.9"},
	} {
		if got := clientKey(&http.Request{RemoteAddr: tc.addr}); got != tc.want {
			t.Errorf("clientKey(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
}
