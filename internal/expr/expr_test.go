package expr

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

// testEnv is a small set of contexts modelled on the docs' examples.
func testEnv(t testing.TB) *Env {
	t.Helper()
	const ctx = `{
	  "github": {
	    "event_name": "push",
	    "ref": "refs/heads/main",
	    "sha": "abc123",
	    "event": {"issue": {"labels": [{"name": "bug"}, {"name": "help wanted"}]},
	              "commits": [{"modified": ["a.go", "b.go"]}, {"modified": ["c.go"]}]}
	  },
	  "env": {"continue": "true", "time": "3", "EMPTY": ""},
	  "matrix": {"os": "ubuntu-latest", "experimental": true, "node": 18},
	  "needs": {"build": {"result": "success", "outputs": {"matrix": "{\"include\":[{\"project\":\"foo\",\"config\":\"Debug\"}]}"}},
	            "test": {"result": "failure"}},
	  "steps": {"demo": {"conclusion": "failure", "outputs": {"n": "10"}}},
	  "fruits": [{"name": "apple", "quantity": 1}, {"name": "orange", "quantity": 2}, {"name": "pear", "quantity": 1}],
	  "vegetables": {
	    "scallions": {"colors": ["green", "white", "red"], "ediblePortions": ["roots", "stalks"]},
	    "beets": {"colors": ["purple", "red", "gold", "white", "pink"], "ediblePortions": ["roots", "stems", "leaves"]},
	    "artichokes": {"colors": ["green", "purple", "red", "black"], "ediblePortions": ["hearts", "stems", "leaves"]}
	  },
	  "secrets": {"TOKEN": "s3cret"},
	  "vars": {"N": 5, "list": ["a", "b", "c"], "obj": {"1": "one", "": "empty", "true": "yes"}}
	}`
	var m map[string]any
	if err := json.Unmarshal([]byte(ctx), &m); err != nil {
		t.Fatal(err)
	}
	// fruits and vegetables are not real contexts; expose them under vars so
	// the docs' object-filter examples can be written as vars.fruits.*.name.
	vars := m["vars"].(map[string]any)
	vars["fruits"], vars["vegetables"] = m["fruits"], m["vegetables"]
	return &Env{Contexts: m, JobStatus: "success"}
}

func mustEval(t *testing.T, env *Env, src string) any {
	t.Helper()
	ast, err := parse(src)
	if err != nil {
		t.Fatalf("parse(%q): %v", src, err)
	}
	v, err := ast.eval(env)
	if err != nil {
		t.Fatalf("eval(%q): %v", src, err)
	}
	return v
}

func same(a, b any) bool {
	fa, oka := a.(float64)
	fb, okb := b.(float64)
	if oka && okb && math.IsNaN(fa) && math.IsNaN(fb) {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func TestEval(t *testing.T) {
	env := testEnv(t)
	nan := math.NaN()
	for _, tc := range []struct {
		src  string
		want any
	}{
		// Literals ("Literals" section and its example).
		{"null", nil},
		{"true", true},
		{"false", false},
		{"711", 711.0},
		{"-9.2", -9.2},
		{"0xff", 255.0},
		{"-2.99e-2", -0.0299},
		{"'It''s open source!'", "It's open source!"},
		{"''", ""},
		{".5", 0.5},
		{"+5", 5.0},
		{"5.", 5.0},
		{"1E3", 1000.0},
		{"0o17", 15.0},
		{"0xffffffff", -1.0}, // Int32 two's complement, as GitHub parses hex
		{"0x7fffffff", 2147483647.0},
		{"NaN", nan},
		{"Infinity", math.Inf(1)},
		{"-Infinity", math.Inf(-1)},
		{"1e400", math.Inf(1)},
		{"'}}'", "}}"},

		// Property access, index, missing properties.
		{"github.sha", "abc123"},
		{"github['sha']", "abc123"},
		{"GITHUB.SHA", "abc123"},
		{"github.Event_Name", "push"},
		{"github.nope", nil},
		{"github.nope.deeper.still", nil},
		{"github.sha.length", nil},
		{"github.sha[0]", nil},
		{"secrets.TOKEN", "s3cret"},
		{"secrets.token", "s3cret"},
		{"vars.list[0]", "a"},
		{"vars.list[1.7]", "b"},
		{"vars.list['2']", "c"},
		{"vars.list[-1]", nil},
		{"vars.list[3]", nil},
		{"vars.list[null]", "a"},
		{"vars.list[true]", "b"},
		{"vars.list['x']", nil},
		{"vars.obj[1]", "one"},
		{"vars.obj[true]", "yes"},
		{"vars.obj[null]", "empty"},
		{"vars.obj[vars.list]", nil},
		{"(vars.list)[0]", "a"},
		{"fromJSON('[10,20]')[1]", 20.0},
		{"vars.N", 5.0},
		{"inputs", nil},
		{"inputs.x", nil},
		{"steps.demo.outputs.n", "10"},
		{"steps . demo . conclusion", "failure"},

		// Object filters ("Object filters").
		{"vars.fruits.*.name", []any{"apple", "orange", "pear"}},
		{"vars.fruits[*].name", []any{"apple", "orange", "pear"}},
		{"vars.vegetables.*.ediblePortions", []any{ // sorted by key: artichokes, beets, scallions
			[]any{"hearts", "stems", "leaves"},
			[]any{"roots", "stems", "leaves"},
			[]any{"roots", "stalks"},
		}},
		{"vars.vegetables.*.ediblePortions.*", []any{"hearts", "stems", "leaves", "roots", "stems", "leaves", "roots", "stalks"}},
		{"vars.vegetables.*.colors[0]", []any{"green", "purple", "green"}},
		{"github.event.issue.labels.*.name", []any{"bug", "help wanted"}},
		{"github.event.commits.*.modified.*", []any{"a.go", "b.go", "c.go"}},
		{"needs.*.result", []any{"success", "failure"}},
		{"vars.fruits.*.nope", []any{}},
		{"github.sha.*", []any{}},
		{"github.nope.*.x", []any{}},
		{"vars.fruits.*.quantity", []any{1.0, 2.0, 1.0}},

		// Operators.
		{"!true", false},
		{"!0", true},
		{"!''", true},
		{"!'a'", false},
		{"!null", true},
		{"!NaN", true},
		{"!vars.list", false},
		{"!!github.sha", true},
		{"1 < 2", true},
		{"2 <= 2", true},
		{"3 > 2", true},
		{"2 >= 3", false},
		{"1 == 1", true},
		{"1 != 1", false},
		{"!1 == false", true}, // ! binds tighter than ==
		{"1 < 2 == true", true},
		{"1 == 1 && 2 == 3 || true", true},
		{"true || false && false", true},
		{"(true || false) && false", false},
		{"1 < 2 < 3", true}, // (1<2)<3 -> true<3 -> 1<3
		{"3 > 2 > 1", false},

		// && and || return operands, not booleans.
		{"'a' && 'b'", "b"},
		{"'' && 'b'", ""},
		{"0 && 'b'", 0.0},
		{"null || 'default'", "default"},
		{"'x' || 'default'", "x"},
		{"env.EMPTY || 'fallback'", "fallback"},
		{"false || 0", 0.0},
		{"github.nope || github.sha", "abc123"},
		{"1 && 2 && 3", 3.0},

		// Loose equality: the docs' coercion table.
		{"null == 0", true},
		{"null == false", true},
		{"null == ''", true},
		{"null == null", true},
		{"true == 1", true},
		{"false == 0", true},
		{"true == 2", false},
		{"true == '1'", true},
		{"'' == 0", true},
		{"' 12 ' == 12", true},
		{"'0x10' == 16", true},
		{"'1e2' == 100", true},
		{"'abc' == 0", false},
		{"'abc' != 0", true},
		{"'abc' == NaN", false},
		{"NaN == NaN", false},
		{"NaN != NaN", true},
		{"'abc' == 'ABC'", true},
		{"'push' == github.event_name", true},
		{"'true' == true", false}, // 'true' -> NaN
		{"vars.list == vars.list", true},
		{"vars.list == fromJSON('[\"a\",\"b\",\"c\"]')", false},
		{"github.event == github.event", true},
		{"github.event == github", false},
		{"fromJSON('{}') == fromJSON('{}')", false},
		{"vars.list == 'a'", false},
		{"vars.list == 0", false},
		{"null == vars.list", false},
		{"vars.list != 0", true},
		{"needs.*.result == needs.*.result", false},
		{"matrix.node == '18'", true},
		{"matrix.experimental == 'true'", false},
		{"matrix.experimental == 1", true},

		// Relational comparisons: NaN is never ordered; strings ignore case.
		{"'a' < 'B'", true},
		{"'B' > 'a'", true},
		{"'abc' <= 'ABC'", true},
		{"'10' < 9", false},
		{"'10' > 9", true},
		{"steps.demo.outputs.n > 9", true},
		{"'abc' < 1", false},
		{"'abc' > 1", false},
		{"'abc' >= 1", false},
		{"NaN < 1", false},
		{"NaN >= NaN", false},
		{"null < 1", true},
		{"null >= null", true},
		{"true > false", true},
		{"false < true", true},
		{"vars.list < 1", false},
		{"vars.list >= vars.list", true}, // >= is == || >
		{"Infinity > 1e308", true},

		// contains
		{"contains('Hello world', 'llo')", true},
		{"contains('Hello world', 'LLO')", true},
		{"contains('Hello world', 'xyz')", false},
		{"contains(github.event.issue.labels.*.name, 'bug')", true},
		{"contains(github.event.issue.labels.*.name, 'BUG')", true},
		{"contains(github.event.issue.labels.*.name, 'feature')", false},
		{"contains(fromJSON('[\"push\", \"pull_request\"]'), github.event_name)", true},
		{"contains(fromJSON('[1, 2]'), '2')", true},
		{"contains(fromJSON('[]'), null)", false},
		{"contains(123, 2)", true},
		{"contains(true, 'ru')", true},
		{"contains(null, '')", true},
		{"contains('abc', vars.list)", false},
		{"contains(vars.obj, 'one')", false},
		{"contains(vars.list, vars.list)", false},

		// startsWith / endsWith
		{"startsWith('Hello world', 'He')", true},
		{"startsWith('Hello world', 'he')", true},
		{"startsWith('Hello world', 'world')", false},
		{"endsWith('Hello world', 'ld')", true},
		{"endsWith('Hello world', 'LD')", true},
		{"endsWith('Hello world', 'He')", false},
		{"startsWith(github.ref, 'refs/heads/')", true},
		{"startsWith(12345, 12)", true},
		{"startsWith(vars.list, 'a')", false},
		{"endsWith('a', vars.list)", false},

		// format
		{"format('Hello {0} {1} {2}', 'Mona', 'the', 'Octocat')", "Hello Mona the Octocat"},
		{"format('{{Hello {0} {1} {2}!}}', 'Mona', 'the', 'Octocat')", "{Hello Mona the Octocat!}"},
		{"format('{0}{0}{1}', 'a', 'b')", "aab"},
		{"format('no args')", "no args"},
		{"format('{{}}')", "{}"},
		{"format('{{0}}', 'x')", "{0}"},
		{"format('{00}', 'x')", "x"},
		{"format('{0} {1} {2} {3}', null, true, 1.5, vars.list)", ` true 1.5 Array`},
		{"format('{0}', 'a', fromJSON('not json'))", "a"}, // unreferenced args are not evaluated
		{"FORMAT('{0}', 1)", "1"},

		// join
		{"join(github.event.issue.labels.*.name, ', ')", "bug, help wanted"},
		{"join(vars.list)", "a,b,c"},
		{"join(vars.list, '')", "abc"},
		{"join(vars.list, null)", "abc"},
		{"join(vars.list, vars.list)", "a,b,c"}, // non-primitive separator: default
		{"join('abc')", "abc"},
		{"join('abc', '-')", "abc"},
		{"join(1)", "1"},
		{"join(null)", ""},
		{"join(fromJSON('[]'))", ""},
		{"join(fromJSON('[\"only\"]'), fromJSON('bad'))", "only"}, // separator unused
		{"join(fromJSON('[1, true, null, 2.5]'))", "1,true,,2.5"},
		{"join(vars.obj)", ""},

		// toJSON
		{"toJSON('abc')", `"abc"`},
		{"toJSON(null)", "null"},
		{"toJSON(true)", "true"},
		{"toJSON(1.5)", "1.5"},
		{"toJSON(fromJSON('[]'))", "[]"},
		{"toJSON(fromJSON('{}'))", "{}"},
		{"toJSON(fromJSON('{\"status\":\"success\"}'))", "{\n  \"status\": \"success\"\n}"},
		{"toJSON(vars.list)", "[\n  \"a\",\n  \"b\",\n  \"c\"\n]"},
		{"toJSON(fromJSON('{\"b\":[1,{\"c\":null}],\"a\":{},\"d\":[]}'))",
			"{\n  \"a\": {},\n  \"b\": [\n    1,\n    {\n      \"c\": null\n    }\n  ],\n  \"d\": []\n}"},
		{"toJSON('a\"b\\\nc<>&\u2028')", "\"a\\\"b\\\\\\nc<>&\\u2028\""},
		{"toJSON(needs.*.result)", "[\n  \"success\",\n  \"failure\"\n]"},
		{"toJson(1e15)", "1E+15"},

		// fromJSON ("Example returning a JSON data type" and friends)
		{"fromJSON(env.continue)", true},
		{"fromJSON(env.time)", 3.0},
		{"fromJSON('null')", nil},
		{"fromJSON('\"s\"')", "s"},
		{"fromJSON('[1,\"a\"]')", []any{1.0, "a"}},
		{"fromJSON(needs.build.outputs.matrix)", map[string]any{"include": []any{map[string]any{"project": "foo", "config": "Debug"}}}},
		{"fromJSON(needs.build.outputs.matrix).include[0].project", "foo"},
		{"fromJSON(needs.build.outputs.matrix).include.*.config", []any{"Debug"}},
		{"fromJSON(steps.demo.outputs.n) > 9", true},
		{"fromjson(' 7 ')", 7.0},

		// case
		{"case(github.ref == 'refs/heads/main', 'production', 'development')", "production"},
		{"case(github.ref == 'refs/heads/x', 'production', 'development')", "development"},
		{"case(false, 'a', github.ref == 'refs/heads/main', 'b', 'c')", "b"},
		{"case(false, 'a', false, 'b', 'c')", "c"},
		{"case(true, vars.list, 'c')", []any{"a", "b", "c"}},
		{"case(true, 'a', fromJSON('bad'))", "a"}, // later arguments not evaluated

		// Status functions with JobStatus "success".
		{"success()", true},
		{"failure()", false},
		{"cancelled()", false},
		{"always()", true},
		{"Success()", true},
		{"failure() && steps.demo.conclusion == 'failure'", false},
		{"!cancelled()", true},

		// Whitespace
		{"  contains ( 'abc' , 'b' )  ", true},
		{"\tgithub\n.sha", "abc123"},
	} {
		ast, err := parse(tc.src)
		if err != nil {
			t.Errorf("parse(%q): %v", tc.src, err)
			continue
		}
		got, err := ast.eval(env)
		if err != nil {
			t.Errorf("eval(%q): %v", tc.src, err)
			continue
		}
		if !same(got, tc.want) {
			t.Errorf("eval(%q) = %#v, want %#v", tc.src, got, tc.want)
		}
	}
}

func TestStatusFunctions(t *testing.T) {
	for _, tc := range []struct {
		status                              string
		success, failure, cancelled, always bool
	}{
		{"", true, false, false, true},
		{"success", true, false, false, true},
		{"failure", false, true, false, true},
		{"cancelled", false, false, true, true},
	} {
		env := &Env{JobStatus: tc.status}
		for src, want := range map[string]bool{"success()": tc.success, "failure()": tc.failure, "cancelled()": tc.cancelled, "always()": tc.always} {
			if got := mustEval(t, env, src); got != want {
				t.Errorf("status %q: eval(%q) = %#v, want %#v", tc.status, src, got, want)
			}
		}
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, ""},
		{true, "true"},
		{false, "false"},
		{"s", "s"},
		{0.0, "0"},
		{math.Copysign(0, -1), "0"},
		{1.0, "1"},
		{-1.0, "-1"},
		{2.5, "2.5"},
		{100.0, "100"},
		{711.0, "711"},
		{-9.2, "-9.2"},
		{-0.0299, "-0.0299"},
		{0.1 + 0.2, "0.3"},
		{1.0 / 3, "0.333333333333333"},
		{2.0 / 3, "0.666666666666667"},
		{123456789012345.0, "123456789012345"},
		{999999999999999.0, "999999999999999"},
		{1e15, "1E+15"},
		{1234567890123456.0, "1.23456789012346E+15"},
		{1.5e300, "1.5E+300"},
		{0.0001, "0.0001"},
		{0.00012345, "0.00012345"},
		{0.00001, "1E-05"},
		{-1.5e-7, "-1.5E-07"},
		{5e-324, "4.94065645841247E-324"},
		{math.MaxFloat64, "1.79769313486232E+308"},
		{math.NaN(), "NaN"},
		{math.Inf(1), "Infinity"},
		{math.Inf(-1), "-Infinity"},
		{3, "3"},          // Go ints are accepted
		{int64(-7), "-7"}, //
		{float32(0.5), "0.5"},
		{json.Number("12"), "12"},
		{[]any{"a", 1.0, nil}, "Array"},
		{map[string]any{"b": 1.0, "a": []any{}}, "Object"},
		{[]string{"x", "y"}, "Array"},
		{map[string]string{"k": "v"}, "Object"},
		{map[string][]int{"n": {1, 2}}, "Object"},
		{[]map[string]any{{"a": uint8(1)}}, "Array"},
		{testNamed("named"), "named"},
		{(*int)(nil), ""},
		{[2]bool{true, false}, "Array"},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

type testNamed string

func TestTruthy(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want bool
	}{
		{nil, false}, {false, false}, {0.0, false}, {math.Copysign(0, -1), false},
		{math.NaN(), false}, {"", false}, {true, true}, {1.0, true}, {-1.0, true},
		{"false", true}, {"0", true}, {" ", true}, {[]any{}, true}, {map[string]any{}, true},
		{0, false}, {2, true},
	} {
		if got := Truthy(tc.in); got != tc.want {
			t.Errorf("Truthy(%#v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		src    string
		offset int
		msg    string
	}{
		{"", 0, "expected an expression"},
		{"   ", 0, "expected an expression"},
		{`"push"`, 0, `unexpected token '"push"'`},
		{`github.event_name == "push"`, 21, `unexpected token '"push"'`},
		{"1 ==", 4, "unexpected end of expression"},
		{"(github.sha", 11, "unexpected end of expression"},
		{"github.sha)", 10, "unexpected token ')'"},
		{"contains('a', 'b'))", 18, "unexpected token ')'"},
		{"github.", 7, "unexpected end of expression"},
		{"github.0", 7, "unexpected token '0'"},
		{"github.'sha'", 7, "unexpected token ''sha''"},
		{"'abc", 0, "unexpected token ''abc'"},
		{"a b", 0, "unrecognized named-value 'a'"},
		{"github sha", 7, "unexpected token 'sha'"},
		{"foo()", 0, "unrecognized function 'foo'"},
		{"foo", 0, "unrecognized named-value 'foo'"},
		{"TRUE", 0, "unrecognized named-value 'TRUE'"}, // literals are case-sensitive
		{"-0xff", 0, "unexpected token '-0xff'"},
		{"0XFF", 0, "unexpected token '0XFF'"},
		{"1.2.3", 0, "unexpected token '1.2.3'"},
		{"1abc", 0, "unexpected token '1abc'"},
		{"-", 0, "unexpected token '-'"},
		{"github[", 7, "unexpected end of expression"},
		{"github[0", 8, "unexpected end of expression"},
		{"github[]", 7, "unexpected token ']'"},
		{"github.*name", 8, "unexpected token 'name'"},
		{"*", 0, "unexpected token '*'"},
		{"github == *", 10, "unexpected token '*'"},
		{"'a'.length", 3, "unexpected token '.'"},
		{"'a'[0]", 3, "unexpected token '['"},
		{"true.x", 4, "unexpected token '.'"},
		{"1 = 2", 2, "unexpected token '='"},
		{"1 & 2", 2, "unexpected token '&'"},
		{"1 | 2", 2, "unexpected token '|'"},
		{"1 ? 2 : 3", 2, "unexpected token '?'"},
		{"()", 1, "unexpected token ')'"},
		{"contains('a')", 0, "too few arguments to 'contains' (want at least 2, got 1)"},
		{"contains('a', 'b', 'c')", 0, "too many arguments to 'contains' (want at most 2, got 3)"},
		{"format()", 0, "too few arguments to 'format' (want at least 1, got 0)"},
		{"success(1)", 0, "too many arguments to 'success' (want at most 0, got 1)"},
		{"toJSON()", 0, "too few arguments to 'toJSON' (want at least 1, got 0)"},
		{"hashFiles()", 0, "too few arguments to 'hashFiles' (want at least 1, got 0)"},
		{"case(true, 1)", 0, "too few arguments to 'case' (want at least 3, got 2)"},
		{"case(true, 1, false, 2)", 0, "'case' requires an odd number of arguments"},
		{"contains('a',)", 13, "unexpected token ')'"},
		{"contains(,'a')", 9, "unexpected token ','"},
		{"github.sha(1)", 10, "unexpected token '('"},
		{"(1, 2)", 2, "unexpected token ','"},
		{strings.Repeat("!", 60) + "true", 0, "exceeded max expression depth 50"},
		{strings.Repeat("(", 200) + "true" + strings.Repeat(")", 200), 100, "exceeded max expression depth 50"},
		{"github" + strings.Repeat(".a", 60), 0, "exceeded max expression depth 50"},
	} {
		_, err := parse(tc.src)
		var ee *posError
		if !errors.As(err, &ee) {
			t.Errorf("parse(%q) = %v, want a *posError", tc.src, err)
			continue
		}
		if ee.Offset != tc.offset || ee.Msg != tc.msg {
			t.Errorf("parse(%q) error = offset %d %q, want offset %d %q", tc.src, ee.Offset, ee.Msg, tc.offset, tc.msg)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	_, err := parse("contains(a, b)")
	if err == nil || err.Error() != "unrecognized named-value 'a' at column 10 in expression `contains(a, b)`" {
		t.Errorf("parse error = %v", err)
	}
	_, err = parse("github.sha == 'x')")
	if err == nil || err.Error() != "unexpected token ')' at column 18 in expression `github.sha == 'x')`" {
		t.Errorf("parse error = %v", err)
	}
	// Long expressions are rejected before lexing.
	_, err = parse("'" + strings.Repeat("a", maxLength) + "'")
	if err == nil || !strings.Contains(err.Error(), "exceeded max expression length 21000") {
		t.Errorf("parse(long) error = %v", err)
	}
}

func TestEvalErrors(t *testing.T) {
	env := testEnv(t)
	for _, tc := range []struct {
		src, msg string
	}{
		{"format('{0', 'a')", "the format string is invalid: {0"},
		{"format('{0}}', 'a')", "the format string is invalid: {0}}"},
		{"format('}', 'a')", "the format string is invalid: }"},
		{"format('{', 'a')", "the format string is invalid: {"},
		{"format('{}', 'a')", "the format string is invalid: {}"},
		{"format('{a}', 'a')", "the format string is invalid: {a}"},
		{"format('{256}', 'a')", "the format string is invalid: {256}"},
		{"format('{1}', 'a')", "the format string references more arguments than were supplied: {1}"},
		{"format('{0}')", "the format string references more arguments than were supplied: {0}"},
		{"format('{0:x}', 1)", "the format specifiers 'x' are not valid"},
		{"fromJSON('')", "error parsing fromJSON: unexpected end of JSON input"},
		{"fromJSON('{')", "error parsing fromJSON: unexpected end of JSON input"},
		{"fromJSON('[1] x')", "error parsing fromJSON: invalid character 'x' after top-level value"},
		{"fromJSON(github.event.nope)", "error parsing fromJSON: unexpected end of JSON input"},
		{"case(1, 'a', 'b')", "case predicate must evaluate to a boolean value"},
		{"case('true', 'a', 'b')", "case predicate must evaluate to a boolean value"},
		{"hashFiles('**/go.sum')", "hashFiles is not available here"},
	} {
		ast, err := parse(tc.src)
		if err != nil {
			t.Errorf("parse(%q): %v", tc.src, err)
			continue
		}
		_, err = ast.eval(env)
		var ee *posError
		if !errors.As(err, &ee) || ee.Msg != tc.msg || ee.Expr != tc.src {
			t.Errorf("eval(%q) error = %v, want %q", tc.src, err, tc.msg)
		}
	}
}

func TestHashFiles(t *testing.T) {
	var got []string
	env := &Env{HashFiles: func(p []string) (string, error) {
		got = p
		if p[0] == "fail" {
			return "", errors.New("boom")
		}
		return "deadbeef", nil
	}}
	v := mustEval(t, env, "hashFiles('**/package-lock.json', '**/Gemfile.lock', 1)")
	if v != "deadbeef" || !reflect.DeepEqual(got, []string{"**/package-lock.json", "**/Gemfile.lock", "1"}) {
		t.Errorf("hashFiles = %#v with %#v", v, got)
	}
	ast, _ := parse("format('k-{0}', hashFiles('fail'))")
	if _, err := ast.eval(env); err == nil || !strings.Contains(err.Error(), "hashFiles: boom") {
		t.Errorf("hashFiles error = %v", err)
	}
}

func TestInterpolate(t *testing.T) {
	env := testEnv(t)
	for _, tc := range []struct {
		in, want string
	}{
		{"plain text", "plain text"},
		{"", ""},
		{"${{ github.sha }}", "abc123"},
		{"sha=${{ github.sha }}!", "sha=abc123!"},
		{"${{github.sha}}${{ matrix.os }}", "abc123ubuntu-latest"},
		{"${{ '}}' }}", "}}"},
		{"${{ 'a}}b' }} c", "a}}b c"},
		{"${{ 'It''s }}' }}", "It's }}"},
		{"${{ 'a' }}}", "a}"},
		{"{${{ 'a' }}}", "{a}"},
		{"$${{ 'a' }}", "$a"},
		{"${{ null }}|${{ true }}|${{ 1.50 }}|${{ 1e20 }}", "|true|1.5|1E+20"},
		{"${{ github.nope }}", ""},
		{"${{ vars.list }}", "Array"}, // as GitHub prints it; toJSON prints the value
		{"${{ toJSON(vars.list) }}", "[\n  \"a\",\n  \"b\",\n  \"c\"\n]"},
		{"${{ toJSON(matrix.node) }}", "18"},
		{"echo \"${{ format('{0}', 'x') }}\"", `echo "x"`},
		{"Matrix - Project ${{ fromJSON(needs.build.outputs.matrix).include[0].project }}, Config ${{ fromJSON(needs.build.outputs.matrix).include[0].config }}",
			"Matrix - Project foo, Config Debug"},
		{"a ${ { b }} c", "a ${ { b }} c"},
		{"${ {x}}", "${ {x}}"},
		{"multi\nline ${{ matrix.os }}\n", "multi\nline ubuntu-latest\n"},
	} {
		got, err := Interpolate(tc.in, env)
		if err != nil {
			t.Errorf("Interpolate(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Interpolate(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in, msg string
	}{
		{"${{ github.sha", "the expression is not closed: '${{' without a matching '}}'"},
		{"ok ${{ 'a' }} ${{ '}}' ", "the expression is not closed: '${{' without a matching '}}'"},
		{"${{ }}", "expected an expression"},
		{"${{}}", "expected an expression"},
		{"${{ github.sha ) }}", "unexpected token ')'"},
		{"${{ fromJSON('x') }}", "error parsing fromJSON: invalid character 'x' looking for beginning of value"},
	} {
		_, err := Interpolate(tc.in, env)
		var ee *posError
		if !errors.As(err, &ee) || ee.Msg != tc.msg {
			t.Errorf("Interpolate(%q) error = %v, want %q", tc.in, err, tc.msg)
		}
	}
}

func TestEvalValue(t *testing.T) {
	env := testEnv(t)
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"${{ matrix.experimental }}", true},
		{"${{ fromJSON(env.time) }}", 3.0},
		{"${{ null }}", nil},
		{"${{ fromJSON(needs.build.outputs.matrix) }}", map[string]any{"include": []any{map[string]any{"project": "foo", "config": "Debug"}}}},
		{"${{ needs.*.result }}", []any{"success", "failure"}},
		{"${{ matrix.experimental }} ", "true "},
		{" ${{ matrix.experimental }}", " true"},
		{"${{ matrix.node }}${{ matrix.node }}", "1818"},
		{"just text", "just text"},
		{"", ""},
	} {
		got, err := EvalValue(tc.in, env)
		if err != nil {
			t.Errorf("EvalValue(%q): %v", tc.in, err)
			continue
		}
		if !same(got, tc.want) {
			t.Errorf("EvalValue(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestCondition(t *testing.T) {
	env := testEnv(t)
	for _, tc := range []struct {
		cond   string
		status string
		want   bool
	}{
		{"", "success", true},
		{"   ", "failure", false},
		{"", "cancelled", false},
		{"github.ref == 'refs/heads/main'", "success", true},
		{"${{ github.ref == 'refs/heads/main' }}", "success", true},
		{"  ${{ github.ref == 'refs/heads/main' }}  ", "success", true},
		{"github.ref == 'refs/heads/other'", "success", false},
		{"github.ref == 'refs/heads/main'", "failure", false}, // implicit success() &&
		{"github.ref == 'refs/heads/main'", "cancelled", false},
		{"failure()", "failure", true},
		{"failure()", "success", false},
		{"failure() && steps.demo.conclusion == 'failure'", "failure", true},
		{"always()", "cancelled", true},
		{"${{ always() }}", "failure", true},
		{"!cancelled()", "failure", true},
		{"!cancelled()", "cancelled", false},
		{"cancelled()", "cancelled", true},
		{"success() || failure()", "failure", true},
		{"github.sha", "success", true},    // truthy string
		{"github.nope", "success", false},  // null
		{"0", "success", false},            //
		{"'false'", "success", true},       // a non-empty string is true
		{"${{ false }}", "success", false}, //
		{"fromJSON('false')", "success", false},
		// Mixed text is a string, so always true (GitHub's well-known trap),
		// but the implicit success() still applies.
		{"${{ false }} && ${{ false }}", "success", true},
		{"${{ github.event_name }} == 'nope'", "success", true},
		{"${{ github.event_name }} == 'nope'", "failure", false},
		{"${{ failure() }} x", "failure", true},
		{"${{ github.nope }}${{ github.nope }}", "success", false}, // empty string
		// When the implicit success() fails, the expression is not evaluated.
		{"fromJSON('bad')", "failure", false},
	} {
		e := *env
		e.JobStatus = tc.status
		got, err := Condition(tc.cond, &e)
		if err != nil {
			t.Errorf("Condition(%q, %s): %v", tc.cond, tc.status, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Condition(%q, %s) = %v, want %v", tc.cond, tc.status, got, tc.want)
		}
	}
	for _, cond := range []string{"github.sha ==", "fromJSON('bad')", "${{ github.sha", "${{ x }}", "${{ 'a' }} ${{ y }}"} {
		if _, err := Condition(cond, env); err == nil {
			t.Errorf("Condition(%q): no error", cond)
		}
	}
}

func TestRefs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		cond    bool
		want    RefInfo
		wantErr bool
	}{
		{"echo hi", false, RefInfo{Contexts: []string{}, Funcs: []string{}, Secrets: []string{}}, false},
		{"matrix.os == 'x'", false, RefInfo{Contexts: []string{}, Funcs: []string{}, Secrets: []string{}}, false},
		{"matrix.os == 'x'", true, RefInfo{Contexts: []string{"matrix"}, Funcs: []string{}, Secrets: []string{}}, false},
		{"${{ Matrix.os }} ${{ github.sha }} ${{ secrets.Token }}", false,
			RefInfo{Contexts: []string{"github", "matrix", "secrets"}, Funcs: []string{}, Secrets: []string{"TOKEN"}}, false},
		{"${{ secrets['NPM_TOKEN'] }} ${{ secrets.npm_token }} ${{ secrets.B.x }}", false,
			RefInfo{Contexts: []string{"secrets"}, Funcs: []string{}, Secrets: []string{"B", "NPM_TOKEN"}}, false},
		{"${{ secrets[matrix.key] }}", false,
			RefInfo{Contexts: []string{"matrix", "secrets"}, Funcs: []string{}, Secrets: []string{}, DynamicSecrets: true}, false},
		{"${{ toJSON(secrets) }}", false,
			RefInfo{Contexts: []string{"secrets"}, Funcs: []string{}, Secrets: []string{}, DynamicSecrets: true}, false},
		{"${{ secrets.*.x }}", false,
			RefInfo{Contexts: []string{"secrets"}, Funcs: []string{}, Secrets: []string{}, DynamicSecrets: true}, false},
		{"${{ format('{0}', secrets.A) }}-${{ secrets[format('B{0}', 1)] }}", false,
			RefInfo{Contexts: []string{"secrets"}, Funcs: []string{}, Secrets: []string{"A"}, DynamicSecrets: true}, false},
		{"always() && hashFiles('x') != '' && contains(needs.*.result, 'failure')", true,
			RefInfo{Contexts: []string{"needs"}, Funcs: []string{"always", "hashFiles"}, Secrets: []string{}}, false},
		{"${{ 'secrets.X' }}", false, RefInfo{Contexts: []string{}, Funcs: []string{}, Secrets: []string{}}, false},
		{"${{ github.sha", false, RefInfo{}, true},
		{"${{ nope.x }}", false, RefInfo{}, true},
	} {
		got, err := Refs(tc.in, tc.cond)
		if (err != nil) != tc.wantErr {
			t.Errorf("Refs(%q, %v) error = %v, wantErr %v", tc.in, tc.cond, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Refs(%q, %v) = %#v, want %#v", tc.in, tc.cond, got, tc.want)
		}
	}
}

func TestAllowedContexts(t *testing.T) {
	ctxs, funcs, ok := allowedContexts("jobs.<job_id>.if")
	if !ok || !reflect.DeepEqual(ctxs, []string{"github", "needs", "vars", "inputs"}) ||
		!reflect.DeepEqual(funcs, []string{"always", "cancelled", "success", "failure"}) {
		t.Errorf("allowedContexts(jobs.<job_id>.if) = %v, %v, %v", ctxs, funcs, ok)
	}
	ctxs, funcs, ok = allowedContexts("run-name")
	if !ok || !reflect.DeepEqual(ctxs, []string{"github", "inputs", "vars"}) || funcs != nil {
		t.Errorf("allowedContexts(run-name) = %v, %v, %v", ctxs, funcs, ok)
	}
	if _, _, ok := allowedContexts("jobs.build.if"); ok {
		t.Errorf("allowedContexts accepted a concrete job id")
	}
	// Every row names only known contexts and special functions.
	for key := range availability {
		ctxs, funcs, _ := allowedContexts(key)
		for _, c := range ctxs {
			if !knownContexts[c] {
				t.Errorf("%s: unknown context %q", key, c)
			}
		}
		for _, f := range funcs {
			if info, ok := builtinFuncs[strings.ToLower(f)]; !ok || info.name != f {
				t.Errorf("%s: unknown function %q", key, f)
			}
		}
	}

	for _, tc := range []struct {
		s, key, err string
	}{
		{"${{ matrix.os }}", "jobs.<job_id>.runs-on", ""},
		{"${{ matrix.os }}", "run-name", "context 'matrix' is not available in run-name at column 1 in expression `matrix.os`"},
		{"matrix.os == 'x'", "jobs.<job_id>.if", "context 'matrix' is not available in jobs.<job_id>.if at column 1 in expression `matrix.os == 'x'`"},
		{"failure() && needs.a.result == 'x'", "jobs.<job_id>.if", ""},
		{"${{ success() }}", "jobs.<job_id>.steps.run", "function 'success' is not available in jobs.<job_id>.steps.run at column 1 in expression `success()`"},
		{"${{ hashFiles('go.sum') }}", "jobs.<job_id>.steps.with", ""},
		{"x-${{ hashFiles('go.sum') }}", "jobs.<job_id>.env", "function 'hashFiles' is not available in jobs.<job_id>.env at column 1 in expression `hashFiles('go.sum')`"},
		{"secrets.X != ''", "jobs.<job_id>.steps.if", "context 'secrets' is not available in jobs.<job_id>.steps.if at column 1 in expression `secrets.X != ''`"},
		{"${{ secrets.X }}", "jobs.<job_id>.steps.env", ""},
		{"${{ format('{0}', 1) }}", "run-name", ""},
		{"${{ 1 + }}", "run-name", "unexpected token '+' at column 3 in expression `1 +`"},
		{"x", "no-such-key", `no context availability is defined for "no-such-key"`},
	} {
		err := Check(tc.s, tc.key)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.err {
			t.Errorf("Check(%q, %q) = %q, want %q", tc.s, tc.key, got, tc.err)
		}
	}
}

func TestLimits(t *testing.T) {
	big := strings.Repeat("x", 600<<10)
	env := &Env{Contexts: map[string]any{"env": map[string]any{"BIG": big}, "vars": map[string]any{"list": []any{big, big}}}}
	for _, src := range []string{
		"format('{0}{0}', env.BIG)",
		"join(vars.list)",
		"toJSON(vars.list)",
	} {
		ast, err := parse(src)
		if err != nil {
			t.Fatalf("parse(%q): %v", src, err)
		}
		if _, err := ast.eval(env); err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Errorf("eval(%q) error = %v, want a size error", src, err)
		}
	}
	if _, err := Interpolate("${{ env.BIG }}${{ env.BIG }}", env); err == nil {
		t.Errorf("Interpolate of 1.2 MB: no error")
	}
	// Cyclic contexts must not hang or crash toJSON.
	cyc := map[string]any{}
	cyc["self"] = cyc
	env = &Env{Contexts: map[string]any{"github": cyc}}
	if _, err := mustParse(t, "toJSON(github)").eval(env); err == nil {
		t.Errorf("toJSON of a cyclic value: no error")
	}
	// Object filters are bounded.
	wide := make([]any, 1000)
	for i := range wide {
		wide[i] = wide // 1000 x 1000 x 1000 elements if unbounded
	}
	env = &Env{Contexts: map[string]any{"github": wide}}
	// The bound shows as the error; go test's -timeout catches a hang.
	if _, err := mustParse(t, "github.*.*.*").eval(env); err == nil {
		t.Errorf("huge object filter: no error")
	}
}

func mustParse(t *testing.T, src string) *tree {
	t.Helper()
	ast, err := parse(src)
	if err != nil {
		t.Fatalf("parse(%q): %v", src, err)
	}
	return ast
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"github.event.issue.labels.*.name", "contains(a, 'b') && !(1 <= 0x1f)",
		"format('{{{0}}}', secrets['X'])", "case(true, 1, 2)", "'It''s'", "-2.99e-2",
		"needs.*.result[0]", "fromJSON('[1,[2,{\"a\":3}]]').*.*", "toJSON(github)", "((1))",
		"join(vars.list.*, vars.x) || null != NaN", "always() && hashFiles('**')",
	} {
		f.Add(s)
	}
	env := testEnv(f)
	env.HashFiles = func([]string) (string, error) { return "h", nil }
	f.Fuzz(func(t *testing.T, src string) {
		ast, err := parse(src)
		if err != nil {
			var ee *posError
			if !errors.As(err, &ee) {
				t.Fatalf("parse(%q): error of type %T", src, err)
			}
			if ee.Offset < 0 || ee.Offset > len(src) {
				t.Fatalf("parse(%q): offset %d out of range", src, ee.Offset)
			}
			return
		}
		v, err := ast.eval(env)
		if err == nil {
			_ = String(v)
			_ = Truthy(v)
		}
		_, _ = Refs(src, true)
	})
}

func FuzzInterpolate(f *testing.F) {
	for _, s := range []string{
		"echo ${{ github.sha }}", "${{ '}}' }}", "${{", "}}${{}}", "a ${{ matrix.os }} b ${{ toJSON(vars) }}",
		"${{ format('{0}', '${{') }}", "${{ 'a' }}}", "$${{ 1 }}",
	} {
		f.Add(s)
	}
	env := testEnv(f)
	f.Fuzz(func(t *testing.T, s string) {
		out, err := Interpolate(s, env)
		if err == nil && !strings.Contains(s, "${{") && out != s {
			t.Fatalf("Interpolate(%q) = %q, want the input unchanged", s, out)
		}
		_, _ = EvalValue(s, env)
		_, _ = Condition(s, env)
		_, _ = Refs(s, false)
	})
}

func TestGoTypedContexts(t *testing.T) {
	env := &Env{Contexts: map[string]any{
		"env":    map[string]string{"Name": "x", "N": "2"},
		"matrix": map[string]any{"node": 18, "tags": []string{"a", "b"}},
		"Needs":  map[string]map[string]any{"build": {"result": "success"}},
	}}
	for _, tc := range []struct {
		src  string
		want any
	}{
		{"env.name", "x"},
		{"env.N == 2", true},
		{"matrix.node == 18", true},
		{"matrix.node", 18.0},
		{"join(matrix.tags, '+')", "a+b"},
		{"needs.build.result", "success"},
		{"needs.*.result", []any{"success"}},
	} {
		if got := mustEval(t, env, tc.src); !same(got, tc.want) {
			t.Errorf("eval(%q) = %#v, want %#v", tc.src, got, tc.want)
		}
	}
}
