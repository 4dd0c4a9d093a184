package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestPlanJobEndpoint(t *testing.T) {
	gw := func() (string, error) { return "172.17.0.1", nil }
	noDocker := func() (string, error) { return "", errors.New("no engine") }
	tests := []struct {
		name                  string
		addr, jobAddr, jobURL string
		gateway               func() (string, error)
		port                  int
		listen, url           string
		addHosts              []string
		warn, err             bool
	}{
		{"loopback: a listener on the bridge", "127.0.0.1:8080", "auto", "", gw, 8080,
			"172.17.0.1:8080", "http://shithub.localhost:8080", []string{"shithub.localhost:172.17.0.1"}, false, false},
		{"localhost", "localhost:9000", "", "", gw, 9000,
			"172.17.0.1:9000", "http://shithub.localhost:9000", []string{"shithub.localhost:172.17.0.1"}, false, false},
		{"every interface: no second listener", "0.0.0.0:8080", "auto", "", gw, 8080,
			"", "http://shithub.localhost:8080", []string{"shithub.localhost:172.17.0.1"}, false, false},
		{"every interface, no engine", ":8080", "auto", "", noDocker, 8080,
			"", "http://shithub.localhost:8080", []string{"shithub.localhost:host-gateway"}, false, false},
		{"a public address", "192.0.2.7:80", "auto", "", gw, 80,
			"", "http://shithub.localhost:80", []string{"shithub.localhost:192.0.2.7"}, false, false},
		{"chosen listener", "127.0.0.1:8080", "10.0.0.5:7000", "", noDocker, 7000,
			"10.0.0.5:7000", "http://shithub.localhost:7000", []string{"shithub.localhost:10.0.0.5"}, false, false},
		{"--job-url behind a proxy", "127.0.0.1:8080", "off", "https://ci.example/", noDocker, 8080,
			"", "https://ci.example", nil, false, false},
		{"--job-url with a .localhost name", "127.0.0.1:8080", "auto", "http://ci.localhost:8080", gw, 8080,
			"172.17.0.1:8080", "http://ci.localhost:8080", []string{"ci.localhost:172.17.0.1"}, false, false},
		{"loopback without an engine", "127.0.0.1:8080", "auto", "", noDocker, 8080,
			"", "http://shithub.localhost:8080", nil, true, false},
		{"bad --job-addr", "127.0.0.1:8080", "nowhere", "", gw, 0, "", "", nil, false, true},
		{"bad --job-url", "127.0.0.1:8080", "auto", "ftp://x", gw, 0, "", "", nil, false, true},
	}
	for _, tc := range tests {
		e, err := planJobEndpoint(tc.addr, tc.jobAddr, tc.jobURL, tc.gateway)
		if (err != nil) != tc.err {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		e.finish(tc.port)
		if e.Listen != tc.listen || e.URL != tc.url || !slices.Equal(e.AddHosts, tc.addHosts) || (e.Warning != "") != tc.warn {
			t.Errorf("%s: got listen %q url %q add-host %v warning %q; want %q %q %v warning %v",
				tc.name, e.Listen, e.URL, e.AddHosts, e.Warning, tc.listen, tc.url, tc.addHosts, tc.warn)
		}
	}
}

// TestJobHandler: the job listener serves the API and git, not the pages.
func TestJobHandler(t *testing.T) {
	ts := newTestServer(t)
	h := ts.srv.jobHandler()
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/api/v1/repos/alice/pub/actions/runs", 200},
		{"/alice/pub.git/info/refs?service=git-upload-pack", 200},
		{"/alice/pub/actions", 404},
		{"/", 404},
		{"/alice/pub/actions.atom", 404},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("job listener GET %s: status = %d, want %d", tc.path, rec.Code, tc.code)
		}
	}
}

// TestClaimJobURLs: a claim tells the job where the server is. A remote
// runner's jobs get --job-url, else --base-url; the server's own pool's
// jobs get the job endpoint.
func TestClaimJobURLs(t *testing.T) {
	ts := newTestServer(t)
	ts.newRun(ts.pub)
	j := ts.heartbeat()
	if j.Env["GITHUB_SERVER_URL"] != "https://ci.example" || j.Env["GITHUB_API_URL"] != "https://ci.example/api/v1" {
		t.Fatalf("remote claim env: %v %v", j.Env["GITHUB_SERVER_URL"], j.Env["GITHUB_API_URL"])
	}
	ts.srv.jobURL = "https://jobs.example"
	ts.newRun(ts.pub)
	if j := ts.heartbeat(); j.Env["GITHUB_SERVER_URL"] != "https://jobs.example" {
		t.Fatalf("with --job-url: %v", j.Env["GITHUB_SERVER_URL"])
	}
	ctx := context.Background()
	local, err := ts.store.LocalRunner(ctx, []string{"ubuntu-latest"})
	if err != nil {
		t.Fatal(err)
	}
	ts.newRun(ts.pub)
	src := &localSource{store: ts.store, runner: local, jobURL: "http://shithub.localhost:8080"}
	cj, err := src.Claim(ctx, []string{"ubuntu-latest"})
	if err != nil || cj == nil {
		t.Fatalf("local claim: %v, %v", cj, err)
	}
	if cj.Env["GITHUB_API_URL"] != "http://shithub.localhost:8080/api/v1" {
		t.Fatalf("local claim env: %v", cj.Env["GITHUB_API_URL"])
	}
}
