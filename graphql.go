// GitHub's GraphQL endpoint, only as far as gh needs it. This is not a
// GraphQL engine: a query is cut into GraphQL's tokens (so that spacing,
// commas and comments do not matter) and compared with the few queries
// Debian's gh (2.23) sends for the commands the README lists; a match is
// answered from the store, anything else gets GitHub's error shape.

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/store"
)

// maxGraphQLQuery caps a query's length; gh's are a few hundred bytes.
const maxGraphQLQuery = 16 << 10

// gqlQuery is a query this endpoint knows, and how to answer it.
type gqlQuery struct {
	name    string   // what it is for, in tests and logs
	texts   []string // the query as gh sends it (and equivalent spellings)
	vars    []string // the string variables it takes, all required
	resolve func(s *server, r *http.Request, user *store.User, vars map[string]string) (any, error)
}

// gqlQueries are the queries gh sends (found by running gh 2.23 against
// serve and logging each body; TestGHCLI in compat/ runs them).
var gqlQueries = []gqlQuery{
	{
		// gh auth login and gh auth status: who the token belongs to.
		name:  "viewer login",
		texts: []string{`query UserCurrent{viewer{login}}`, `{viewer{login}}`, `query{viewer{login}}`},
		resolve: func(s *server, r *http.Request, user *store.User, _ map[string]string) (any, error) {
			return map[string]any{"viewer": map[string]any{"login": user.Name}}, nil
		},
	},
	{
		// gh workflow run without --ref (and other commands that resolve a
		// repository): the repository, its default branch among it.
		name: "repository info",
		texts: []string{`
	fragment repo on Repository {
		id
		name
		owner { login }
		hasIssuesEnabled
		description
		hasWikiEnabled
		viewerPermission
		defaultBranchRef {
			name
		}
	}

	query RepositoryInfo($owner: String!, $name: String!) {
		repository(owner: $owner, name: $name) {
			...repo
			parent {
				...repo
			}
			mergeCommitAllowed
			rebaseMergeAllowed
			squashMergeAllowed
		}
	}`},
		vars: []string{"owner", "name"},
		resolve: func(s *server, r *http.Request, user *store.User, v map[string]string) (any, error) {
			repo, p, err := s.gqlRepo(r, user, v["owner"], v["name"])
			if err != nil {
				return nil, err
			}
			return map[string]any{"repository": map[string]any{
				"id": fmt.Sprintf("R_%d", repo.ID), "name": repo.Name, "owner": map[string]any{"login": repo.Owner},
				"hasIssuesEnabled": false, "description": "", "hasWikiEnabled": false,
				"viewerPermission": strings.ToUpper(p.String()),
				"defaultBranchRef": map[string]any{"name": s.heads.get(r.Context(), repo)},
				"parent":           nil, "mergeCommitAllowed": true, "rebaseMergeAllowed": true, "squashMergeAllowed": true,
			}}, nil
		},
	},
	{
		// gh run view: the pull request of a run's branch. There are no
		// pull request objects here (a pull_request event carries its
		// numbers, nothing stores them), so there is none.
		name: "pull request for run",
		texts: []string{`
		query PullRequestForRun($owner: String!, $repo: String!, $headRefName: String!) {
			repository(owner: $owner, name: $repo) {
				pullRequests(headRefName: $headRefName, first: 1, orderBy: { field: CREATED_AT, direction: DESC }) {
					nodes {
						number
						headRepository {
							owner {
								login
							}
							name
						}
					}
				}
			}
		}`},
		vars: []string{"owner", "repo", "headRefName"},
		resolve: func(s *server, r *http.Request, user *store.User, v map[string]string) (any, error) {
			if _, _, err := s.gqlRepo(r, user, v["owner"], v["repo"]); err != nil {
				return nil, err
			}
			return map[string]any{"repository": map[string]any{"pullRequests": map[string]any{"nodes": []any{}}}}, nil
		},
	},
}

// gqlIndex maps each known query's tokens (gqlTokens) to it.
var gqlIndex = func() map[string]*gqlQuery {
	m := map[string]*gqlQuery{}
	for i := range gqlQueries {
		q := &gqlQueries[i]
		for _, t := range q.texts {
			key, err := gqlTokens(t)
			if err != nil {
				panic(fmt.Sprintf("graphql: %s: %v", q.name, err))
			}
			m[key] = q
		}
	}
	return m
}()

// gqlError is a GraphQL error as GitHub answers it (200, {"errors": [...]}).
type gqlError struct {
	Type    string `json:"type,omitempty"`
	Message string `json:"message"`
}

// errGQLUnsupported answers every query gh does not send.
var errGQLUnsupported = gqlError{Message: "shithub-actions answers only the GraphQL queries gh sends " +
	"(viewer { login }, RepositoryInfo, PullRequestForRun); use the REST API under /api/v3 for the rest"}

// gqlMatch finds the known query a request's query and variables are,
// and the variables it needs, or says why there is none.
func gqlMatch(query string, vars map[string]any) (*gqlQuery, map[string]string, *gqlError) {
	if len(query) > maxGraphQLQuery {
		return nil, nil, &gqlError{Message: fmt.Sprintf("query is longer than %d bytes", maxGraphQLQuery)}
	}
	key, err := gqlTokens(query)
	if err != nil {
		return nil, nil, &gqlError{Message: "Parse error: " + err.Error()}
	}
	q, ok := gqlIndex[key]
	if !ok {
		return nil, nil, &errGQLUnsupported
	}
	got := map[string]string{}
	for _, name := range q.vars {
		s, ok := vars[name].(string)
		if !ok {
			return nil, nil, &gqlError{Message: fmt.Sprintf("Variable $%s of type String! was provided invalid value", name)}
		}
		got[name] = s
	}
	return q, got, nil
}

// gqlTokens cuts a query into GraphQL's lexical tokens, joined by single
// spaces; commas, white space and comments are not tokens (GraphQL spec,
// section 2.1). Block strings are refused: gh sends none.
func gqlTokens(src string) (string, error) {
	var b strings.Builder
	emit := func(tok string) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(tok)
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' && src[i] != '\r' {
				i++
			}
		case strings.IndexByte("!$&():=@[]{}|", c) >= 0:
			emit(string(c))
			i++
		case c == '.':
			if !strings.HasPrefix(src[i:], "...") {
				return "", fmt.Errorf("unexpected %q at offset %d", c, i)
			}
			emit("...")
			i += 3
		case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
			j := i + 1
			for j < len(src) && (src[j] == '_' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			emit(src[i:j])
			i = j
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(src) && strings.IndexByte("0123456789.eE+-", src[j]) >= 0 {
				j++
			}
			emit(src[i:j])
			i = j
		case c == '"':
			if strings.HasPrefix(src[i:], `"""`) {
				return "", fmt.Errorf("block strings are not supported (offset %d)", i)
			}
			j := i + 1
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' {
					j++
				}
				if j < len(src) && (src[j] == '\n' || src[j] == '\r') {
					return "", fmt.Errorf("unterminated string at offset %d", i)
				}
				j++
			}
			if j >= len(src) {
				return "", fmt.Errorf("unterminated string at offset %d", i)
			}
			emit(src[i : j+1])
			i = j + 1
		default:
			return "", fmt.Errorf("unexpected character %q at offset %d", rune(c), i)
		}
	}
	if b.Len() == 0 {
		return "", errors.New("empty query")
	}
	return b.String(), nil
}

// gqlRepo loads a repository a GraphQL query names, as the REST API
// would: one the user may not read is not found, in GitHub's words.
func (s *server) gqlRepo(r *http.Request, user *store.User, owner, name string) (*store.Repo, store.Perm, error) {
	repo, err := s.store.RepoByName(r.Context(), owner, name)
	var p store.Perm
	if err == nil {
		if p, err = s.store.Permission(r.Context(), repo, user); err == nil && p < store.PermRead {
			err = apperr.ErrNotFound
		}
	}
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil, store.PermNone, &gqlError{Type: "NOT_FOUND", Message: fmt.Sprintf("Could not resolve to a Repository with the name '%s/%s'.", owner, name)}
	}
	return repo, p, err
}

func (e *gqlError) Error() string { return e.Message }

// handleGraphQL serves POST /api/graphql (GitHub Enterprise's address,
// which gh uses) and POST /api/v1/graphql and /api/v3/graphql: the queries
// in gqlQueries. Like GitHub's, it needs a token (with repo:read when it
// is a PAT); a query it does not know is answered 200 with GitHub's
// {"errors": [{"message"}]}.
func (s *server) handleGraphQL(w http.ResponseWriter, r *http.Request) error {
	user, tok, err := s.authUser(r)
	if err != nil {
		return err
	}
	if user == nil {
		return errAuthRequired
	}
	if tok != nil && !tok.HasScope(store.ScopeRead) {
		return store.ErrLacksScope(store.ScopeRead)
	}
	var req struct {
		Query         string         `json:"query"`
		Variables     map[string]any `json:"variables"`
		OperationName string         `json:"operationName"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return apperr.Malformedf("invalid JSON body: %v", err)
	}
	q, vars, gerr := gqlMatch(req.Query, req.Variables)
	if gerr == nil {
		var data any
		if data, err = q.resolve(s, r, user, vars); err == nil {
			writeJSON(w, http.StatusOK, map[string]any{"data": data})
			return nil
		}
		if !errors.As(err, &gerr) {
			return err
		}
	}
	s.log.Info("graphql query not answered", "error", gerr.Message, "query", truncate(req.Query, 1000))
	writeJSON(w, http.StatusOK, map[string]any{"errors": []*gqlError{gerr}})
	return nil
}

// truncate cuts s to at most n bytes, for logs.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
