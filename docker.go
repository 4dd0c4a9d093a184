package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// dockerCLI runs the docker command-line client. The executor talks to the
// engine only through it, so tests can put a fake binary in its place.
type dockerCLI struct {
	bin string   // path or name of the docker binary
	env []string // added to os.Environ() for every invocation
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
func (d dockerCLI) command(ctx context.Context, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, d.bin, args...)
	env := os.Environ()
	env = append(env, d.env...)
	cmd.Env = append(env, extraEnv...)
	cmd.WaitDelay = dockerWaitDelay
	return cmd
}

// output runs `docker args...` and returns its trimmed stdout and stderr.
// A failure is a *dockerError carrying stderr.
func (d dockerCLI) output(ctx context.Context, args ...string) (stdout, stderr string, err error) {
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
