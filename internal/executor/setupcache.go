// What set-up learns once and need not ask the engine again: the default
// shell of an image, and which repositories' tool cache volumes exist.
// Neither holds anything a job wrote: the shell is looked up in a fresh
// container before any of a job's code runs, and a tool cache volume's
// existence is the executor's own doing.

package executor

import (
	"context"
	"strings"
	"sync"
)

// maxShellCache bounds the images whose shell is remembered; past it the
// cache starts afresh.
const maxShellCache = 256

// setupCache is an executor's memory of the above.
type setupCache struct {
	mu         sync.Mutex        // guards the fields below
	shells     map[string]string // image ID → `command -v bash || command -v sh` in a fresh container of it
	toolCaches map[string]bool   // repository tool cache volumes created by this process
}

// defaultShell is the shell steps run with when they name none: bash where
// the job's image has it, as GitHub does, else sh. It is looked up in the
// job's container, once per image: later containers of the same image (by
// ID, which names its contents) take the answer from the cache after a
// docker inspect, which is cheaper than a docker exec. Only containers
// the workflow did not configure (cacheable: no options, env or volumes
// of its own, which could change PATH or what it finds) share answers,
// and only answers from the image's own system directories, where nothing
// of a job's (its checkout, its tool cache) can be.
func (j *execJob) defaultShell(cacheable bool) (string, error) {
	imageID := ""
	if cacheable {
		out, _, err := j.ex.docker.Output(j.ctx, "inspect", "-f", "{{.Image}}", j.name)
		if err == nil && strings.HasPrefix(out, "sha256:") {
			imageID = out
		}
	}
	return j.ex.lookupShell(j.ctx, j.name, imageID)
}

// lookupShell is defaultShell of container, made from imageID ("" when
// its answer is not to be shared), which no job's code has run in yet.
func (ex *Executor) lookupShell(ctx context.Context, container, imageID string) (string, error) {
	if imageID != "" {
		ex.cache.mu.Lock()
		shell, ok := ex.cache.shells[imageID]
		ex.cache.mu.Unlock()
		if ok {
			return shell, nil
		}
	}
	out, _, err := ex.docker.Output(ctx, "exec", container, "sh", "-c", "command -v bash || command -v sh")
	if err != nil {
		return "", &setupError{"find a shell in the job container", err}
	}
	shell, _, _ := strings.Cut(out, "\n")
	if shell == "" {
		shell = "sh"
	}
	if imageID != "" && systemPath(shell) {
		ex.cache.mu.Lock()
		if ex.cache.shells == nil || len(ex.cache.shells) >= maxShellCache {
			ex.cache.shells = map[string]string{}
		}
		ex.cache.shells[imageID] = shell
		ex.cache.mu.Unlock()
	}
	return shell, nil
}

// ensureToolCache is createToolCache, but once per process for a trusted
// job's repository volume: creating a volume that exists changes nothing.
// An untrusted job's own volume is made every time.
func (j *execJob) ensureToolCache() error {
	ex := j.ex
	repo := ex.repoToolCache(j.job)
	ex.cache.mu.Lock()
	known := ex.cache.toolCaches[repo]
	ex.cache.mu.Unlock()
	if known && !j.job.Untrusted {
		return nil
	}
	if err := j.createToolCache(); err != nil {
		return err
	}
	ex.cache.mu.Lock()
	if ex.cache.toolCaches == nil {
		ex.cache.toolCaches = map[string]bool{}
	}
	ex.cache.toolCaches[repo] = true
	ex.cache.mu.Unlock()
	return nil
}

// systemPath reports whether path is in an image's system directories.
func systemPath(path string) bool {
	for _, dir := range []string{"/bin/", "/usr/bin/", "/usr/local/bin/", "/sbin/", "/usr/sbin/"} {
		if rest, ok := strings.CutPrefix(path, dir); ok && rest != "" && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}
