// The secrets and variables API, in GitHub's shapes and paths
// (https://docs.github.com/en/rest/actions/secrets,
// https://docs.github.com/en/rest/actions/variables) under
// /api/v1/repos/{owner}/{repo}/actions/. Secrets need a PAT with repo:write
// and admin permission; variables need write permission (and repo:write to
// change them). No answer ever carries a secret's value.

package main

import (
	"net/http"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/store"
)

// secretJSON is GitHub's "Actions Secret": metadata only.
type secretJSON struct {
	Name      string     `json:"name"`
	CreatedAt *time.Time `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// variableJSON is GitHub's "Actions Variable".
type variableJSON struct {
	Name      string     `json:"name"`
	Value     string     `json:"value"`
	CreatedAt *time.Time `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// secretsRepo authenticates a request to the secrets endpoints: a PAT with
// repo:write whose user is an admin of the path's repository.
func (s *server) secretsRepo(r *http.Request) (*store.Repo, error) {
	user, err := s.requireUser(r, store.ScopeWrite)
	if err != nil {
		return nil, err
	}
	return s.repoFor(r, user, store.PermAdmin)
}

// variablesRepo authenticates a request to the variables endpoints: a PAT
// with scope whose user may write the path's repository. A GITHUB_TOKEN has
// no variables permission.
func (s *server) variablesRepo(r *http.Request, scope string) (*store.Repo, error) {
	user, err := s.requireUser(r, scope)
	if err != nil {
		return nil, err
	}
	repo, err := s.repoFor(r, user, store.PermWrite)
	if err != nil {
		return nil, err
	}
	if user.Job != nil {
		return nil, apperr.Forbiddenf("a GITHUB_TOKEN cannot read or change variables")
	}
	return repo, nil
}

// handleSecretsPublicKey serves GET /api/v1/repos/{owner}/{repo}/actions/secrets/public-key.
func (s *server) handleSecretsPublicKey(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.secretsRepo(r)
	if err != nil {
		return err
	}
	pub, _, err := s.store.RepoBoxKey(r.Context(), repo.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"key_id": store.SecretBoxKeyID(pub), "key": store.SecretBoxPublicKey(pub)})
	return nil
}

// handleSecretList serves GET /api/v1/repos/{owner}/{repo}/actions/secrets.
func (s *server) handleSecretList(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.secretsRepo(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := queryInt(q.Get("page"), 1, 1, 1<<20, "page")
	if err != nil {
		return err
	}
	perPage, err := queryInt(q.Get("per_page"), 30, 1, 100, "per_page")
	if err != nil {
		return err
	}
	all, err := s.store.ListSecrets(r.Context(), store.SecretScope{RepoID: repo.ID})
	if err != nil {
		return err
	}
	out := struct {
		TotalCount int          `json:"total_count"`
		Secrets    []secretJSON `json:"secrets"`
	}{len(all), []secretJSON{}}
	for i := (page - 1) * perPage; i < len(all) && i < page*perPage; i++ {
		out.Secrets = append(out.Secrets, secretJSON{all[i].Name, timePtr(all[i].CreatedAt), timePtr(all[i].UpdatedAt)})
	}
	if link := linkHeader(s.base(r)+r.URL.Path, q, page, perPage, len(all)); link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleSecretGet serves GET /api/v1/repos/{owner}/{repo}/actions/secrets/{name}.
func (s *server) handleSecretGet(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.secretsRepo(r)
	if err != nil {
		return err
	}
	m, err := s.store.SecretMeta(r.Context(), store.SecretScope{RepoID: repo.ID}, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, secretJSON{m.Name, timePtr(m.CreatedAt), timePtr(m.UpdatedAt)})
	return nil
}

// handleSecretPut serves PUT /api/v1/repos/{owner}/{repo}/actions/secrets/{name}
// with {"encrypted_value", "key_id"}: the value as a libsodium sealed box
// to the repository's public key. 201 when created, 204 when replaced.
func (s *server) handleSecretPut(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.secretsRepo(r)
	if err != nil {
		return err
	}
	name, err := store.CheckSecretName(r.PathValue("name"))
	if err != nil {
		return err
	}
	var body struct {
		EncryptedValue *string `json:"encrypted_value"`
		KeyID          string  `json:"key_id"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.EncryptedValue == nil || body.KeyID == "" {
		return apperr.Invalidf("encrypted_value and key_id are required: seal the value to the key from GET secrets/public-key")
	}
	pub, priv, err := s.store.RepoBoxKey(r.Context(), repo.ID)
	if err != nil {
		return err
	}
	if body.KeyID != store.SecretBoxKeyID(pub) {
		return apperr.Invalidf("key_id %q is not this repository's current key: fetch secrets/public-key again", body.KeyID)
	}
	value, err := store.SecretOpenSealedBox(*body.EncryptedValue, pub, priv)
	if err != nil {
		return apperr.Invalidf("%s", err.Error())
	}
	created, err := s.store.SetSecret(r.Context(), store.SecretScope{RepoID: repo.ID}, name, value)
	clear(value)
	if err != nil {
		return err
	}
	if created {
		writeJSON(w, http.StatusCreated, struct{}{})
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

// handleSecretDelete serves DELETE /api/v1/repos/{owner}/{repo}/actions/secrets/{name}.
func (s *server) handleSecretDelete(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.secretsRepo(r)
	if err != nil {
		return err
	}
	if err := s.store.DeleteSecret(r.Context(), store.SecretScope{RepoID: repo.ID}, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleVariableList serves GET /api/v1/repos/{owner}/{repo}/actions/variables
// (per_page up to 30, default 10, as GitHub).
func (s *server) handleVariableList(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.variablesRepo(r, store.ScopeRead)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := queryInt(q.Get("page"), 1, 1, 1<<20, "page")
	if err != nil {
		return err
	}
	perPage, err := queryInt(q.Get("per_page"), 10, 1, 30, "per_page")
	if err != nil {
		return err
	}
	vs, total, err := s.store.ListVariables(r.Context(), store.SecretScope{RepoID: repo.ID}, page, perPage)
	if err != nil {
		return err
	}
	out := struct {
		TotalCount int            `json:"total_count"`
		Variables  []variableJSON `json:"variables"`
	}{total, []variableJSON{}}
	for _, v := range vs {
		out.Variables = append(out.Variables, variableJSON{v.Name, v.Value, timePtr(v.CreatedAt), timePtr(v.UpdatedAt)})
	}
	if link := linkHeader(s.base(r)+r.URL.Path, q, page, perPage, total); link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleVariableCreate serves POST /api/v1/repos/{owner}/{repo}/actions/variables
// with {"name", "value"}: 201, or 409 when the name exists.
func (s *server) handleVariableCreate(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.variablesRepo(r, store.ScopeWrite)
	if err != nil {
		return err
	}
	var body struct {
		Name  string  `json:"name"`
		Value *string `json:"value"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Value == nil {
		return apperr.Invalidf("value is required")
	}
	if _, err := s.store.WriteVariable(r.Context(), store.SecretScope{RepoID: repo.ID}, store.VarCreate, body.Name, "", *body.Value); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct{}{})
	return nil
}

// handleVariableGet serves GET /api/v1/repos/{owner}/{repo}/actions/variables/{name}.
func (s *server) handleVariableGet(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.variablesRepo(r, store.ScopeRead)
	if err != nil {
		return err
	}
	v, err := s.store.Variable(r.Context(), store.SecretScope{RepoID: repo.ID}, r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, variableJSON{v.Name, v.Value, timePtr(v.CreatedAt), timePtr(v.UpdatedAt)})
	return nil
}

// handleVariableUpdate serves PATCH /api/v1/repos/{owner}/{repo}/actions/variables/{name}
// with {"name"?, "value"?}: 204.
func (s *server) handleVariableUpdate(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.variablesRepo(r, store.ScopeWrite)
	if err != nil {
		return err
	}
	var body struct {
		Name  string  `json:"name"`
		Value *string `json:"value"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	sc := store.SecretScope{RepoID: repo.ID}
	cur, err := s.store.Variable(r.Context(), sc, r.PathValue("name"))
	if err != nil {
		return err
	}
	value := cur.Value
	if body.Value != nil {
		value = *body.Value
	}
	if _, err := s.store.WriteVariable(r.Context(), sc, store.VarUpdate, cur.Name, body.Name, value); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleVariableDelete serves DELETE /api/v1/repos/{owner}/{repo}/actions/variables/{name}.
func (s *server) handleVariableDelete(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.variablesRepo(r, store.ScopeWrite)
	if err != nil {
		return err
	}
	if err := s.store.DeleteVariable(r.Context(), store.SecretScope{RepoID: repo.ID}, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
