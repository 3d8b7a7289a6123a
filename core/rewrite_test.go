package core

import "testing"

func TestRewriteTarget(t *testing.T) {
	tests := []struct {
		name     string
		rw       PathRewrite
		path     string
		query    string
		want     string
		identity bool // compileRewrite returns nil
	}{
		{name: "strip to root", rw: PathRewrite{Base: "/", Strip: true, StripPrefixes: []string{"/mock"}}, path: "/mock/headers", want: "/headers"},
		{name: "strip all", rw: PathRewrite{Base: "/", Strip: true, StripPrefixes: []string{"/mock"}}, path: "/mock", want: "/"},
		{name: "strip inside a segment", rw: PathRewrite{Base: "/", Strip: true, StripPrefixes: []string{"/mock"}}, path: "/mockbin", want: "/bin"},
		{name: "v0 base no slash, postfix no slash", rw: PathRewrite{Base: "/s", Strip: true, StripPrefixes: []string{"/fv0"}}, path: "/fv0req", want: "/s/req"},
		{name: "v0 base no slash, postfix slash", rw: PathRewrite{Base: "/s", Strip: true, StripPrefixes: []string{"/fv0"}}, path: "/fv0/req", want: "/s/req"},
		{name: "v0 base no slash, empty postfix", rw: PathRewrite{Base: "/s", Strip: true, StripPrefixes: []string{"/fv0"}}, path: "/fv0", want: "/s"},
		{name: "v0 base no slash, trailing slash kept", rw: PathRewrite{Base: "/s", Strip: true, StripPrefixes: []string{"/fv0"}}, path: "/fv0/", want: "/s/"},
		{name: "v0 base slash, prefix slash", rw: PathRewrite{Base: "/s/", Strip: true, StripPrefixes: []string{"/tv0/"}}, path: "/tv0/", want: "/s/"},
		{name: "v0 base slash, empty postfix, no trailing slash", rw: PathRewrite{Base: "/s/", Strip: true, StripPrefixes: []string{"/x"}}, path: "/x", want: "/s"},
		{name: "v0 base slash, postfix no slash", rw: PathRewrite{Base: "/s/", Strip: true, StripPrefixes: []string{"/x"}}, path: "/xreq", want: "/s/req"},
		{name: "no strip, base no slash", rw: PathRewrite{Base: "/s", StripPrefixes: []string{"/x"}}, path: "/x/y", want: "/s/x/y"},
		{name: "no strip, base slash", rw: PathRewrite{Base: "/s/", StripPrefixes: []string{"/x"}}, path: "/x/y", want: "/s/x/y"},
		{name: "no strip, root request", rw: PathRewrite{Base: "/s"}, path: "/", want: "/s"},
		{name: "query kept", rw: PathRewrite{Base: "/s", Strip: true, StripPrefixes: []string{"/x"}}, path: "/x/y", query: "a=1&b=%20", want: "/s/y?a=1&b=%20"},
		{name: "escaped", rw: PathRewrite{Base: "/", Strip: true, StripPrefixes: []string{"/m"}}, path: "/m/a b%?#", want: "/a%20b%25%3F%23"},
		{name: "longest prefix", rw: PathRewrite{Base: "/", Strip: true, StripPrefixes: []string{"/a", "/a/b"}}, path: "/a/b/c", want: "/c"},
		{name: "path-less route", rw: PathRewrite{Base: "/s", Strip: true}, path: "/foo", want: "/s/foo"},
		{name: "v1 concatenates", rw: PathRewrite{Base: "/s", Strip: true, StripPrefixes: []string{"/fv1"}, V1: true}, path: "/fv1req", want: "/sreq"},
		{name: "v1 drops a double slash", rw: PathRewrite{Base: "/s/", Strip: true, StripPrefixes: []string{"/fv1"}, V1: true}, path: "/fv1/req", want: "/s/req"},
		{name: "identity: no strip", rw: PathRewrite{Base: "/", StripPrefixes: []string{"/x"}}, identity: true},
		{name: "identity: strip without paths", rw: PathRewrite{Base: "/", Strip: true}, identity: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := compileRewrite(&tt.rw)
			if tt.identity {
				if r != nil {
					t.Fatalf("want no rewrite, got %+v", r)
				}
				return
			}
			got := string(r.appendTarget(nil, []byte(tt.path), []byte(tt.query)))
			if got != tt.want {
				t.Fatalf("target %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUpstreamSplitSchedule(t *testing.T) {
	tests := []struct {
		weights []int
		n       int
		want    []int
	}{
		{[]int{100, 100}, 200, []int{100, 100}},
		{[]int{90, 10}, 100, []int{90, 10}},
		{[]int{1, 0, 3}, 40, []int{10, 0, 30}},
		{[]int{70000, 1}, 4097, nil}, // scaled: only checks that it runs
	}
	for _, tt := range tests {
		choices := make([]splitChoice, len(tt.weights))
		for i := range choices {
			choices[i].failStatus = i
		}
		s := newUpstreamSplit(choices, tt.weights)
		got := make([]int, len(tt.weights))
		for range tt.n {
			got[s.pick().failStatus]++
		}
		if tt.want == nil {
			if got[1] == 0 {
				t.Fatalf("weights %v: the small share got nothing", tt.weights)
			}
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("weights %v over %d picks: got %v, want %v", tt.weights, tt.n, got, tt.want)
			}
		}
	}
	if newUpstreamSplit(make([]splitChoice, 2), []int{0, 0}) != nil {
		t.Fatal("all-zero weights must give no split")
	}
	// Interleaved, not in runs: 1:1 alternates.
	s := newUpstreamSplit(make([]splitChoice, 2), []int{5, 5})
	if len(s.schedule) != 2 || s.schedule[0] == s.schedule[1] {
		t.Fatalf("schedule %v", s.schedule)
	}
}

func TestAppendUUID(t *testing.T) {
	a, b := string(appendUUID(nil)), string(appendUUID(nil))
	if !IsUUID(a) || a == b || a[14] != '4' {
		t.Fatalf("uuids %q %q", a, b)
	}
}
