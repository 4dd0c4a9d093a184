// Which Node.js runs a job's JavaScript actions: --node's, else the job
// image's own `node`, as act and Gitea's runner do. Images made for CI
// have one; without either, the action fails naming both ways out.

package executor

import (
	"fmt"
	"strconv"
	"strings"
)

// jobNode is the Node.js a job's JavaScript actions run with.
type jobNode struct {
	path    string // the node binary in the job container
	version string // what `node --version` says, e.g. v20.19.2; "" if it said nothing usable
	from    string // "--node" or "the job image"
}

// findNode finds the Node.js for the job's JavaScript actions, once: the
// --node directory when configured, else the first `node` on the job
// container's PATH. The error says what to do about neither.
func (j *execJob) findNode(uses, using string) (*jobNode, error) {
	if j.node != nil {
		return j.node, nil
	}
	if j.ex.cfg.NodeDir != "" {
		n := &jobNode{path: ContainerNode + "/bin/node", from: "--node"}
		out, _, err := j.ex.docker.Output(j.execCtx, "exec", j.name, n.path, "--version")
		if err == nil {
			n.version = strings.TrimSpace(out)
		}
		j.node = n
		return n, nil
	}
	// sh's command -v is the PATH lookup docker exec's own would do; the
	// version in the same exec.
	out, _, err := j.ex.docker.Output(j.execCtx, "exec", j.name, "sh", "-c", `p=$(command -v node) && [ -n "$p" ] && echo "$p" && "$p" --version`)
	lines := strings.Fields(out)
	if err != nil || len(lines) == 0 || !strings.HasPrefix(lines[0], "/") {
		return nil, fmt.Errorf("%s is a JavaScript action (%s), and there is no Node.js to run it: this job's image has no `node` on its PATH, and this runner was started without --node. Use an image with Node.js (runs-on mapped with --image, or the job's container:), or start the runner with --node DIR (a Node.js distribution, DIR/bin/node)", uses, using)
	}
	n := &jobNode{path: lines[0], from: "the job image"}
	if len(lines) > 1 {
		n.version = lines[1]
	}
	j.node = n
	return n, nil
}

// nodeMajor is the major version of a `node --version` answer (v20.19.2)
// or a runs.using value (node20); 0 when there is none.
func nodeMajor(s string) int {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "node"), "v")
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// nodeNote is the log line saying which Node.js runs an action, and a
// warning when it is older than the action's runs.using asks for. An older
// node still runs the action: most run on the version before, and the
// action's own error says more than a refusal would; the warning names
// the fix.
func nodeNote(n *jobNode, using string) (note, warning string) {
	v := n.version
	if v == "" {
		v = "of an unknown version"
	}
	note = fmt.Sprintf("Running with Node.js %s (%s, from %s)", v, n.path, n.from)
	want, have := nodeMajor(using), nodeMajor(n.version)
	if want > 0 && have > 0 && have < want {
		warning = fmt.Sprintf("this action asks for %s, and %s's Node.js is %s: running it anyway; if it fails, use an image with Node.js %d or later, or --node DIR", using, n.from, n.version, want)
	}
	return note, warning
}
