package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// gqlBody is a GraphQL request body.
func gqlBody(query string, vars map[string]any) string {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return string(b)
}

// TestGraphQL: the queries gh sends, answered as GitHub would; everything
// else, GitHub's error shape; authentication and reach as the REST API's.
func TestGraphQL(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	repoInfo := gqlQueries[1].texts[0]
	prForRun := gqlQueries[2].texts[0]
	tests := []struct {
		name, auth, body string
		code             int
		want             string // the answer, compact JSON
	}{
		{"viewer", "alice:read", gqlBody("query UserCurrent{viewer{login}}", nil), 200,
			`{"data":{"viewer":{"login":"alice"}}}`},
		{"viewer, spelt otherwise", "bob", gqlBody("# who am I\nquery UserCurrent {\n  viewer {\n    login,\n  }\n}\n", nil), 200,
			`{"data":{"viewer":{"login":"bob"}}}`},
		{"viewer, shorthand", "bob", gqlBody("{ viewer { login } }", nil), 200, `{"data":{"viewer":{"login":"bob"}}}`},
		{"repository info, owner", "alice", gqlBody(repoInfo, map[string]any{"owner": "alice", "name": "priv"}), 200,
			`{"data":{"repository":{"defaultBranchRef":{"name":"main"},"description":"","hasIssuesEnabled":false,"hasWikiEnabled":false,"id":"R_2","mergeCommitAllowed":true,"name":"priv","owner":{"login":"alice"},"parent":null,"rebaseMergeAllowed":true,"squashMergeAllowed":true,"viewerPermission":"ADMIN"}}}`},
		{"repository info, reader", "carol:read", gqlBody(repoInfo, map[string]any{"owner": "alice", "name": "priv"}), 200,
			`"viewerPermission":"READ"`},
		{"repository info, public to anyone", "dave", gqlBody(repoInfo, map[string]any{"owner": "alice", "name": "pub"}), 200,
			`"viewerPermission":"READ"`},
		{"repository info, private to a stranger", "dave", gqlBody(repoInfo, map[string]any{"owner": "alice", "name": "priv"}), 200,
			`{"errors":[{"message":"Could not resolve to a Repository with the name 'alice/priv'.","type":"NOT_FOUND"}]}`},
		{"repository info, no such repository", "alice", gqlBody(repoInfo, map[string]any{"owner": "alice", "name": "nope"}), 200,
			`{"errors":[{"message":"Could not resolve to a Repository with the name 'alice/nope'.","type":"NOT_FOUND"}]}`},
		{"repository info, a variable missing", "alice", gqlBody(repoInfo, map[string]any{"owner": "alice"}), 200,
			`{"errors":[{"message":"Variable $name of type String! was provided invalid value"}]}`},
		{"repository info, a variable not a string", "alice", gqlBody(repoInfo, map[string]any{"owner": "alice", "name": 7}), 200,
			`{"errors":[{"message":"Variable $name of type String! was provided invalid value"}]}`},
		{"pull request for run", "carol:read", gqlBody(prForRun, map[string]any{"owner": "alice", "repo": "priv", "headRefName": "main"}), 200,
			`{"data":{"repository":{"pullRequests":{"nodes":[]}}}}`},
		{"pull request for run, stranger", "dave", gqlBody(prForRun, map[string]any{"owner": "alice", "repo": "priv", "headRefName": "main"}), 200,
			`"type":"NOT_FOUND"`},
		{"another query", "alice", gqlBody("query { viewer { login email } }", nil), 200,
			`{"errors":[{"message":"` + errGQLUnsupported.Message + `"}]}`},
		{"a mutation", "alice", gqlBody("mutation { deleteRepository(id: 1) { id } }", nil), 200, `"errors":[{"message":"shithub-actions answers only`},
		{"not GraphQL", "alice", gqlBody("query ~", nil), 200, `{"errors":[{"message":"Parse error: unexpected character '~' at offset 6"}]}`},
		{"empty query", "alice", gqlBody("", nil), 200, `{"errors":[{"message":"Parse error: empty query"}]}`},
		{"too long", "alice", gqlBody(strings.Repeat("a ", maxGraphQLQuery), nil), 200, `is longer than`},
		{"not JSON", "alice", "query{viewer{login}}", 400, `"message":"invalid JSON body`},
		{"anonymous", "", gqlBody("{viewer{login}}", nil), 401, `"message":"authentication required`},
		{"bad token", "wrong", gqlBody("{viewer{login}}", nil), 401, `"message":`},
	}
	for _, path := range []string{"/api/graphql", "/api/v3/graphql", "/api/v1/graphql"} {
		for _, tt := range tests {
			auth := ""
			if tt.auth == "wrong" {
				auth = bearer("shithub_pat_wrong")
			} else if tt.auth != "" {
				auth = bearer(ts.tokens[tt.auth])
			}
			res := ts.do(request{method: "POST", path: path, auth: auth, body: tt.body})
			var v any
			json.Unmarshal(res.body, &v)
			compact, _ := json.Marshal(v)
			if res.code != tt.code || !strings.Contains(string(compact), tt.want) {
				t.Errorf("%s %s: %d %s\nwant %d with %s", path, tt.name, res.code, compact, tt.code, tt.want)
			}
		}
	}
	ts.want(request{method: "GET", path: "/api/graphql", auth: bearer(ts.tokens["alice"])}, 405, nil)
}

// TestGQLTokens: what the matcher ignores (spacing, commas, comments) and
// what it does not (names, strings, punctuation).
func TestGQLTokens(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"{viewer{login}}", "{ viewer { login } }", ""},
		{"  {\n viewer ,{ login\t}}  # done", "{ viewer { login } }", ""},
		{`query Q($a: String! = "x, y") { f(a: $a, n: -1.5e3) { ...F @skip(if: true) } }`,
			`query Q ( $ a : String ! = "x, y" ) { f ( a : $ a n : -1.5e3 ) { ... F @ skip ( if : true ) } }`, ""},
		{`{ f(s: "a\"b") }`, `{ f ( s : "a\"b" ) }`, ""},
		{`{ f(s: """block""") }`, "", "block strings"},
		{`{ f(s: "open) }`, "", "unterminated string"},
		{"{ f(s: \"a\nb\") }", "", "unterminated string"},
		{`{ f(s: "a\`, "", "unterminated string"},
		{"{ a.b }", "", "unexpected '.'"},
		{"{ \u00e9 }", "", "unexpected character"},
		{"# only a comment", "", "empty query"},
	} {
		got, err := gqlTokens(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("gqlTokens(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("gqlTokens(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	// Every known query matches itself, and only one query.
	for _, q := range gqlQueries {
		for _, text := range q.texts {
			vars := map[string]any{}
			for _, v := range q.vars {
				vars[v] = "x"
			}
			if got, _, gerr := gqlMatch(text, vars); gerr != nil || got.name != q.name {
				t.Errorf("%s does not match itself: %v", q.name, gerr)
			}
		}
	}
}

// FuzzGraphQL feeds the matcher what an attacker might post: it never
// panics, its tokens are stable (the tokens of tokens are themselves),
// and a match is always one of the known queries with every variable.
func FuzzGraphQL(f *testing.F) {
	for _, q := range gqlQueries {
		for _, text := range q.texts {
			f.Add(text, `{"owner":"alice","name":"hello","repo":"hello","headRefName":"main"}`)
		}
	}
	f.Add(`{ f(s: "a\"b", n: -1) }`, `{}`)
	f.Add("query ~", `null`)
	f.Add(`"""`, `{"owner":1}`)
	f.Fuzz(func(t *testing.T, query, varsJSON string) {
		var vars map[string]any
		json.Unmarshal([]byte(varsJSON), &vars)
		if toks, err := gqlTokens(query); err == nil {
			again, err := gqlTokens(toks)
			if err != nil || again != toks {
				t.Fatalf("tokens of %q: %q, then %q, %v", query, toks, again, err)
			}
		}
		q, got, gerr := gqlMatch(query, vars)
		if gerr != nil {
			if gerr.Message == "" || q != nil {
				t.Fatalf("gqlMatch(%q): error %+v with query %v", query, gerr, q)
			}
			return
		}
		if len(got) != len(q.vars) {
			t.Fatalf("gqlMatch(%q) = %s with variables %v, want %v", query, q.name, got, q.vars)
		}
	})
}
