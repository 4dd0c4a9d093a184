package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"shithub-actions/internal/store"
)

// TestAuthMatrix runs every kind of caller against a lifecycle endpoint.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	_, pubJobs := ts.newRun(ts.pub)
	_, privJobs := ts.newRun(ts.priv)
	_, expired, _ := ts.store.CreateToken(ctx, ts.users["bob"], "", []string{store.ScopeWrite}, time.Hour)
	revokedTok, revoked, _ := ts.store.CreateToken(ctx, ts.users["bob"], "", []string{store.ScopeWrite}, 0)
	if err := ts.store.RevokeToken(ctx, revokedTok.ID); err != nil {
		t.Fatal(err)
	}
	ts.clock.Add(2 * time.Hour) // expires the first
	unknown := store.PatPrefix + strings.Repeat("A", 32)
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
		wait, done := l.acquire("a")
		if done == nil {
			t.Fatalf("held back after %d failures (wait %v)", i, wait)
		}
		done(false)
	}
	if w, done := l.acquire("a"); done != nil || w != time.Minute {
		t.Errorf("4th attempt: wait %v, allowed %v", w, done != nil)
	}
	if _, done := l.acquire("b"); done == nil {
		t.Errorf("another key held back")
	}
	now = now.Add(59 * time.Second)
	if w, _ := l.acquire("a"); w != time.Second {
		t.Errorf("wait %v", w)
	}
	now = now.Add(time.Second)
	if _, done := l.acquire("a"); done == nil {
		t.Errorf("still held back after the window")
	}
	// Successes give their count back: a user may sign in all day.
	for i := 0; i < 10; i++ {
		_, done := l.acquire("c")
		if done == nil {
			t.Fatalf("successful sign-in %d held back", i)
		}
		done(true)
	}
}

// TestLoginLimiterAtomic: attempts made at once are counted at once, so no
// more than the limit get through, however many are in flight.
func TestLoginLimiterAtomic(t *testing.T) {
	l := newLoginLimiter(time.Now, 5, time.Minute)
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, done := l.acquire("k"); done != nil {
				mu.Lock()
				passed++
				mu.Unlock()
				time.Sleep(time.Millisecond) // checking the token
				done(false)
			}
		}()
	}
	wg.Wait()
	if passed != 5 {
		t.Errorf("%d of 100 parallel attempts got through, want 5", passed)
	}
}

func TestClientKey(t *testing.T) {
	s := &server{}
	trusting := &server{trustProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::1/128")}}
	for _, tc := range []struct {
		srv        *server
		addr, xff  string
		want, what string
	}{
		{s, "192.0.2.1:1234", "", "192.0.2.1", "v4"},
		{s, "[2001:db8:1:2:3:4:5:6]:80", "", "2001:db8:1:2::/64", "v6 by /64"},
		{s, "[::ffff:192.0.2.9]:80", "", "192.0.2.9", "v4 in v6"},
		{s, "192.0.2.1:1234", "198.51.100.1", "192.0.2.1", "X-Forwarded-For without --trust-proxy"},
		{trusting, "192.0.2.1:1234", "198.51.100.1", "192.0.2.1", "X-Forwarded-For from an untrusted peer"},
		{trusting, "10.1.2.3:1234", "198.51.100.1", "198.51.100.1", "a trusted proxy"},
		{trusting, "10.1.2.3:1234", "6.6.6.6, 198.51.100.1, 10.9.9.9", "198.51.100.1", "two trusted proxies; the client's own header is not believed"},
		{trusting, "[2001:db8:ffff::1]:80", "2001:db8:5:6:7::1", "2001:db8:5:6::/64", "a trusted v6 proxy"},
		{trusting, "10.1.2.3:1234", "", "10.1.2.3", "a trusted proxy that sent no header"},
		{trusting, "10.1.2.3:1234", "garbage", "10.1.2.3", "a garbled header"},
	} {
		r := &http.Request{RemoteAddr: tc.addr, Header: http.Header{}}
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := tc.srv.clientKey(r); got != tc.want {
			t.Errorf("%s: clientKey(%s, %q) = %s, want %s", tc.what, tc.addr, tc.xff, got, tc.want)
		}
	}
}
