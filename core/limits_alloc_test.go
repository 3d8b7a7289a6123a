//go:build !race

package core

import (
	"bufio"
	"strings"
	"testing"
)

// TestCheckRequestAllocations guards the edge checks on a request parsed
// from the wire (so with raw headers to scan): they must not allocate.
func TestCheckRequestAllocations(t *testing.T) {
	l := DefaultLimits()
	l.MaxBodyBytes = 1 << 20
	raw := "POST /api/v1/items?id=42 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\n" +
		"Accept: */*\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-Request-Id: abc\r\n\r\n"
	ctx := parsedCtx(t, raw)
	if n := testing.AllocsPerRun(1000, func() {
		if l.checkRequest(ctx) != 0 {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Fatalf("checkRequest allocates %.1f times per request", n)
	}
	sr := strings.NewReader(raw)
	br := bufio.NewReader(sr)
	if n := testing.AllocsPerRun(1000, func() {
		sr.Reset(raw)
		br.Reset(sr)
		ctx.Request.Header.Reset()
		if err := ctx.Request.Header.Read(br); err != nil {
			t.Fatal(err)
		}
		if l.checkRequest(ctx) != 0 {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Fatalf("parse and check allocate %.1f times per request", n)
	}
}
