package main

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"shithub-actions/internal/apperr"
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

// TestListenServe: the listeners serve opens, the port jobs are told, and
// that a failure leaves nothing open (a listener left behind would hold
// the port of a server that never started).
func TestListenServe(t *testing.T) {
	t.Parallel()
	loopbackGW := func() (string, error) { return "127.0.0.1", nil }
	noDocker := func() (string, error) { return "", errors.New("no engine") }
	port := func(l net.Listener) string { return strconv.Itoa(l.Addr().(*net.TCPAddr).Port) }
	tests := []struct {
		name                  string
		addr, jobAddr, jobURL string
		gateway               func() (string, error)
		jobListener           bool
		url                   func(*serveListeners) string
	}{
		{"off: jobs reach the main port", "127.0.0.1:0", "off", "", noDocker, false,
			func(l *serveListeners) string { return "http://shithub.localhost:" + port(l.main) }},
		{"a job listener: jobs reach its port", "127.0.0.1:0", "127.0.0.1:0", "", noDocker, true,
			func(l *serveListeners) string { return "http://shithub.localhost:" + port(l.job) }},
		{"auto on loopback: on the gateway", "127.0.0.1:0", "auto", "", loopbackGW, true,
			func(l *serveListeners) string { return "http://shithub.localhost:" + port(l.job) }},
		{"auto, no engine: the main listener only", "127.0.0.1:0", "auto", "", noDocker, false,
			func(l *serveListeners) string { return "http://shithub.localhost:" + port(l.main) }},
		{"--job-url is what jobs see", "127.0.0.1:0", "127.0.0.1:0", "http://ci.example:9000/", noDocker, true,
			func(*serveListeners) string { return "http://ci.example:9000" }},
	}
	for _, tt := range tests {
		l, err := listenServe(tt.addr, tt.jobAddr, tt.jobURL, tt.gateway)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if (l.job != nil) != tt.jobListener {
			t.Errorf("%s: job listener %v, want one: %v", tt.name, l.job, tt.jobListener)
		}
		if want := tt.url(l); l.plan.URL != want {
			t.Errorf("%s: jobs reach %q, want %q", tt.name, l.plan.URL, want)
		}
		open := []net.Listener{l.main}
		if l.job != nil {
			open = append(open, l.job)
		}
		for _, ln := range open {
			if c, err := net.Dial("tcp", ln.Addr().String()); err != nil {
				t.Errorf("%s: dial %s: %v", tt.name, ln.Addr(), err)
			} else {
				c.Close()
			}
		}
		l.Close()
		for _, ln := range open {
			if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
				c.Close()
				t.Errorf("%s: %s still open after Close", tt.name, ln.Addr())
			}
		}
	}

	// A bad address is bad input; a port someone else holds is not.
	if _, err := listenServe("bogus", "off", "", noDocker); !errors.As(err, new(apperr.UsageError)) {
		t.Errorf("bad --addr: %v, want a usage error", err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := listenServe(busy.Addr().String(), "off", "", noDocker); err == nil || errors.As(err, new(apperr.UsageError)) {
		t.Errorf("--addr in use: %v, want an error that is not a usage error", err)
	}
	// The job listener's port is taken: the main listener, already open,
	// is closed again.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mainAddr := free.Addr().String()
	free.Close()
	if _, err := listenServe(mainAddr, busy.Addr().String(), "", noDocker); err == nil || !strings.Contains(err.Error(), "the job listener (--job-addr)") {
		t.Errorf("--job-addr in use: %v", err)
	}
	if ln, err := net.Listen("tcp", mainAddr); err != nil {
		t.Errorf("the main listener was left open when the job listener failed: %v", err)
	} else {
		ln.Close()
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
