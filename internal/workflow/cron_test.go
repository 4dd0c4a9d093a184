package workflow

import (
	"strings"
	"testing"
	"time"
)

func cronTime(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestCronParseErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // substring of the error; "" means valid
	}{
		{"* * * * *", ""},
		{"30 5,17 * * *", ""},
		{"*/15 * * * *", ""},
		{"20/15 * * * *", ""},
		{"1-30/5 * * * *", ""},
		{"0 4-6 * * *", ""},
		{"0 0 * JAN-mar Mon-FRI", ""},
		{"0 0 * * sun,SAT", ""},
		{"0 0 * dec *", ""},
		{"  0   0 * * *  ", ""},
		{"0 0 * * 7", "7 is out of range 0-6 (use 0 or SUN for Sunday)"},
		{"60 * * * *", "60 is out of range 0-59"},
		{"* 24 * * *", "24 is out of range 0-23"},
		{"* * 0 * *", "0 is out of range 1-31"},
		{"* * * 13 *", "13 is out of range 1-12"},
		{"* * * * * *", "has 6 fields"},
		{"* * * *", "has 4 fields"},
		{"@daily", "does not support the non-standard @daily"},
		{"5-1 * * * *", "ends before it starts"},
		{"*/0 * * * *", "must be a number from 1 to 59"},
		{"*/60 * * * *", "must be a number from 1 to 59"},
		{"* * * * */7", "must be a number from 1 to 6"},
		{"1,,2 * * * *", "empty list item"},
		{"1/2/3 * * * *", "a step must look like"},
		{"/5 * * * *", "a step must look like"},
		{"1- * * * *", "a range must look like"},
		{"1-2-3 * * * *", "a range must look like"},
		{"a * * * *", `"a" is not a number`},
		{"* * * foo *", `"foo" is neither a number nor a name`},
		{"0x1 * * * *", "is not a number"},
		{"+1 * * * *", "is not a number"},
		{"JAN * * * *", "is not a number"}, // names belong to their field only
		{"", "has 0 fields"},
	}
	for _, tt := range tests {
		_, err := cronParse(tt.in)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("cronParse(%q) = %v, want nil", tt.in, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("cronParse(%q) = %v, want error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestCronMatches(t *testing.T) {
	tests := []struct {
		spec string
		at   string
		want bool
	}{
		{"30 5,17 * * *", "2024-03-01 05:30", true},
		{"30 5,17 * * *", "2024-03-01 17:30", true},
		{"30 5,17 * * *", "2024-03-01 06:30", false},
		{"20/15 * * * *", "2024-03-01 00:20", true},
		{"20/15 * * * *", "2024-03-01 00:35", true},
		{"20/15 * * * *", "2024-03-01 00:50", true},
		{"20/15 * * * *", "2024-03-01 00:05", false},
		{"1-30/5 * * * *", "2024-03-01 00:26", true},
		{"1-30/5 * * * *", "2024-03-01 00:31", false},
		{"2,10 4,5 * * *", "2024-03-01 05:10", true},
		// 2024-03-01 is a Friday.
		{"0 0 * * FRI", "2024-03-01 00:00", true},
		{"0 0 * * 1-4", "2024-03-01 00:00", false},
		// Both day fields restricted: either matches (POSIX).
		{"0 0 15 * MON", "2024-03-04 00:00", true}, // a Monday
		{"0 0 15 * MON", "2024-03-15 00:00", true}, // the 15th, a Friday
		{"0 0 15 * MON", "2024-03-05 00:00", false},
		// A star-led field leaves the other one alone (AND).
		{"0 0 */2 * MON", "2024-03-04 00:00", false}, // Monday the 4th: even day
		{"0 0 */2 * MON", "2024-03-11 00:00", true},  // Monday the 11th
		{"0 0 * * MON", "2024-03-05 00:00", false},
		{"0 0 1 jan *", "2025-01-01 00:00", true},
		{"0 0 1 jan *", "2025-02-01 00:00", false},
	}
	for _, tt := range tests {
		c, err := cronParse(tt.spec)
		if err != nil {
			t.Fatalf("cronParse(%q) = %v", tt.spec, err)
		}
		if got := c.Matches(cronTime(tt.at)); got != tt.want {
			t.Errorf("cronParse(%q).matches(%s) = %v, want %v", tt.spec, tt.at, got, tt.want)
		}
	}
	// Evaluated in UTC whatever the location of t.
	c, _ := cronParse("0 12 * * *")
	loc := time.FixedZone("X", 5*3600)
	if !c.Matches(time.Date(2024, 3, 1, 17, 0, 0, 0, loc)) {
		t.Errorf("matches ignores UTC conversion")
	}
}

func TestCronNext(t *testing.T) {
	tests := []struct {
		spec, after, want string
	}{
		{"*/15 * * * *", "2024-03-01 00:00", "2024-03-01 00:15"},
		{"*/15 * * * *", "2024-03-01 00:59", "2024-03-01 01:00"},
		{"30 5,17 * * *", "2024-03-01 17:30", "2024-03-02 05:30"},
		{"0 0 29 2 *", "2024-03-01 00:00", "2028-02-29 00:00"},
		{"0 0 29 2 *", "2096-03-01 00:00", "2104-02-29 00:00"},
		{"0 0 1 JAN *", "2024-12-31 23:59", "2025-01-01 00:00"},
		{"0 9 * * MON", "2024-03-01 10:00", "2024-03-04 09:00"},
		{"0 0 31 4 *", "2024-01-01 00:00", ""}, // April has 30 days
	}
	for _, tt := range tests {
		c, err := cronParse(tt.spec)
		if err != nil {
			t.Fatalf("cronParse(%q) = %v", tt.spec, err)
		}
		got := c.next(cronTime(tt.after))
		want := time.Time{}
		if tt.want != "" {
			want = cronTime(tt.want)
		}
		if !got.Equal(want) {
			t.Errorf("cronParse(%q).next(%s) = %v, want %v", tt.spec, tt.after, got, want)
		}
	}
	// Seconds are dropped: next is strictly after, on a minute boundary.
	c, _ := cronParse("* * * * *")
	if got, want := c.next(time.Date(2024, 1, 1, 0, 0, 30, 5, time.UTC)), cronTime("2024-01-01 00:01"); !got.Equal(want) {
		t.Errorf("next(00:00:30) = %v, want %v", got, want)
	}
}

func FuzzCron(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/15 1-5 * JAN-DEC MON-FRI", "0 0 15 * 1", "20/15 * 31 2 *", "0 0 */2 * sun"} {
		f.Add(s, int64(1700000000))
	}
	f.Fuzz(func(t *testing.T, s string, sec int64) {
		c, err := cronParse(s)
		if err != nil {
			return
		}
		after := time.Unix(sec%(1<<34), 0).UTC()
		n := c.next(after)
		if n.IsZero() {
			return
		}
		if !n.After(after) || !c.Matches(n) || n.Second() != 0 {
			t.Fatalf("cronParse(%q).next(%v) = %v: not a later matching minute", s, after, n)
		}
		// No matching minute was skipped in the first day.
		for m := after.Truncate(time.Minute).Add(time.Minute); m.Before(n) && m.Before(after.Add(24*time.Hour)); m = m.Add(time.Minute) {
			if c.Matches(m) {
				t.Fatalf("cronParse(%q).next(%v) = %v, but %v matches", s, after, n, m)
			}
		}
	})
}
