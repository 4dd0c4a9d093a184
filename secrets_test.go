package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// sealFor seals value to the repository's public key as a GitHub client
// does (gh secret set, go-github, PyGithub): fetch the key, seal an
// anonymous box, send it base64 with the key_id.
func (ts *testServer) sealFor(repo *store.Repo, tok, value string) string {
	ts.t.Helper()
	var pk struct {
		KeyID string `json:"key_id"`
		Key   string `json:"key"`
	}
	ts.want(request{method: "GET", path: "/api/v1/repos/" + repo.FullName() + "/actions/secrets/public-key", auth: bearer(tok)}, 200, &pk)
	raw, err := base64.StdEncoding.DecodeString(pk.Key)
	if err != nil || len(raw) != 32 {
		ts.t.Fatalf("public key %q: %v", pk.Key, err)
	}
	var pub [32]byte
	copy(pub[:], raw)
	sealed, err := box.SealAnonymous(nil, []byte(value), &pub, rand.Reader)
	if err != nil {
		ts.t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"encrypted_value": base64.StdEncoding.EncodeToString(sealed), "key_id": pk.KeyID})
	return string(body)
}

func TestSecretsAPIRoundTrip(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	const value = "hunter2-very-secret\nsecond line"
	base := "/api/v1/repos/alice/priv/actions/secrets"
	alice := bearer(ts.tokens["alice"])

	ts.want(request{method: "PUT", path: base + "/deploy_key", auth: alice, body: ts.sealFor(ts.priv, ts.tokens["alice"], value)}, 201, nil)
	got, err := ts.store.OpenSecrets(ctx, ts.store.DBForTest(), ts.priv, []string{"DEPLOY_KEY"})
	if err != nil || got["DEPLOY_KEY"] != value {
		t.Fatalf("stored secret opens to %q, %v; want %q", got["DEPLOY_KEY"], err, value)
	}
	// Replacing answers 204; names are case-insensitive.
	ts.want(request{method: "PUT", path: base + "/DEPLOY_KEY", auth: alice, body: ts.sealFor(ts.priv, ts.tokens["alice"], "v2")}, 204, nil)
	if got, _ := ts.store.OpenSecrets(ctx, ts.store.DBForTest(), ts.priv, nil); got["DEPLOY_KEY"] != "v2" || len(got) != 1 {
		t.Fatalf("after replacing: %v", got)
	}

	var list struct {
		TotalCount int `json:"total_count"`
		Secrets    []struct {
			Name      string `json:"name"`
			CreatedAt string `json:"created_at"`
			UpdatedAt string `json:"updated_at"`
		} `json:"secrets"`
	}
	res := ts.want(request{method: "GET", path: base, auth: alice}, 200, &list)
	if list.TotalCount != 1 || len(list.Secrets) != 1 || list.Secrets[0].Name != "DEPLOY_KEY" || list.Secrets[0].CreatedAt != "2026-11-23T12:00:00Z" {
		t.Fatalf("GET %s = %s", base, res.body)
	}
	res = ts.want(request{method: "GET", path: base + "/deploy_key", auth: alice}, 200, nil)
	if keys := jsonKeys(t, res.body); !slices.Equal(keys, []string{"created_at", "name", "updated_at"}) {
		t.Fatalf("GET %s/deploy_key keys = %v", base, keys)
	}

	// Bad input changes nothing and never echoes a value.
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{base + "/GITHUB_X", ts.sealFor(ts.priv, ts.tokens["alice"], "x"), 422},
		{base + "/1ABC", ts.sealFor(ts.priv, ts.tokens["alice"], "x"), 422},
		{base + "/OK", `{"encrypted_value":"AAAA","key_id":"1"}`, 422},
		{base + "/OK", `{"key_id":"1"}`, 422},
		{base + "/OK", `{"encrypted_value":"` + base64.StdEncoding.EncodeToString(make([]byte, 60)) + `","key_id":"` + secretBoxKeyIDOf(t, ts, ts.priv) + `"}`, 422},
		{base + "/OK", `not json`, 400},
	} {
		res := ts.do(request{method: "PUT", path: tc.path, auth: alice, body: tc.body})
		if res.code != tc.code {
			t.Errorf("PUT %s %s: status = %d, want %d; body %s", tc.path, tc.body, res.code, tc.code, res.body)
		}
		if bytes.Contains(res.body, []byte("hunter2")) {
			t.Errorf("PUT %s: the answer shows a value: %s", tc.path, res.body)
		}
	}
	if l, _ := ts.store.ListSecrets(ctx, store.SecretScope{RepoID: ts.priv.ID}); len(l) != 1 {
		t.Fatalf("after bad input: %d secrets, want 1", len(l))
	}

	ts.want(request{method: "DELETE", path: base + "/deploy_key", auth: alice}, 204, nil)
	ts.want(request{method: "GET", path: base + "/DEPLOY_KEY", auth: alice}, 404, nil)
	ts.want(request{method: "DELETE", path: base + "/DEPLOY_KEY", auth: alice}, 404, nil)
}

func secretBoxKeyIDOf(t *testing.T, ts *testServer, repo *store.Repo) string {
	pub, _, err := ts.store.RepoBoxKey(context.Background(), repo.ID)
	if err != nil {
		t.Fatal(err)
	}
	return store.SecretBoxKeyID(pub)
}

func TestVariablesAPI(t *testing.T) {
	ts := newTestServer(t)
	base := "/api/v1/repos/alice/pub/actions/variables"
	bob := bearer(ts.tokens["bob"])
	ts.want(request{method: "POST", path: base, auth: bob, body: `{"name":"region","value":"eu-west"}`}, 201, nil)
	ts.want(request{method: "POST", path: base, auth: bob, body: `{"name":"REGION","value":"x"}`}, 409, nil)
	ts.want(request{method: "POST", path: base, auth: bob, body: `{"name":"GITHUB_X","value":"x"}`}, 422, nil)
	ts.want(request{method: "POST", path: base, auth: bob, body: `{"name":"NOVALUE"}`}, 422, nil)
	var v variableJSON
	ts.want(request{method: "GET", path: base + "/region", auth: bob}, 200, &v)
	if v.Name != "REGION" || v.Value != "eu-west" {
		t.Fatalf("GET %s/region = %+v", base, v)
	}
	ts.want(request{method: "PATCH", path: base + "/REGION", auth: bob, body: `{"value":"us-east"}`}, 204, nil)
	ts.want(request{method: "PATCH", path: base + "/REGION", auth: bob, body: `{"name":"ZONE"}`}, 204, nil)
	ts.want(request{method: "PATCH", path: base + "/REGION", auth: bob, body: `{"value":"x"}`}, 404, nil)
	ts.want(request{method: "GET", path: base + "/ZONE", auth: bob}, 200, &v)
	if v.Name != "ZONE" || v.Value != "us-east" {
		t.Fatalf("after PATCH: %+v", v)
	}
	for i := range 12 {
		ts.want(request{method: "POST", path: base, auth: bob, body: fmt.Sprintf(`{"name":"V%02d","value":"%d"}`, i, i)}, 201, nil)
	}
	var list struct {
		TotalCount int            `json:"total_count"`
		Variables  []variableJSON `json:"variables"`
	}
	res := ts.want(request{method: "GET", path: base + "?per_page=5&page=3", auth: bob}, 200, &list)
	if list.TotalCount != 13 || len(list.Variables) != 3 || list.Variables[0].Name != "V10" {
		t.Fatalf("page 3 of 5: %s", res.body)
	}
	if !strings.Contains(res.header.Get("Link"), `rel="first"`) {
		t.Fatalf("Link = %q", res.header.Get("Link"))
	}
	ts.want(request{method: "DELETE", path: base + "/zone", auth: bob}, 204, nil)
	ts.want(request{method: "GET", path: base + "/ZONE", auth: bob}, 404, nil)
}

// TestSecretsPermissionMatrix: who may call each secrets and variables
// endpoint, on a public and a private repository. alice owns both (admin),
// bob may write, carol may read, dave is an outsider; "alice:read" is
// alice's token without repo:write.
func TestSecretsPermissionMatrix(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	for _, r := range []*store.Repo{ts.pub, ts.priv} {
		if _, err := ts.store.SetSecret(ctx, store.SecretScope{RepoID: r.ID}, "S", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.store.WriteVariable(ctx, store.SecretScope{RepoID: r.ID}, store.VarUpsert, "V", "", "v"); err != nil {
			t.Fatal(err)
		}
	}
	// A GITHUB_TOKEN with every permission, of a job of alice/pub.
	run, jobs := ts.newRun(ts.pub)
	_ = run
	jobTok := ts.claimToken(jobs[0].ID, store.TokenPerms{Contents: "write", Actions: "write"})

	type endpoint struct {
		method, path, body string
		secret             bool // admin + repo:write; else variables (write)
		change             bool // needs repo:write
		ok                 int
	}
	endpoints := func(repo string) []endpoint {
		s := "/api/v1/repos/" + repo + "/actions/secrets"
		v := "/api/v1/repos/" + repo + "/actions/variables"
		return []endpoint{
			{"GET", s + "/public-key", "", true, true, 200},
			{"GET", s, "", true, true, 200},
			{"GET", s + "/S", "", true, true, 200},
			{"PUT", s + "/S", "SEALED", true, true, 204},
			{"DELETE", s + "/NONE", "", true, true, 404}, // allowed: the secret is missing
			{"GET", v, "", false, false, 200},
			{"POST", v, `{"name":"V","value":"x"}`, false, true, 409}, // allowed: it exists
			{"GET", v + "/V", "", false, false, 200},
			{"PATCH", v + "/V", `{"value":"w"}`, false, true, 204},
			{"DELETE", v + "/NONE", "", false, true, 404},
		}
	}
	callers := []struct {
		name string
		auth string
		perm store.Perm
		rw   bool
	}{
		{"anonymous", "", store.PermNone, false},
		{"alice", bearer(ts.tokens["alice"]), store.PermAdmin, true},
		{"alice:read", bearer(ts.tokens["alice:read"]), store.PermAdmin, false},
		{"bob", bearer(ts.tokens["bob"]), store.PermWrite, true},
		{"carol", bearer(ts.tokens["carol"]), store.PermRead, true},
		{"dave", bearer(ts.tokens["dave"]), store.PermNone, true},
		{"GITHUB_TOKEN", bearer(jobTok), store.PermWrite, true},
		{"bad token", bearer(store.PatPrefix + strings.Repeat("x", 32)), store.PermNone, false},
	}
	for _, repo := range []*store.Repo{ts.pub, ts.priv} {
		for _, ep := range endpoints(repo.FullName()) {
			for _, c := range callers {
				// The answer this caller should get.
				want := ep.ok
				needScope := store.ScopeRead
				if ep.secret || ep.change {
					needScope = store.ScopeWrite
				}
				p := c.perm
				if c.name == "GITHUB_TOKEN" && repo != ts.pub {
					p = store.PermNone // its own repository alone
				}
				if p == store.PermNone && !repo.Private {
					p = store.PermRead
				}
				need := store.PermWrite
				if ep.secret {
					need = store.PermAdmin
				}
				switch {
				case c.auth == "" || c.name == "bad token":
					want = 401
				case needScope == store.ScopeWrite && !c.rw:
					want = 403
				case p == store.PermNone:
					want = 404
				case p < need:
					want = 403
				case c.name == "GITHUB_TOKEN" && !ep.secret:
					want = 403 // a GITHUB_TOKEN has no variables permission
				}
				body := ep.body
				if body == "SEALED" {
					body = `{"encrypted_value":"x","key_id":"1"}`
					if want == ep.ok {
						body = ts.sealFor(repo, ts.tokens["alice"], "new")
					}
				}
				res := ts.do(request{method: ep.method, path: ep.path, auth: c.auth, body: body})
				if res.code != want {
					t.Errorf("%s %s as %s: status = %d, want %d; body %s", ep.method, ep.path, c.name, res.code, want, res.body)
				}
			}
		}
	}
}

// claimToken makes job jobID running with a GITHUB_TOKEN of perms, as a
// claim does, and returns the token.
func (ts *testServer) claimToken(jobID int64, perms store.TokenPerms) string {
	ts.t.Helper()
	ctx := context.Background()
	err := ts.store.WithTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.Exec("UPDATE jobs SET status = 'running', runner_id = ?, started_at = ? WHERE id = ?", ts.runner.ID, ts.store.NowMS(), jobID); err != nil {
			return err
		}
		if err := ts.store.IssueJobCredentials(ctx, tx, jobID, ts.store.NowMS()); err != nil {
			return err
		}
		_, err := tx.Exec("UPDATE job_credentials SET contents = ?, actions = ? WHERE job_id = ?", perms.Contents, perms.Actions, jobID)
		return err
	})
	if err != nil {
		ts.t.Fatal(err)
	}
	d, err := ts.store.JobDelivery(ctx, jobID)
	if err != nil {
		ts.t.Fatal(err)
	}
	return d.Token
}

func TestSecretCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "cli.db")
	gitDir, _ := newGitRepo(t, map[string]string{"README": "x"})
	for _, args := range [][]string{{"user", "create", "alice"}, {"repo", "create", "alice/hello", "--git", gitDir}} {
		if code, _, stderr := cliRun(t, db, "", args...); code != 0 {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	const value = "s3cr3t-value-from-stdin\n"
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		output string // a substring of stdout, or of stderr when code != 0
	}{
		{"set", value, []string{"secret", "set", "alice/hello", "deploy_key"}, 0, "created secret DEPLOY_KEY of alice/hello"},
		{"set again", value, []string{"secret", "set", "alice/hello", "DEPLOY_KEY"}, 0, "updated secret DEPLOY_KEY"},
		{"set for owner", "owner-value", []string{"secret", "set", "--owner", "alice", "NPM_TOKEN"}, 0, "created secret NPM_TOKEN of owner alice"},
		{"list", "", []string{"secret", "list", "alice/hello"}, 0, "DEPLOY_KEY"},
		{"list owner", "", []string{"secret", "list", "--owner", "alice"}, 0, "NPM_TOKEN"},
		{"bad name", "x", []string{"secret", "set", "alice/hello", "GITHUB_TOKEN"}, 2, "reserved"},
		{"name with dash", "x", []string{"secret", "set", "alice/hello", "A-B"}, 2, "letters A-Z"},
		{"too big", strings.Repeat("x", store.SecretValueMax+1), []string{"secret", "set", "alice/hello", "BIG"}, 2, "longer than"},
		{"unknown repo", "x", []string{"secret", "set", "alice/nope", "X"}, 2, "unknown repository"},
		{"unknown owner", "x", []string{"secret", "set", "--owner", "zed", "X"}, 2, "unknown user"},
		{"missing name", "x", []string{"secret", "set", "alice/hello"}, 2, "usage"},
		{"value as argument", "", []string{"secret", "set", "alice/hello", "X", "the-value"}, 2, "usage"},
		{"delete", "", []string{"secret", "delete", "alice/hello", "deploy_key"}, 0, "deleted secret DEPLOY_KEY"},
		{"delete again", "", []string{"secret", "delete", "alice/hello", "DEPLOY_KEY"}, 2, "has no secret DEPLOY_KEY"},
		{"var set", "eu-west", []string{"var", "set", "alice/hello", "region"}, 0, "created variable REGION"},
		{"var list", "", []string{"var", "list", "alice/hello"}, 0, `"eu-west"`},
		{"var delete", "", []string{"var", "delete", "alice/hello", "REGION"}, 0, "deleted variable REGION"},
	}
	for _, tc := range tests {
		code, stdout, stderr := cliRun(t, db, tc.stdin, tc.args...)
		out := stdout
		if tc.code != 0 {
			out = stderr
		}
		if code != tc.code || !strings.Contains(out, tc.output) {
			t.Errorf("%s: %v: exit %d, want %d; stdout %q stderr %q; want %q", tc.name, tc.args, code, tc.code, stdout, stderr, tc.output)
		}
		if strings.Contains(stdout+stderr, "s3cr3t") || strings.Contains(stdout+stderr, "owner-value") {
			t.Errorf("%s: the output shows a secret value: %q %q", tc.name, stdout, stderr)
		}
	}
	// The key file was made beside the database, private.
	st, err := os.Stat(db + ".key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	// --secret-key-file chooses another one; the old secret then does not
	// open, and the command says which.
	other := filepath.Join(dir, "other.key")
	if code, _, stderr := cliRun(t, db, "v", "--secret-key-file", other, "secret", "set", "alice/hello", "WITH_OTHER"); code != 0 {
		t.Fatalf("set with --secret-key-file: %s", stderr)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal(err)
	}
}

// TestSecretsNotInDatabaseFiles: after secrets are set, delivered to a job,
// and printed by it into its log, neither the database file nor its WAL
// holds any of them in plaintext, nor the job's GITHUB_TOKEN.
func TestSecretsNotInDatabaseFiles(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	values := map[string]string{
		"DEPLOY_KEY": "-----BEGIN KEY-----\nQWxhZGRpbjpvcGVuIHNlc2FtZQ-plaintext-marker-1\n-----END KEY-----",
		"NPM_TOKEN":  "npm_plaintext-marker-2-abcdefghijklmnop",
	}
	ts.want(request{method: "PUT", path: "/api/v1/repos/alice/priv/actions/secrets/DEPLOY_KEY", auth: bearer(ts.tokens["alice"]),
		body: ts.sealFor(ts.priv, ts.tokens["alice"], values["DEPLOY_KEY"])}, 201, nil)
	if _, err := ts.store.SetSecret(ctx, store.SecretScope{OwnerID: ts.users["alice"].ID}, "NPM_TOKEN", []byte(values["NPM_TOKEN"])); err != nil {
		t.Fatal(err)
	}
	wf := "name: Deploy\non: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n" +
		"      - run: echo ${{ secrets.DEPLOY_KEY }} ${{ secrets.npm_token }}\n"
	job := ts.claimWorkflow(ts.priv, wf)
	d, err := ts.store.JobDelivery(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Secrets["DEPLOY_KEY"] != values["DEPLOY_KEY"] || d.Secrets["NPM_TOKEN"] != values["NPM_TOKEN"] {
		t.Fatalf("delivered %v", slices.Sorted(func(y func(string) bool) {
			for k := range d.Secrets {
				y(k)
			}
		}))
	}
	log := "deploying with " + values["DEPLOY_KEY"] + " and " + values["NPM_TOKEN"] + " token " + d.Token + "\n"
	ts.postLog(job.JobID, job.Steps[1].ID, 1, log)
	ts.stepStatus(job.JobID, job.Steps[1].ID, "completed", "success")

	files := []string{}
	dbPath := filepath.Join(filepath.Dir(ts.store.Path()), "test.db")
	for _, f := range []string{dbPath, dbPath + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		for _, v := range []string{"plaintext-marker-1", "plaintext-marker-2", d.Token, "QWxhZGRpbjpvcGVuIHNlc2FtZQ"} {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds %q in plaintext", filepath.Base(f), v)
			}
		}
	}
	if len(files) != 2 {
		t.Fatal("database files not read")
	}
	// The log was stored, masked.
	logText := ts.jobLog(ts.priv, job.JobID)
	if !strings.Contains(logText, "deploying with *** and *** token ***") {
		t.Fatalf("stored log:\n%s", logText)
	}
}

// claimWorkflow makes a run of workflow text wf on repo and claims its
// first job through the runner protocol.
func (ts *testServer) claimWorkflow(repo *store.Repo, wf string) *protocol.Job {
	ts.t.Helper()
	parsed, err := workflow.Parse("deploy.yml", []byte(wf))
	if err != nil {
		ts.t.Fatal(err)
	}
	if _, _, err := ts.store.CreateRuns(context.Background(), nil, []store.RunSpec{{
		RepoID: repo.ID, File: ".shithub/workflows/deploy.yml", Content: []byte(wf), Workflow: parsed,
		HeadSHA: ts.sha, HeadRef: "refs/heads/main", Event: "push", ActorID: ts.users["alice"].ID,
	}}); err != nil {
		ts.t.Fatal(err)
	}
	j := ts.heartbeat()
	if j == nil {
		ts.t.Fatal("heartbeat: no job")
	}
	return j
}

func (ts *testServer) postLog(jobID, stepID, seq int64, data string) {
	ts.t.Helper()
	body, _ := json.Marshal(map[string]any{"step_id": stepID, "seq": seq, "data": []byte(data)})
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/logs", jobID), auth: bearer(ts.rtoken), body: string(body)}, http.StatusAccepted, nil)
}

func (ts *testServer) stepStatus(jobID, stepID int64, status, conclusion string) {
	ts.t.Helper()
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", jobID, stepID), auth: bearer(ts.rtoken),
		body: fmt.Sprintf(`{"status":%q,"conclusion":%q}`, status, conclusion)}, 200, nil)
}

// jobLog is a job's stored log as the API serves it.
func (ts *testServer) jobLog(repo *store.Repo, jobID int64) string {
	ts.t.Helper()
	res := ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/%s/actions/jobs/%d/logs", repo.FullName(), jobID),
		auth: bearer(ts.tokens["alice"])}, 302, nil)
	link := strings.TrimPrefix(res.header.Get("Location"), "https://ci.example")
	return string(ts.want(request{method: "GET", path: link}, 200, nil).body)
}
