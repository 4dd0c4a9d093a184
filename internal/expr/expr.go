// Package expr is GitHub Actions' expression language: the language inside
// ${{ }} and in `if:`, parsed, checked against the contexts each workflow key
// may use, and evaluated. It is pure: no files, no network, no clock.
//
// The semantics follow GitHub's "Evaluate expressions in workflows and
// actions" and "Contexts reference" pages; where the docs are silent the
// behaviour of GitHub's own runner (actions/runner, src/Sdk/Expressions) is
// taken as the reference. The surprising bits are noted where they occur.
//
// Values are plain Go values as encoding/json produces them: nil, bool,
// float64, string, []any, map[string]any. Common other Go types found in
// contexts (ints, []string, map[string]string, json.Number) are accepted and
// normalised on access. hashFiles() reads files through the caller's
// Env.HashFiles.
package expr

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits that keep a hostile workflow from exhausting the server.
const (
	// maxDepth is GitHub's own limit on the depth of the expression tree
	// (ExpressionConstants.MaxDepth).
	maxDepth = 50
	// maxNesting bounds parser recursion (parentheses add no tree depth
	// but do recurse).
	maxNesting = 100
	// maxLength is GitHub's limit on an expression's length
	// (ExpressionConstants.MaxLength).
	maxLength = 21000
	// maxResult bounds every string an evaluation builds (format, join,
	// toJSON, interpolation).
	maxResult = 1 << 20
	// maxItems bounds the arrays built by object filters (`.*`).
	maxItems = 1 << 18
	// maxJSONDepth bounds toJSON's recursion (contexts may be cyclic).
	maxJSONDepth = 200
)

// knownContexts are the named values an expression may use ("Contexts
// reference", Available contexts). Anything else is a parse error, as on
// GitHub ("Unrecognized named-value").
var knownContexts = map[string]bool{
	"github": true, "env": true, "vars": true, "job": true, "jobs": true,
	"steps": true, "runner": true, "secrets": true, "strategy": true,
	"matrix": true, "needs": true, "inputs": true,
}

// funcInfo gives a function's canonical spelling and argument counts.
type funcInfo struct {
	name     string
	min, max int
}

// builtinFuncs are the built-in functions ("Functions" and "Status check
// functions"), keyed by lower-case name since names are case-insensitive.
// The counts are GitHub's (format takes 1..255 even though the docs ask for
// at least one replace value).
var builtinFuncs = map[string]funcInfo{
	"contains":   {"contains", 2, 2},
	"startswith": {"startsWith", 2, 2},
	"endswith":   {"endsWith", 2, 2},
	"format":     {"format", 1, 255},
	"join":       {"join", 1, 2},
	"tojson":     {"toJSON", 1, 1},
	"fromjson":   {"fromJSON", 1, 1},
	"hashfiles":  {"hashFiles", 1, 255},
	"case":       {"case", 3, 255},
	"success":    {"success", 0, 0},
	"always":     {"always", 0, 0},
	"cancelled":  {"cancelled", 0, 0},
	"failure":    {"failure", 0, 0},
}

// statusFuncs are the functions whose presence in an `if:` disables the
// implicit `success() &&`.
var statusFuncs = map[string]bool{"success": true, "always": true, "cancelled": true, "failure": true}

// posError is a parse or evaluation error inside one expression.
type posError struct {
	Expr   string // the expression text, without ${{ }}
	Offset int    // byte offset of the problem within Expr
	Msg    string
}

func (e *posError) Error() string {
	return fmt.Sprintf("%s at column %d in expression `%s`", e.Msg, e.Offset+1, e.Expr)
}

// Env is what an expression is evaluated against.
type Env struct {
	// Contexts maps a context name (github, env, matrix, ...) to its value.
	// Names are matched case-insensitively; a missing context is null.
	Contexts map[string]any
	// JobStatus drives the status functions: "success" (or ""), "failure"
	// or "cancelled". For a job-level `if` the caller derives it from the
	// needed jobs.
	JobStatus string
	// HashFiles implements hashFiles(); nil makes hashFiles an error.
	HashFiles func(patterns []string) (string, error)
}

// ---------------------------------------------------------------------------
// Lexer. It mirrors GitHub's LexicalAnalyzer: which characters end a token,
// when '.' starts a number, and that a keyword after '.' is a property name.

type tokKind uint8

const (
	tEOF tokKind = iota
	tBad
	tNumber
	tString
	tBool
	tNull
	tName  // context name
	tFunc  // keyword followed by '('
	tProp  // keyword after '.'
	tDot   // '.'
	tStar  // '*'
	tLPar  // '('
	tRPar  // ')'
	tLBrk  // '['
	tRBrk  // ']'
	tComma // ','
	tOp    // ! == != < <= > >= && ||
)

type token struct {
	kind tokKind
	pos  int
	text string
	val  any
}

func isBoundary(c byte) bool {
	switch c {
	case '(', '[', ')', ']', ',', '.', '!', '>', '<', '=', '&', '|', ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// isKeyword reports whether s can be a context, function or property
// name: a letter or '_' followed by letters, digits, '_' or '-'.
func isKeyword(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func lex(src string) []token {
	var toks []token
	last := tEOF // "no token yet"
	i := 0
	for {
		for i < len(src) && isSpace(src[i]) {
			i++
		}
		if i >= len(src) {
			toks = append(toks, token{kind: tEOF, pos: len(src)})
			return toks
		}
		start := i
		c := src[i]
		var t token
		switch {
		case c == '(':
			t = token{kind: tLPar, text: "("}
			i++
		case c == ')':
			t = token{kind: tRPar, text: ")"}
			i++
		case c == '[':
			t = token{kind: tLBrk, text: "["}
			i++
		case c == ']':
			t = token{kind: tRBrk, text: "]"}
			i++
		case c == ',':
			t = token{kind: tComma, text: ","}
			i++
		case c == '*':
			t = token{kind: tStar, text: "*"}
			i++
		case c == '\'':
			var b strings.Builder
			i++
			closed := false
			for i < len(src) {
				if src[i] == '\'' {
					if i+1 < len(src) && src[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					closed = true
					break
				}
				b.WriteByte(src[i])
				i++
			}
			if closed {
				t = token{kind: tString, text: src[start:i], val: b.String()}
			} else {
				t = token{kind: tBad, text: src[start:i]}
			}
		case strings.IndexByte("!<>=&|", c) >= 0:
			if i+1 < len(src) {
				two := src[i : i+2]
				switch two {
				case "!=", ">=", "<=", "==", "&&", "||":
					t = token{kind: tOp, text: two}
					i += 2
				}
			}
			if t.text == "" {
				if c == '!' || c == '<' || c == '>' {
					t = token{kind: tOp, text: src[i : i+1]}
					i++
				} else {
					i++
					for i < len(src) && !isBoundary(src[i]) {
						i++
					}
					t = token{kind: tBad, text: src[start:i]}
				}
			}
		case c == '.' && last != tEOF && last != tComma && last != tLPar &&
			last != tLBrk && last != tOp:
			t = token{kind: tDot, text: "."}
			i++
		case c == '.' || c == '-' || c == '+' || (c >= '0' && c <= '9'):
			i++
			for i < len(src) && (!isBoundary(src[i]) || src[i] == '.') {
				i++
			}
			raw := src[start:i]
			if f := parseNumber(raw); math.IsNaN(f) {
				t = token{kind: tBad, text: raw}
			} else {
				t = token{kind: tNumber, text: raw, val: f}
			}
		default:
			i++
			for i < len(src) && !isBoundary(src[i]) {
				i++
			}
			raw := src[start:i]
			switch {
			case !isKeyword(raw):
				t = token{kind: tBad, text: raw}
			case last == tDot:
				t = token{kind: tProp, text: raw}
			case raw == "null": // literal keywords are case-sensitive
				t = token{kind: tNull, text: raw}
			case raw == "true" || raw == "false":
				t = token{kind: tBool, text: raw, val: raw == "true"}
			case raw == "NaN":
				t = token{kind: tNumber, text: raw, val: math.NaN()}
			case raw == "Infinity":
				t = token{kind: tNumber, text: raw, val: math.Inf(1)}
			default:
				j := i
				for j < len(src) && isSpace(src[j]) {
					j++
				}
				if j < len(src) && src[j] == '(' {
					t = token{kind: tFunc, text: raw}
				} else {
					t = token{kind: tName, text: raw}
				}
			}
		}
		t.pos = start
		toks = append(toks, t)
		last = t.kind
		if t.kind == tBad {
			toks = append(toks, token{kind: tEOF, pos: len(src)})
			return toks
		}
	}
}

// parseNumber converts a string to a number the way GitHub does (modelled
// on JavaScript's Number()): surrounding space is ignored, "" is 0, decimal
// and exponent forms, 0x hex and 0o octal (as 32-bit two's complement, like
// .NET's Int32 parsing), Infinity; anything else is NaN.
func parseNumber(s string) float64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	if isDecimal(s) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return math.NaN()
		}
		return f // ±Inf on overflow, 0 on underflow, as .NET does
	}
	if len(s) > 2 && s[0] == '0' && s[1] == 'x' {
		h := strings.TrimLeft(s[2:], "0")
		if len(h) > 8 {
			return math.NaN()
		}
		if h == "" {
			if strings.Trim(s[2:], "0") == "" {
				return 0
			}
			return math.NaN()
		}
		u, err := strconv.ParseUint(h, 16, 32)
		if err != nil {
			return math.NaN()
		}
		return float64(int32(uint32(u)))
	}
	if len(s) > 2 && s[0] == '0' && s[1] == 'o' {
		u, err := strconv.ParseUint(s[2:], 8, 64)
		if err != nil || u > math.MaxUint32 || strings.ContainsAny(s[2:], "+-_") {
			return math.NaN()
		}
		return float64(int32(uint32(u)))
	}
	switch strings.ToLower(s) {
	case "infinity", "+infinity":
		return math.Inf(1)
	case "-infinity":
		return math.Inf(-1)
	}
	return math.NaN()
}

// isDecimal matches [+-]? (d+ (. d*)? | . d+) ([eE] [+-]? d+)?.
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		if n == 0 {
			return false
		}
	}
	return i == len(s)
}

// ---------------------------------------------------------------------------
// Parser: recursive descent with GitHub's precedence, tightest first:
// grouping/index/property, !, < <= > >=, == !=, &&, ||.

type nodeKind uint8

const (
	nLit      nodeKind = iota // val
	nCtx                      // name: lower-case context name
	nIndex                    // kids[0][kids[1]]; kids[1] may be nWildcard
	nWildcard                 // the * of .* and [*]
	nNot
	nAnd // n-ary, like GitHub's flattened And
	nOr
	nCmp  // name is the operator
	nCall // name: lower-case function name
)

type node struct {
	kind nodeKind
	pos  int
	name string
	val  any
	kids []*node
}

// tree is a parsed expression.
type tree struct {
	src  string
	root *node
}

type parser struct {
	src     string
	toks    []token
	i       int
	nesting int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errAt(pos int, format string, args ...any) error {
	return &posError{Expr: p.src, Offset: pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) unexpected(t token) error {
	if t.kind == tEOF {
		return p.errAt(t.pos, "unexpected end of expression")
	}
	return p.errAt(t.pos, "unexpected token '%s'", t.text)
}

// parse parses one expression (the text between ${{ and }}, or a bare
// `if:` condition). Function names and arities and context names are checked
// here, as GitHub does when it loads the workflow.
func parse(src string) (*tree, error) {
	if len(src) > maxLength {
		return nil, &posError{Expr: src[:64] + "...", Msg: fmt.Sprintf("exceeded max expression length %d", maxLength)}
	}
	p := &parser{src: src, toks: lex(src)}
	if p.peek().kind == tEOF {
		return nil, p.errAt(0, "expected an expression")
	}
	root, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.unexpected(t)
	}
	if treeDepth(root) > maxDepth {
		return nil, p.errAt(0, "exceeded max expression depth %d", maxDepth)
	}
	return &tree{src: src, root: root}, nil
}

func treeDepth(n *node) int {
	d := 0
	for _, k := range n.kids {
		d = max(d, treeDepth(k))
	}
	return d + 1
}

func (p *parser) enter(pos int) error {
	p.nesting++
	if p.nesting > maxNesting {
		return p.errAt(pos, "exceeded max expression depth %d", maxDepth)
	}
	return nil
}

func (p *parser) parseOr() (*node, error) {
	if err := p.enter(p.peek().pos); err != nil {
		return nil, err
	}
	defer func() { p.nesting-- }()
	return p.parseLogical("||", nOr, func() (*node, error) {
		return p.parseLogical("&&", nAnd, p.parseEquality)
	})
}

func (p *parser) parseLogical(op string, kind nodeKind, sub func() (*node, error)) (*node, error) {
	left, err := sub()
	if err != nil {
		return nil, err
	}
	var n *node
	for t := p.peek(); t.kind == tOp && t.text == op; t = p.peek() {
		p.next()
		right, err := sub()
		if err != nil {
			return nil, err
		}
		if n == nil {
			n = &node{kind: kind, pos: t.pos, kids: []*node{left}}
		}
		n.kids = append(n.kids, right)
	}
	if n == nil {
		return left, nil
	}
	return n, nil
}

func (p *parser) parseEquality() (*node, error) {
	return p.parseBinary([]string{"==", "!="}, p.parseRelational)
}

func (p *parser) parseRelational() (*node, error) {
	return p.parseBinary([]string{"<", "<=", ">", ">="}, p.parseUnary)
}

func (p *parser) parseBinary(ops []string, sub func() (*node, error)) (*node, error) {
	left, err := sub()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind != tOp || !containsStr(ops, t.text) {
			return left, nil
		}
		p.next()
		right, err := sub()
		if err != nil {
			return nil, err
		}
		left = &node{kind: nCmp, pos: t.pos, name: t.text, kids: []*node{left, right}}
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) parseUnary() (*node, error) {
	t := p.peek()
	if t.kind == tOp && t.text == "!" {
		p.next()
		if err := p.enter(t.pos); err != nil {
			return nil, err
		}
		defer func() { p.nesting-- }()
		operand, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return &node{kind: nNot, pos: t.pos, kids: []*node{operand}}, nil
	}
	return p.parsePostfix()
}

func (p *parser) parsePostfix() (*node, error) {
	t := p.next()
	var n *node
	switch t.kind {
	case tNumber, tString, tBool:
		// GitHub does not allow indexing or dereferencing a literal.
		return &node{kind: nLit, pos: t.pos, val: t.val}, nil
	case tNull:
		return &node{kind: nLit, pos: t.pos}, nil
	case tName:
		name := strings.ToLower(t.text)
		if !knownContexts[name] {
			return nil, p.errAt(t.pos, "unrecognized named-value '%s'", t.text)
		}
		n = &node{kind: nCtx, pos: t.pos, name: name}
	case tFunc:
		call, err := p.parseCall(t)
		if err != nil {
			return nil, err
		}
		n = call
	case tLPar:
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRPar {
			return nil, p.unexpected(c)
		}
		n = inner
	default:
		return nil, p.unexpected(t)
	}
	for {
		t := p.peek()
		switch t.kind {
		case tDot:
			p.next()
			k := p.next()
			switch k.kind {
			case tProp:
				n = &node{kind: nIndex, pos: t.pos, kids: []*node{n, {kind: nLit, pos: k.pos, val: k.text}}}
			case tStar:
				n = &node{kind: nIndex, pos: t.pos, kids: []*node{n, {kind: nWildcard, pos: k.pos}}}
			default:
				return nil, p.unexpected(k)
			}
		case tLBrk:
			p.next()
			var idx *node
			if s := p.peek(); s.kind == tStar {
				p.next()
				idx = &node{kind: nWildcard, pos: s.pos}
			} else {
				var err error
				if idx, err = p.parseOr(); err != nil {
					return nil, err
				}
			}
			if c := p.next(); c.kind != tRBrk {
				return nil, p.unexpected(c)
			}
			n = &node{kind: nIndex, pos: t.pos, kids: []*node{n, idx}}
		default:
			return n, nil
		}
	}
}

func (p *parser) parseCall(name token) (*node, error) {
	info, ok := builtinFuncs[strings.ToLower(name.text)]
	if !ok {
		return nil, p.errAt(name.pos, "unrecognized function '%s'", name.text)
	}
	p.next() // '(' is guaranteed by the lexer
	n := &node{kind: nCall, pos: name.pos, name: strings.ToLower(name.text)}
	if p.peek().kind == tRPar {
		p.next()
	} else {
		for {
			arg, err := p.parseOr()
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, arg)
			t := p.next()
			if t.kind == tRPar {
				break
			}
			if t.kind != tComma {
				return nil, p.unexpected(t)
			}
		}
	}
	switch {
	case len(n.kids) < info.min:
		return nil, p.errAt(name.pos, "too few arguments to '%s' (want at least %d, got %d)", info.name, info.min, len(n.kids))
	case len(n.kids) > info.max:
		return nil, p.errAt(name.pos, "too many arguments to '%s' (want at most %d, got %d)", info.name, info.max, len(n.kids))
	case info.name == "case" && len(n.kids)%2 == 0:
		return nil, p.errAt(name.pos, "'case' requires an odd number of arguments")
	}
	return n, nil
}

// hasStatusFunc reports whether the expression calls success(), always(),
// cancelled() or failure() anywhere.
func (a *tree) hasStatusFunc() bool {
	var walk func(n *node) bool
	walk = func(n *node) bool {
		if n.kind == nCall && statusFuncs[n.name] {
			return true
		}
		for _, k := range n.kids {
			if walk(k) {
				return true
			}
		}
		return false
	}
	return walk(a.root)
}

// ---------------------------------------------------------------------------
// Values.

// filtered is the array an object filter (`.*`) produces. Indexing it
// applies the index to each element (flattening one level for `.*`), which
// is what makes `a.*.b.*.c` work. It never leaves the evaluator: results are
// turned back into []any.
type filtered []any

type valKind uint8

const (
	vNull valKind = iota
	vBool
	vNum
	vStr
	vArr
	vObj
)

// Normalize maps the Go types a caller may put in a context onto the six the
// evaluator works with.
func Normalize(v any) any {
	switch x := v.(type) {
	case nil, bool, float64, string, []any, map[string]any, filtered:
		return v
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	case uint:
		return float64(x)
	case uint64:
		return float64(x)
	case uint32:
		return float64(x)
	case float32:
		return float64(x)
	case json.Number:
		return parseNumber(string(x))
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(x))
		for k, s := range x {
			out[k] = s
		}
		return out
	}
	// Anything else (named types, other maps and slices) through reflection.
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool()
	case reflect.String:
		return rv.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if rv.IsNil() {
			return nil
		}
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			out[it.Key().String()] = it.Value().Interface()
		}
		return out
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return Normalize(rv.Elem().Interface())
	}
	return fmt.Sprint(v) // unknown types degrade to their text
}

func kindOf(v any) valKind {
	switch v.(type) {
	case nil:
		return vNull
	case bool:
		return vBool
	case float64:
		return vNum
	case string:
		return vStr
	case []any, filtered:
		return vArr
	}
	return vObj
}

func isPrimitive(v any) bool { return kindOf(v) <= vStr }

func Array(v any) ([]any, bool) {
	switch x := v.(type) {
	case []any:
		return x, true
	case filtered:
		return x, true
	}
	return nil, false
}

// Truthy: false, 0, -0, NaN, "" and null are falsy; everything else,
// including every array and object, is truthy.
func Truthy(v any) bool {
	switch x := Normalize(v).(type) {
	case nil:
		return false
	case bool:
		return x
	case float64:
		return x != 0 && !math.IsNaN(x)
	case string:
		return x != ""
	}
	return true
}

// ToNumber follows the docs' coercion table: null 0, true 1, false 0,
// strings parsed (empty is 0, otherwise NaN), arrays and objects NaN.
func ToNumber(v any) float64 {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		if x {
			return 1
		}
		return 0
	case float64:
		return x
	case string:
		return parseNumber(x)
	}
	return math.NaN()
}

// String converts a value to text as GitHub does when it interpolates:
// null is "", booleans "true"/"false", numbers in .NET's G15 format, strings
// as they are. GitHub itself prints "Array"/"Object" for collections; we
// print compact JSON, which is what a workflow author wants to see.
func String(v any) string {
	switch x := Normalize(v).(type) {
	case nil:
		return ""
	case bool:
		if x {
			return "true"
		}
		return "false"
	case float64:
		return FormatNumber(x)
	case string:
		return x
	case []any:
		// GitHub's runner converts a non-primitive to its kind's name
		// (ConvertToString); toJSON is how a workflow prints one.
		return "Array"
	default:
		return "Object"
	}
}

// FormatNumber prints a number like .NET's ToString("G15"), which is how
// GitHub prints numbers: 15 significant digits, no trailing zeros, and
// scientific notation ("1E+15", "1E-05") when the exponent is >= 15 or <= -5.
func FormatNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0" // also -0
	}
	s := strconv.FormatFloat(f, 'e', 14, 64) // [-]d.dddddddddddddde±dd
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	e := strings.IndexByte(s, 'e')
	exp, _ := strconv.Atoi(s[e+1:])
	digits := s[:1] + s[2:e] // 15 significant digits
	sign := ""
	if neg {
		sign = "-"
	}
	if exp >= 15 || exp <= -5 {
		mant := strings.TrimRight(digits[1:], "0")
		if mant != "" {
			mant = "." + mant
		}
		esign := "+"
		if exp < 0 {
			esign, exp = "-", -exp
		}
		return fmt.Sprintf("%s%s%sE%s%02d", sign, digits[:1], mant, esign, exp)
	}
	var intPart, frac string
	if exp >= 0 {
		intPart, frac = digits[:exp+1], digits[exp+1:]
	} else {
		intPart, frac = "0", strings.Repeat("0", -exp-1)+digits
	}
	frac = strings.TrimRight(frac, "0")
	if frac != "" {
		return sign + intPart + "." + frac
	}
	return sign + intPart
}

// foldCompare compares strings ignoring case the way .NET's
// OrdinalIgnoreCase does: rune by rune after upper-casing.
func foldCompare(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		ra, rb = unicode.ToUpper(ra), unicode.ToUpper(rb)
		if ra != rb {
			if ra < rb {
				return -1
			}
			return 1
		}
		a, b = a[na:], b[nb:]
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}

// coerce implements the docs' loose comparison: operands of different
// types are converted to numbers (strings against numbers, and booleans and
// null against anything); arrays and objects are never converted, so they
// only compare with their own kind.
func coerce(l, r any) (any, any) {
	for {
		lk, rk := kindOf(l), kindOf(r)
		switch {
		case lk == rk:
			return l, r
		case lk == vNum && rk == vStr:
			return l, ToNumber(r)
		case lk == vStr && rk == vNum:
			return ToNumber(l), r
		case lk == vBool || lk == vNull:
			l = ToNumber(l)
		case rk == vBool || rk == vNull:
			r = ToNumber(r)
		default:
			return l, r
		}
	}
}

// sameInstance: "Objects and arrays are only considered equal when they
// are the same instance."
func sameInstance(l, r any) bool {
	if _, ok := l.(filtered); ok {
		return false // a filter result is always a fresh array
	}
	if _, ok := r.(filtered); ok {
		return false
	}
	lv, rv := reflect.ValueOf(l), reflect.ValueOf(r)
	if lv.Kind() != rv.Kind() {
		return false
	}
	switch lv.Kind() {
	case reflect.Map:
		return lv.UnsafePointer() == rv.UnsafePointer()
	case reflect.Slice:
		return lv.Len() == rv.Len() && lv.Pointer() == rv.Pointer()
	}
	return false
}

func Equal(l, r any) bool {
	l, r = coerce(Normalize(l), Normalize(r))
	if kindOf(l) != kindOf(r) {
		return false
	}
	switch x := l.(type) {
	case nil:
		return true
	case bool:
		return x == r.(bool)
	case float64:
		return x == r.(float64) // false for NaN
	case string:
		return foldCompare(x, r.(string)) == 0
	}
	return sameInstance(l, r)
}

// order returns -1, 0 or 1, or ok=false when the operands are not
// ordered (NaN, arrays, objects, null against null).
func order(l, r any) (int, bool) {
	l, r = coerce(Normalize(l), Normalize(r))
	if kindOf(l) != kindOf(r) {
		return 0, false
	}
	switch x := l.(type) {
	case bool:
		y := r.(bool)
		switch {
		case x == y:
			return 0, true
		case x:
			return 1, true
		}
		return -1, true
	case float64:
		y := r.(float64)
		switch {
		case math.IsNaN(x) || math.IsNaN(y):
			return 0, false
		case x < y:
			return -1, true
		case x > y:
			return 1, true
		}
		return 0, true
	case string:
		return foldCompare(x, r.(string)), true
	}
	return 0, false
}

func compare(op string, l, r any) bool {
	switch op {
	case "==":
		return Equal(l, r)
	case "!=":
		return !Equal(l, r)
	}
	// GitHub defines a >= b as a == b || a > b, so null >= null is true.
	c, ok := order(l, r)
	switch op {
	case "<":
		return ok && c < 0
	case ">":
		return ok && c > 0
	case "<=":
		return Equal(l, r) || ok && c < 0
	case ">=":
		return Equal(l, r) || ok && c > 0
	}
	return false
}

// lookup finds a property case-insensitively (an exact match wins).
func lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return Normalize(v), true
	}
	for k, v := range m {
		if foldCompare(k, key) == 0 {
			return Normalize(v), true
		}
	}
	return nil, false
}

// arrayIndex converts an index value to an array position: numbers are
// floored; NaN, negatives and out-of-range give ok=false.
func arrayIndex(idx any, n int) (int, bool) {
	f := ToNumber(idx)
	if math.IsNaN(f) || f < 0 {
		return 0, false
	}
	f = math.Floor(f)
	if f >= float64(n) {
		return 0, false
	}
	return int(f), true
}

func sortedValues(m map[string]any) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // GitHub leaves the order unspecified; be deterministic
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = Normalize(m[k])
	}
	return out
}

// index applies `left[idx]`, or `left.*` when wildcard is set.
var errTooMany = errors.New("object filter result has too many elements")

func index(left, idx any, wildcard bool) (any, error) {
	tooMany := errTooMany
	switch x := left.(type) {
	case filtered:
		out := filtered{}
		for _, item := range x {
			switch it := Normalize(item).(type) {
			case map[string]any:
				if wildcard {
					out = append(out, sortedValues(it)...)
				} else if isPrimitive(idx) {
					if v, ok := lookup(it, String(idx)); ok {
						out = append(out, v)
					}
				}
			case []any:
				if wildcard {
					for _, v := range it {
						out = append(out, Normalize(v))
					}
				} else if i, ok := arrayIndex(idx, len(it)); ok {
					out = append(out, Normalize(it[i]))
				}
			}
			if len(out) > maxItems {
				return nil, tooMany
			}
		}
		return out, nil
	case map[string]any:
		if wildcard {
			if len(x) > maxItems {
				return nil, tooMany
			}
			return filtered(sortedValues(x)), nil
		}
		if !isPrimitive(idx) {
			return nil, nil
		}
		v, _ := lookup(x, String(idx))
		return v, nil
	case []any:
		if wildcard {
			if len(x) > maxItems {
				return nil, tooMany
			}
			out := make(filtered, len(x))
			for i, v := range x {
				out[i] = Normalize(v)
			}
			return out, nil
		}
		if i, ok := arrayIndex(idx, len(x)); ok {
			return Normalize(x[i]), nil
		}
		return nil, nil
	}
	if wildcard {
		return filtered{}, nil
	}
	return nil, nil // properties of non-objects are null, not errors
}

// ---------------------------------------------------------------------------
// Evaluation.

type evaluator struct {
	ast *tree
	env *Env
}

func (ev *evaluator) errAt(n *node, format string, args ...any) error {
	return &posError{Expr: ev.ast.src, Offset: n.pos, Msg: fmt.Sprintf(format, args...)}
}

// eval evaluates the expression. Arrays made by object filters come back as
// []any. A nil env is an empty one.
func (a *tree) eval(env *Env) (any, error) {
	if env == nil {
		env = &Env{}
	}
	ev := &evaluator{ast: a, env: env}
	v, err := ev.eval(a.root)
	if err != nil {
		return nil, err
	}
	if f, ok := v.(filtered); ok {
		v = []any(f)
	}
	return v, nil
}

func (ev *evaluator) eval(n *node) (any, error) {
	switch n.kind {
	case nLit:
		return n.val, nil
	case nCtx:
		if v, ok := ev.env.Contexts[n.name]; ok {
			return Normalize(v), nil
		}
		v, _ := lookup(ev.env.Contexts, n.name)
		return v, nil
	case nIndex:
		left, err := ev.eval(n.kids[0])
		if err != nil {
			return nil, err
		}
		if n.kids[1].kind == nWildcard {
			v, err := index(left, nil, true)
			if err != nil {
				return nil, ev.errAt(n, "%v", err)
			}
			return v, nil
		}
		idx, err := ev.eval(n.kids[1])
		if err != nil {
			return nil, err
		}
		v, err := index(left, idx, false)
		if err != nil {
			return nil, ev.errAt(n, "%v", err)
		}
		return v, nil
	case nNot:
		v, err := ev.eval(n.kids[0])
		if err != nil {
			return nil, err
		}
		return !Truthy(v), nil
	case nAnd, nOr:
		// Both return the deciding operand, not a boolean.
		var v any
		for _, k := range n.kids {
			var err error
			if v, err = ev.eval(k); err != nil {
				return nil, err
			}
			if Truthy(v) == (n.kind == nOr) {
				return v, nil
			}
		}
		return v, nil
	case nCmp:
		l, err := ev.eval(n.kids[0])
		if err != nil {
			return nil, err
		}
		r, err := ev.eval(n.kids[1])
		if err != nil {
			return nil, err
		}
		return compare(n.name, l, r), nil
	case nCall:
		return ev.call(n)
	}
	return nil, ev.errAt(n, "unexpected node")
}

func (ev *evaluator) args(n *node) ([]any, error) {
	out := make([]any, len(n.kids))
	for i, k := range n.kids {
		v, err := ev.eval(k)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (ev *evaluator) call(n *node) (any, error) {
	switch n.name {
	case "success":
		return ev.env.JobStatus == "" || ev.env.JobStatus == "success", nil
	case "failure":
		return ev.env.JobStatus == "failure", nil
	case "cancelled":
		return ev.env.JobStatus == "cancelled", nil
	case "always":
		return true, nil
	case "format":
		return ev.format(n)
	case "case":
		for i := 0; i+1 < len(n.kids); i += 2 {
			pred, err := ev.eval(n.kids[i])
			if err != nil {
				return nil, err
			}
			b, ok := pred.(bool)
			if !ok {
				return nil, ev.errAt(n.kids[i], "case predicate must evaluate to a boolean value")
			}
			if b {
				return ev.eval(n.kids[i+1])
			}
		}
		return ev.eval(n.kids[len(n.kids)-1])
	case "join":
		return ev.join(n)
	}
	args, err := ev.args(n)
	if err != nil {
		return nil, err
	}
	switch n.name {
	case "contains":
		if isPrimitive(args[0]) {
			if !isPrimitive(args[1]) {
				return false, nil
			}
			return strings.Contains(strings.ToUpper(String(args[0])), strings.ToUpper(String(args[1]))), nil
		}
		if arr, ok := Array(args[0]); ok {
			for _, item := range arr {
				if Equal(args[1], item) {
					return true, nil
				}
			}
		}
		return false, nil
	case "startswith", "endswith":
		if !isPrimitive(args[0]) || !isPrimitive(args[1]) {
			return false, nil
		}
		s, x := strings.ToUpper(String(args[0])), strings.ToUpper(String(args[1]))
		if n.name == "startswith" {
			return strings.HasPrefix(s, x), nil
		}
		return strings.HasSuffix(s, x), nil
	case "tojson":
		var b strings.Builder
		if err := writeJSON(&b, args[0], true, 0, 0); err != nil {
			return nil, ev.errAt(n, "toJSON: %v", err)
		}
		return b.String(), nil
	case "fromjson":
		s := String(args[0])
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, ev.errAt(n, "error parsing fromJSON: %v", err)
		}
		return v, nil
	case "hashfiles":
		if ev.env.HashFiles == nil {
			return nil, ev.errAt(n, "hashFiles is not available here")
		}
		patterns := make([]string, len(args))
		for i, a := range args {
			patterns[i] = String(a)
		}
		h, err := ev.env.HashFiles(patterns)
		if err != nil {
			return nil, ev.errAt(n, "hashFiles: %v", err)
		}
		return h, nil
	}
	return nil, ev.errAt(n, "unrecognized function '%s'", n.name)
}

// join(array, separator): an array's items as strings joined by the
// separator (default ","), a primitive as its string, anything else "".
// Like GitHub, the separator is only evaluated when it is needed.
func (ev *evaluator) join(n *node) (any, error) {
	v, err := ev.eval(n.kids[0])
	if err != nil {
		return nil, err
	}
	arr, ok := Array(v)
	if !ok {
		if isPrimitive(v) {
			return String(v), nil
		}
		return "", nil
	}
	if len(arr) == 0 {
		return "", nil
	}
	sep := ","
	if len(arr) > 1 && len(n.kids) > 1 {
		s, err := ev.eval(n.kids[1])
		if err != nil {
			return nil, err
		}
		if isPrimitive(s) {
			sep = String(s)
		}
	}
	var b strings.Builder
	for i, item := range arr {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(String(item))
		if b.Len() > maxResult {
			return nil, ev.errAt(n, "join: result exceeds %d bytes", maxResult)
		}
	}
	return b.String(), nil
}

// format(string, args...): {N} is replaced by argument N, {{ and }} are
// literal braces; anything else with a brace is an error. Arguments are
// evaluated only when referenced, as on GitHub.
func (ev *evaluator) format(n *node) (any, error) {
	fv, err := ev.eval(n.kids[0])
	if err != nil {
		return nil, err
	}
	f := String(fv)
	args := n.kids[1:]
	cache := make([]*string, len(args))
	var b strings.Builder
	invalid := func() error { return ev.errAt(n, "the format string is invalid: %s", f) }
	for i := 0; i < len(f); {
		if b.Len() > maxResult {
			return nil, ev.errAt(n, "format: result exceeds %d bytes", maxResult)
		}
		c := f[i]
		switch {
		case c == '{' && i+1 < len(f) && f[i+1] == '{':
			b.WriteByte('{')
			i += 2
		case c == '}' && i+1 < len(f) && f[i+1] == '}':
			b.WriteByte('}')
			i += 2
		case c == '}':
			return nil, invalid()
		case c == '{':
			j := i + 1
			for j < len(f) && f[j] >= '0' && f[j] <= '9' {
				j++
			}
			if j == i+1 || j >= len(f) {
				return nil, invalid()
			}
			idx, err := strconv.ParseUint(f[i+1:j], 10, 8)
			if err != nil {
				return nil, invalid()
			}
			if f[j] == ':' {
				// GitHub parses format specifiers but accepts none.
				k := j + 1
				for k < len(f) && (f[k] != '}' || k+1 < len(f) && f[k+1] == '}') {
					if f[k] == '}' {
						k++
					}
					k++
				}
				if k >= len(f) {
					return nil, invalid()
				}
				if int(idx) >= len(args) {
					return nil, ev.errAt(n, "the format string references more arguments than were supplied: %s", f)
				}
				return nil, ev.errAt(n, "the format specifiers '%s' are not valid", f[j+1:k])
			}
			if f[j] != '}' {
				return nil, invalid()
			}
			if int(idx) >= len(args) {
				return nil, ev.errAt(n, "the format string references more arguments than were supplied: %s", f)
			}
			if cache[idx] == nil {
				v, err := ev.eval(args[idx])
				if err != nil {
					return nil, err
				}
				s := String(v)
				cache[idx] = &s
			}
			b.WriteString(*cache[idx])
			i = j + 1
		default:
			k := i
			for k < len(f) && f[k] != '{' && f[k] != '}' {
				k++
			}
			b.WriteString(f[i:k])
			i = k
		}
	}
	if b.Len() > maxResult {
		return nil, ev.errAt(n, "format: result exceeds %d bytes", maxResult)
	}
	return b.String(), nil
}

// writeJSON writes v as JSON. pretty gives toJSON's layout (GitHub's:
// two-space indent, "key": value, empty collections as [] and {}); numbers
// use FormatNumber and object keys are sorted since Go maps have no order.
func writeJSON(b *strings.Builder, v any, pretty bool, indent, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("value nested deeper than %d levels", maxJSONDepth)
	}
	if b.Len() > maxResult {
		return fmt.Errorf("result exceeds %d bytes", maxResult)
	}
	newline := func(level int) {
		if pretty {
			b.WriteByte('\n')
			for i := 0; i < level; i++ {
				b.WriteString("  ")
			}
		}
	}
	switch x := Normalize(v).(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case float64:
		b.WriteString(FormatNumber(x))
	case string:
		writeJSONString(b, x)
	case []any, filtered:
		arr, _ := Array(x)
		if len(arr) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteByte('[')
		for i, item := range arr {
			if i > 0 {
				b.WriteByte(',')
			}
			newline(indent + 1)
			if err := writeJSON(b, item, pretty, indent+1, depth+1); err != nil {
				return err
			}
		}
		newline(indent)
		b.WriteByte(']')
	case map[string]any:
		if len(x) == 0 {
			b.WriteString("{}")
			return nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			newline(indent + 1)
			writeJSONString(b, k)
			b.WriteByte(':')
			if pretty {
				b.WriteByte(' ')
			}
			if err := writeJSON(b, x[k], pretty, indent+1, depth+1); err != nil {
				return err
			}
		}
		newline(indent)
		b.WriteByte('}')
	}
	if b.Len() > maxResult {
		return fmt.Errorf("result exceeds %d bytes", maxResult)
	}
	return nil
}

// writeJSONString quotes s as Newtonsoft.Json does: only quotes,
// backslashes, control characters and U+0085/U+2028/U+2029 are escaped.
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 || r == 0x85 || r == 0x2028 || r == 0x2029 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}

// ---------------------------------------------------------------------------
// Templates: strings with ${{ }} in them.

// segment is a piece of a template: literal text, or an expression whose
// text (trimmed) starts at byte Pos of the template.
type segment struct {
	Lit    string
	Expr   string
	Pos    int
	IsExpr bool
}

// splitTemplate cuts a template into literal and expression segments. As in
// GitHub's template reader, an expression ends at the first "}}" outside a
// single-quoted string; an unclosed "${{" or an empty "${{ }}" is an error.
func splitTemplate(s string) ([]segment, error) {
	var segs []segment
	i := 0
	for i < len(s) {
		start := strings.Index(s[i:], "${{")
		if start < 0 {
			segs = append(segs, segment{Lit: s[i:]})
			break
		}
		start += i
		if start > i {
			segs = append(segs, segment{Lit: s[i:start]})
		}
		end := -1
		inString := false
		for j := start + 3; j < len(s); j++ {
			if s[j] == '\'' {
				inString = !inString
			} else if !inString && s[j] == '}' && j > start+3 && s[j-1] == '}' {
				end = j - 1
				break
			}
		}
		if end < 0 {
			return nil, &posError{Expr: s[start:], Offset: 0, Msg: "the expression is not closed: '${{' without a matching '}}'"}
		}
		inner := s[start+3 : end]
		trimmed := strings.TrimSpace(inner)
		pos := start + 3 + strings.Index(inner, trimmed)
		if trimmed == "" {
			return nil, &posError{Expr: inner, Offset: 0, Msg: "expected an expression"}
		}
		segs = append(segs, segment{Expr: trimmed, Pos: pos, IsExpr: true})
		i = end + 2
	}
	return segs, nil
}

// Interpolate replaces every ${{ expr }} in s by the expression's value
// converted with String.
func Interpolate(s string, env *Env) (string, error) {
	if !strings.Contains(s, "${{") {
		return s, nil
	}
	segs, err := splitTemplate(s)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, seg := range segs {
		if !seg.IsExpr {
			b.WriteString(seg.Lit)
		} else {
			ast, err := parse(seg.Expr)
			if err != nil {
				return "", err
			}
			v, err := ast.eval(env)
			if err != nil {
				return "", err
			}
			b.WriteString(String(v))
		}
		if b.Len() > maxResult {
			return "", &posError{Expr: seg.Expr, Msg: fmt.Sprintf("interpolated string exceeds %d bytes", maxResult)}
		}
	}
	return b.String(), nil
}

// EvalValue evaluates a workflow value: when s is exactly one
// "${{ expr }}" (nothing around it, not even space) the result keeps its
// type (bool, number, object...); otherwise s is interpolated to a string.
func EvalValue(s string, env *Env) (any, error) {
	if !strings.Contains(s, "${{") {
		return s, nil
	}
	segs, err := splitTemplate(s)
	if err != nil {
		return nil, err
	}
	if len(segs) == 1 && segs[0].IsExpr {
		ast, err := parse(segs[0].Expr)
		if err != nil {
			return nil, err
		}
		return ast.eval(env)
	}
	return Interpolate(s, env)
}

// Condition evaluates an `if:`. The text may be a bare expression or
// wrapped in ${{ }}; empty means success(). Without a status function the
// condition is success() && (expr), and when the job is not successful the
// expression is not evaluated at all. Text mixing ${{ }} with anything else
// is, as on GitHub, a string: true unless empty (so `${{ a }} == 'b'` is
// always true).
func Condition(s string, env *Env) (bool, error) {
	if env == nil {
		env = &Env{}
	}
	success := env.JobStatus == "" || env.JobStatus == "success"
	s = strings.TrimSpace(s)
	if s == "" {
		return success, nil
	}
	if strings.Contains(s, "${{") {
		segs, err := splitTemplate(s)
		if err != nil {
			return false, err
		}
		if len(segs) != 1 || !segs[0].IsExpr {
			status := false
			for _, seg := range segs {
				if seg.IsExpr {
					a, err := parse(seg.Expr)
					if err != nil {
						return false, err
					}
					status = status || a.hasStatusFunc()
				}
			}
			if !status && !success {
				return false, nil
			}
			str, err := Interpolate(s, env)
			if err != nil {
				return false, err
			}
			return str != "", nil
		}
		s = segs[0].Expr
	}
	ast, err := parse(s)
	if err != nil {
		return false, err
	}
	if !ast.hasStatusFunc() && !success {
		return false, nil
	}
	v, err := ast.eval(env)
	if err != nil {
		return false, err
	}
	return Truthy(v), nil
}

// ---------------------------------------------------------------------------
// Static analysis for the workflow parser.

// RefInfo is what a template (or condition) refers to.
type RefInfo struct {
	// Contexts are the lower-case context names used, sorted.
	Contexts []string
	// Funcs are the special functions used (those the availability table
	// restricts: always, cancelled, failure, success, hashFiles), sorted.
	Funcs []string
	// Secrets are the upper-cased names read as secrets.NAME or
	// secrets['NAME'], sorted. Secret names are case-insensitive on GitHub.
	Secrets []string
	// DynamicSecrets is set when secrets are read in a way that cannot be
	// resolved statically (secrets[matrix.x], secrets.*, toJSON(secrets)):
	// the job then needs all secrets.
	DynamicSecrets bool
}

type ref struct {
	expr string // expression text, for errors
	pos  int
	name string // context name or canonical function name
	fn   bool
}

// Refs parses every expression in s and reports what they reference.
// With isCondition, s is an `if:` (bare or wrapped); otherwise a template in
// which only ${{ }} parts are expressions.
func Refs(s string, isCondition bool) (RefInfo, error) {
	var info RefInfo
	refs, secrets, dynamic, err := collect(s, isCondition)
	if err != nil {
		return info, err
	}
	ctxs, funcs := map[string]bool{}, map[string]bool{}
	for _, r := range refs {
		if r.fn {
			funcs[r.name] = true
		} else {
			ctxs[r.name] = true
		}
	}
	info.Contexts = sortedKeys(ctxs)
	info.Funcs = sortedKeys(funcs)
	info.Secrets = sortedKeys(secrets)
	info.DynamicSecrets = dynamic
	return info, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// expressions returns the expression texts in s (and their offsets).
func expressions(s string, isCondition bool) ([]segment, error) {
	if isCondition {
		s = strings.TrimSpace(s)
		if s == "" {
			return nil, nil
		}
		if !strings.Contains(s, "${{") {
			return []segment{{Expr: s, IsExpr: true}}, nil
		}
	}
	if !strings.Contains(s, "${{") {
		return nil, nil
	}
	segs, err := splitTemplate(s)
	if err != nil {
		return nil, err
	}
	out := segs[:0]
	for _, seg := range segs {
		if seg.IsExpr {
			out = append(out, seg)
		}
	}
	return out, nil
}

func collect(s string, isCondition bool) (refs []ref, secrets map[string]bool, dynamic bool, err error) {
	segs, err := expressions(s, isCondition)
	if err != nil {
		return nil, nil, false, err
	}
	secrets = map[string]bool{}
	for _, seg := range segs {
		ast, err := parse(seg.Expr)
		if err != nil {
			return nil, nil, false, err
		}
		var walk func(n *node)
		walk = func(n *node) {
			switch n.kind {
			case nCtx:
				refs = append(refs, ref{expr: seg.Expr, pos: n.pos, name: n.name})
				if n.name == "secrets" {
					dynamic = true // the whole secrets object is used
				}
				return
			case nIndex:
				if l := n.kids[0]; l.kind == nCtx && l.name == "secrets" {
					refs = append(refs, ref{expr: seg.Expr, pos: l.pos, name: "secrets"})
					if k := n.kids[1]; k.kind == nLit && isPrimitive(k.val) {
						secrets[strings.ToUpper(String(k.val))] = true
					} else {
						dynamic = true
						walk(k)
					}
					return
				}
			case nCall:
				if info := builtinFuncs[n.name]; statusFuncs[n.name] || n.name == "hashfiles" {
					refs = append(refs, ref{expr: seg.Expr, pos: n.pos, name: info.name, fn: true})
				}
			}
			for _, k := range n.kids {
				walk(k)
			}
		}
		walk(ast.root)
	}
	return refs, secrets, dynamic, nil
}

// availability mirrors the table in "Contexts reference" > "Context
// availability": for each workflow key, the contexts and the special
// functions an expression there may use. Functions not in the last column
// (contains, format, ...) are allowed everywhere.
var availability = map[string][2]string{
	"run-name":                                         {"github, inputs, vars", ""},
	"concurrency":                                      {"github, inputs, vars", ""},
	"env":                                              {"github, secrets, inputs, vars", ""},
	"jobs.<job_id>.concurrency":                        {"github, needs, strategy, matrix, inputs, vars", ""},
	"jobs.<job_id>.container":                          {"github, needs, strategy, matrix, vars, inputs", ""},
	"jobs.<job_id>.container.credentials":              {"github, needs, strategy, matrix, env, vars, secrets, inputs", ""},
	"jobs.<job_id>.container.env.<env_id>":             {"github, needs, strategy, matrix, job, runner, env, vars, secrets, inputs", ""},
	"jobs.<job_id>.container.image":                    {"github, needs, strategy, matrix, vars, inputs", ""},
	"jobs.<job_id>.continue-on-error":                  {"github, needs, strategy, vars, matrix, inputs", ""},
	"jobs.<job_id>.defaults.run":                       {"github, needs, strategy, matrix, env, vars, inputs", ""},
	"jobs.<job_id>.env":                                {"github, needs, strategy, matrix, vars, secrets, inputs", ""},
	"jobs.<job_id>.environment":                        {"github, needs, strategy, matrix, vars, inputs", ""},
	"jobs.<job_id>.environment.url":                    {"github, needs, strategy, matrix, job, runner, env, vars, steps, inputs", ""},
	"jobs.<job_id>.if":                                 {"github, needs, vars, inputs", "always, cancelled, success, failure"},
	"jobs.<job_id>.name":                               {"github, needs, strategy, matrix, vars, inputs", ""},
	"jobs.<job_id>.outputs.<output_id>":                {"github, needs, strategy, matrix, job, runner, env, vars, secrets, steps, inputs", ""},
	"jobs.<job_id>.runs-on":                            {"github, needs, strategy, matrix, vars, inputs", ""},
	"jobs.<job_id>.secrets.<secrets_id>":               {"github, needs, strategy, matrix, secrets, inputs, vars", ""},
	"jobs.<job_id>.services":                           {"github, needs, strategy, matrix, vars, inputs", ""},
	"jobs.<job_id>.services.<service_id>.credentials":  {"github, needs, strategy, matrix, env, vars, secrets, inputs", ""},
	"jobs.<job_id>.services.<service_id>.env.<env_id>": {"github, needs, strategy, matrix, job, runner, env, vars, secrets, inputs", ""},
	"jobs.<job_id>.steps.continue-on-error":            {"github, needs, strategy, matrix, job, runner, env, vars, secrets, steps, inputs", "hashFiles"},
	"jobs.<job_id>.steps.env":                          {"github, needs, strategy, matrix, job, runner, env, vars, secrets, steps, inputs", "hashFiles"},
	"jobs.<job_id>.steps.if":                           {"github, needs, strategy, matrix, job, runner, env, vars, steps, inputs", "always, cancelled, success, failure, hashFiles"},
	"jobs.<job_id>.steps.name":                         {"github, needs, strategy, matrix, job, runner, env, vars, secrets, steps, inputs", "hashFiles"},
	"jobs.<job_id>.steps.run":                          {"github, needs, strategy, matrix, job, runner, env, vars, secrets, steps, inputs", "hashFiles"},
	"jobs.<job_id>.steps.timeout-minutes":              {"github, needs, strategy, matrix, job, runner, env, vars, secrets, steps, inputs", "hashFiles"},
	"jobs.<job_id>.steps.with":                         {"github, needs, strategy, matrix, job, runner, env, vars, secrets, steps, inputs", "hashFiles"},
	"jobs.<job_id>.steps.working-directory":            {"github, needs, strategy, matrix, job, runner, env, vars, secrets, steps, inputs", "hashFiles"},
	"jobs.<job_id>.strategy":                           {"github, needs, vars, inputs", ""},
	"jobs.<job_id>.timeout-minutes":                    {"github, needs, strategy, matrix, vars, inputs", ""},
	"jobs.<job_id>.with.<with_id>":                     {"github, needs, strategy, matrix, inputs, vars", ""},
	"on.workflow_call.inputs.<inputs_id>.default":      {"github, inputs, vars", ""},
	"on.workflow_call.outputs.<output_id>.value":       {"github, jobs, vars, inputs", ""},
}

// allowedContexts returns, for a workflow key spelled as in GitHub's
// "Context availability" table (e.g. "jobs.<job_id>.steps.run", "run-name"),
// the contexts and the special functions allowed there. ok is false for a
// key the table does not list.
func allowedContexts(key string) (contexts, funcs []string, ok bool) {
	row, ok := availability[key]
	if !ok {
		return nil, nil, false
	}
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ", ")
	}
	return split(row[0]), split(row[1]), true
}

// Check validates every expression in s for the workflow key (keys
// ending in ".if" are conditions): syntax, functions, and that only the
// contexts and special functions the availability table allows are used.
func Check(s, key string) error {
	contexts, funcs, ok := allowedContexts(key)
	if !ok {
		return fmt.Errorf("no context availability is defined for %q", key)
	}
	refs, _, _, err := collect(s, strings.HasSuffix(key, ".if"))
	if err != nil {
		return err
	}
	for _, r := range refs {
		allowed := contexts
		if r.fn {
			allowed = funcs
		}
		if !containsStr(allowed, r.name) {
			what := "context"
			if r.fn {
				what = "function"
			}
			return &posError{Expr: r.expr, Offset: r.pos, Msg: fmt.Sprintf("%s '%s' is not available in %s", what, r.name, key)}
		}
	}
	return nil
}
