package executor

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// wfCmdShow renders a command compactly: name{k=v,...}"data"!err
func wfCmdShow(c *wfCmd) string {
	if c == nil {
		return "-"
	}
	var ks []string
	for k, v := range c.Props {
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	s := fmt.Sprintf("%s{%s}%q", c.Name, strings.Join(ks, ","), c.Data)
	if c.Err != "" {
		s += "!"
	}
	return s
}

func TestWfCmdProcess(t *testing.T) {
	type step struct {
		in   string
		show []string
		cmd  string
	}
	tests := []struct {
		name  string
		proc  wfCmdProcessor
		steps []step
	}{
		{"plain", wfCmdProcessor{}, []step{
			{"hello", []string{"hello"}, "-"},
			{"a::b::c", []string{"a::b::c"}, "-"},
			{"::unknown::x", []string{"::unknown::x"}, "-"},
			{"::error", []string{"::error"}, "-"},
			{"##[start-action foo]", []string{`##[\start-action foo]`}, "-"},
		}},
		{"annotations", wfCmdProcessor{}, []step{
			{"::error file=app.js,line=1,col=5,endColumn=7,title=T::Missing semicolon", []string{"##[error]Missing semicolon"}, `error{col=5,endcolumn=7,file=app.js,line=1,title=T}"Missing semicolon"`},
			{"  ::warning::a%0Ab%25c%0D", []string{"##[warning]a\nb%c\r"}, `warning{}"a\nb%c\r"`},
			{"::NOTICE Title=a%3Ab%2Cc%25::x", []string{"##[notice]x"}, `notice{title=a:b,c%}"x"`},
			{"::error file=a, line=3::m", []string{"##[error]m"}, `error{ line=3,file=a}"m"`},
			{"::warning title= ::0", []string{"##[warning]0"}, `warning{}"0"`}, // properties text is trimmed
			{"::error title=a b ,file=x ::m", []string{"##[error]m"}, `error{file=x,title=a b }"m"`},
			{"::error file=,line=1::m", []string{"##[error]m"}, `error{line=1}"m"`},
			{"::error file=a=b::m::n", []string{"##[error]m::n"}, `error{file=a=b}"m::n"`},
			// Line/column corrections.
			{"::error endLine=4::m", []string{"##[error]m"}, `error{endline=4,line=4}"m"`},
			{"::error col=4::m", []string{"##[error]m"}, `error{}"m"`},
			{"::error line=1,endLine=2,col=3::m", []string{"##[error]m"}, `error{endline=2,line=1}"m"`},
			{"::error line=5,endLine=2::m", []string{"##[error]m"}, `error{}"m"`},
			{"::error line=1,col=5,endColumn=2::m", []string{"##[error]m"}, `error{line=1}"m"`},
		}},
		{"groups, debug, mask", wfCmdProcessor{}, []step{
			{"::group::My title", []string{"##[group]My title"}, `group{}"My title"`},
			{"::endgroup::", []string{"##[endgroup]"}, `endgroup{}""`},
			{"::debug::hidden", nil, `debug{}"hidden"`},
			{"::add-mask::s3cret", nil, `add-mask{}"s3cret"`},
			{"::add-mask::  ", []string{"##[warning]Can't add secret mask for empty string in ##[add-mask] command."}, "-"},
		}},
		{"step debug and echo", wfCmdProcessor{StepDebug: true}, []step{
			{"::debug::seen", []string{"##[debug]seen"}, `debug{}"seen"`},
			{"::add-mask::s3cret", []string{"::add-mask::***"}, `add-mask{}"s3cret"`},
			{"::group::g", []string{"::group::g", "##[group]g"}, `group{}"g"`},
			{"::echo::off", []string{"::echo::off"}, `echo{}"off"`},
			{"::group::g", []string{"##[group]g"}, `group{}"g"`},
			{"::echo:: On ", nil, `echo{}" On "`},
			{"::echo::maybe", []string{"::echo::maybe", "##[error]Unable to process command '::echo::maybe' successfully.", "##[error]Invalid echo command value. Possible values can be: 'on', 'off'. Current value is: 'maybe'."}, `echo{}"maybe"!`},
		}},
		{"stop-commands", wfCmdProcessor{}, []step{
			{"::stop-commands::pause-123", []string{"::stop-commands::pause-123"}, `stop-commands{}"pause-123"`},
			{"::error::not processed", []string{"::error::not processed"}, "-"},
			{"::PAUSE-123::", []string{"::PAUSE-123::"}, "-"},
			{"::error::processed", []string{"##[error]processed"}, `error{}"processed"`},
			{"::pause-123::", []string{"::pause-123::"}, "-"},
			{"::stop-commands::", []string{"::stop-commands::", "##[error]" + wfCmdBadStopToken}, `stop-commands{}""!`},
			{"::stop-commands::error", []string{"::stop-commands::error", "##[error]" + wfCmdBadStopToken}, `stop-commands{}"error"!`},
			{"::error::still processed", []string{"##[error]still processed"}, `error{}"still processed"`},
		}},
		{"unsafe stop tokens allowed", wfCmdProcessor{AllowUnsecureStopTokens: true}, []step{
			{"::stop-commands::warning", []string{"::stop-commands::warning"}, `stop-commands{}"warning"`},
			{"::error::x", []string{"::error::x"}, "-"},
			{"::warning::", []string{"::warning::"}, "-"},
			{"::error::x", []string{"##[error]x"}, `error{}"x"`},
		}},
		{"deprecated commands", wfCmdProcessor{}, []step{
			{"::set-output name=a::1", []string{"##[warning]" + fmt.Sprintf(wfCmdDeprecated, "set-output")}, `set-output{name=a}"1"`},
			{"::save-state name=s::v", []string{"##[warning]" + fmt.Sprintf(wfCmdDeprecated, "save-state")}, `save-state{name=s}"v"`},
			{"::set-output::1", []string{"##[warning]" + fmt.Sprintf(wfCmdDeprecated, "set-output"), "##[error]Unable to process command '::set-output::1' successfully.", "##[error]Required field 'name' is missing in ##[set-output] command."}, `set-output{}"1"!`},
			{"::set-env name=A::1", []string{"##[error]Unable to process command '::set-env name=A::1' successfully.", "##[error]" + fmt.Sprintf(wfCmdDisabled, "set-env")}, `set-env{name=A}"1"!`},
			{"::add-path::/x", []string{"##[error]Unable to process command '::add-path::/x' successfully.", "##[error]" + fmt.Sprintf(wfCmdDisabled, "add-path")}, `add-path{}"/x"!`},
		}},
		{"unsecure commands allowed", wfCmdProcessor{AllowUnsecureCommands: true}, []step{
			{"::set-env name=A::1", nil, `set-env{name=A}"1"`},
			{"::set-env name=node_options::x", []string{"##[error]Can't update NODE_OPTIONS environment variable using ::set-env:: command."}, "-"},
			{"::add-path::/x", nil, `add-path{}"/x"`},
			{"::add-path::", []string{"##[error]Unable to process command '::add-path::' successfully.", "##[error]Parameter 'path' cannot be null or empty."}, `add-path{}""!`},
		}},
		{"legacy syntax", wfCmdProcessor{}, []step{
			{"##[group]Title", []string{"##[group]Title"}, `group{}"Title"`},
			{"text ##[warning file=a%3Bb;line=2]x%5Dy", []string{"##[warning]x]y"}, `warning{file=a;b,line=2}"x]y"`},
			{"##[section]x", []string{"##[section]x"}, "-"},
		}},
	}
	for _, tt := range tests {
		p := tt.proc
		for _, s := range tt.steps {
			show, cmd := p.Process(s.in)
			if fmt.Sprintf("%q", show) != fmt.Sprintf("%q", s.show) || wfCmdShow(cmd) != s.cmd {
				t.Errorf("%s: Process(%q) = %q, %s; want %q, %s", tt.name, s.in, show, wfCmdShow(cmd), s.show, s.cmd)
			}
		}
	}
}

func TestWfCmdLongMessage(t *testing.T) {
	var p wfCmdProcessor
	msg := strings.Repeat("é", 3000) // 6000 bytes
	_, cmd := p.Process("::error::" + msg)
	if cmd == nil || len(cmd.Data) > wfCmdMaxMessageLength || !strings.HasPrefix(msg, cmd.Data) || len(cmd.Data) < wfCmdMaxMessageLength-1 {
		t.Errorf("Process(long error) data length = %d, want at most %d on a rune boundary", len(cmd.Data), wfCmdMaxMessageLength)
	}
}

func FuzzWfCmd(f *testing.F) {
	f.Add("::error file=a,line=1::msg", "title:,%", "data\r\n%")
	f.Add("::stop-commands::tok", "", "")
	f.Add("##[warning a=b;c=d]x", "x", "y")
	f.Fuzz(func(t *testing.T, line, prop, data string) {
		var p wfCmdProcessor
		for _, l := range strings.Split(line, "\n") {
			show, cmd := p.Process(l)
			if cmd == nil && len(show) == 1 && show[0] != wfCmdEscapeMarkers(l) {
				t.Fatalf("Process(%q) shows %q for a plain line", l, show)
			}
		}
		// What toolkit writes, the runner reads back.
		var q wfCmdProcessor
		l := "::warning title=" + wfCmdEscapeProperty(prop) + "::" + wfCmdEscapeData(data)
		_, cmd := q.Process(l)
		if cmd == nil || cmd.Name != "warning" || cmd.Data != data && len(data) <= wfCmdMaxMessageLength {
			t.Fatalf("Process(%q) = %s, want warning with data %q", l, wfCmdShow(cmd), data)
		}
		// The runner trims the properties text, so trailing white space goes.
		if want := wfCmdUnescape(strings.TrimRightFunc(wfCmdEscapeProperty(prop), unicode.IsSpace), wfCmdPropertyEscapes); cmd.Props["title"] != want {
			t.Fatalf("Process(%q) title = %q, want %q", l, cmd.Props["title"], want)
		}
	})
}
