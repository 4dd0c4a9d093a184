package compat

// GitHub's own CLI (Debian's gh) and go-github's enterprise client against
// serve's own HTTPS, as a GitHub Enterprise Server at https://forge.test.
// gh reaches the name through HTTPS_PROXY, a CONNECT proxy in the test
// that maps forge.test:443 to the server, and trusts the server's
// self-signed certificate through SSL_CERT_FILE.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v92/github"
)

// ghHost is the name the server is known by to gh.
const ghHost = "forge.test"

// serverTLS is a self-signed certificate for ghHost and 127.0.0.1, in
// files for serve, and a client that trusts it.
type serverTLS struct {
	certFile, keyFile string
	client            *http.Client
}

func newServerTLS(t *testing.T) *serverTLS {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: ghHost},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{ghHost}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st := &serverTLS{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(st.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	st.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return st
}

// connectProxy is an HTTPS proxy that knows one name: CONNECT to
// ghHost:443 reaches target; anything else is refused.
type connectProxy struct {
	ln     net.Listener
	target string
}

func newConnectProxy(t *testing.T, target string) *connectProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &connectProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *connectProxy) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	if req.Method != http.MethodConnect || req.Host != ghHost+":443" {
		io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
		return
	}
	defer up.Close()
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		up.Write(b)
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// ghCLI runs Debian's gh as a user on forge.test would.
type ghCLI struct {
	t    *testing.T
	bin  string
	env  []string
	repo string // -R forge.test/alice/hello
}

func newGHCLI(t *testing.T, e *env, st *serverTLS) *ghCLI {
	bin, err := exec.LookPath("gh")
	if err != nil {
		if os.Getenv("SHITHUB_REQUIRE_GH") != "" {
			t.Fatalf("gh is not installed, and SHITHUB_REQUIRE_GH is set: %v", err)
		}
		t.Skip("gh is not installed (apt-get install gh); CI sets SHITHUB_REQUIRE_GH and installs it")
	}
	proxy := newConnectProxy(t, strings.TrimPrefix(e.base, "https://"))
	home := t.TempDir()
	return &ghCLI{t: t, bin: bin, repo: ghHost + "/alice/hello", env: []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GH_CONFIG_DIR=" + filepath.Join(home, "gh"),
		"XDG_CONFIG_HOME=" + home, "XDG_CACHE_HOME=" + home, "XDG_STATE_HOME=" + home, "XDG_DATA_HOME=" + home,
		"SSL_CERT_FILE=" + st.certFile, "HTTPS_PROXY=http://" + proxy.ln.Addr().String(),
		"NO_PROXY=", "GH_NO_UPDATE_NOTIFIER=1", "GH_PROMPT_DISABLED=1", "NO_COLOR=1", "GH_PAGER=cat", "PAGER=cat",
		"TERM=dumb", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull,
	}}
}

// run runs gh with args and stdin, failing the test when gh fails.
func (g *ghCLI) run(stdin string, args ...string) string {
	g.t.Helper()
	out, err := g.try(stdin, args...)
	if err != nil {
		g.t.Fatalf("gh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (g *ghCLI) try(stdin string, args ...string) (string, error) {
	cmd := exec.Command(g.bin, args...)
	cmd.Env = g.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	g.t.Logf("gh %s:\n%s", strings.Join(args, " "), out)
	return string(out), err
}

// requestRE picks the method and path out of the server's request log.
var requestRE = regexp.MustCompile(`msg=request method=(\S+) path=(\S+) status=(\d+)`)

// requestsSeen lists the distinct requests in the server log, with their
// status, ids replaced by N.
func requestsSeen(logs string) []string {
	digits := regexp.MustCompile(`/[0-9]+(/|$)`)
	seen := map[string]bool{}
	for _, m := range requestRE.FindAllStringSubmatch(logs, -1) {
		p := m[2]
		for digits.MatchString(p) {
			p = digits.ReplaceAllString(p, "/N$1")
		}
		seen[m[1]+" "+p+" "+m[3]] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const failingWorkflow = `name: Lint
on:
  push:
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: echo linting
`

// TestGHCLI drives Debian's gh against serve's own HTTPS: log in with a
// token, then every command the README lists, checking what each shows.
func TestGHCLI(t *testing.T) {
	st := newServerTLS(t)
	e := newEnvWith(t, st)
	g := newGHCLI(t, e, st)
	R := []string{"-R", g.repo}

	// Logging in checks the token against GET /api/v3/; a bad one is refused.
	if out, err := g.try("not-a-token\n", "auth", "login", "--hostname", ghHost, "--with-token"); err == nil {
		t.Fatalf("gh auth login took a bad token:\n%s", out)
	}
	g.run(e.token+"\n", "auth", "login", "--hostname", ghHost, "--with-token")
	if out := g.run("", "auth", "status", "--hostname", ghHost); !strings.Contains(out, "Logged in to "+ghHost+" as alice") {
		t.Errorf("gh auth status:\n%s", out)
	}

	// Runs: CI (build, then test) and Lint from one push.
	e.commit("main", "First commit", map[string]string{
		".shithub/workflows/ci.yml": ciWorkflow, ".shithub/workflows/lint.yml": failingWorkflow})
	var lintJob, buildJob *claimed
	for range 2 {
		c := e.claim()
		if c == nil {
			t.Fatal("no job to claim")
		}
		switch c.JobKey {
		case "lint":
			lintJob = c
		case "build":
			buildJob = c
		}
	}
	if lintJob == nil || buildJob == nil {
		t.Fatalf("claimed %+v and %+v, want lint and build", lintJob, buildJob)
	}
	ann := fmt.Sprintf(`{"step_id":%d,"level":"error","message":"lint found a tab","file":"main.go","line":3,"col":1,"end_line":3,"end_column":4,"title":"tabs"}`, lintJob.Steps[0].ID)
	if code, body := e.runnerPost(fmt.Sprintf("/api/v1/jobs/%d/annotations", lintJob.JobID), ann); code != http.StatusAccepted {
		t.Fatalf("annotation: %d %s", code, body)
	}
	e.finish(lintJob, "failure")

	out := g.run("", append([]string{"run", "list"}, R...)...)
	for _, want := range []string{"CI", "Lint", "First commit", "main", "push"} {
		if !strings.Contains(out, want) {
			t.Errorf("gh run list: no %q in\n%s", want, out)
		}
	}

	out = g.run("", append([]string{"workflow", "list"}, R...)...)
	if !strings.Contains(out, "CI") || !strings.Contains(out, "Lint") || !strings.Contains(out, "active") {
		t.Errorf("gh workflow list:\n%s", out)
	}

	lintRun := e.runIDOf(lintJob)
	out = g.run("", append([]string{"run", "view", fmt.Sprint(lintRun)}, R...)...)
	for _, want := range []string{"Lint", "lint", "ANNOTATIONS", "lint found a tab", "main.go#3"} {
		if !strings.Contains(out, want) {
			t.Errorf("gh run view: no %q in\n%s", want, out)
		}
	}
	out = g.run("", append([]string{"run", "view", fmt.Sprint(lintRun), "--log"}, R...)...)
	if !strings.Contains(out, "hello from lint step 1") {
		t.Errorf("gh run view --log:\n%s", out)
	}

	// The CI run is still in progress: cancel it, then rerun it.
	ciRun := e.runIDOf(buildJob)
	g.run("", append([]string{"run", "cancel", fmt.Sprint(ciRun)}, R...)...)
	// The runner hears of it at its next cancel check, and ends the job.
	if code, body := e.runnerPost(fmt.Sprintf("/api/v1/jobs/%d/cancel-check", buildJob.JobID), ""); code != 200 || !strings.Contains(string(body), `"cancel_requested": true`) {
		t.Fatalf("cancel-check after gh run cancel: %d %s", code, body)
	}
	e.finish(buildJob, "cancelled")
	if got := e.runStatus(ciRun); got != "completed/cancelled" {
		t.Errorf("after gh run cancel: %s", got)
	}
	before := e.runCount()
	g.run("", append([]string{"run", "rerun", fmt.Sprint(lintRun)}, R...)...)
	if got := e.runCount(); got != before+1 {
		t.Errorf("after gh run rerun: %d runs, want %d", got, before+1)
	}

	// workflow run without --ref: the default branch, from GraphQL.
	g.run("", append([]string{"workflow", "run", "ci.yml"}, R...)...)
	var dispatched struct {
		WorkflowRuns []struct {
			Event string `json:"event"`
		} `json:"workflow_runs"`
	}
	g.run("", append([]string{"workflow", "run", "CI", "--ref", "main"}, R...)...)
	e.getJSON("/api/v3/repos/alice/hello/actions/runs?event=workflow_dispatch", &dispatched)
	if len(dispatched.WorkflowRuns) != 2 {
		t.Errorf("after gh workflow run, twice: %d dispatched runs, want 2", len(dispatched.WorkflowRuns))
	}

	g.run("", append([]string{"secret", "set", "DEPLOY_KEY", "--body", "s3cret"}, R...)...)
	var sec struct {
		Name string `json:"name"`
	}
	e.getJSON("/api/v1/repos/alice/hello/actions/secrets/DEPLOY_KEY", &sec)
	if sec.Name != "DEPLOY_KEY" {
		t.Errorf("after gh secret set: %+v", sec)
	}

	out = g.run("", "api", "--hostname", ghHost, "repos/alice/hello/actions/runs", "--jq", ".workflow_runs[0].url")
	if !strings.HasPrefix(strings.TrimSpace(out), "https://"+ghHost+"/api/v3/repos/alice/hello/actions/runs/") {
		t.Errorf("gh api: run url %q, want one under https://%s/api/v3/", out, ghHost)
	}
	out = g.run("", "api", "--hostname", ghHost, "graphql", "-f", "query=query UserCurrent{viewer{login}}", "--jq", ".data.viewer.login")
	if strings.TrimSpace(out) != "alice" {
		t.Errorf("gh api graphql viewer: %q", out)
	}

	// Every request gh made was answered: no GraphQL query unknown, no
	// error but the bad token's 401.
	logs := e.logs.String()
	if strings.Contains(logs, "graphql query not answered") {
		t.Errorf("gh sent a GraphQL query the server does not know; see the server log")
	}
	for _, r := range requestsSeen(logs) {
		t.Logf("served: %s", r)
		if f := strings.Fields(r); f[2] >= "400" && r != "GET /api/v3/ 401" {
			t.Errorf("gh's request %s failed", r)
		}
	}
}

// runIDOf is the run a claimed job belongs to.
func (e *env) runIDOf(c *claimed) int64 { return c.RunID }

// getJSON reads an API path as alice.
func (e *env) getJSON(path string, v any) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		e.t.Fatalf("GET %s: %d %s", path, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
}

func (e *env) runStatus(id int64) string {
	var run struct{ Status, Conclusion string }
	e.getJSON(fmt.Sprintf("/api/v1/repos/alice/hello/actions/runs/%d", id), &run)
	return run.Status + "/" + run.Conclusion
}

func (e *env) runCount() int {
	var runs struct {
		TotalCount int `json:"total_count"`
	}
	e.getJSON("/api/v1/repos/alice/hello/actions/runs", &runs)
	return runs.TotalCount
}

// TestGoGitHubEnterprise is go-github's GitHub Enterprise client
// (WithEnterpriseURLs, which appends api/v3/) against serve's own HTTPS:
// it reads runs, and every URL in the answers leads back under /api/v3.
func TestGoGitHubEnterprise(t *testing.T) {
	st := newServerTLS(t)
	e := newEnvWith(t, st)
	e.commit("main", "First commit", map[string]string{".shithub/workflows/ci.yml": ciWorkflow})
	gh, err := github.NewClient(github.WithHTTPClient(st.client), github.WithAuthToken(e.token),
		github.WithEnterpriseURLs(e.base, e.base))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runs, _, err := gh.Actions.ListRepositoryWorkflowRuns(ctx, "alice", "hello", nil)
	if err != nil || runs.GetTotalCount() != 1 {
		t.Fatalf("ListRepositoryWorkflowRuns = %v, %v", runs, err)
	}
	run := runs.WorkflowRuns[0]
	api := e.base + "/api/v3/"
	for name, u := range map[string]string{"url": run.GetURL(), "jobs_url": run.GetJobsURL(), "logs_url": run.GetLogsURL(),
		"repository.url": run.GetRepository().GetURL(), "actor.url": run.GetActor().GetURL()} {
		if !strings.HasPrefix(u, api) {
			t.Errorf("%s = %q, want it under %s", name, u, api)
		}
	}
	jobs, _, err := gh.Actions.ListWorkflowJobs(ctx, "alice", "hello", run.GetID(), nil)
	if err != nil || len(jobs.Jobs) == 0 || !strings.HasPrefix(jobs.Jobs[0].GetCheckRunURL(), api) {
		t.Fatalf("ListWorkflowJobs = %v, %v", jobs, err)
	}
	anns, _, err := gh.Checks.ListCheckRunAnnotations(ctx, "alice", "hello", jobs.Jobs[0].GetID(), nil)
	if err != nil || len(anns) != 0 {
		t.Errorf("ListCheckRunAnnotations = %v, %v; want none yet", anns, err)
	}
	wfs, _, err := gh.Actions.ListWorkflows(ctx, "alice", "hello", nil)
	if err != nil || wfs.GetTotalCount() != 1 {
		t.Errorf("ListWorkflows = %v, %v", wfs, err)
	}
	if _, err := gh.Actions.CancelWorkflowRunByID(ctx, "alice", "hello", run.GetID()); !errors.As(err, new(*github.AcceptedError)) {
		t.Errorf("CancelWorkflowRunByID = %v, want 202", err)
	}
	// The logs' redirect stays under /api/v3.
	u, _, err := gh.Actions.GetWorkflowRunLogs(ctx, "alice", "hello", run.GetID(), 0)
	if err != nil || !strings.HasPrefix(u.String(), api+"signed-logs/") {
		t.Errorf("GetWorkflowRunLogs = %v, %v", u, err)
	}
}
