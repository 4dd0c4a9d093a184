// A step's output and files on their way out of the container: output cut
// into lines, workflow commands acted on (wfcmd.go), masked (mask.go) and
// streamed to the log; environment files ($GITHUB_OUTPUT, $GITHUB_ENV,
// $GITHUB_PATH, $GITHUB_STATE, $GITHUB_STEP_SUMMARY; envfile.go) read back
// through `docker cp` after the step and applied.

package executor

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"shithub-actions/internal/logtext"
	"shithub-actions/internal/protocol"
)

const (
	// stepLineMax is the longest output line kept whole; a longer run of
	// bytes without a line break is processed as a line of its own.
	stepLineMax = 64 << 10
	// annotationsPerLevel caps a step's annotations of each level, as the
	// runner does; the rest only show in the log.
	annotationsPerLevel = 10
	// stepSummaryMax is GitHub's cap on a step summary.
	stepSummaryMax = 1 << 20
	// stepFilesMax bounds what docker cp may bring back for one step: each
	// file is capped at envFileMaxSize, and five of them fit.
	stepFilesMax = 6*envFileMaxSize + 64<<10
)

// envPathPrepend carries $GITHUB_PATH's directories to stepBootstrap.
const envPathPrepend = "SHITHUB_PATH_PREPEND"

// stepOutput is one step's log: what the step prints and what the executor
// says about it. Lines go through the workflow-command processor and the
// job's masks before they reach the stepLog.
type stepOutput struct {
	j    *execJob
	step *protocol.Step
	log  *stepLog

	mu      sync.Mutex // guards everything below: os/exec writes from its own goroutine
	proc    wfCmdProcessor
	mask    *logtext.MaskWriter
	partial []byte // the current line, until its line break

	// What the commands asked for.
	cmdFailed   bool // a command failed: the step fails
	outputs     map[string]string
	annotations []protocol.Annotation
	perLevel    map[string]int
}

func (j *execJob) newStepOutput(step *protocol.Step) *stepOutput {
	return &stepOutput{
		j: j, step: step, log: j.newStepLog(step.ID),
		mask:     logtext.NewMaskWriter(j.st.masks),
		outputs:  map[string]string{},
		perLevel: map[string]int{},
	}
}

// Write takes the step's output as it comes.
func (o *stepOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			o.partial = append(o.partial, p...)
			if len(o.partial) >= stepLineMax {
				cut := stepLineMax
				for cut > 0 && !utf8.RuneStart(o.partial[cut-1]) {
					cut-- // keep a rune whole
				}
				if cut == 0 {
					cut = stepLineMax
				}
				line := string(o.partial[:cut])
				o.partial = append(o.partial[:0:0], o.partial[cut:]...)
				o.lineLocked(line)
			}
			break
		}
		o.partial = append(o.partial, p[:i]...)
		line := string(o.partial)
		o.partial = o.partial[:0]
		o.lineLocked(strings.TrimSuffix(line, "\r"))
		p = p[i+1:]
	}
	return n, nil
}

// endLines processes a last line without a line break: the step's output
// has ended.
func (o *stepOutput) endLines() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.partial) > 0 {
		line := string(o.partial)
		o.partial = nil
		o.lineLocked(line)
	}
}

// lineLocked handles one line of the step's output.
func (o *stepOutput) lineLocked(line string) {
	show, cmd := o.proc.Process(line)
	if cmd != nil {
		o.commandLocked(cmd)
	}
	for _, s := range show {
		o.emitLocked(s)
	}
}

// emitLocked masks one log line and sends it on.
func (o *stepOutput) emitLocked(s string) {
	if b := o.mask.Write([]byte(s + "\n")); len(b) > 0 {
		o.log.Write(b)
	}
}

// commandLocked acts on a workflow command.
func (o *stepOutput) commandLocked(c *wfCmd) {
	if c.Err != "" {
		o.cmdFailed = true
		return
	}
	st := &o.j.st
	switch c.Name {
	case "add-mask":
		st.masks.Add(c.Data)
	case "error", "warning", "notice":
		if o.perLevel[c.Name] >= annotationsPerLevel {
			return
		}
		o.perLevel[c.Name]++
		num := func(k string) int {
			n, _ := strconv.Atoi(strings.TrimSpace(c.Props[k]))
			return n
		}
		o.annotations = append(o.annotations, protocol.Annotation{
			StepID: o.step.ID, Level: c.Name, Message: c.Data,
			File: c.Props["file"], Title: c.Props["title"],
			Line: num("line"), Col: num("col"), EndLine: num("endline"), EndColumn: num("endcolumn"),
		})
	case "set-output":
		o.outputs[c.Props["name"]] = c.Data
	case "save-state":
		o.saveState(c.Props["name"], c.Data)
	case "set-env":
		if r := envFileRefused(c.Props["name"]); r != "" {
			o.emitLocked("##[warning]" + r)
			return
		}
		st.addedEnv[c.Props["name"]] = c.Data
	case "add-path":
		st.prepend = envFileAddPath(st.prepend, []string{c.Data})
	}
}

// saveState keeps a value for the step's post step (the actions issue).
func (o *stepOutput) saveState(name, value string) {
	key := o.step.StateKey()
	st := &o.j.st
	if st.state[key] == nil {
		st.state[key] = map[string]string{}
	}
	st.state[key][name] = value
}

// linef writes a line of the executor's own, masked.
func (o *stepOutput) linef(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.emitLocked(fmt.Sprintf(format, args...))
}

// errorf writes an ##[error] line of the executor's own.
func (o *stepOutput) errorf(format string, args ...any) {
	o.linef("##[error]"+format, args...)
}

// close sends what is left of the log.
func (o *stepOutput) close() {
	o.endLines()
	o.mu.Lock()
	if b := o.mask.Flush(); len(b) > 0 {
		o.log.Write(b)
	}
	o.mu.Unlock()
	o.log.close()
}

// sendStepExtras sends the step's annotations, masked, once its log is out.
func (j *execJob) sendStepExtras(step *protocol.Step, o *stepOutput) {
	for _, a := range o.annotations {
		a.Message = j.st.masks.Mask(a.Message)
		a.Title = j.st.masks.Mask(a.Title)
		a.File = j.st.masks.Mask(a.File)
		j.report("add annotation", func(ctx context.Context) error {
			return j.ex.src.AddAnnotation(ctx, j.job.JobID, a)
		})
	}
}

// stepFiles are the paths of one step's script and environment files in
// the job's container: a directory of the step's own.
type stepFiles struct {
	dir, script                       string
	output, env, path, state, summary string
}

func newStepFiles(stepID int64) stepFiles {
	dir := path.Join(containerRunnerTemp, "_runner_file_commands", strconv.FormatInt(stepID, 10))
	return stepFiles{
		dir:     dir,
		script:  path.Join(dir, "script"),
		output:  path.Join(dir, "set_output"),
		env:     path.Join(dir, "set_env"),
		path:    path.Join(dir, "add_path"),
		state:   path.Join(dir, "save_state"),
		summary: path.Join(dir, "step_summary"),
	}
}

// withExtension gives the script file the extension its shell wants.
func (f stepFiles) withExtension(ext string) stepFiles {
	f.script += ext
	return f
}

// env is what tells the step where its files are.
func (f stepFiles) vars() map[string]string {
	return map[string]string{
		"GITHUB_OUTPUT": f.output, "GITHUB_ENV": f.env, "GITHUB_PATH": f.path,
		"GITHUB_STATE": f.state, "GITHUB_STEP_SUMMARY": f.summary,
	}
}

// readStepFiles brings the step's files back with `docker cp CONTAINER:DIR -`,
// which needs nothing in the image and works on a stopped container. Only
// regular files directly in the directory count; each is capped.
func (j *execJob) readStepFiles(f stepFiles) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(j.reportCtx, jobCleanupTimeout)
	defer cancel()
	cmd := j.ex.docker.command(ctx, nil, "cp", j.name+":"+f.dir, "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	readErr := readTarFiles(io.LimitReader(stdout, stepFilesMax), files)
	if readErr != nil {
		cancel() // the rest is not wanted
	} else {
		io.Copy(io.Discard, stdout) // the tar's padding
	}
	waitErr := cmd.Wait()
	if readErr != nil {
		return nil, fmt.Errorf("read the step's files: %v", readErr)
	}
	if waitErr != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "Could not find the file") || strings.Contains(msg, "No such container:path") {
			return files, nil // the step never got to create its directory
		}
		return nil, &dockerError{cmd: "cp", stderr: msg, err: waitErr}
	}
	return files, nil
}

// readTarFiles reads the regular files directly inside the tar's one
// directory into files, each capped at envFileMaxSize.
func readTarFiles(r io.Reader, files map[string][]byte) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg || strings.Count(strings.Trim(h.Name, "/"), "/") != 1 {
			continue
		}
		if h.Size > envFileMaxSize {
			return fmt.Errorf("%s is %d bytes, more than the %d-byte limit", path.Base(h.Name), h.Size, envFileMaxSize)
		}
		data, err := io.ReadAll(io.LimitReader(tr, envFileMaxSize+1))
		if err != nil {
			return err
		}
		files[path.Base(h.Name)] = data
	}
}

// applyFiles reads the step's environment files and applies them in the
// runner's order: env, path, output, state, summary. A file that does not
// parse fails the step, with the pairs before the bad line applied.
func (j *execJob) applyFiles(step *protocol.Step, f stepFiles, out *stepOutput, res *stepResult) error {
	files, err := j.readStepFiles(f)
	if err != nil {
		return err
	}
	return j.applyFileMap(step, f, files, out, res)
}

// applyFileMap applies environment files already read (by their base names).
func (j *execJob) applyFileMap(step *protocol.Step, f stepFiles, files map[string][]byte, out *stepOutput, res *stepResult) error {
	st := &j.st
	var failed []string
	apply := func(name, file string, fn func(envFileKV)) {
		data, ok := files[path.Base(file)]
		if !ok || len(data) == 0 {
			return
		}
		kvs, err := envFileParse(data)
		for _, kv := range kvs {
			fn(kv)
		}
		if err != nil {
			out.errorf("Unable to process file command '%s' successfully.", name)
			out.errorf("%v", err)
			failed = append(failed, name)
		}
	}
	apply("env", f.env, func(kv envFileKV) {
		if r := envFileRefused(kv.Name); r != "" {
			out.linef("##[warning]%s", r)
			return
		}
		st.addedEnv[kv.Name] = kv.Value
	})
	if data := files[path.Base(f.path)]; len(data) > 0 {
		dirs, err := envFileParsePath(data)
		if err != nil {
			out.errorf("Unable to process file command 'add_path' successfully.")
			out.errorf("%v", err)
			failed = append(failed, "add_path")
		}
		st.prepend = envFileAddPath(st.prepend, dirs)
	}
	if res.outputs == nil {
		res.outputs = map[string]string{}
	}
	apply("output", f.output, func(kv envFileKV) { res.outputs[kv.Name] = kv.Value })
	apply("save_state", f.state, func(kv envFileKV) { out.saveState(kv.Name, kv.Value) })
	if data := files[path.Base(f.summary)]; len(data) > 0 {
		if len(data) > stepSummaryMax {
			out.errorf("$GITHUB_STEP_SUMMARY upload aborted, supports content up to a size of %dk, got %dk.", stepSummaryMax>>10, len(data)>>10)
		} else {
			md := st.masks.Mask(strings.ToValidUTF8(string(data), "\uFFFD"))
			j.report("set step summary", func(ctx context.Context) error {
				return j.ex.src.SetStepSummary(ctx, j.job.JobID, step.ID, md)
			})
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("the step's %s file did not parse", strings.Join(failed, ", "))
	}
	return nil
}
