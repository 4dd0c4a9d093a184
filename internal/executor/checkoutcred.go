// persist-credentials: as actions/checkout does (src/git-auth-helper.ts),
// the checkout step leaves the token in the checkout's own git config, so
// that a later `git push` or `git fetch` in the job is authenticated:
//
//	[http "http://shithub.localhost:PORT/"]
//		extraheader = AUTHORIZATION: basic base64(x-access-token:TOKEN)
//
// The token is the step's `token` input, else the job's GITHUB_TOKEN, which
// the server refuses once the job has ended. The config lives in the job's
// workspace volume, which goes with the job; nothing copies it elsewhere
// (the tool cache and caches hold only what steps put there).

package executor

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// persistCredentialsInput reads the persist-credentials input (default
// true).
func persistCredentialsInput(with map[string]string) (bool, error) {
	switch v := strings.TrimSpace(with["persist-credentials"]); v {
	case "", "true", "True", "TRUE":
		return true, nil
	case "false", "False", "FALSE":
		return false, nil
	default:
		return false, fmt.Errorf("input persist-credentials: %q is not a boolean (true or false)", v)
	}
}

// credentialConfig is the git config section header and line that carry
// token for the server at serverURL: http.<origin>/.extraheader, as
// actions/checkout writes it. ok is false when serverURL has no origin.
func credentialConfig(serverURL, token string) (header, line string, ok bool) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Scheme == "" || u.Host == "" || token == "" {
		return "", "", false
	}
	basic := base64.StdEncoding.EncodeToString([]byte("x-access-token:" + token))
	return fmt.Sprintf(`[http "%s://%s/"]`, u.Scheme, u.Host), "\textraheader = AUTHORIZATION: basic " + basic, true
}

// persistScript replaces the section credentialConfig makes in
// $1/.git/config (our header and the extraheader line after it, whatever
// its token) with $SHITHUB_CRED_HEADER and $SHITHUB_CRED_LINE: with the
// job's own sh and cat, so an image without git works too, and a second
// checkout of the same path leaves one section, not two.
const persistScript = `f="$1/.git/config"
[ -f "$f" ] || exit 0
skip=0
while IFS= read -r l || [ -n "$l" ]; do
  if [ "$skip" = 1 ]; then
    skip=0
    case "$l" in "	extraheader = AUTHORIZATION: basic "*) continue ;; esac
  fi
  if [ "$l" = "$SHITHUB_CRED_HEADER" ]; then skip=1; continue; fi
  printf '%s\n' "$l"
done < "$f" > "$f.shithub-tmp"
cat "$f.shithub-tmp" > "$f"
rm -f "$f.shithub-tmp"
printf '%s\n%s\n' "$SHITHUB_CRED_HEADER" "$SHITHUB_CRED_LINE" >> "$f"`

// persistCredentials writes token into the git config of the checkout at
// dir (a path in the job container), for the job's server. The header and
// line reach the container in docker exec's environment, never on a
// command line.
func (j *execJob) persistCredentials(dir, token string, out *stepOutput) error {
	server := JobServerURL(j.job, j.ex.cfg.JobURL)
	header, line, ok := credentialConfig(server, token)
	if !ok {
		return nil
	}
	j.st.masks.Add(strings.TrimPrefix(line, "\textraheader = AUTHORIZATION: basic "))
	cmd := j.ex.docker.command(j.execCtx, []string{"SHITHUB_CRED_HEADER=" + header, "SHITHUB_CRED_LINE=" + line},
		"exec", "-e", "SHITHUB_CRED_HEADER", "-e", "SHITHUB_CRED_LINE", j.name,
		"sh", "-c", "set -e\n"+persistScript, "sh", path.Clean(dir))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("persist credentials in %s/.git/config: %v %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	out.linef("Persisted the token in %s/.git/config for %s (persist-credentials: false leaves it out)", path.Clean(dir), server)
	return nil
}
