// The docker CLI: running it, the argv of a job's container, the step
// bootstrap script, and env aliasing that keeps values off command lines.

package executor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"time"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// dockerCLI runs the docker command-line client. The executor talks to the
// engine only through it, so tests can put a fake binary in its place.
type DockerCLI struct {
	Bin string   // path or name of the docker binary
	Env []string // added to os.Environ() for every invocation
}

// dockerWaitDelay bounds how long a finished docker process may keep our
// pipes open (a daemon stream held open by a process left in the container).
const dockerWaitDelay = 5 * time.Second

// dockerError is a docker invocation that failed; its message is docker's
// own stderr, which is what a user needs to read in the Set up job log.
type dockerError struct {
	cmd    string // the docker subcommand, e.g. "run"
	stderr string
	err    error
}

func (e *dockerError) Error() string {
	if e.stderr != "" {
		return fmt.Sprintf("docker %s: %s", e.cmd, e.stderr)
	}
	return fmt.Sprintf("docker %s: %v", e.cmd, e.err)
}

func (e *dockerError) Unwrap() error { return e.err }

// command prepares `docker args...` with extraEnv added to its environment.
func (d DockerCLI) command(ctx context.Context, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.Bin, args...)
	env := os.Environ()
	env = append(env, d.Env...)
	cmd.Env = append(env, extraEnv...)
	cmd.WaitDelay = dockerWaitDelay
	return cmd
}

// output runs `docker args...` and returns its trimmed stdout and stderr.
// A failure is a *dockerError carrying stderr.
func (d DockerCLI) Output(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := d.command(ctx, nil, args...)
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	err = cmd.Run()
	stdout = strings.TrimSpace(out.String())
	stderr = strings.TrimSpace(errb.String())
	if err != nil {
		sub := ""
		if len(args) > 0 {
			sub = args[0]
		}
		return stdout, stderr, &dockerError{cmd: sub, stderr: stderr, err: err}
	}
	return stdout, stderr, nil
}

// exitCode is the exit status carried by err, or -1 when err is not an exit.
func processExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// jobCapabilities are the only capabilities a job container keeps (docker
// starts from --cap-drop ALL). They are what root in a Debian or Ubuntu
// image needs to install packages with apt-get and to run a test suite:
//
//	CHOWN             dpkg gives unpacked files their owners
//	DAC_OVERRIDE      root writes files and directories whatever their mode (dpkg, apt's lists)
//	FOWNER            chmod and utime on files root does not own (dpkg, tar, cp -p)
//	FSETID            keep setuid/setgid bits that packages ship (dpkg chmods after chown)
//	SETUID, SETGID    apt drops to its _apt user to download; su and runuser in test scripts
//	KILL              signal processes of other users in the container (apt's _apt methods, test daemons)
//	NET_BIND_SERVICE  listen on ports below 1024 (a test web server on :80)
//
// Left out of docker's default set: NET_RAW (raw sockets: spoofing and ARP
// tricks on the network), MKNOD (device nodes), SETFCAP (file capabilities),
// SETPCAP, SYS_CHROOT and AUDIT_WRITE, which installing packages and
// running tests do not need. With no-new-privileges, a setuid binary gives
// no one more than they had.
var jobCapabilities = []string{"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE"}

// resourceArgs is `docker VERB...` creating the job's network or volume,
// named and labelled as its container is, so removeStale finds what a
// crashed process left.
func (j *execJob) resourceArgs(verb ...string) []string {
	return append(append(verb, j.labelArgs()...), j.name)
}

func (j *execJob) labelArgs() []string {
	return []string{
		"--label", LabelInstance + "=" + j.ex.cfg.Instance,
		"--label", labelRun + "=" + strconv.FormatInt(j.job.RunID, 10),
		"--label", LabelJob + "=" + strconv.FormatInt(j.job.JobID, 10),
	}
}

// createArgs is the docker create command line of the job's container: on
// the job's own network, with the job's volume at /workspace, no new
// privileges and only jobCapabilities. The container only idles (tail -f
// /dev/null under docker's init, which forwards docker stop's SIGTERM at
// once); steps run in it with docker exec. extra are the job's own settings
// (containerExtraArgs: ports, volumes, options).
func (j *execJob) createArgs(image string, extra []string) []string {
	return j.ex.containerArgs(containerSpec{
		name:      j.name,
		labels:    j.labelArgs(),
		network:   j.network,
		workspace: j.res,
		toolCache: j.toolCacheVolume(),
		netDir:    j.netMountDir(),
		image:     image,
		extra:     extra,
	})
}

// containerSpec is what differs between job containers: everything else
// on their command line is the executor's configuration. The pool makes
// its containers ahead (pool.go) from the same function, so a container
// started ahead is the one the job would have made.
type containerSpec struct {
	name, network, workspace, toolCache string
	labels                              []string
	netDir                              string // the host directory of the job's .curlrc; "" for none
	image                               string
	extra                               []string // the job's own settings (containerExtraArgs)
}

// containerArgs is the docker create command line of a job container.
func (ex *Executor) containerArgs(s containerSpec) []string {
	cfg := ex.cfg
	args := []string{"create", "--init", "--name", s.name}
	args = append(args, s.labels...)
	args = append(args, "--network", s.network)
	args = append(args, ex.sandboxArgs()...)
	args = append(args,
		"-v", s.workspace+":"+protocol.Workspace,
		"-w", protocol.Workspace,
	)
	args = append(args, ex.actionMounts(s.toolCache, s.netDir)...)
	args = append(args, s.extra...)
	args = append(args, addHostArgs(cfg.AddHosts)...) // how the job reaches the server (jobaddr.go)
	return append(args,
		"--entrypoint", "tail", // the image's own entrypoint would get our command as arguments
		"--", // an image named like a flag (from a workflow) stays an image
		s.image, "-f", "/dev/null",
	)
}

// sandboxArgs are the limits of every container that runs a job's code,
// the job container and its Docker actions alike: memory, CPUs and pids,
// no new privileges, only jobCapabilities, and the pull policy.
func (j *execJob) sandboxArgs() []string { return j.ex.sandboxArgs() }

func (ex *Executor) sandboxArgs() []string {
	cfg := ex.cfg
	args := []string{
		"--memory", cfg.Memory,
		"--cpus", cfg.CPUs,
		"--pids-limit", strconv.Itoa(cfg.PidsLimit),
		"--security-opt", "no-new-privileges",
		"--cap-drop", "ALL",
	}
	for _, c := range jobCapabilities {
		args = append(args, "--cap-add", c)
	}
	return append(args, "--pull="+cfg.Pull)
}

// checkImage refuses an image a workflow named (the job's container, a
// service, a docker:// action) that --allow-images does not allow or whose
// registry is this host or a private network (imageRegistryRefused),
// before docker is asked for it. what names the image in the message.
func (j *execJob) checkImage(what, image string) error {
	if !imageAllowed(j.ex.cfg.AllowImages, image) {
		return fmt.Errorf("%s %q is not allowed here: --allow-images is %s", what, image, strings.Join(j.ex.cfg.AllowImages, ","))
	}
	if why := imageRegistryRefused(image); why != "" {
		return fmt.Errorf("%s %q is refused: %s", what, image, why)
	}
	return nil
}

// imageRegistryRefused says why an image reference must not reach the
// engine, or "" when it may: its registry host is this machine or an
// address of a private or link-local network (loopback, 10/8, 172.16/12,
// 192.168/16, 169.254/16, fc00::/7, fe80::/10, localhost), which the
// daemon would otherwise reach from the host on a workflow's behalf, and
// whose answers (error messages) would reach the job's log. Addresses are
// read as the C library would read them too (127.1, 0x7f.1, 2130706433).
// A host name is not resolved: --allow-images is how an operator bounds
// which registries jobs may name.
func imageRegistryRefused(image string) string {
	first, _, ok := strings.Cut(image, "/")
	if !ok || !strings.ContainsAny(first, ".:") && !strings.EqualFold(first, "localhost") {
		return "" // Docker Hub (library/x, user/x)
	}
	host := first
	if h, _, err := net.SplitHostPort(first); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	lower := strings.ToLower(host)
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") || lower == "" {
		return "its registry " + first + " is this machine"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		v4, ok := parseInetAton(host)
		if !ok {
			return ""
		}
		ip = v4
	}
	ip = ip.Unmap()
	switch {
	case ip.IsLoopback() || ip.IsUnspecified():
		return "its registry " + first + " is this machine"
	case ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast():
		return "its registry " + first + " is on a private network"
	}
	return ""
}

// parseInetAton reads an IPv4 address in the forms inet_aton accepts: one
// to four parts, each decimal, octal (0 first) or hexadecimal (0x first),
// the last filling the remaining bytes.
func parseInetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, p := range parts {
		base, digits := 10, p
		switch {
		case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		if digits == "" && base != 16 {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil && !(digits == "" && base == 16) {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	var n uint64
	for i, v := range vals {
		if i < len(vals)-1 {
			if v > 255 {
				return netip.Addr{}, false
			}
			n |= v << (8 * (3 - i))
			continue
		}
		if v >= 1<<(8*(4-i)) {
			return netip.Addr{}, false
		}
		n |= v
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// imageAllowed reports whether a job may name image in its container:
// always when patterns is empty, else when image, as the workflow wrote it,
// matches one of them (globs as in workflow filters: * within a path
// segment, ** across segments).
func imageAllowed(patterns []string, image string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if workflow.GlobMatch(p, image) {
			return true
		}
	}
	return false
}

// Step scripts reach the container on the docker exec client's stdin. The
// env values travel in the client's environment under alias names
// (SHITHUB_ENV_<NAME>, listed in SHITHUB_ENVNAMES), never in any argv, and
// stepBootstrap exports them under their real names. The alias keeps
// values such as LD_PRELOAD, PATH, HOME or DOCKER_CONFIG from acting on the
// docker client on the host.
const (
	envAliasPrefix = "SHITHUB_ENV_"
	envAliasList   = "SHITHUB_ENVNAMES"
)

// stepBootstrap runs as `sh -c stepBootstrap shithub-step DIR FILE CMD
// ARGS...` in the container: it makes the step's directory (where its
// environment files go), saves the script from stdin to FILE and runs the
// shell's command line CMD ARGS (FILE already in place of {0}) with stdin
// from /dev/null, so a command in the script that reads stdin cannot eat
// the rest of the script. The script's stderr joins its stdout in the
// container, as docker exec would carry them apart and lose their order.
// The exports happen in a subshell, after mkdir and cat, so a step's own
// PATH cannot break the bootstrap; $GITHUB_PATH's directories go before
// PATH. `python` falls back to python3, which is all many images have.
// The environment files exist, empty, before the step runs, as the runner
// makes them: @actions/core refuses to write to a missing one ("Missing
// file at path").
const stepBootstrap = `__shithub_d=$1 __shithub_f=$2
shift 2
mkdir -p "$__shithub_d" && cat >"$__shithub_f" || exit 1
for __shithub_n in set_output set_env add_path save_state step_summary; do
	[ -e "$__shithub_d/$__shithub_n" ] || : >"$__shithub_d/$__shithub_n" || exit 1
done
(
for __shithub_n in $` + envAliasList + `; do
	eval "export $__shithub_n=\"\$` + envAliasPrefix + `$__shithub_n\"; unset ` + envAliasPrefix + `$__shithub_n"
done
if [ -n "$` + envPathPrepend + `" ]; then export PATH="$` + envPathPrepend + `${PATH:+:$PATH}"; fi
unset ` + envAliasList + ` ` + envPathPrepend + ` __shithub_n __shithub_d
if [ "$1" = python ] && ! command -v python >/dev/null 2>&1; then shift; set -- python3 "$@"; fi
exec "$@"
) </dev/null 2>&1
__shithub_s=$?
rm -f "$__shithub_f"
exit $__shithub_s`

// containerDir is a step's working-directory inside the container.
func containerDir(wd string) string {
	if path.IsAbs(wd) {
		return path.Clean(wd)
	}
	return path.Join(protocol.Workspace, wd)
}

// validEnvName reports whether name can be exported by a POSIX shell.
func validEnvName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// addHostArgs is the docker run flags of hosts (HOST:IP entries).
func addHostArgs(hosts []string) []string {
	var args []string
	for _, h := range hosts {
		args = append(args, "--add-host", h)
	}
	return args
}
