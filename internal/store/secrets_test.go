package store

import (
	"bytes"
	"context"
	"fmt"
	"shithub-actions/internal/apperr"
	"strings"
	"testing"
)

// TestSecretsQueryPlans: the queries of every claim, log chunk and
// GITHUB_TOKEN request use indexes, never a scan of their table.
func TestSecretsQueryPlans(t *testing.T) {
	ts := newTestStore(t)
	for name, q := range map[string]string{
		"openSecrets": sqlOpenSecrets, "repoVars": sqlRepoVars,
		"jobToken": sqlJobToken, "jobCredentials": sqlJobCredentials,
	} {
		args := []any{int64(1), int64(1)}
		if strings.Count(q, "?") == 1 {
			args = args[:1]
		}
		p := ts.queryPlan(q, args...)
		if strings.Contains(p, "SCAN ") {
			t.Errorf("%s: plan %q scans a table", name, p)
		}
		t.Logf("%s: %s", name, p)
	}
}

func TestSecretsLimits(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	sc := SecretScope{RepoID: ts.pub.ID}
	for i := range secretsPerScope {
		if _, err := ts.SetSecret(ctx, sc, fmt.Sprintf("S%d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.SetSecret(ctx, sc, "ONE_MORE", []byte("v")); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("secret %d: err = %v, want invalid", secretsPerScope+1, err)
	}
	if _, err := ts.SetSecret(ctx, sc, "S1", []byte("replaced")); err != nil {
		t.Fatalf("replacing at the limit: %v", err)
	}
	if _, err := ts.SetSecret(ctx, SecretScope{RepoID: ts.priv.ID}, "BIG", make([]byte, SecretValueMax+1)); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("a value over 48 KiB: err = %v, want invalid", err)
	}
	if _, err := ts.SetSecret(ctx, SecretScope{RepoID: ts.priv.ID}, "BIG", bytes.Repeat([]byte("x"), SecretValueMax)); err != nil {
		t.Fatalf("a value of 48 KiB: %v", err)
	}
}

// TestSecretsRepoOverOwner: a repository's secret wins over its owner's of
// the same name, and an owner's secret reaches each of the owner's
// repositories.
func TestSecretsRepoOverOwner(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	owner := SecretScope{OwnerID: ts.users["alice"].ID}
	for name, v := range map[string]string{"SHARED": "from-owner", "ONLY_OWNER": "o"} {
		if _, err := ts.SetSecret(ctx, owner, name, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.SetSecret(ctx, SecretScope{RepoID: ts.pub.ID}, "SHARED", []byte("from-repo")); err != nil {
		t.Fatal(err)
	}
	got, err := ts.OpenSecrets(ctx, ts.db, ts.pub, nil)
	if err != nil || got["SHARED"] != "from-repo" || got["ONLY_OWNER"] != "o" || len(got) != 2 {
		t.Fatalf("alice/pub secrets = %v, %v", got, err)
	}
	got, err = ts.OpenSecrets(ctx, ts.db, ts.priv, []string{"SHARED"})
	if err != nil || got["SHARED"] != "from-owner" || len(got) != 1 {
		t.Fatalf("alice/priv secrets = %v, %v", got, err)
	}
	// Variables likewise.
	if _, err := ts.WriteVariable(ctx, owner, VarUpsert, "ENV", "", "owner"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.WriteVariable(ctx, SecretScope{RepoID: ts.pub.ID}, VarUpsert, "env", "", "repo"); err != nil {
		t.Fatal(err)
	}
	if v, err := ts.repoVars(ctx, ts.db, ts.pub); err != nil || v["ENV"] != "repo" {
		t.Fatalf("alice/pub vars = %v, %v", v, err)
	}
	if v, err := ts.repoVars(ctx, ts.db, ts.priv); err != nil || v["ENV"] != "owner" {
		t.Fatalf("alice/priv vars = %v, %v", v, err)
	}
}

// TestSecretsOtherKey: a database whose key file is gone reveals nothing,
// and says which secret cannot be decrypted.
func TestSecretsOtherKey(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	if _, err := ts.SetSecret(ctx, SecretScope{RepoID: ts.pub.ID}, "TOKEN", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	ts.key = bytes.Repeat([]byte{7}, secretKeySize)
	_, err := ts.OpenSecrets(ctx, ts.db, ts.pub, nil)
	if err == nil || !strings.Contains(err.Error(), "TOKEN") || strings.Contains(err.Error(), "abc") {
		t.Fatalf("opening under another key: err = %v", err)
	}
	// The box key is replaced, so the API keeps working.
	pub1, _, err := ts.RepoBoxKey(ctx, ts.pub.ID)
	if err != nil {
		t.Fatal(err)
	}
	ts.key = bytes.Repeat([]byte{8}, secretKeySize)
	pub2, _, err := ts.RepoBoxKey(ctx, ts.pub.ID)
	if err != nil || *pub1 == *pub2 {
		t.Fatalf("box key after the server key changed: same = %v, err = %v", *pub1 == *pub2, err)
	}
}
