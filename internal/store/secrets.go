// Secrets and variables: storing them (repository-wide and owner-wide),
// the repositories' box keys for GitHub's secrets API, and what a job is
// given when it is claimed: the secrets its expressions reference, the
// variables, and its GITHUB_TOKEN (jobtoken.go).
//
// Secret values are sealed with the server key (secretbox.go) before they
// reach the database, and are opened only to hand them to a job or to mask
// them in its log. Nothing here returns a value to anyone else.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/expr"
)

const (
	// secretsPerScope is GitHub's limit on a repository's secrets (100); we
	// apply it to an owner's too.
	secretsPerScope = 100
	// variablesPerScope is GitHub's limit on a repository's variables.
	variablesPerScope = 500
	// variableValueMax is GitHub's limit on a variable's value: 48 KB.
	variableValueMax = 48 * 1024
)

// secretKey returns the server key, reading (or creating, mode 0600) the
// key file on first use.
func (s *Store) SecretKey() ([]byte, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	key, err := secretLoadKey(s.keyFile)
	if err != nil {
		return nil, err
	}
	s.key = key
	return key, nil
}

// secretScope is where a secret or variable lives: one repository
// (RepoID), or every repository of an owner (OwnerID).
type SecretScope struct {
	RepoID  int64
	OwnerID int64
}

// aad names the scope in a sealed value's additional data, so a value
// copied to another scope's row does not open.
func (sc SecretScope) aad(name string) []byte {
	if sc.RepoID != 0 {
		return secretAAD(fmt.Sprintf("repo:%d", sc.RepoID), name)
	}
	return secretAAD(fmt.Sprintf("user:%d", sc.OwnerID), name)
}

// where is the scope's condition on the secrets and variables tables.
func (sc SecretScope) where() (string, int64) {
	if sc.RepoID != 0 {
		return "repo_id = ?", sc.RepoID
	}
	return "owner_id = ?", sc.OwnerID
}

func (sc SecretScope) ids() (sql.NullInt64, sql.NullInt64) {
	return sql.NullInt64{Int64: sc.RepoID, Valid: sc.RepoID != 0}, sql.NullInt64{Int64: sc.OwnerID, Valid: sc.RepoID == 0}
}

// SecretMeta is what may be shown of a secret: never its value.
type SecretMeta struct {
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Variable is a configuration variable (the vars context): not secret.
type Variable struct {
	Name      string
	Value     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// checkSecretName is secretCheckName in the domain's error vocabulary.
func CheckSecretName(name string) (string, error) {
	n, err := secretCheckName(name)
	if err != nil {
		return "", apperr.Invalidf("%s", err.Error())
	}
	return n, nil
}

// checkVariableName applies the same rules to a variable's name.
func CheckVariableName(name string) (string, error) {
	n, err := secretCheckName(name)
	if err != nil {
		return "", apperr.Invalidf("%s", strings.Replace(err.Error(), "secret name", "variable name", 1))
	}
	return n, nil
}

func CheckVariableValue(v string) error {
	if len(v) > variableValueMax {
		return apperr.Invalidf("variable value is %d bytes long; the limit is %d bytes (48 KiB)", len(v), variableValueMax)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return apperr.Invalidf("variable value contains a NUL byte, which cannot be passed in an environment variable")
	}
	return nil
}

// setSecret stores a secret's value, sealed, creating or replacing it; it
// reports whether it was created.
func (s *Store) SetSecret(ctx context.Context, sc SecretScope, name string, value []byte) (bool, error) {
	name, err := CheckSecretName(name)
	if err != nil {
		return false, err
	}
	if err := SecretCheckValue(value); err != nil {
		return false, apperr.Invalidf("%s", err.Error())
	}
	key, err := s.SecretKey()
	if err != nil {
		return false, err
	}
	sealed, err := secretSeal(key, sc.aad(name), value)
	if err != nil {
		return false, err
	}
	created := false
	err = s.WithTx(ctx, func(tx *sql.Tx) error {
		now := s.NowMS()
		cond, id := sc.where()
		res, err := tx.Exec("UPDATE secrets SET value = ?, updated_at = ? WHERE "+cond+" AND name = ?", sealed, now, id, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var count int
		if err := tx.QueryRow("SELECT COUNT(*) FROM secrets WHERE "+cond, id).Scan(&count); err != nil {
			return err
		}
		if count >= secretsPerScope {
			return apperr.Invalidf("there are %d secrets already; the limit is %d", count, secretsPerScope)
		}
		repoID, ownerID := sc.ids()
		created = true
		_, err = tx.Exec("INSERT INTO secrets (repo_id, owner_id, name, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
			repoID, ownerID, name, sealed, now, now)
		return err
	})
	return created, err
}

// listSecrets lists a scope's secrets by name.
func (s *Store) ListSecrets(ctx context.Context, sc SecretScope) ([]SecretMeta, error) {
	cond, id := sc.where()
	rows, err := s.db.QueryContext(ctx, "SELECT name, created_at, updated_at FROM secrets WHERE "+cond+" ORDER BY name", id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []SecretMeta{}
	for rows.Next() {
		var m SecretMeta
		var c, u sql.NullInt64
		if err := rows.Scan(&m.Name, &c, &u); err != nil {
			return nil, err
		}
		m.CreatedAt, m.UpdatedAt = msTime(c), msTime(u)
		out = append(out, m)
	}
	return out, rows.Err()
}

// secretMeta is one secret's metadata; apperr.ErrNotFound when there is none.
func (s *Store) SecretMeta(ctx context.Context, sc SecretScope, name string) (*SecretMeta, error) {
	name, err := CheckSecretName(name)
	if err != nil {
		return nil, apperr.ErrNotFound // a name that cannot exist does not
	}
	cond, id := sc.where()
	m := &SecretMeta{Name: name}
	var c, u sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT created_at, updated_at FROM secrets WHERE "+cond+" AND name = ?", id, name).Scan(&c, &u); err != nil {
		return nil, notFound(err)
	}
	m.CreatedAt, m.UpdatedAt = msTime(c), msTime(u)
	return m, nil
}

// deleteSecret removes a secret; apperr.ErrNotFound when there is none.
func (s *Store) DeleteSecret(ctx context.Context, sc SecretScope, name string) error {
	name, err := CheckSecretName(name)
	if err != nil {
		return apperr.ErrNotFound
	}
	cond, id := sc.where()
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		return mustAffectOne(tx.Exec("DELETE FROM secrets WHERE "+cond+" AND name = ?", id, name))
	})
}

// openSecrets opens the named secrets of a repository, the repository's
// own over its owner's (all of them when names is nil). A name with no
// secret is left out, as GitHub leaves it empty. A value that does not open
// (the key file was replaced) is an error naming the secret, never a value.
func (s *Store) OpenSecrets(ctx context.Context, q querier, repo *Repo, names []string) (map[string]string, error) {
	key, err := s.SecretKey()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, sqlOpenSecrets, repo.ID, repo.OwnerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var isRepo bool
		var name string
		var sealed []byte
		if err := rows.Scan(&isRepo, &name, &sealed); err != nil {
			return nil, err
		}
		if names != nil && !slices.Contains(names, name) {
			continue
		}
		sc := SecretScope{OwnerID: repo.OwnerID}
		where := "owner " + repo.Owner
		if isRepo {
			sc, where = SecretScope{RepoID: repo.ID}, "repository "+repo.FullName()
		}
		plain, err := secretOpen(key, sc.aad(name), sealed)
		if err != nil {
			return nil, apperr.Invalidf("secret %s of %s cannot be decrypted with this server's key file (was it replaced?): set it again", name, where)
		}
		out[name] = string(plain) // the repository's, read last, wins
	}
	return out, rows.Err()
}

// ---- variables ----

func scanVariables(rows *sql.Rows, err error) ([]Variable, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Variable{}
	for rows.Next() {
		var v Variable
		var c, u sql.NullInt64
		if err := rows.Scan(&v.Name, &v.Value, &c, &u); err != nil {
			return nil, err
		}
		v.CreatedAt, v.UpdatedAt = msTime(c), msTime(u)
		out = append(out, v)
	}
	return out, rows.Err()
}

// listVariables lists a scope's variables by name; page is 1-based and
// perPage 0 means all. total counts them all.
func (s *Store) ListVariables(ctx context.Context, sc SecretScope, page, perPage int) ([]Variable, int, error) {
	cond, id := sc.where()
	var total int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM variables WHERE "+cond, id).Scan(&total); err != nil {
		return nil, 0, err
	}
	limit, offset := -1, 0
	if perPage > 0 {
		limit, offset = perPage, (page-1)*perPage
	}
	vs, err := scanVariables(s.db.QueryContext(ctx, "SELECT name, value, created_at, updated_at FROM variables WHERE "+cond+
		" ORDER BY name LIMIT ? OFFSET ?", id, limit, offset))
	return vs, total, err
}

// variable is one variable; apperr.ErrNotFound when there is none.
func (s *Store) Variable(ctx context.Context, sc SecretScope, name string) (*Variable, error) {
	name, err := CheckVariableName(name)
	if err != nil {
		return nil, apperr.ErrNotFound
	}
	cond, id := sc.where()
	vs, err := scanVariables(s.db.QueryContext(ctx, "SELECT name, value, created_at, updated_at FROM variables WHERE "+cond+" AND name = ?", id, name))
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, apperr.ErrNotFound
	}
	return &vs[0], nil
}

// Modes of writeVariable.
const (
	VarUpsert = iota // create or replace (the CLI)
	VarCreate        // create; an existing name is a conflict (POST)
	VarUpdate        // replace; a missing name is not found (PATCH)
)

// writeVariable creates or changes a variable. For varUpdate, newName (when
// not "") renames it. It reports whether it created one.
func (s *Store) WriteVariable(ctx context.Context, sc SecretScope, mode int, name, newName, value string) (bool, error) {
	name, err := CheckVariableName(name)
	if err != nil {
		if mode == VarUpdate {
			return false, apperr.ErrNotFound
		}
		return false, err
	}
	target := name
	if newName != "" {
		if target, err = CheckVariableName(newName); err != nil {
			return false, err
		}
	}
	if err := CheckVariableValue(value); err != nil {
		return false, err
	}
	created := false
	err = s.WithTx(ctx, func(tx *sql.Tx) error {
		now := s.NowMS()
		cond, id := sc.where()
		var exists int
		if err := tx.QueryRow("SELECT COUNT(*) FROM variables WHERE "+cond+" AND name = ?", id, name).Scan(&exists); err != nil {
			return err
		}
		switch {
		case exists == 1 && mode == VarCreate:
			return apperr.Conflictf("variable %s already exists", name)
		case exists == 0 && mode == VarUpdate:
			return apperr.ErrNotFound
		case exists == 1:
			_, err := tx.Exec("UPDATE variables SET name = ?, value = ?, updated_at = ? WHERE "+cond+" AND name = ?", target, value, now, id, name)
			if isUniqueErr(err) {
				return apperr.Conflictf("variable %s already exists", target)
			}
			return err
		}
		var count int
		if err := tx.QueryRow("SELECT COUNT(*) FROM variables WHERE "+cond, id).Scan(&count); err != nil {
			return err
		}
		if count >= variablesPerScope {
			return apperr.Invalidf("there are %d variables already; the limit is %d", count, variablesPerScope)
		}
		repoID, ownerID := sc.ids()
		created = true
		_, err := tx.Exec("INSERT INTO variables (repo_id, owner_id, name, value, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
			repoID, ownerID, name, value, now, now)
		return err
	})
	return created, err
}

// deleteVariable removes a variable; apperr.ErrNotFound when there is none.
func (s *Store) DeleteVariable(ctx context.Context, sc SecretScope, name string) error {
	name, err := CheckVariableName(name)
	if err != nil {
		return apperr.ErrNotFound
	}
	cond, id := sc.where()
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		return mustAffectOne(tx.Exec("DELETE FROM variables WHERE "+cond+" AND name = ?", id, name))
	})
}

// repoVars is a repository's vars context: its owner's variables, with the
// repository's own winning.
func (s *Store) repoVars(ctx context.Context, q querier, repo *Repo) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, sqlRepoVars, repo.ID, repo.OwnerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, rows.Err()
}

// ---- box keys ----

// boxKeyAAD binds a sealed private box key to its repository.
func boxKeyAAD(repoID int64) []byte {
	return secretAAD(fmt.Sprintf("repo-box-key:%d", repoID), "private")
}

// repoBoxKey returns the repository's X25519 key pair for the secrets API,
// making one on first use. A private key that no longer opens (the server
// key file was replaced) is replaced by a new pair: clients fetch the
// public key before each use, so they follow.
func (s *Store) RepoBoxKey(ctx context.Context, repoID int64) (pub, priv *[32]byte, err error) {
	key, err := s.SecretKey()
	if err != nil {
		return nil, nil, err
	}
	load := func(q querier) (bool, error) {
		var p, sealed []byte
		err := q.QueryRowContext(ctx, "SELECT public_key, private_key FROM repo_box_keys WHERE repo_id = ?", repoID).Scan(&p, &sealed)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		plain, err := secretOpen(key, boxKeyAAD(repoID), sealed)
		if err != nil || len(p) != 32 || len(plain) != 32 {
			return false, nil
		}
		pub, priv = new([32]byte), new([32]byte)
		copy(pub[:], p)
		copy(priv[:], plain)
		return true, nil
	}
	if ok, err := load(s.db); ok || err != nil {
		return pub, priv, err
	}
	err = s.WithTx(ctx, func(tx *sql.Tx) error {
		if ok, err := load(tx); ok || err != nil {
			return err
		}
		np, nv, err := secretNewBoxKey()
		if err != nil {
			return err
		}
		sealed, err := secretSeal(key, boxKeyAAD(repoID), nv[:])
		if err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO repo_box_keys (repo_id, public_key, private_key, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo_id) DO UPDATE SET public_key = excluded.public_key, private_key = excluded.private_key,
			created_at = excluded.created_at`, repoID, np[:], sealed, s.NowMS())
		pub, priv = np, nv
		return err
	})
	return pub, priv, err
}

// ---- what a job references ----

// jobRefs is which secrets a job's workflow text references.
type jobRefs struct {
	Secrets    []string // the secrets its expressions name (upper case), sorted
	AllSecrets bool     // it reads secrets dynamically: it gets them all
}

// workflowJobRefs reads, from a workflow file's text, the secrets job
// jobKey (its id in the workflow) references. Every string of the job and
// the workflow's env counts ("secrets.NAME anywhere in the job's
// expressions"); `if:` values are conditions, whose ${{ }} is optional. It
// reads the raw YAML, so a key the parser adds later is covered too. A job
// it cannot find gets no secrets; an expression that does not parse
// references nothing (it cannot be evaluated either).
func WorkflowJobRefs(content []byte, jobKey string) jobRefs {
	var refs jobRefs
	var doc yaml.Node
	if yaml.Unmarshal(content, &doc) != nil || len(doc.Content) == 0 {
		return refs
	}
	root := doc.Content[0]
	job := yamlMapGet(yamlMapGet(root, "jobs"), jobKey)
	if job == nil {
		return refs
	}
	names := map[string]bool{}
	budget := workflowRefsBudget // aliases could make the tree exponential
	var walk func(n *yaml.Node, isIf bool)
	walk = func(n *yaml.Node, isIf bool) {
		if budget--; budget < 0 {
			return
		}
		switch n.Kind {
		case yaml.ScalarNode:
			if n.Tag != "!!str" || !isIf && !strings.Contains(n.Value, "${{") {
				return
			}
			info, err := expr.Refs(n.Value, isIf)
			if err != nil {
				return
			}
			for _, s := range info.Secrets {
				names[s] = true
			}
			refs.AllSecrets = refs.AllSecrets || info.DynamicSecrets
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i], false) // keys may be expressions too (matrix, with)
				walk(n.Content[i+1], n.Content[i].Value == "if")
			}
		case yaml.SequenceNode, yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, false)
			}
		case yaml.AliasNode:
			if n.Alias != nil {
				walk(n.Alias, isIf)
			}
		}
	}
	walk(job, false)
	if env := yamlMapGet(root, "env"); env != nil {
		walk(env, false)
	}
	// Never nil: a nil list means "every secret" to the claim.
	refs.Secrets = slices.Sorted(maps.Keys(names))
	if refs.Secrets == nil {
		refs.Secrets = []string{}
	}
	return refs
}

// workflowRefsBudget bounds the nodes workflowJobRefs visits: YAML aliases
// can make a small file a huge tree ("billion laughs"), and the claim that
// reads it holds the write connection. No real job comes near it.
const workflowRefsBudget = 100_000

// yamlMapGet is the value of key in mapping n, or nil.
func yamlMapGet(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// isForkPullRequest reports whether a run's event is a pull request whose
// head is in another repository than repo: such runs get no secrets and a
// read-only GITHUB_TOKEN. pull_request_target runs in the base repository's
// context and is not one. Without a payload saying where the head is, a
// pull request counts as a fork: it is the safe side.
func isForkPullRequest(event string, payload map[string]any, repoFullName string) bool {
	switch event {
	case "pull_request", "pull_request_review", "pull_request_review_comment":
	default:
		return false
	}
	pr, _ := payload["pull_request"].(map[string]any)
	head, _ := pr["head"].(map[string]any)
	hrepo, _ := head["repo"].(map[string]any)
	name, _ := hrepo["full_name"].(string)
	return name == "" || !strings.EqualFold(name, repoFullName)
}

// sqlOpenSecrets is a hot query (EXPLAIN QUERY PLAN checked in the tests).
const sqlOpenSecrets = `SELECT repo_id IS NOT NULL, name, value FROM secrets
		WHERE repo_id = ? OR owner_id = ? ORDER BY repo_id IS NOT NULL`

// sqlRepoVars is a hot query (EXPLAIN QUERY PLAN checked in the tests).
const sqlRepoVars = `SELECT name, value FROM variables WHERE repo_id = ? OR owner_id = ?
		ORDER BY repo_id IS NOT NULL`
