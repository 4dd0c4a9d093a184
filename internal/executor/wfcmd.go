package executor

// Workflow commands in step output ("Workflow commands for GitHub Actions"),
// processed line by line as the runner does (actions/runner
// src/Runner.Common/ActionCommand.cs, src/Runner.Worker/ActionCommandManager.cs,
// Handlers/OutputManager.cs):
//
//   - `::name k=v,k=v::data`, after leading white space. The command info
//     ends at the first "::" after the opening one; the name ends at the
//     first space; names and property keys are case-insensitive; properties
//     are split at "," and then at the first "="; a pair with an empty key
//     or value is dropped. Data unescapes %0D %0A %25 (in that order),
//     property values also %3A and %2C.
//   - The legacy `##[name k=v;k=v]data` form, found anywhere in the line:
//     properties split at ";", both unescape %3B %0D %0A %5D %25.
//   - A line naming no known command is plain output, shown as is.
//   - While commands are stopped (`::stop-commands::TOKEN`), every line is
//     plain output until `::TOKEN::` (the command name compared
//     case-insensitively). Both lines are shown. The token may not be empty,
//     "pause-logging" or a command name unless
//     ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS is true; the runner masks a
//     token longer than 6 characters as a secret.
//   - Commands do not appear in the log, except: group/endgroup print
//     ##[group]title / ##[endgroup]; error/warning/notice print
//     ##[error]message etc. and make an annotation (the runner keeps at most
//     10 per type per step, messages cut at 4096 characters); debug prints
//     ##[debug]message only with step debug logging. With ::echo::on
//     (default: on only with step debug logging) the commands other than
//     add-mask, debug, error, warning and notice are also shown as written,
//     and add-mask shows `::add-mask::***`.
//   - set-output and save-state still work and log a deprecation warning.
//     set-env and add-path fail the step unless ACTIONS_ALLOW_UNSECURE_COMMANDS
//     is "true" (in the runner's environment or the step's env); set-env
//     refuses NODE_OPTIONS with an error annotation.
//   - A command that fails logs "##[error]Unable to process command '<line>'
//     successfully." and its reason, and fails the step.

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// wfCmd is a command for the caller to act on.
type wfCmd struct {
	Name  string            // lower case: error, warning, notice, debug, group, endgroup, add-mask, stop-commands, echo, set-output, save-state, set-env, add-path, add-matcher, remove-matcher
	Props map[string]string // keys lower-cased (file, line, col, endline, endcolumn, title, name, owner, ...)
	Data  string
	// Err, when set, is why the command failed: the step must fail (the
	// lines to log are already in the result).
	Err string
}

// wfCmdProcessor turns one step's output lines into log lines and commands.
// The zero value is ready; set the options before the first line.
type wfCmdProcessor struct {
	StepDebug               bool // ACTIONS_STEP_DEBUG: show ##[debug] lines, echo on at start
	AllowUnsecureCommands   bool // ACTIONS_ALLOW_UNSECURE_COMMANDS=true
	AllowUnsecureStopTokens bool // ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS=true

	started   bool
	echo      bool
	stopToken string // non-empty while commands are stopped
}

var wfCmdNames = map[string]bool{
	"add-mask": true, "add-matcher": true, "add-path": true, "debug": true,
	"echo": true, "endgroup": true, "error": true, "group": true,
	"notice": true, "remove-matcher": true, "save-state": true,
	"set-env": true, "set-output": true, "warning": true, "stop-commands": true,
}

// wfCmdOmitEcho are the commands ::echo::on does not show.
var wfCmdOmitEcho = map[string]bool{"add-mask": true, "debug": true, "error": true, "warning": true, "notice": true}

const (
	wfCmdDeprecated       = "The `%s` command is deprecated and will be disabled soon. Please upgrade to using Environment Files. For more information see: https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-output-commands/"
	wfCmdDisabled         = "The `%s` command is disabled. Please upgrade to using Environment Files or opt into unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment variable to `true`. For more information see: https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-commands/"
	wfCmdBadStopToken     = "You cannot use a endToken that is an empty string, the string 'pause-logging', or another workflow command. For more information see: https://docs.github.com/actions/learn-github-actions/workflow-commands-for-github-actions#example-stopping-and-starting-workflow-commands or opt into insecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_STOPCOMMAND_TOKENS` environment variable to `true`."
	wfCmdMaxMessageLength = 4096
)

// Process handles one output line (without its line break). It returns the
// lines the log shows, and the command to act on, if any.
func (p *wfCmdProcessor) Process(line string) (show []string, cmd *wfCmd) {
	if !p.started {
		p.started = true
		p.echo = p.StepDebug
	}
	plain := []string{wfCmdEscapeMarkers(line)}
	if !strings.Contains(line, "::") && !strings.Contains(line, "##[") {
		return plain, nil
	}
	c, ok := wfCmdParse(line, p.known)
	if !ok {
		return plain, nil
	}
	if p.stopToken != "" {
		if strings.EqualFold(c.Name, p.stopToken) {
			p.stopToken = ""
			return []string{line}, nil
		}
		return plain, nil
	}
	if c.Name == "stop-commands" {
		tok := c.Data
		if (tok == "" || wfCmdNames[strings.ToLower(tok)] || strings.EqualFold(tok, "pause-logging")) && !p.AllowUnsecureStopTokens {
			c.Err = wfCmdBadStopToken
			return []string{line, "##[error]" + c.Err}, c
		}
		p.stopToken = tok
		return []string{line}, c
	}
	if p.echo && !wfCmdOmitEcho[c.Name] {
		show = append(show, line)
	}
	fail := func(reason string) ([]string, *wfCmd) {
		c.Err = reason
		info := line
		if wfCmdOmitEcho[c.Name] {
			info = c.Name
		}
		return append(show, "##[error]Unable to process command '"+info+"' successfully.", "##[error]"+reason), c
	}
	switch c.Name {
	case "group":
		show = append(show, "##[group]"+c.Data)
	case "endgroup":
		show = append(show, "##[endgroup]")
	case "error", "warning", "notice":
		wfCmdValidateLines(c)
		if len(c.Data) > wfCmdMaxMessageLength {
			cut := wfCmdMaxMessageLength
			for cut > 0 && !utf8.RuneStart(c.Data[cut]) {
				cut--
			}
			c.Data = c.Data[:cut]
		}
		show = append(show, "##["+c.Name+"]"+c.Data)
	case "debug":
		if p.StepDebug {
			show = append(show, "##[debug]"+c.Data)
		}
	case "add-mask":
		if strings.TrimSpace(c.Data) == "" {
			return append(show, "##[warning]Can't add secret mask for empty string in ##[add-mask] command."), nil
		}
		if p.echo {
			show = append(show, "::add-mask::***")
		}
	case "echo":
		switch strings.ToUpper(strings.TrimSpace(c.Data)) {
		case "ON":
			p.echo = true
		case "OFF":
			p.echo = false
		default:
			if c.Data == "" {
				return fail("Parameter 'value' cannot be null or empty.")
			}
			return fail(fmt.Sprintf("Invalid echo command value. Possible values can be: 'on', 'off'. Current value is: '%s'.", c.Data))
		}
	case "set-output", "save-state":
		show = append(show, "##[warning]"+fmt.Sprintf(wfCmdDeprecated, c.Name))
		if c.Props["name"] == "" {
			return fail(fmt.Sprintf("Required field 'name' is missing in ##[%s] command.", c.Name))
		}
	case "set-env", "add-path":
		if !p.AllowUnsecureCommands {
			return fail(fmt.Sprintf(wfCmdDisabled, c.Name))
		}
		if c.Name == "set-env" {
			if c.Props["name"] == "" {
				return fail("Required field 'name' is missing in ##[set-env] command.")
			}
			if strings.EqualFold(c.Props["name"], "NODE_OPTIONS") {
				return append(show, "##[error]Can't update NODE_OPTIONS environment variable using ::set-env:: command."), nil
			}
		} else if c.Data == "" {
			return fail("Parameter 'path' cannot be null or empty.")
		}
	}
	return show, c
}

func (p *wfCmdProcessor) known(name string) bool {
	n := strings.ToLower(name)
	return wfCmdNames[n] || p.stopToken != "" && strings.EqualFold(name, p.stopToken)
}

// wfCmdEscapeMarkers defuses the runner's own step markers in user output.
func wfCmdEscapeMarkers(line string) string {
	if strings.Contains(line, "##[start-action") || strings.Contains(line, "##[end-action") {
		line = strings.ReplaceAll(line, "##[start-action", `##[\start-action`)
		line = strings.ReplaceAll(line, "##[end-action", `##[\end-action`)
	}
	return line
}

// wfCmdParse parses a line in either syntax, trying `::` first.
func wfCmdParse(line string, known func(string) bool) (*wfCmd, bool) {
	if c, ok := wfCmdParseV2(line, known); ok {
		return c, true
	}
	return wfCmdParseLegacy(line, known)
}

func wfCmdParseV2(line string, known func(string) bool) (*wfCmd, bool) {
	msg := strings.TrimLeftFunc(line, unicode.IsSpace)
	if !strings.HasPrefix(msg, "::") {
		return nil, false
	}
	end := strings.Index(msg[2:], "::")
	if end < 0 {
		return nil, false
	}
	info := msg[2 : 2+end]
	name, props, hasProps := strings.Cut(info, " ")
	if !known(name) {
		return nil, false
	}
	c := &wfCmd{Name: strings.ToLower(name), Props: map[string]string{}}
	if hasProps && name != "" {
		for _, kv := range strings.Split(strings.TrimSpace(props), ",") {
			k, v, _ := strings.Cut(kv, "=")
			if k != "" && v != "" {
				c.Props[strings.ToLower(k)] = wfCmdUnescape(v, wfCmdPropertyEscapes)
			}
		}
	}
	c.Data = wfCmdUnescape(msg[2+end+2:], wfCmdDataEscapes)
	return c, true
}

func wfCmdParseLegacy(line string, known func(string) bool) (*wfCmd, bool) {
	i := strings.Index(line, "##[")
	if i < 0 {
		return nil, false
	}
	rb := strings.IndexByte(line[i:], ']')
	if rb < 0 {
		return nil, false
	}
	info := line[i+3 : i+rb]
	name, props, hasProps := strings.Cut(info, " ")
	if !known(name) {
		return nil, false
	}
	c := &wfCmd{Name: strings.ToLower(name), Props: map[string]string{}}
	if hasProps && name != "" {
		for _, kv := range strings.Split(props, ";") {
			k, v, _ := strings.Cut(kv, "=")
			if k != "" && v != "" {
				c.Props[strings.ToLower(k)] = wfCmdUnescape(v, wfCmdLegacyEscapes)
			}
		}
	}
	c.Data = wfCmdUnescape(line[i+rb+1:], wfCmdLegacyEscapes)
	return c, true
}

// Escape tables in the runner's unescaping order: (escaped, plain).
var (
	wfCmdDataEscapes     = [][2]string{{"%0D", "\r"}, {"%0A", "\n"}, {"%25", "%"}}
	wfCmdPropertyEscapes = [][2]string{{"%0D", "\r"}, {"%0A", "\n"}, {"%3A", ":"}, {"%2C", ","}, {"%25", "%"}}
	wfCmdLegacyEscapes   = [][2]string{{"%3B", ";"}, {"%0D", "\r"}, {"%0A", "\n"}, {"%5D", "]"}, {"%25", "%"}}
)

func wfCmdUnescape(s string, table [][2]string) string {
	for _, e := range table {
		s = strings.ReplaceAll(s, e[0], e[1])
	}
	return s
}

// wfCmdEscapeData and wfCmdEscapeProperty are the inverse, as
// actions/toolkit's core.issueCommand writes commands.
func wfCmdEscapeData(s string) string {
	s = strings.ReplaceAll(s, "%", "%25")
	s = strings.ReplaceAll(s, "\r", "%0D")
	return strings.ReplaceAll(s, "\n", "%0A")
}

func wfCmdEscapeProperty(s string) string {
	s = wfCmdEscapeData(s)
	s = strings.ReplaceAll(s, ":", "%3A")
	return strings.ReplaceAll(s, ",", "%2C")
}

// wfCmdValidateLines applies the runner's corrections to an annotation's
// line and column properties.
func wfCmdValidateLines(c *wfCmd) {
	num := func(k string) (int, bool) {
		v, ok := c.Props[k]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		return int(n), err == nil
	}
	line, hasLine := num("line")
	endLine, hasEndLine := num("endline")
	col, hasCol := num("col")
	endCol, hasEndCol := num("endcolumn")
	hasColumn := hasCol || hasEndCol
	if hasEndLine && !hasLine {
		c.Props["line"] = c.Props["endline"]
		line, hasLine = endLine, true
	}
	if hasEndCol && !hasCol {
		c.Props["col"] = c.Props["endcolumn"]
		col, hasCol = endCol, true
	}
	if !hasLine && hasColumn {
		delete(c.Props, "col")
		delete(c.Props, "endcolumn")
	}
	if hasEndLine && c.Props["line"] != c.Props["endline"] && hasColumn {
		delete(c.Props, "col")
		delete(c.Props, "endcolumn")
	}
	if hasLine && hasEndLine && endLine < line {
		delete(c.Props, "line")
		delete(c.Props, "endline")
	}
	if hasCol && hasEndCol && endCol < col {
		delete(c.Props, "col")
		delete(c.Props, "endcolumn")
	}
}
