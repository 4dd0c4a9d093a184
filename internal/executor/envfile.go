package executor

// Environment files a step writes: $GITHUB_ENV, $GITHUB_OUTPUT, $GITHUB_STATE
// and $GITHUB_PATH ("Workflow commands for GitHub Actions", Environment
// files), parsed with the rules of the runner that reads them after each step
// (actions/runner src/Runner.Worker/FileCommandManager.cs, EnvFileKeyValuePairs
// and AddPathFileCommand), as on a Linux runner:
//
//   - The text is split at "\n" only. A "\r" before it stays in the line, so
//     `NAME=value\r\n` gives "value\r", and a closing delimiter line "EOF\r"
//     does not close "EOF" (the runner then reports the delimiter missing).
//     (A Windows runner also splits at "\r\n".)
//   - Empty lines are skipped; nothing is trimmed.
//   - A line whose first "=" comes before any "<<" is NAME=VALUE, split at
//     that first "=" (the value may hold more "=" and "<<").
//   - A line whose first "<<" comes before any "=" is NAME<<DELIMITER; both
//     must be non-empty. The value is the lines up to the first line equal to
//     DELIMITER, joined by their own line breaks, without the break before the
//     delimiter line. No closing line is an error, as is a last value line
//     with no line break after it.
//   - Any other non-empty line (no "=" nor "<<") is an error.
//   - Pairs are applied in order as they are read, so pairs before an error
//     take effect; the error fails the step ("Unable to process file command
//     'env' successfully.").
//
// One deviation: the runner means to refuse an empty name in NAME=VALUE but
// its check tests the whole line, so `=x` slips through; here it is refused.
//
// $GITHUB_PATH holds one directory per line (split at "\n", "\r\n" or "\r",
// like .NET's File.ReadAllLines), empty lines skipped. Each directory is moved
// to the end of the job's prepend list, and PATH is that list reversed, so a
// later line comes first in PATH.

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// envFileMaxSize caps what is read from one environment file.
const envFileMaxSize = 1 << 20

// envFileKV is one name/value pair from an environment file.
type envFileKV struct {
	Name, Value string
}

// envFileText turns file bytes into the text the runner sees: a UTF-8 BOM
// dropped, invalid UTF-8 replaced by U+FFFD.
func envFileText(data []byte) (string, error) {
	if len(data) > envFileMaxSize {
		return "", fmt.Errorf("file is %d bytes, more than the %d-byte limit", len(data), envFileMaxSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	s := string(data)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s, nil
}

// envFileParse parses a $GITHUB_ENV, $GITHUB_OUTPUT or $GITHUB_STATE file.
// On error it also returns the pairs read before the bad line, which the
// runner has already applied.
func envFileParse(data []byte) ([]envFileKV, error) {
	text, err := envFileText(data)
	if err != nil {
		return nil, err
	}
	var out []envFileKV
	lineNo := 0
	rest := text
	next := func() (line string, hasBreak, ok bool) {
		if rest == "" {
			return "", false, false
		}
		lineNo++
		i := strings.IndexByte(rest, '\n')
		if i < 0 {
			line, rest = rest, ""
			return line, false, true
		}
		line, rest = rest[:i], rest[i+1:]
		return line, true, true
	}
	for {
		line, _, ok := next()
		if !ok {
			return out, nil
		}
		if line == "" {
			continue
		}
		eq := strings.Index(line, "=")
		hd := strings.Index(line, "<<")
		switch {
		case eq >= 0 && (hd < 0 || eq < hd):
			name, value := line[:eq], line[eq+1:]
			if name == "" {
				return out, fmt.Errorf("line %d: Invalid format '%s'. Name must not be empty", lineNo, line)
			}
			out = append(out, envFileKV{name, value})
		case hd >= 0:
			name, delim := line[:hd], line[hd+2:]
			if name == "" || delim == "" {
				return out, fmt.Errorf("line %d: Invalid format '%s'. Name must not be empty and delimiter must not be empty", lineNo, line)
			}
			start := lineNo
			var value strings.Builder
			first := true
			for {
				l, brk, ok := next()
				if !ok {
					return out, fmt.Errorf("line %d: Invalid value. Matching delimiter not found '%s'", start, delim)
				}
				if l == delim {
					break
				}
				if !brk {
					return out, fmt.Errorf("line %d: Invalid value. EOF marker missing new line.", lineNo)
				}
				if !first {
					value.WriteByte('\n')
				}
				value.WriteString(l)
				first = false
			}
			out = append(out, envFileKV{name, value.String()})
		default:
			return out, fmt.Errorf("line %d: Invalid format '%s'", lineNo, line)
		}
	}
}

// envFileParsePath parses a $GITHUB_PATH file: its non-empty lines, in order.
func envFileParsePath(data []byte) ([]string, error) {
	text, err := envFileText(data)
	if err != nil {
		return nil, err
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

// envFileAddPath records directories from $GITHUB_PATH in the job's prepend
// list (oldest first), moving a directory already there to the end.
func envFileAddPath(prepend []string, dirs []string) []string {
	for _, d := range dirs {
		kept := prepend[:0:0]
		for _, p := range prepend {
			if p != d {
				kept = append(kept, p)
			}
		}
		prepend = append(kept, d)
	}
	return prepend
}

// envFilePATH is the PATH a step sees: the prepend list, newest first, before
// the base PATH.
func envFilePATH(prepend []string, base string) string {
	parts := make([]string, 0, len(prepend)+1)
	for i := len(prepend) - 1; i >= 0; i-- {
		parts = append(parts, prepend[i])
	}
	if base != "" {
		parts = append(parts, base)
	}
	return strings.Join(parts, ":")
}

// envFileRefused says why a name written to $GITHUB_ENV does not take effect,
// or "" if it does. NODE_OPTIONS (any case) is refused by the runner with an
// error annotation and the step goes on; GITHUB_* and RUNNER_* are the
// documented defaults that cannot be overwritten (the runner's own values
// win); CI can be overwritten.
func envFileRefused(name string) string {
	if strings.EqualFold(name, "NODE_OPTIONS") {
		return "Can't store NODE_OPTIONS output parameter using '$GITHUB_ENV' command."
	}
	if strings.HasPrefix(name, "GITHUB_") || strings.HasPrefix(name, "RUNNER_") {
		return fmt.Sprintf("Can't overwrite the default environment variable %s.", name)
	}
	return ""
}
