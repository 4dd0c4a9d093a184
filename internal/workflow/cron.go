package workflow

// on.schedule cron expressions, as GitHub documents them ("Events that trigger
// workflows", schedule): POSIX cron, five fields
//
//	minute (0-59) hour (0-23) day-of-month (1-31) month (1-12 or JAN-DEC)
//	day-of-week (0-6 or SUN-SAT)
//
// with the operators * , - / in every field, evaluated in UTC. `20/15` means
// every 15 starting at 20 up to the field's maximum. The non-standard @yearly,
// @monthly, @weekly, @daily, @hourly and @reboot are not supported, and
// day-of-week 7 is rejected, as GitHub's own validator does
// (actions/languageservices workflow-parser cron.ts: ranges 0-6, names only
// as whole values or range ends, a range's end not before its start, a step
// a positive number within the field's range).
//
// When both day-of-month and day-of-week are restricted (neither field starts
// with '*'), a day matches if either matches (POSIX; Vixie cron reads a field
// starting with '*', like */2, as unrestricted for this rule).

import (
	"fmt"
	"strings"
	"time"
)

type Schedule struct {
	minute, hour, dom, month, dow uint64
	domStar, dowStar              bool
	spec                          string
}

type cronField struct {
	name     string
	min, max int
	names    map[string]int
}

var cronFields = [5]cronField{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day-of-month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}},
	{name: "day-of-week", min: 0, max: 6, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}},
}

// cronParse parses a five-field cron expression.
func cronParse(s string) (*Schedule, error) {
	if len(s) > 1000 {
		return nil, fmt.Errorf("cron expression is too long (%d bytes)", len(s))
	}
	parts := strings.Fields(s)
	if len(parts) == 1 && strings.HasPrefix(parts[0], "@") {
		return nil, fmt.Errorf("cron expression %q: GitHub does not support the non-standard %s syntax; use five fields", s, parts[0])
	}
	if len(parts) != 5 {
		return nil, fmt.Errorf("cron expression %q has %d fields, want 5 (minute hour day-of-month month day-of-week)", s, len(parts))
	}
	c := &Schedule{spec: s}
	var sets [5]uint64
	for i, p := range parts {
		set, err := cronParseField(p, cronFields[i])
		if err != nil {
			return nil, fmt.Errorf("cron expression %q: %s field %q: %v", s, cronFields[i].name, p, err)
		}
		sets[i] = set
	}
	c.minute, c.hour, c.dom, c.month, c.dow = sets[0], sets[1], sets[2], sets[3], sets[4]
	c.domStar = strings.HasPrefix(parts[2], "*")
	c.dowStar = strings.HasPrefix(parts[4], "*")
	return c, nil
}

func cronParseField(p string, f cronField) (uint64, error) {
	var set uint64
	for _, item := range strings.Split(p, ",") {
		if item == "" {
			return 0, fmt.Errorf("empty list item")
		}
		s, err := cronParseItem(item, f)
		if err != nil {
			return 0, err
		}
		set |= s
	}
	return set, nil
}

func cronParseItem(item string, f cronField) (uint64, error) {
	lo, hi, step := f.min, f.max, 1
	rangePart := item
	if i := strings.IndexByte(item, '/'); i >= 0 {
		rangePart = item[:i]
		stepStr := item[i+1:]
		if rangePart == "" || stepStr == "" || strings.Contains(stepStr, "/") {
			return 0, fmt.Errorf("a step must look like */N, A/N or A-B/N")
		}
		n, ok := cronNumber(stepStr)
		if !ok || n <= 0 || n > f.max {
			return 0, fmt.Errorf("step %q must be a number from 1 to %d", stepStr, f.max)
		}
		step = n
	}
	switch {
	case rangePart == "*":
	case strings.Contains(rangePart, "-"):
		a, b, _ := strings.Cut(rangePart, "-")
		if a == "" || b == "" || strings.Contains(b, "-") {
			return 0, fmt.Errorf("a range must look like A-B")
		}
		var err error
		if lo, err = cronValue(a, f); err != nil {
			return 0, err
		}
		if hi, err = cronValue(b, f); err != nil {
			return 0, err
		}
		if hi < lo {
			return 0, fmt.Errorf("range %s ends before it starts", rangePart)
		}
	default:
		v, err := cronValue(rangePart, f)
		if err != nil {
			return 0, err
		}
		lo = v
		if step == 1 && !strings.Contains(item, "/") {
			hi = v
		}
	}
	var set uint64
	for v := lo; v <= hi; v += step {
		set |= 1 << uint(v)
	}
	return set, nil
}

// cronValue reads a number or a (case-insensitive) name within the field.
func cronValue(s string, f cronField) (int, error) {
	if f.names != nil {
		if v, ok := f.names[strings.ToLower(s)]; ok {
			return v, nil
		}
	}
	n, ok := cronNumber(s)
	if !ok {
		if f.names != nil {
			return 0, fmt.Errorf("%q is neither a number nor a name", s)
		}
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < f.min || n > f.max {
		if f.name == "day-of-week" && n == 7 {
			return 0, fmt.Errorf("7 is out of range %d-%d (use 0 or SUN for Sunday)", f.min, f.max)
		}
		return 0, fmt.Errorf("%d is out of range %d-%d", n, f.min, f.max)
	}
	return n, nil
}

func cronNumber(s string) (int, bool) {
	if s == "" || len(s) > 4 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func (c *Schedule) String() string { return c.spec }

// matches reports whether the schedule fires in t's minute (in UTC).
func (c *Schedule) Matches(t time.Time) bool {
	t = t.UTC()
	return c.minute&(1<<uint(t.Minute())) != 0 &&
		c.hour&(1<<uint(t.Hour())) != 0 &&
		c.month&(1<<uint(t.Month())) != 0 &&
		c.dayMatches(t)
}

func (c *Schedule) dayMatches(t time.Time) bool {
	d := c.dom&(1<<uint(t.Day())) != 0
	w := c.dow&(1<<uint(t.Weekday())) != 0
	if c.domStar || c.dowStar {
		return d && w
	}
	return d || w
}

// next returns the first minute strictly after `after` at which the schedule
// fires, in UTC, or the zero time if it never fires (e.g. "0 0 30 2 *").
func (c *Schedule) next(after time.Time) time.Time {
	t := after.UTC().Truncate(time.Minute).Add(time.Minute)
	// Any satisfiable schedule fires within 8 years (Feb 29 across 2100).
	limit := t.AddDate(9, 0, 0)
	for t.Before(limit) {
		if c.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if !c.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if c.hour&(1<<uint(t.Hour())) == 0 {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, time.UTC)
			continue
		}
		if c.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}
