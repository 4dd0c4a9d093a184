package executor

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// fakeDockerEnv, when set to a directory, makes the test binary act as the
// docker CLI (see fakeDocker).
const fakeDockerEnv = "SHITHUB_FAKE_DOCKER"

// runFakeDockerIfAsked turns the test binary into the fake docker CLI when
// fakeDockerEnv is set. A package has one TestMain: whichever it is must
// call this first.
func runFakeDockerIfAsked() {
	if dir := os.Getenv(fakeDockerEnv); dir != "" {
		os.Exit(fakeDocker(dir, os.Args[1:]))
	}
}

// dockerCall is one recorded invocation of the fake docker.
type dockerCall struct {
	Args []string          `json:"args"`
	Env  map[string]string `json:"env"` // the values of the names passed with -e
}

// fakeDocker plays the docker CLI. It records every invocation in
// dir/calls.jsonl; files in dir script its behaviour:
//
//	no-engine   every command fails as with no engine
//	create-fail   docker create fails, printing the file's content on stderr
//	create-block  docker create hangs (until killed)
//	no-bash       the image has no bash
//	shell-path    what the shell's lookup finds instead
//	ps-output     what docker ps prints; likewise network-ls-output, volume-ls-output
//	health-NAME   what docker inspect says of NAME's health, one status a
//	              line, the last repeated
//	find-output   what docker exec find prints (NUL-separated)
//	image-id      what docker inspect says of the job container's image
//	not-local     creating with --pull=never fails: the image is not here yet
//
// docker stop and docker rm create dir/stopped-NAME, docker start removes
// it. docker cp into a container copies the source directory to
// dir/cp-NAME, to show what reached the volume; docker cp out of one reads
// the container's file system, dir/fs. A step's script (its stdin) is a
// list of commands: echo TEXT, err TEXT (to stderr), env NAME, pwd, shell,
// big N (N bytes), wait-stop (until the container is stopped, then exit
// 137), wait-file NAME (until dir/NAME exists), append VAR TEXT (TEXT, \n
// for a line break, and a line break to the file $VAR names), exit N.
func fakeDocker(dir string, args []string) int {
	call := dockerCall{Args: args, Env: map[string]string{}}
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-e" {
			call.Env[args[i+1]] = os.Getenv(args[i+1])
		}
	}
	line, _ := json.Marshal(call)
	f, err := os.OpenFile(filepath.Join(dir, "calls.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 99
	}
	f.Write(append(line, '\n')) // one write: lines of concurrent calls do not mix
	f.Close()

	has := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	waitFor := func(name string) bool {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if has(name) {
				return true
			}
		}
		return false
	}
	if has("no-engine") {
		fmt.Fprintln(os.Stderr, "Cannot connect to the Docker daemon at unix:///nonexistent. Is the docker daemon running?")
		return 1
	}
	switch args[0] {
	case "version":
		fmt.Println("Client: fake\nServer: fake")
	case "create", "run":
		if args[0] == "run" && !isJobContainerRun(args) {
			fakeRun(dir, args)
			return 0
		}
		if has("not-local") && slices.Contains(args, "--pull=never") {
			fmt.Fprintln(os.Stderr, "Error: No such image: "+args[len(args)-1])
			return 1
		}
		if msg, err := os.ReadFile(filepath.Join(dir, "create-fail")); err == nil {
			os.Stderr.Write(msg)
			return 125
		}
		if has("create-block") {
			waitFor("never")
			return 1
		}
		if name := args[slices.Index(args, "--name")+1]; has("warm-run-wait") && strings.Contains(name, "-pool-") {
			waitFor("warm-run-go") // a container the pool starts ahead, held back by the test
		}
		if args[0] == "run" { // docker run -d: started
			os.Remove(filepath.Join(dir, "stopped-"+args[slices.Index(args, "--name")+1]))
		}
		fmt.Println(strings.Repeat("c0ffee", 10) + "abcd")
	case "build":
		fmt.Println("Successfully built")
	case "image":
		if args[1] == "inspect" {
			// An image's ID: dir/image-NAME (NAME with / and : as _), which
			// a test writes to say the image is there.
			if id, err := os.ReadFile(filepath.Join(dir, "image-"+fakeImageFile(args[len(args)-1]))); err == nil {
				os.Stdout.Write(id)
				return 0
			}
			fmt.Fprintln(os.Stderr, "Error: No such image")
			return 1
		}
	case "container":
		if args[1] == "inspect" { // {{.State.Running}}, by ID or name
			if has("stopped-" + args[len(args)-1]) {
				fmt.Println("false")
			} else {
				fmt.Println("true")
			}
		}
	case "rename":
		if has("rename-fail") {
			fmt.Fprintln(os.Stderr, "Error response from daemon: rename refused")
			return 1
		}
		if has("stopped-" + args[1]) {
			os.Rename(filepath.Join(dir, "stopped-"+args[1]), filepath.Join(dir, "stopped-"+args[2]))
		}
	case "images":
	case "cp":
		if args[1] == "-a" && args[2] == "-" { // a tar stream into a container: its names
			name, _, _ := strings.Cut(args[3], ":")
			tr := tar.NewReader(os.Stdin)
			for {
				h, err := tr.Next()
				if err != nil {
					break
				}
				appendLine(filepath.Join(dir, "cpin-"+name), h.Name)
			}
			return 0
		}
		if args[2] == "-" { // out of the container, as a tar stream
			return fakeCopy(dir, args[1])
		}
		src, dst := strings.TrimSuffix(args[1], "/."), args[2]
		if _, p, ok := strings.Cut(src, ":"); ok { // out of the container into a host directory
			if err := copyTreeNoFollow(filepath.Join(dir, "fs", p), dst); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			return 0
		}
		name, _, _ := strings.Cut(dst, ":")
		name = strings.TrimSuffix(name, "-checkout") // the loader's volume is the job's
		if err := os.CopyFS(filepath.Join(dir, "cp-"+name), os.DirFS(src)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case "network", "volume":
		switch args[1] {
		case "create", "rm":
		case "inspect":
			fmt.Println("172.30.0.1 ")
		case "ls":
			out, _ := os.ReadFile(filepath.Join(dir, args[0]+"-ls-output"))
			os.Stdout.Write(out)
		default:
			fmt.Fprintf(os.Stderr, "fake docker: unknown command %q\n", args[:2])
			return 1
		}
	case "stop", "rm":
		for _, name := range args[1:] {
			if !strings.HasPrefix(name, "-") {
				os.WriteFile(filepath.Join(dir, "stopped-"+name), nil, 0o644)
			}
		}
	case "start":
		os.Remove(filepath.Join(dir, "stopped-"+args[1]))
	case "port":
		fmt.Println("5432/tcp -> 127.0.0.1:49153")
	case "inspect":
		name := args[len(args)-1]
		if args[2] == "{{.Image}}" { // the job container's image
			if img, err := os.ReadFile(filepath.Join(dir, "image-id")); err == nil {
				os.Stdout.Write(img)
			}
			return 0
		}
		data, err := os.ReadFile(filepath.Join(dir, "health-"+name))
		if err != nil {
			return 0 // no health check
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		fmt.Println(lines[0])
		if len(lines) > 1 {
			os.WriteFile(filepath.Join(dir, "health-"+name), []byte(strings.Join(lines[1:], "\n")), 0o644)
		}
	case "ps":
		file := "ps-output"
		if slices.Contains(args, "label="+LabelPool) { // the pool's containers
			file = "ps-pool-output"
		}
		out, _ := os.ReadFile(filepath.Join(dir, file))
		os.Stdout.Write(out)
	case "exec":
		return fakeExec(dir, args[1:], waitFor)
	default:
		fmt.Fprintf(os.Stderr, "fake docker: unknown command %q\n", args[0])
		return 1
	}
	return 0
}

// fakeImageFile is an image name as part of a file name.
func fakeImageFile(image string) string {
	return strings.NewReplacer("/", "_", ":", "_").Replace(image)
}

// isLoaderCall reports whether a docker call is about the checkout's
// loader container: its create, its cp and its rm.
func isLoaderCall(args []string) bool {
	const suffix = "-checkout"
	switch args[0] {
	case "create":
		i := slices.Index(args, "--name")
		return i > 0 && strings.HasSuffix(args[i+1], suffix)
	case "cp":
		return len(args) > 2 && strings.Contains(args[2], suffix+":")
	case "rm":
		return strings.HasSuffix(args[len(args)-1], suffix)
	}
	return false
}

// isJobContainerRun reports whether a docker run is the job container's
// (runDetached of createArgs), not a service's or a Docker action's.
func isJobContainerRun(args []string) bool {
	return len(args) > 3 && args[1] == "-d" && args[2] == "--init"
}

// fakeRun plays docker run of service containers and Docker actions.
func fakeRun(dir string, args []string) {
	// What other users could reach of each host directory mounted.
	for i := 0; i+1 < len(args); i++ {
		if src, _, _ := strings.Cut(args[i+1], ":"); args[i] == "-v" && filepath.IsAbs(src) {
			if fi, err := os.Stat(filepath.Dir(src)); err == nil {
				appendLine(filepath.Join(dir, "run-mounts"), fmt.Sprintf("%s %o", src, fi.Mode().Perm()))
			}
		}
	}
	fmt.Println(strings.Repeat("5e7c1ce", 9) + "a")
}

func fakeExec(dir string, args []string, waitFor func(string) bool) int {
	env := map[string]string{}
	workdir := "/"
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-e":
			env[args[1]] = os.Getenv(args[1])
			args = args[2:]
		case "-w":
			workdir = args[1]
			args = args[2:]
		default:
			args = args[1:]
		}
	}
	container, cmd := args[0], args[1:]
	switch {
	case slices.Equal(cmd, []string{"sh", "-c", "command -v bash || command -v sh"}):
		if path, err := os.ReadFile(filepath.Join(dir, "shell-path")); err == nil {
			os.Stdout.Write(path)
		} else if _, err := os.Stat(filepath.Join(dir, "no-bash")); err == nil {
			fmt.Println("/bin/sh")
		} else {
			fmt.Println("/usr/bin/bash")
		}
		return 0
	case len(cmd) > 0 && cmd[0] == "find":
		out, _ := os.ReadFile(filepath.Join(dir, "find-output"))
		os.Stdout.Write(out)
		return 0
	case len(cmd) > 3 && cmd[2] == hashFilesScript:
		for _, f := range cmd[4:] {
			sum := sha256.Sum256([]byte("content of " + f))
			fmt.Printf("%x  -\n", sum)
		}
		return 0
	case len(cmd) < 7 || cmd[0] != "sh" || cmd[1] != "-c" || cmd[2] != stepBootstrap || cmd[3] != "shithub-step":
		fmt.Fprintf(os.Stderr, "fake docker: unexpected exec %q\n", cmd)
		return 127
	}
	if _, err := os.Stat(filepath.Join(dir, "stopped-"+container)); err == nil {
		fmt.Fprintf(os.Stderr, "Error response from daemon: container %s is not running\n", container)
		return 1
	}
	stepDir, script, shell := cmd[4], cmd[5], cmd[6:]
	fs := filepath.Join(dir, "fs")
	os.MkdirAll(filepath.Join(fs, stepDir), 0o755)
	// What stepBootstrap does: export the aliased values by their names.
	real := map[string]string{}
	for _, name := range strings.Fields(env[envAliasList]) {
		if v, ok := env[envAliasPrefix+name]; ok {
			real[name] = v
		}
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		switch verb {
		case "echo":
			fmt.Println(arg)
		case "err":
			fmt.Fprintln(os.Stderr, arg)
		case "env":
			if v, ok := real[arg]; ok {
				fmt.Printf("%s=%s\n", arg, v)
			} else {
				fmt.Printf("%s is not set\n", arg)
			}
		case "pwd":
			fmt.Println(workdir)
		case "shell":
			fmt.Println(strings.ReplaceAll(strings.Join(shell, " "), script, "{0}"))
		case "script":
			fmt.Println(script)
		case "append":
			name, text, _ := strings.Cut(arg, " ")
			f, err := os.OpenFile(filepath.Join(fs, real[name]), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			f.WriteString(strings.ReplaceAll(text, `\n`, "\n") + "\n")
			f.Close()
		case "path":
			fmt.Println(real["PATH"] + " prepend=" + env[envPathPrepend])
		case "big":
			n, _ := strconv.Atoi(arg)
			w := bufio.NewWriterSize(os.Stdout, 1000)
			for i := range n {
				w.WriteByte(bigByte(i))
			}
			w.Flush()
		case "wait-stop":
			waitFor("stopped-" + container)
			return 137
		case "wait-file":
			waitFor(arg)
		case "exit":
			n, _ := strconv.Atoi(arg)
			return n
		}
	}
	return 0
}

// appendLine appends line and a line break to the file p.
func appendLine(p, line string) {
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		f.WriteString(line + "\n")
		f.Close()
	}
}

// fakeCopy plays docker cp CONTAINER:DIR -: a tar of dir/fs/DIR, or of
// the one file dir/fs/FILE.
func fakeCopy(dir, src string) int {
	_, p, _ := strings.Cut(src, ":")
	root := filepath.Join(dir, "fs", p)
	if data, err := os.ReadFile(root); err == nil {
		tw := tar.NewWriter(os.Stdout)
		tw.WriteHeader(&tar.Header{Name: filepath.Base(root), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
		tw.Close()
		return 0
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error response from daemon: Could not find the file %s in container\n", p)
		return 1
	}
	tw := tar.NewWriter(os.Stdout)
	base := filepath.Base(root)
	tw.WriteHeader(&tar.Header{Name: base + "/", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(root, e.Name()))
		tw.WriteHeader(&tar.Header{Name: base + "/" + e.Name(), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	tw.Close()
	return 0
}

// bigByte is byte i of the output of the fake's `big` command.
func bigByte(i int) byte { return "0123456789abcdefghijklmnopqrstuvwxyz\n"[i%37] }

// fakeEngine is the directory of one test's fake docker.
type fakeEngine struct{ dir string }

func (f fakeEngine) set(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f fakeEngine) calls(t *testing.T) []dockerCall {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "calls.jsonl"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var calls []dockerCall
	for line := range strings.Lines(string(data)) {
		var c dockerCall
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("calls.jsonl: %v: %q", err, line)
		}
		calls = append(calls, c)
	}
	return calls
}

// commands lists the recorded calls of one docker subcommand.
// jobCalls is calls without the checkout's loader container's.
func (f fakeEngine) jobCalls(t *testing.T) []dockerCall {
	t.Helper()
	var out []dockerCall
	for _, c := range f.calls(t) {
		if !isLoaderCall(c.Args) {
			out = append(out, c)
		}
	}
	return out
}

// The job container's `docker run -d` counts as its "create" here (not as
// a "run"), with its arguments as createArgs made them: what the tests of
// the container's settings look at. The checkout's loader container
// (loadCheckout) is left out: TestExecutorRunsJob and
// TestCheckoutLoaderFallback look at it.
func (f fakeEngine) commands(t *testing.T, sub string) []dockerCall {
	t.Helper()
	var out []dockerCall
	for _, c := range f.calls(t) {
		if isLoaderCall(c.Args) {
			continue
		}
		if c.Args[0] == "run" && isJobContainerRun(c.Args) {
			c.Args = append([]string{"create"}, c.Args[2:]...)
		}
		if c.Args[0] == sub {
			out = append(out, c)
		}
	}
	return out
}

// gotChunk is one appendLog call.
type gotChunk struct {
	seq  int64
	data string
}

// fakeSource is an in-memory jobSource that records what the executor tells it.
type fakeSource struct {
	mu          sync.Mutex // guards everything below
	queue       []*protocol.Job
	steps       map[int64][]string   // step id → statuses, "running" or the conclusion
	jobs        map[int64]string     // job id → conclusion
	jobAt       map[int64]time.Time  // job id → when its status was set
	logAt       map[int64]time.Time  // step id → when its first chunk came
	logs        map[int64][]gotChunk // step id → chunks, resends included
	outputs     map[int64]map[string]string
	envURLs     map[int64]string // job id → the environment url it reported
	annotations []protocol.Annotation
	summaries   map[int64]string // step id → markdown
	cancelled   map[int64]bool
	checkoutErr error
	modes       []os.FileMode  // the permissions of each checkout directory
	order       []string       // the calls that report on or act for a job, in order
	panicIn     map[string]int // method → panics left to throw
	failIn      map[string]int // method → transient errors left to return
}

func newFakeSource(jobs ...*protocol.Job) *fakeSource {
	return &fakeSource{
		queue:     jobs,
		steps:     map[int64][]string{},
		jobs:      map[int64]string{},
		jobAt:     map[int64]time.Time{},
		logAt:     map[int64]time.Time{},
		logs:      map[int64][]gotChunk{},
		outputs:   map[int64]map[string]string{},
		envURLs:   map[int64]string{},
		summaries: map[int64]string{},
		cancelled: map[int64]bool{},
		panicIn:   map[string]int{},
		failIn:    map[string]int{},
	}
}

// troubleLocked panics or fails as set up for method. s.mu is held, and
// is released before a panic.
func (s *fakeSource) troubleLocked(method string) error {
	if s.panicIn[method] > 0 {
		s.panicIn[method]--
		s.mu.Unlock()
		panic("fake source: panic in " + method)
	}
	if s.failIn[method] > 0 {
		s.failIn[method]--
		return fmt.Errorf("fake source: transient failure in %s", method)
	}
	return nil
}

func (s *fakeSource) add(job *protocol.Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, job)
}

func (s *fakeSource) Claim(ctx context.Context, labels []string) (*protocol.Job, error) {
	s.mu.Lock()
	if err := s.troubleLocked("claim"); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return nil, nil
	}
	job := s.queue[0]
	s.queue = s.queue[1:]
	return job, nil
}

func (s *fakeSource) AppendLog(ctx context.Context, jobID, stepID, seq int64, data []byte) error {
	s.mu.Lock()
	if err := s.troubleLocked("appendLog"); err != nil {
		// The chunk arrived but the answer was lost: the resend repeats it.
		s.logs[stepID] = append(s.logs[stepID], gotChunk{seq, string(data)})
		s.mu.Unlock()
		return err
	}
	defer s.mu.Unlock()
	if len(s.logs[stepID]) == 0 {
		s.logAt[stepID] = time.Now()
	}
	s.order = append(s.order, "appendLog")
	s.logs[stepID] = append(s.logs[stepID], gotChunk{seq, string(data)})
	return nil
}

func (s *fakeSource) SetStepStatus(ctx context.Context, jobID, stepID int64, status, conclusion string) error {
	s.mu.Lock()
	if err := s.troubleLocked("setStepStatus"); err != nil {
		s.mu.Unlock()
		return err
	}
	defer s.mu.Unlock()
	if status == "completed" {
		status = conclusion
	}
	s.order = append(s.order, "setStepStatus "+status)
	s.steps[stepID] = append(s.steps[stepID], status)
	return nil
}

func (s *fakeSource) AddAnnotation(ctx context.Context, jobID int64, a protocol.Annotation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.annotations = append(s.annotations, a)
	return nil
}

func (s *fakeSource) SetStepSummary(ctx context.Context, jobID, stepID int64, markdown string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.summaries[stepID] = markdown
	return nil
}

func (s *fakeSource) SetJobStatus(ctx context.Context, jobID int64, status, conclusion string, outputs map[string]string, envURL string) error {
	s.mu.Lock()
	if err := s.troubleLocked("setJobStatus"); err != nil {
		s.mu.Unlock()
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.jobs[jobID]; ok {
		return MarkPermanent(fmt.Errorf("job %d completed twice", jobID))
	}
	s.jobs[jobID] = conclusion
	s.outputs[jobID] = outputs
	s.envURLs[jobID] = envURL
	s.jobAt[jobID] = time.Now()
	return nil
}

func (s *fakeSource) CancelRequested(ctx context.Context, jobID int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled[jobID], nil
}

func (s *fakeSource) Checkout(ctx context.Context, job *protocol.Job, dir string, spec CheckoutSpec) error {
	s.mu.Lock()
	if err := s.troubleLocked("checkout"); err != nil {
		s.mu.Unlock()
		return err
	}
	err := s.checkoutErr
	s.order = append(s.order, "checkout")
	if fi, serr := os.Stat(dir); serr == nil {
		s.modes = append(s.modes, fi.Mode().Perm())
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		return fmt.Errorf("checkout into a non-empty %s", dir)
	}
	return os.WriteFile(filepath.Join(dir, "README"), []byte(job.Repo+"@"+job.HeadSHA+"\n"), 0o644)
}

// log is the text of a step's log, each seq once, in seq order; it fails
// the test when seqs are not 1, 2, 3, ... or a resend differs.
func (s *fakeSource) log(t testing.TB, stepID int64) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	seen := map[int64]string{}
	var last int64
	for _, c := range s.logs[stepID] {
		if prev, ok := seen[c.seq]; ok {
			if prev != c.data {
				t.Errorf("step %d: seq %d resent with other data", stepID, c.seq)
			}
			continue
		}
		if c.seq != last+1 {
			t.Errorf("step %d: seq %d after %d", stepID, c.seq, last)
		}
		seen[c.seq], last = c.data, c.seq
		b.WriteString(c.data)
	}
	return b.String()
}

func (s *fakeSource) checkoutModes() []os.FileMode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.modes)
}

func (s *fakeSource) stepStatuses(stepID int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.steps[stepID])
}

func (s *fakeSource) jobConclusion(jobID int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jobs[jobID]
}

// waitUntil waits for cond, failing the test after a minute: a safety net
// against a hung executor, not a timing assertion.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// testJob is a job with Set up job, a checkout step and a run step for each
// script; step ids are jobID*100 + index.
func testJob(id int64, scripts ...string) *protocol.Job {
	steps := []protocol.Step{
		{ID: id * 100, Number: 1, Kind: "setup", Name: "Set up job"},
		{ID: id*100 + 1, Number: 2, Kind: "checkout", Name: "Checkout", Uses: "actions/checkout@v4"},
	}
	for i, s := range scripts {
		steps = append(steps, protocol.Step{ID: id*100 + 2 + int64(i), Number: 3 + i, Kind: "run", Name: "step", Run: s})
	}
	return &protocol.Job{
		JobID: id, RunID: 7, RepoID: 3, Repo: "alice/demo", HeadSHA: "0123456789abcdef0123456789abcdef01234567",
		JobName: "build", RunsOn: []string{"ubuntu-latest"}, Steps: steps,
	}
}

func stepID(job *protocol.Job, i int) int64 { return job.Steps[i].ID }

// testLogger discards, unless SHITHUB_TEST_LOG is set.
func runnerTestLogger() *slog.Logger {
	if os.Getenv("SHITHUB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newTestExecutor returns an executor on the fake docker and src.
func newTestExecutor(t *testing.T, src JobSource) (*Executor, fakeEngine) {
	t.Helper()
	fe := fakeEngine{dir: t.TempDir()}
	ex := New(Config{
		Instance: "test",
		Docker:   os.Args[0],
		// GORACE: under -race, a process sleeps a second at exit to let
		// late reports through; the fake docker is one process per call.
		DockerEnv:    []string{fakeDockerEnv + "=" + fe.dir, "GORACE=atexit_sleep_ms=0"},
		WorkDir:      t.TempDir(),
		StopGrace:    time.Second,
		CancelPoll:   10 * time.Millisecond,
		PollInterval: 20 * time.Millisecond,
	}, src, runnerTestLogger())
	ex.retryFor = 5 * time.Second
	return ex, fe
}

func TestExecutorRunsJob(t *testing.T) {
	t.Parallel()
	job := testJob(5, "echo hello\nerr oops\necho bye", "pwd\nshell")
	job.Steps[3].WorkingDirectory = "sub/dir"
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	ex.runJob(job)

	if got := src.jobConclusion(5); got != "success" {
		t.Fatalf("job conclusion = %q, want success", got)
	}
	for i := range job.Steps {
		if got := src.stepStatuses(stepID(job, i)); !slices.Equal(got, []string{"running", "success"}) {
			t.Errorf("step %d statuses = %q", i, got)
		}
	}
	labels := []string{"--label", "shithub-actions.instance=test", "--label", "shithub-actions.run=7", "--label", "shithub-actions.job=5"}
	const name = "shithub-actions-test-5"
	wantCreate := append(append([]string{"run", "-d", "--init", "--name", name}, labels...),
		"--network", name, "--memory", "2g", "--cpus", "1", "--pids-limit", "1024",
		"--security-opt", "no-new-privileges", "--cap-drop", "ALL",
		"--cap-add", "CHOWN", "--cap-add", "DAC_OVERRIDE", "--cap-add", "FOWNER", "--cap-add", "FSETID",
		"--cap-add", "SETUID", "--cap-add", "SETGID", "--cap-add", "KILL", "--cap-add", "NET_BIND_SERVICE",
		"--pull=missing", "-v", name+":/workspace", "-w", "/workspace",
		"-v", "shithub-actions-test-toolcache-3-b9152615:/opt/hostedtoolcache",
		"--entrypoint", "tail", "--", "catthehacker/ubuntu:act-latest", "-f", "/dev/null")
	var got [][]string
	var stage string
	for _, c := range fe.calls(t) {
		if c.Args[0] == "cp" && c.Args[2] != "-" { // the staged checkout's name is random
			stage = strings.TrimSuffix(c.Args[1], "/.")
			c.Args[1] = "STAGE/."
		}
		got = append(got, stepExecTail(c.Args))
		if slices.Contains(c.Args, "--privileged") {
			t.Errorf("--privileged in %q", c.Args)
		}
	}
	cmds := "/tmp/_shithub/temp/_runner_file_commands/"
	want := [][]string{
		append(append([]string{"volume", "create"}, labels...), name),
		append(append([]string{"network", "create"}, labels...), name),
		{"network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}} {{end}}", name},
		{"volume", "create", "--label", "shithub-actions.toolcache=test", "shithub-actions-test-toolcache-3-b9152615"},
		wantCreate,
		append(append([]string{"create", "--name", name + "-checkout"}, labels...), "--network", "none", "--pull=never",
			"-v", name+":/workspace", "--entrypoint", "true", "--", wantCreate[len(wantCreate)-3]),
		{"cp", "STAGE/.", name + "-checkout:/workspace"},
		{"inspect", "-f", "{{.Image}}", name},
		{"exec", name, "sh", "-c", "command -v bash || command -v sh"},
		{"exec", "-i", "-w", "/workspace", name, "sh", "-c", stepBootstrap, "shithub-step",
			cmds + "502", cmds + "502/script.sh", "/usr/bin/bash", "-e", cmds + "502/script.sh"},
		{"cp", name + ":" + cmds + "502", "-"},
		{"exec", "-i", "-w", "/workspace/sub/dir", name, "sh", "-c", stepBootstrap, "shithub-step",
			cmds + "503", cmds + "503/script.sh", "/usr/bin/bash", "-e", cmds + "503/script.sh"},
		{"cp", name + ":" + cmds + "503", "-"},
		{"rm", "-f", "-v", name},
		{"network", "rm", name},
		{"volume", "rm", "-f", name},
	}
	// Set-up runs the volume, the network and the tool cache at once, then
	// the container's start beside the checkout's loader: in any order, but
	// each one's own calls in theirs. The loader goes in the background,
	// after its copy and before the volume.
	before := func(calls [][]string, a, b string) bool {
		ia := slices.IndexFunc(calls, func(c []string) bool { return strings.Join(c[:2], " ") == a })
		ib := slices.IndexFunc(calls, func(c []string) bool { return strings.Join(c[:2], " ") == b })
		return ia >= 0 && ib > ia
	}
	loaderRm := slices.IndexFunc(got, func(c []string) bool { return slices.Equal(c, []string{"rm", "-f", name + "-checkout"}) })
	if loaderRm < 0 || !before(got, "cp STAGE/.", "rm -f") || !before(got, "rm -f", "volume rm") {
		t.Errorf("the loader was not removed after its copy and before the volume: %q", got)
	} else {
		got = slices.Delete(got, loaderRm, loaderRm+1)
	}
	if len(got) == len(want) {
		for _, ab := range [][2]string{{"network create", "network inspect"}, {"create --name", "cp STAGE/."},
			{"run -d", "inspect -f"}, {"inspect -f", "exec " + name}} {
			if !before(got, ab[0], ab[1]) {
				t.Errorf("%s not before %s: %q", ab[0], ab[1], got[:9])
			}
		}
		byArgs := func(a, b []string) int { return slices.Compare(a, b) }
		slices.SortFunc(got[0:9], byArgs)
		slices.SortFunc(want[0:9], byArgs)
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("docker calls:\n got %q\nwant %q", got, want)
	}
	// The checkout was staged in a private directory of WorkDir, reached
	// the volume whole, and is gone from the host.
	if filepath.Dir(stage) != ex.cfg.WorkDir || !strings.HasPrefix(filepath.Base(stage), name+"-") {
		t.Errorf("checkout staged in %s, want %s/%s-*", stage, ex.cfg.WorkDir, name)
	}
	// The first thing the executor tells the source acknowledges the claim,
	// before anything slow (checkout, image pull) can delay it.
	if src.order[0] != "setStepStatus running" {
		t.Errorf("first report after the claim = %q, want the Set up job step running", src.order[0])
	}
	if got := src.checkoutModes(); len(got) != 1 || got[0] != 0o700 {
		t.Errorf("staged checkout directory modes = %o, want [700]", got)
	}
	if b, err := os.ReadFile(filepath.Join(fe.dir, "cp-"+name, "README")); err != nil || string(b) != "alice/demo@0123456789abcdef0123456789abcdef01234567\n" {
		t.Errorf("the volume got README %q, %v", b, err)
	}
	if entries, _ := os.ReadDir(ex.cfg.WorkDir); len(entries) != 0 {
		t.Errorf("left in WorkDir: %v", entries)
	}

	setup := src.log(t, stepID(job, 0))
	for _, s := range []string{"Workspace: volume " + name + ", mounted at /workspace", "Network: " + name + " (gateway 172.30.0.1)",
		"Checked out alice/demo at 0123456789abcdef", "Image: catthehacker/ubuntu:act-latest (runs-on ubuntu-latest)", "Container: shithub-actions-test-5 (c0ffeec0ffee)", "Shell: /usr/bin/bash -e {0}"} {
		if !strings.Contains(setup, s) {
			t.Errorf("Set up job log lacks %q:\n%s", s, setup)
		}
	}
	if got := src.log(t, stepID(job, 1)); got != "Checked out alice/demo at 0123456789abcdef0123456789abcdef01234567 into /workspace\n" {
		t.Errorf("checkout step log = %q", got)
	}
	if got := src.log(t, stepID(job, 2)); got != "hello\noops\nbye\n" {
		t.Errorf("step log = %q", got)
	}
	if got := src.log(t, stepID(job, 3)); got != "/workspace/sub/dir\n/usr/bin/bash -e {0}\n" {
		t.Errorf("step log = %q", got)
	}
}

// stepExecTail drops a step exec's -e flags (env names, checked apart).
func stepExecTail(args []string) []string {
	if len(args) < 2 || args[0] != "exec" || args[1] != "-i" {
		return args
	}
	out := []string{"exec", "-i"}
	for i := 2; i < len(args); i++ {
		if args[i] == "-e" {
			i++
			continue
		}
		return append(out, args[i:]...)
	}
	return out
}

func TestExecutorShWithoutBash(t *testing.T) {
	t.Parallel()
	job := testJob(6, "shell")
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	fe.set(t, "no-bash", "")
	ex.runJob(job)
	if got := src.log(t, stepID(job, 2)); got != "/bin/sh -e {0}\n" {
		t.Errorf("step ran with %q, want /bin/sh", got)
	}
}

// TestCheckoutLoaderFallback: when the loader cannot be made (the image is
// still being pulled by the job's docker run), the checkout goes into the
// job's container, and reaches the volume all the same.
func TestCheckoutLoaderFallback(t *testing.T) {
	t.Parallel()
	job := testJob(60, "echo hi")
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	fe.set(t, "not-local", "")
	ex.runJob(job)
	if got := src.jobConclusion(60); got != "success" {
		t.Fatalf("job conclusion = %q", got)
	}
	const name = "shithub-actions-test-60"
	var intoJob, intoLoader int
	for _, c := range fe.calls(t) {
		if c.Args[0] == "cp" && c.Args[2] == name+":/workspace" {
			intoJob++
		}
		if c.Args[0] == "cp" && c.Args[2] == name+"-checkout:/workspace" {
			intoLoader++
		}
	}
	if intoJob != 1 || intoLoader != 0 {
		t.Errorf("%d copies into the job container and %d through the loader, want 1 and 0", intoJob, intoLoader)
	}
	if b, err := os.ReadFile(filepath.Join(fe.dir, "cp-"+name, "README")); err != nil || string(b) != job.Repo+"@"+job.HeadSHA+"\n" {
		t.Errorf("the volume got README %q, %v", b, err)
	}
}

// TestDefaultShellCache: the shell is looked up once per image, by the
// image's ID; a container the workflow configured (its own options, which
// could change PATH), an answer outside the image's system directories, or
// an engine that names no image ID is asked every time.
func TestDefaultShellCache(t *testing.T) {
	t.Parallel()
	probes := func(fe fakeEngine, t *testing.T) int {
		n := 0
		for _, c := range fe.commands(t, "exec") {
			if slices.Contains(c.Args, "command -v bash || command -v sh") {
				n++
			}
		}
		return n
	}
	tests := []struct {
		name    string
		imageID string
		options string // the job container's options
		noBash  bool
		path    string // what the lookup finds, when not the usual
		want    int    // lookups for three jobs
	}{
		{name: "same image", imageID: "sha256:aaa", want: 1},
		{name: "same image without bash", imageID: "sha256:aaa", noBash: true, want: 1},
		{name: "no image id", want: 3},
		{name: "options of its own", imageID: "sha256:aaa", options: "--tmpfs /usr/local/bin", want: 3},
		{name: "a shell in the workspace", imageID: "sha256:aaa", path: "/workspace/bash", want: 3},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := newFakeSource()
			ex, fe := newTestExecutor(t, src)
			if tc.imageID != "" {
				fe.set(t, "image-id", tc.imageID+"\n")
			}
			if tc.noBash {
				fe.set(t, "no-bash", "")
			}
			if tc.path != "" {
				fe.set(t, "shell-path", tc.path+"\n")
			}
			for k := range 3 {
				job := testJob(int64(200+10*i+k), "shell")
				if tc.options != "" {
					job.Container = &workflow.ContainerSpec{Image: "ubuntu:24.04", Options: tc.options}
				}
				ex.runJob(job)
				want := "/usr/bin/bash -e {0}\n"
				switch {
				case tc.options != "": // a job container's steps run with sh, as on GitHub
					want = "sh -e {0}\n"
				case tc.noBash:
					want = "/bin/sh -e {0}\n"
				case tc.path != "":
					want = tc.path + " -e {0}\n"
				}
				if got := src.log(t, stepID(job, 2)); got != want {
					t.Errorf("job %d: step ran with %q, want %q", k, got, want)
				}
			}
			if n := probes(fe, t); n != tc.want {
				t.Errorf("%d shell lookups for 3 jobs, want %d", n, tc.want)
			}
		})
	}
}

func TestExecutorEnvNeverInArgv(t *testing.T) {
	t.Parallel()
	job := testJob(8, "env SECRET\nenv WHO\nenv LD_PRELOAD\nenv JOBONLY\nenv bad-name")
	job.Env = map[string]string{"SECRET": "s3cr3t-value", "WHO": "job-value", "JOBONLY": "only-in-job"}
	job.Steps[2].Env = map[string]string{"WHO": "step-value", "LD_PRELOAD": "/workspace/evil.so", "bad-name": "bad-value"}
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	ex.runJob(job)

	if got := src.jobConclusion(8); got != "success" {
		t.Fatalf("job conclusion = %q", got)
	}
	want := "##[warning]not setting \"bad-name\": an environment variable name is letters, digits and _, not starting with a digit.\n" +
		"SECRET=s3cr3t-value\nWHO=step-value\nLD_PRELOAD=/workspace/evil.so\nJOBONLY=only-in-job\nbad-name is not set\n"
	if got := src.log(t, stepID(job, 2)); got != want {
		t.Errorf("step log:\n got %q\nwant %q", got, want)
	}
	for _, c := range fe.calls(t) {
		for _, a := range c.Args {
			for _, v := range []string{"s3cr3t-value", "step-value", "job-value", "evil.so", "only-in-job", "bad-value"} {
				if strings.Contains(a, v) {
					t.Errorf("env value %q in argv %q", v, c.Args)
				}
			}
		}
	}
	execs := fe.commands(t, "exec")
	step := execs[len(execs)-1]
	wantEnv := map[string]string{
		"SHITHUB_ENV_JOBONLY":    "only-in-job",
		"SHITHUB_ENV_LD_PRELOAD": "/workspace/evil.so",
		"SHITHUB_ENV_SECRET":     "s3cr3t-value",
		"SHITHUB_ENV_WHO":        "step-value",
		"SHITHUB_ENV_GITHUB_ENV": "/tmp/_shithub/temp/_runner_file_commands/802/set_env",
		"SHITHUB_ENV_RUNNER_OS":  "Linux",
		"SHITHUB_ENVNAMES": "GITHUB_ENV GITHUB_OUTPUT GITHUB_PATH GITHUB_STATE GITHUB_STEP_SUMMARY JOBONLY LD_PRELOAD " +
			"RUNNER_ARCH RUNNER_NAME RUNNER_OS RUNNER_TEMP RUNNER_TOOL_CACHE SECRET WHO",
	}
	for k, v := range wantEnv {
		if step.Env[k] != v {
			t.Errorf("exec env %s = %q, want %q", k, step.Env[k], v)
		}
	}
	for k := range step.Env {
		if strings.HasPrefix(k, "SHITHUB_ENV_") && !strings.Contains(" "+step.Env["SHITHUB_ENVNAMES"]+" ", " "+strings.TrimPrefix(k, "SHITHUB_ENV_")+" ") {
			t.Errorf("exec env %s is not in SHITHUB_ENVNAMES", k)
		}
	}
}

func TestExecutorStepFailureSkipsRest(t *testing.T) {
	t.Parallel()
	job := testJob(9, "echo one", "echo two\nexit 3", "echo three")
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	ex.runJob(job)

	if got := src.jobConclusion(9); got != "failure" {
		t.Fatalf("job conclusion = %q, want failure", got)
	}
	want := [][]string{{"running", "success"}, {"running", "success"}, {"running", "success"}, {"running", "failure"}, {"skipped"}}
	for i, w := range want {
		if got := src.stepStatuses(stepID(job, i)); !slices.Equal(got, w) {
			t.Errorf("step %d statuses = %q, want %q", i, got, w)
		}
	}
	if got := src.log(t, stepID(job, 3)); got != "two\n##[error]Process completed with exit code 3.\n" {
		t.Errorf("failed step log = %q", got)
	}
	if n := len(fe.commands(t, "exec")); n != 3 { // the shell probe and two steps
		t.Errorf("%d docker execs, want 3", n)
	}
	if rm := fe.commands(t, "rm"); len(rm) != 1 {
		t.Errorf("docker rm calls: %v", rm)
	}
}

func TestExecutorSetupFailures(t *testing.T) {
	t.Parallel()
	const pullDenied = "Unable to find image 'nope:latest' locally\n" +
		"docker: Error response from daemon: pull access denied for nope, repository does not exist or may require 'docker login'."
	tests := []struct {
		name      string
		engine    map[string]string // fake docker files
		image     string
		allow     []string // --allow-images
		runsOn    []string
		checkout  error
		firstLine string
		contains  string
		wantRun   bool // set-up got as far as docker create
		// set-up made (or tried to make) the job's network and volume, beside
		// the checkout, and removed them and any container it got to
		wantResources bool
	}{
		{name: "pull denied", engine: map[string]string{"create-fail": pullDenied + "\n"}, image: "nope",
			firstLine: "Unable to find image 'nope:latest' locally", contains: "pull access denied for nope", wantRun: true},
		{name: "no engine", engine: map[string]string{"no-engine": ""},
			firstLine: "Cannot connect to the Docker daemon at unix:///nonexistent. Is the docker daemon running?", wantResources: true},
		{name: "no image", runsOn: []string{"windows-latest"},
			firstLine: `Error: choose the job's image: no image for runs-on ["windows-latest"]: this executor maps debian-latest, ubuntu-22.04, ubuntu-24.04, ubuntu-latest.`},
		{name: "image not allowed", image: "evil.example/miner:latest", allow: []string{"ubuntu:*", "ghcr.io/me/**"},
			firstLine: `Error: choose the job's image: the job's container image "evil.example/miner:latest" is not allowed here: --allow-images is ubuntu:*,ghcr.io/me/**.`},
		{name: "checkout", checkout: MarkPermanent(errors.New("no such commit")),
			firstLine: "Error: check out alice/demo: checkout: no such commit.", wantResources: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := testJob(int64(20+i), "echo never")
			job.Image = tc.image
			if tc.runsOn != nil {
				job.RunsOn = tc.runsOn
			}
			src := newFakeSource()
			src.checkoutErr = tc.checkout
			ex, fe := newTestExecutor(t, src)
			ex.cfg.AllowImages = tc.allow
			for name, content := range tc.engine {
				fe.set(t, name, content)
			}
			ex.runJob(job)

			if got := src.jobConclusion(job.JobID); got != "failure" {
				t.Errorf("job conclusion = %q, want failure", got)
			}
			want := [][]string{{"running", "failure"}, {"skipped"}, {"skipped"}}
			for i, w := range want {
				if got := src.stepStatuses(stepID(job, i)); !slices.Equal(got, w) {
					t.Errorf("step %d statuses = %q, want %q", i, got, w)
				}
			}
			log := src.log(t, stepID(job, 0))
			if first, _, _ := strings.Cut(log, "\n"); first != tc.firstLine {
				t.Errorf("first log line = %q, want %q", first, tc.firstLine)
			}
			if !strings.Contains(log, tc.contains) {
				t.Errorf("log %q lacks %q", log, tc.contains)
			}
			// What set-up tried to make is removed; nothing runs in a container.
			creates, rms := len(fe.commands(t, "create")), len(fe.commands(t, "rm"))
			nets, vols := fe.commands(t, "network"), fe.commands(t, "volume")
			name := ex.namePrefix() + strconv.FormatInt(job.JobID, 10)
			removed := func(args ...string) bool {
				return slices.ContainsFunc(fe.calls(t), func(c dockerCall) bool { return slices.Equal(c.Args, args) })
			}
			if tc.wantRun && (creates != 1 || rms != 1 || len(nets) != 3 || len(vols) != 3) ||
				tc.wantResources && (creates != rms || !removed("network", "rm", name) || !removed("volume", "rm", "-f", name)) ||
				!tc.wantRun && !tc.wantResources && len(fe.calls(t)) != 0 {
				t.Errorf("docker calls %q", fe.calls(t))
			}
			if n := len(fe.commands(t, "exec")); n != 0 {
				t.Errorf("%d docker execs after a failed set-up", n)
			}
			if entries, _ := os.ReadDir(ex.cfg.WorkDir); len(entries) != 0 {
				t.Errorf("workspace left behind: %v", entries)
			}
		})
	}
}

// startJob runs job on its own goroutine and returns a channel closed when
// runJob returns.
func startJob(ex *Executor, job *protocol.Job) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ex.runJob(job)
	}()
	return done
}

func TestExecutorCancel(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"cancel", "cancelRequested"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			job := testJob(30, "echo started\nwait-stop", "echo never")
			src := newFakeSource()
			ex, fe := newTestExecutor(t, src)
			done := startJob(ex, job)
			waitUntil(t, "the step's output", func() bool { return strings.Contains(src.log(t, stepID(job, 2)), "started") })

			start := time.Now()
			if how == "cancel" {
				ex.Cancel(30)
			} else {
				src.mu.Lock()
				src.cancelled[30] = true
				src.mu.Unlock()
			}
			<-done
			src.mu.Lock()
			t.Logf("%s: %v from the signal to setJobStatus", how, src.jobAt[30].Sub(start))
			src.mu.Unlock()

			if got := src.jobConclusion(30); got != "cancelled" {
				t.Fatalf("job conclusion = %q, want cancelled", got)
			}
			// The step after the cancel is skipped: its if (success()) is false.
			want := [][]string{{"running", "success"}, {"running", "success"}, {"running", "cancelled"}, {"skipped"}}
			for i, w := range want {
				if got := src.stepStatuses(stepID(job, i)); !slices.Equal(got, w) {
					t.Errorf("step %d statuses = %q, want %q", i, got, w)
				}
			}
			var tail [][]string
			for _, c := range fe.jobCalls(t) {
				if c.Args[0] == "stop" || c.Args[0] == "rm" || c.Args[1] == "rm" {
					tail = append(tail, c.Args)
				}
			}
			const name = "shithub-actions-test-30"
			wantTail := [][]string{{"stop", "-t", "1", name}, {"rm", "-f", "-v", name}, {"network", "rm", name}, {"volume", "rm", "-f", name}}
			if !slices.EqualFunc(tail, wantTail, slices.Equal) {
				t.Errorf("stop and rm calls = %q, want %q", tail, wantTail)
			}
		})
	}
}

func TestExecutorCancelDuringSetup(t *testing.T) {
	t.Parallel()
	job := testJob(31, "echo never")
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	fe.set(t, "create-block", "")
	done := startJob(ex, job)
	waitUntil(t, "docker create", func() bool { return len(fe.commands(t, "create")) == 1 })
	ex.Cancel(31)
	<-done

	if got := src.jobConclusion(31); got != "cancelled" {
		t.Fatalf("job conclusion = %q, want cancelled", got)
	}
	want := [][]string{{"running", "cancelled"}, {"cancelled"}, {"cancelled"}}
	for i, w := range want {
		if got := src.stepStatuses(stepID(job, i)); !slices.Equal(got, w) {
			t.Errorf("step %d statuses = %q, want %q", i, got, w)
		}
	}
	if got := src.log(t, stepID(job, 0)); got != "The job was cancelled.\n" {
		t.Errorf("Set up job log = %q", got)
	}
	if rm := fe.commands(t, "rm"); len(rm) != 1 {
		t.Errorf("docker rm calls = %v, want one: docker create may have created the container", rm)
	}
	if n, v := fe.commands(t, "network"), fe.commands(t, "volume"); len(n) != 3 || len(v) != 3 {
		t.Errorf("network calls %q, volume calls %q: want them made and removed", n, v)
	}
	if entries, _ := os.ReadDir(ex.cfg.WorkDir); len(entries) != 0 {
		t.Errorf("left in WorkDir: %v", entries)
	}
}

func TestExecutorTimeout(t *testing.T) {
	t.Parallel()
	t.Run("timer", func(t *testing.T) {
		t.Parallel()
		job := testJob(32, "wait-stop", "echo never")
		src := newFakeSource()
		ex, _ := newTestExecutor(t, src)
		ex.jobTimeout = func(*protocol.Job) time.Duration { return 200 * time.Millisecond }
		ex.runJob(job)

		if got := src.jobConclusion(32); got != "timed_out" {
			t.Fatalf("job conclusion = %q, want timed_out", got)
		}
		// The timer may fire during Set up job on a slow machine (-race):
		// the steps before the one it stopped succeeded, the rest skipped.
		var got []string
		for i := range job.Steps {
			got = append(got, strings.Join(src.stepStatuses(stepID(job, i)), ","))
		}
		i := slices.Index(got, "running,cancelled")
		if i < 0 || slices.ContainsFunc(got[:i], func(s string) bool { return s != "running,success" }) ||
			slices.ContainsFunc(got[i+1:], func(s string) bool { return s != "skipped" }) {
			t.Errorf("step statuses = %q", got)
		}
	})
	t.Run("during a step", func(t *testing.T) {
		t.Parallel()
		job := testJob(33, "echo started\nwait-stop", "echo never")
		src := newFakeSource()
		ex, fe := newTestExecutor(t, src)
		done := startJob(ex, job)
		waitUntil(t, "the step's output", func() bool { return src.log(t, stepID(job, 2)) != "" })
		ex.mu.Lock()
		j := ex.jobs[33]
		ex.mu.Unlock()
		j.timer.Reset(0) // what the timer does when the time is up
		<-done

		if got := src.jobConclusion(33); got != "timed_out" {
			t.Fatalf("job conclusion = %q, want timed_out", got)
		}
		want := [][]string{{"running", "success"}, {"running", "success"}, {"running", "cancelled"}, {"skipped"}}
		for i, w := range want {
			if got := src.stepStatuses(stepID(job, i)); !slices.Equal(got, w) {
				t.Errorf("step %d statuses = %q, want %q", i, got, w)
			}
		}
		if len(fe.commands(t, "stop")) != 1 || len(fe.commands(t, "rm")) != 1 {
			t.Errorf("want one docker stop and one docker rm, got %v", fe.calls(t))
		}
	})
	t.Run("during set-up", func(t *testing.T) {
		t.Parallel()
		job := testJob(34, "echo never")
		src := newFakeSource()
		ex, fe := newTestExecutor(t, src)
		fe.set(t, "create-block", "")
		ex.jobTimeout = func(*protocol.Job) time.Duration { return 200 * time.Millisecond }
		ex.runJob(job)

		if got := src.jobConclusion(34); got != "timed_out" {
			t.Fatalf("job conclusion = %q, want timed_out", got)
		}
		want := [][]string{{"running", "cancelled"}, {"skipped"}, {"skipped"}}
		for i, w := range want {
			if got := src.stepStatuses(stepID(job, i)); !slices.Equal(got, w) {
				t.Errorf("step %d statuses = %q, want %q", i, got, w)
			}
		}
		if got := src.log(t, stepID(job, 0)); got != "Error: The job has exceeded its maximum execution time.\n" {
			t.Errorf("Set up job log = %q", got)
		}
	})
}

func TestStepLogChunking(t *testing.T) {
	t.Parallel()
	t.Run("by size", func(t *testing.T) {
		t.Parallel()
		const n = 200_000
		job := testJob(40, "big "+strconv.Itoa(n))
		src := newFakeSource()
		ex, _ := newTestExecutor(t, src)
		ex.runJob(job)

		got := src.log(t, stepID(job, 2)) // checks seq 1, 2, 3, ...
		// The log is lines: the last one gets its line break.
		if len(got) != n+1 || got[n] != '\n' {
			t.Fatalf("log has %d bytes, want %d", len(got), n+1)
		}
		for i := range n {
			if got[i] != bigByte(i) {
				t.Fatalf("log differs at byte %d", i)
			}
		}
		src.mu.Lock()
		chunks := src.logs[stepID(job, 2)]
		src.mu.Unlock()
		if len(chunks) < n/stepLogChunk+1 {
			t.Errorf("%d chunks for %d bytes", len(chunks), n)
		}
		for _, c := range chunks {
			if len(c.data) > stepLogChunk {
				t.Errorf("chunk %d has %d bytes", c.seq, len(c.data))
			}
		}
	})
	t.Run("by time", func(t *testing.T) {
		t.Parallel()
		job := testJob(41, "echo first\nwait-file go\necho second")
		src := newFakeSource()
		ex, fe := newTestExecutor(t, src)
		done := startJob(ex, job)
		// The step is still running: the first line went out without
		// waiting for the step's end (at once, after a quiet spell).
		waitUntil(t, "the first line", func() bool { return src.log(t, stepID(job, 2)) == "first\n" })
		fe.set(t, "go", "")
		<-done
		if got := src.log(t, stepID(job, 2)); got != "first\nsecond\n" {
			t.Errorf("log = %q", got)
		}
	})
	t.Run("resend keeps seq", func(t *testing.T) {
		t.Parallel()
		job := testJob(42, "echo a")
		src := newFakeSource()
		src.failIn["appendLog"] = 3
		ex, _ := newTestExecutor(t, src)
		ex.runJob(job)
		src.log(t, stepID(job, 0)) // checks that resends repeat seq and data
		if got := src.log(t, stepID(job, 2)); got != "a\n" {
			t.Errorf("log = %q", got)
		}
		src.mu.Lock()
		defer src.mu.Unlock()
		if n := len(src.logs[stepID(job, 0)]); n != 4 {
			t.Errorf("Set up job log sent %d times, want 4 (3 failures)", n)
		}
	})
}

func TestExecutorRetriesTransientErrors(t *testing.T) {
	t.Parallel()
	job := testJob(43, "echo a")
	src := newFakeSource()
	src.failIn["setStepStatus"] = 2
	src.failIn["setJobStatus"] = 1
	src.failIn["checkout"] = 1
	ex, _ := newTestExecutor(t, src)
	ex.runJob(job)
	if got := src.jobConclusion(43); got != "success" {
		t.Errorf("job conclusion = %q, want success", got)
	}
	if got := src.stepStatuses(stepID(job, 0)); !slices.Equal(got, []string{"running", "success"}) {
		t.Errorf("Set up job statuses = %q", got)
	}
}

func TestExecutorPanicRecovery(t *testing.T) {
	t.Parallel()
	for _, method := range []string{"checkout", "appendLog", "claim"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			first, second := testJob(50, "echo a", "echo b"), testJob(51, "echo fine")
			src := newFakeSource(first, second)
			src.panicIn[method] = 1
			ex, _ := newTestExecutor(t, src)
			ex.cfg.Workers = 1 // the first job meets the panic
			ctx, stop := context.WithCancel(context.Background())
			stopped := make(chan struct{})
			go func() {
				ex.Run(ctx)
				close(stopped)
			}()
			waitUntil(t, "both jobs", func() bool { return src.jobConclusion(50) != "" && src.jobConclusion(51) != "" })
			stop()
			<-stopped

			want := map[string]string{"checkout": "failure", "appendLog": "failure", "claim": "success"}[method]
			if got := src.jobConclusion(50); got != want {
				t.Errorf("first job = %q, want %q", got, want)
			}
			if got := src.jobConclusion(51); got != "success" {
				t.Errorf("second job = %q, want success: the worker must go on", got)
			}
			var wantSteps [][]string
			switch method {
			case "checkout": // panics in Set up job
				wantSteps = [][]string{{"running", "failure"}, {"skipped"}, {"skipped"}, {"skipped"}}
			case "appendLog": // panics writing the Set up job log
				wantSteps = [][]string{{"running", "failure"}, {"skipped"}, {"skipped"}, {"skipped"}}
			case "claim":
				wantSteps = [][]string{{"running", "success"}, {"running", "success"}, {"running", "success"}, {"running", "success"}}
			}
			for i, w := range wantSteps {
				if got := src.stepStatuses(stepID(first, i)); !slices.Equal(got, w) {
					t.Errorf("step %d statuses = %q, want %q", i, got, w)
				}
			}
		})
	}
}

func TestExecutorWakeAndDrain(t *testing.T) {
	t.Parallel()
	src := newFakeSource()
	ex, _ := newTestExecutor(t, src)
	ex.cfg.PollInterval = time.Hour // only wake() can start the job
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	stopped := make(chan struct{})
	go func() {
		ex.Run(ctx)
		close(stopped)
	}()

	job := testJob(60, "echo up\nwait-stop")
	src.add(job)
	ex.Wake()
	waitUntil(t, "the step's output", func() bool { return src.log(t, stepID(job, 2)) == "up\n" })

	for range 10 {
		ex.Wake() // never blocks, whatever the number of pending wake-ups
	}
	ex.Drain(10 * time.Millisecond)
	<-stopped // drain stopped the workers, so run returns without ctx
	if got := src.jobConclusion(60); got != "cancelled" {
		t.Errorf("job conclusion = %q, want cancelled", got)
	}
	src.add(testJob(61, "echo never"))
	ex.Wake()
	ex.Run(ctx) // returns at once: drained
	if got := src.jobConclusion(61); got != "" {
		t.Errorf("a drained executor ran a job: %q", got)
	}
}

func TestExecutorDrainLetsJobsFinish(t *testing.T) {
	t.Parallel()
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	job := testJob(62, "wait-file go\necho done")
	src.add(job)
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		ex.Run(ctx)
		close(stopped)
	}()
	waitUntil(t, "the step", func() bool { return len(src.stepStatuses(stepID(job, 2))) == 1 })
	stop() // as SIGTERM: ctx ends, then drain
	drained := make(chan struct{})
	go func() {
		ex.Drain(time.Minute)
		close(drained)
	}()
	fe.set(t, "go", "")
	<-drained
	<-stopped
	if got := src.jobConclusion(62); got != "success" {
		t.Errorf("job conclusion = %q, want success: it finished within the grace", got)
	}
}

func TestRemoveStale(t *testing.T) {
	t.Parallel()
	ex, fe := newTestExecutor(t, newFakeSource())
	fe.set(t, "ps-output", "abc123\ndef456\n")
	fe.set(t, "network-ls-output", "net1\n")
	fe.set(t, "volume-ls-output", "shithub-actions-test-12\n")
	for _, d := range []string{"shithub-actions-test-12-123456", "shithub-actions-test-pool-0a1b-files-99", "shithub-actions-test-x-12-1", "shithub-actions-test-12x-1", "other"} {
		if err := os.Mkdir(filepath.Join(ex.cfg.WorkDir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := ex.RemoveStale(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, c := range fe.calls(t) {
		got = append(got, c.Args)
	}
	filter := []string{"--filter", "label=shithub-actions.instance=test"}
	want := [][]string{
		append([]string{"ps", "-a", "-q"}, filter...),
		{"rm", "-f", "abc123", "def456"},
		append([]string{"network", "ls", "-q"}, filter...),
		{"network", "rm", "net1"},
		append([]string{"volume", "ls", "-q"}, filter...),
		{"volume", "rm", "-f", "shithub-actions-test-12"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("docker calls = %q, want %q", got, want)
	}
	var left []string
	entries, _ := os.ReadDir(ex.cfg.WorkDir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{"other", "shithub-actions-test-12x-1", "shithub-actions-test-x-12-1"}; !slices.Equal(left, want) {
		t.Errorf("checkouts left = %q, want %q", left, want)
	}

	fe.set(t, "no-engine", "")
	if err := ex.RemoveStale(context.Background()); err == nil || !strings.Contains(err.Error(), "Cannot connect") {
		t.Errorf("removeStale without an engine = %v", err)
	}
}

func TestDockerOK(t *testing.T) {
	t.Parallel()
	ex, fe := newTestExecutor(t, newFakeSource())
	if err := ex.DockerOK(context.Background()); err != nil {
		t.Errorf("dockerOK = %v", err)
	}
	fe.set(t, "no-engine", "")
	if err := ex.DockerOK(context.Background()); err == nil || !strings.Contains(err.Error(), "Is the docker daemon running?") {
		t.Errorf("dockerOK without an engine = %v", err)
	}
	ex.docker.Bin = filepath.Join(t.TempDir(), "no-docker")
	if err := ex.DockerOK(context.Background()); err == nil {
		t.Error("dockerOK without a docker binary succeeded")
	}
}

func TestImageAllowed(t *testing.T) {
	t.Parallel()
	allow := []string{"ubuntu:*", "debian", "ghcr.io/me/**", "docker.io/library/*:*"}
	for _, tc := range []struct {
		patterns []string
		image    string
		want     bool
	}{
		{nil, "anything/at:all", true},
		{allow, "ubuntu:24.04", true},
		{allow, "ubuntu", false},
		{allow, "debian", true},
		{allow, "debian:bookworm", false},
		{allow, "ghcr.io/me/tools/build:1", true},
		{allow, "ghcr.io/mallory/x:1", false},
		{allow, "docker.io/library/node:22", true},
		{allow, "docker.io/library/x/y:1", false},
		{allow, "--privileged", false},
	} {
		if got := imageAllowed(tc.patterns, tc.image); got != tc.want {
			t.Errorf("imageAllowed(%q, %q) = %v, want %v", tc.patterns, tc.image, got, tc.want)
		}
	}
}

func TestExecutorConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{}.WithDefaults()
	if c.Workers != 2 || c.Pull != "missing" || c.Memory != "2g" || c.CPUs != "1" || c.PidsLimit != 1024 ||
		c.StopGrace != 10*time.Second || c.Docker != "docker" || c.WorkDir != os.TempDir() ||
		c.CancelPoll != 500*time.Millisecond || c.PollInterval != 2*time.Second || !strings.HasPrefix(c.Instance, "local-") {
		t.Errorf("defaults = %+v", c)
	}
	if want := []string{"debian-latest", "ubuntu-22.04", "ubuntu-24.04", "ubuntu-latest"}; !slices.Equal(c.Labels, want) {
		t.Errorf("labels = %q, want %q", c.Labels, want)
	}
	// Images made for CI: git, curl and node on the PATH (act's medium images).
	for label, want := range map[string]string{
		"ubuntu-latest": "catthehacker/ubuntu:act-latest", "ubuntu-24.04": "catthehacker/ubuntu:act-24.04",
		"ubuntu-22.04": "catthehacker/ubuntu:act-22.04", "debian-latest": "debian:bookworm",
	} {
		if c.Images[label] != want {
			t.Errorf("images[%s] = %q, want %q", label, c.Images[label], want)
		}
	}
}
